"""docs/openapi.yaml: generated from the order schema and sandbox/api_shapes.py, valid OpenAPI 3.1, and true to the
template and the handler."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
import yaml
from cfn import of_type

from handlers import answers
from orders import model as domain
from orders import restock
from orders.validation import OrderValidator, parse_json
from sandbox import gateway, model, openapi

ROOT = Path(__file__).resolve().parents[2]
API_HANDLER = ROOT / "functions" / "handlers" / "api.py"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
ROUTES = {
    "POST /orders",
    "GET /orders/{order_id}",
    "GET /products/{product_id}",
    "POST /products/{product_id}/restock",
    "GET /restocks/{restock_id}",
}
GATEWAY_STATUSES = {"403", "429"}  # answered by API Gateway before the function runs


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(openapi.OUTPUT.read_text("utf-8"))
    return doc


@pytest.fixture(scope="module")
def order_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(model.SCHEMA.read_text("utf-8"))
    return schema


def _walk(node: Any, path: str = "#") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}/{index}")


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _parameters(operation: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == where}


def _template_routes(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, bool]]:
    """Every method of the REST API in the template, as "METHOD /path", with its RequestParameters."""
    parts = {name: r["Properties"] for name, r in of_type(resources, "AWS::ApiGateway::Resource").items()}

    def path(resource: str) -> str:
        parent = parts[resource]["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{parts[resource]['PathPart']}"

    return {
        f"{m['HttpMethod']} {path(m['ResourceId']['Ref'])}": m.get("RequestParameters", {})
        for m in (r["Properties"] for r in of_type(resources, "AWS::ApiGateway::Method").values())
    }


def _handler_module() -> ast.Module:
    return ast.parse(API_HANDLER.read_text("utf-8"))


def _dispatch() -> dict[str, str]:
    """The routes `handler` dispatches ("METHOD /path"), each with the function it calls."""
    [handler] = [n for n in _handler_module().body if isinstance(n, ast.FunctionDef) and n.name == "handler"]
    routes: dict[str, str] = {}
    for branch in (n for n in handler.body if isinstance(n, ast.If)):
        tests = branch.test.values if isinstance(branch.test, ast.BoolOp) else [branch.test]
        wanted = {
            test.left.id: test.comparators[0].value
            for test in tests
            if isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and isinstance(test.comparators[0], ast.Constant)
        }
        [answer] = branch.body
        assert isinstance(answer, ast.Return) and isinstance(answer.value, ast.Call)
        assert isinstance(answer.value.func, ast.Name)
        routes[f"{wanted['method']} {wanted['resource']}"] = answer.value.func.id
    return routes


def _handler_statuses(function: str) -> set[str]:
    """The statuses a function of the handler answers: its own `_response(N, ...)` and those of what it calls."""
    functions = {n.name: n for n in _handler_module().body if isinstance(n, ast.FunctionDef)}
    statuses: set[str] = set()
    seen: set[str] = set()
    todo = [function]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for call in (n for n in ast.walk(functions[name]) if isinstance(n, ast.Call)):
            if not isinstance(call.func, ast.Name):
                continue
            if call.func.id == "_response":
                status = call.args[0]
                assert isinstance(status, ast.Constant), f"{name}: a status that is not a literal"
                statuses.add(str(status.value))
            elif call.func.id in functions:
                todo.append(call.func.id)
    return statuses


def _json_schema(node: Any, doc: dict[str, Any]) -> Any:
    """An OpenAPI 3.1 Schema Object with its references inlined, for fastjsonschema (which reads no `$ref` to
    #/components)."""
    if isinstance(node, list):
        return [_json_schema(value, doc) for value in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(_resolve(doc, node["$ref"]), doc)
    return {key: _json_schema(value, doc) for key, value in node.items()}


# -------------------------------------------------------------------------------- drift


def test_the_committed_document_is_what_the_generator_writes() -> None:
    assert openapi.OUTPUT.read_text("utf-8") == openapi.generate(), "run `make openapi`"


def test_check_fails_when_the_document_has_drifted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "openapi.yaml"
    stale.write_text(openapi.generate().replace("Order pipeline API", "Old API"), "utf-8")
    monkeypatch.setattr(openapi, "OUTPUT", stale)
    monkeypatch.setattr("sys.argv", ["openapi.py", "--check"])
    assert openapi.main() == 1
    monkeypatch.setattr("sys.argv", ["openapi.py"])
    assert openapi.main() == 0
    monkeypatch.setattr("sys.argv", ["openapi.py", "--check"])
    assert openapi.main() == 0


def test_the_order_request_schema_is_the_api_model_without_its_draft_4_header(
    committed: dict[str, Any], order_schema: dict[str, Any]
) -> None:
    # The one documented conversion: the draft-4 `$schema` goes (OpenAPI 3.1 speaks 2020-12); every rule stays as it is.
    expected = {key: value for key, value in model.api_model(order_schema).items() if key != "$schema"}
    assert committed["components"]["schemas"]["Order"] == expected


def test_the_order_request_schema_keeps_every_rule_of_the_schema_file(
    committed: dict[str, Any], order_schema: dict[str, Any]
) -> None:
    order = committed["components"]["schemas"]["Order"]
    assert order["required"] == order_schema["required"]
    assert order["properties"].keys() == order_schema["properties"].keys()
    assert order["properties"]["order_id"]["pattern"] == order_schema["properties"]["order_id"]["pattern"]
    address = order_schema["definitions"]["address"]
    for owner in ("customer", "shipping"):
        documented = order["properties"][owner]["properties"]["address"]
        assert documented["properties"]["state"]["enum"] == address["properties"]["state"]["enum"]
        assert documented["required"] == address["required"]
    assert "additionalProperties" not in json.dumps(order), "unknown fields are accepted (and dropped)"
    assert not [path for path, node in _walk(order) if isinstance(node, dict) and set(node) & {"$ref", "$schema"}]
    assert not [path for path in (p for p, _ in _walk(order)) if "/x-" in path], "our x-* keywords stay ours"


def test_a_draft_4_keyword_that_means_something_else_in_openapi_3_1_is_refused() -> None:
    with pytest.raises(ValueError, match="exclusiveMinimum"):
        openapi.order_schema({"type": "object", "properties": {"a": {"minimum": 0, "exclusiveMinimum": True}}})
    with pytest.raises(ValueError, match="items"):
        openapi.order_schema({"type": "object", "properties": {"a": {"items": [{"type": "string"}]}}})
    # A property merely named like a keyword is fine, and the draft-4 header goes.
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "properties": {"id": {"type": "string"}}}
    assert openapi.order_schema(schema) == {"properties": {"id": {"type": "string"}}}


# -------------------------------------------------------------------------------- a valid OpenAPI 3 document


def test_the_document_has_the_shape_of_openapi_3_1(committed: dict[str, Any]) -> None:
    try:  # not a dependency: when someone has it, it checks the whole specification too
        from openapi_spec_validator import validate
    except ImportError:
        pass
    else:
        validate(committed)
    assert re.fullmatch(r"3\.1\.\d+", committed["openapi"])
    assert committed["info"]["title"] and committed["info"]["version"]
    assert {f"{method.upper()} {path}" for path, method, _ in _operations(committed)} == ROUTES
    operation_ids = [operation["operationId"] for _, _, operation in _operations(committed)]
    assert len(operation_ids) == len(set(operation_ids)) == len(ROUTES)
    for path, method, operation in _operations(committed):
        templated = set(re.findall(r"{([^}]+)}", path))
        assert templated == set(_parameters(operation, "path")), f"{method} {path}"
        assert all(p["required"] is True for p in _parameters(operation, "path").values())
        assert {p["in"] for p in operation.get("parameters", [])} <= {"path", "query", "header"}, f"{method} {path}"
        assert set(operation["tags"]) <= {tag["name"] for tag in committed["tags"]}, f"{method} {path}"
        assert operation["responses"], f"{method} {path}"
        for status, response in operation["responses"].items():
            assert re.fullmatch(r"[1-5][0-9]{2}", status), f"{method} {path} {status}"
            response = _resolve(committed, response["$ref"]) if "$ref" in response else response
            assert response["description"]
            assert set(response["content"]) == {"application/json"}, "every answer is JSON"
    for server in committed["servers"]:
        assert set(re.findall(r"{([^}]+)}", server["url"])) == set(server.get("variables", {}))
        assert all("default" in variable for variable in server["variables"].values())


def test_every_reference_resolves(committed: dict[str, Any]) -> None:
    refs = [node["$ref"] for _, node in _walk(committed) if isinstance(node, dict) and "$ref" in node]
    assert refs
    for ref in refs:
        assert _resolve(committed, ref) is not None, ref


def test_every_response_example_matches_its_schema(committed: dict[str, Any]) -> None:
    examples = [
        (path, node)
        for path, node in _walk(committed)
        if isinstance(node, dict) and "schema" in node and "example" in node and "/responses/" in path
    ]
    assert len(examples) >= 9
    for path, media in examples:
        check = fastjsonschema.compile(_json_schema(media["schema"], committed))
        try:
            check(media["example"])
        except fastjsonschema.JsonSchemaValueException as exc:
            pytest.fail(f"{path}: {exc.message}")


def test_the_request_example_is_the_labs_order_and_valid(committed: dict[str, Any]) -> None:
    # Checked by the project's own validator: fastjsonschema mistranslates the e-mail pattern's `$`.
    example = committed["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert example == json.loads(openapi.LAB_EXAMPLE.read_text("utf-8"))
    assert OrderValidator().validate(parse_json(json.dumps(example))).order_id == example["order_id"]


def test_the_restock_examples_are_valid_and_the_domains_words(committed: dict[str, Any]) -> None:
    operation = committed["paths"]["/products/{product_id}/restock"]["post"]
    media = operation["requestBody"]["content"]["application/json"]
    fastjsonschema.compile(_json_schema(media["schema"], committed))(media["example"])
    key = _parameters(operation, "header")["Idempotency-Key"]["example"]
    accepted = operation["responses"]["202"]["content"]["application/json"]["example"]
    assert restock.validate_restock(media["example"], key, accepted["product_id"]) == restock.Restock(
        accepted["restock_id"], accepted["product_id"], accepted["quantity"]
    )
    # The 400 example is what the validator says of a quantity of 0.
    invalid = operation["responses"]["400"]["content"]["application/json"]["example"]
    with pytest.raises(restock.RestockRejected) as rejected:
        restock.validate_restock({"quantity": 0}, key, accepted["product_id"])
    assert invalid["errors"] == [e.as_dict() for e in rejected.value.errors]
    # The order it released tells why, in the restocker's words.
    order = committed["paths"]["/orders/{order_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    shown = committed["paths"]["/restocks/{restock_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert order["example"]["order_id"] in shown["example"]["released_orders"]
    assert order["example"]["status_history"][-1] == {
        "status": domain.NEW_ORDER,
        "at": order["example"]["released_at"],
        "reason": restock.release_reason(shown["example"]["restock_id"]),
    }


# -------------------------------------------------------------------------------- true to the template


def test_every_route_of_the_template_is_documented(
    committed: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    documented = {f"{method.upper()} {path}" for path, method, _ in _operations(committed)}
    assert set(_template_routes(resources)) == documented == ROUTES


def test_the_documented_parameters_are_the_templates_request_parameters(
    committed: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    routes = _template_routes(resources)
    for path, method, operation in _operations(committed):
        declared = {
            f"method.request.{'querystring' if where == 'query' else where}.{name}": parameter["required"]
            for where in ("path", "query", "header")
            for name, parameter in _parameters(operation, where).items()
        }
        # A method without RequestParameters (POST /orders) has no parameter to declare.
        assert routes[f"{method.upper()} {path}"] == declared, f"{method} {path}"


def test_a_route_behind_an_id_documents_the_gateways_no_route_answer(committed: dict[str, Any]) -> None:
    for path, method, operation in _operations(committed):
        assert ("403" in operation["responses"]) == ("{" in path), f"{method} {path}"
        assert "429" in operation["responses"], f"{method} {path}"


# -------------------------------------------------------------------------------- true to the handler


def test_every_documented_route_is_dispatched_by_the_handler(committed: dict[str, Any]) -> None:
    assert set(_dispatch()) == {f"{method.upper()} {path}" for path, method, _ in _operations(committed)}


def test_the_documented_status_codes_are_those_the_api_answers(committed: dict[str, Any]) -> None:
    statuses = {f"{method.upper()} {path}": set(op["responses"]) for path, method, op in _operations(committed)}
    assert statuses == {
        "POST /orders": {"202", "400", "409", "415", "503", "429"},
        "GET /orders/{order_id}": {"200", "404", "403", "429"},
        "GET /products/{product_id}": {"200", "404", "403", "429"},
        "POST /products/{product_id}/restock": {"202", "400", "409", "415", "503", "403", "429"},
        "GET /restocks/{restock_id}": {"200", "400", "404", "403", "429"},
    }
    # Every status the route's function can answer is documented, and every other documented one is the gateway's.
    dispatch = _dispatch()
    for route, documented in statuses.items():
        assert route in dispatch, f"{route} is not dispatched by the handler"
        assert documented - GATEWAY_STATUSES == _handler_statuses(dispatch[route]), route


def test_the_handler_statuses_are_read_from_its_code() -> None:
    # The reading above must see through helpers: post_order's 415 comes from _json_body.
    assert _handler_statuses("_json_body") == {"415"}
    assert _handler_statuses("post_order") == {"202", "400", "409", "415", "503"}


def _documented_messages(committed: dict[str, Any]) -> dict[str, list[str]]:
    """The texts each answer's schema allows as its `message`, by schema name."""
    texts = {}
    for name, schema in committed["components"]["schemas"].items():
        message = schema.get("properties", {}).get("message", {})
        if "const" in message or "enum" in message:
            texts[name] = [message["const"]] if "const" in message else message["enum"]
    return texts


def test_the_documented_messages_are_the_handlers_own_words(committed: dict[str, Any]) -> None:
    spoken = {name: text for name, text in vars(answers).items() if name.isupper()}
    messages = _documented_messages(committed)
    assert messages.pop("GatewayRefusal") == [gateway.BUILT_IN_REFUSAL["message"]]  # the gateway's words, not ours
    assert len(messages) == 13, sorted(messages)
    for name, texts in messages.items():
        assert set(texts) <= set(spoken.values()), name
    # ... and the handler says every one of them, by name (no text of its own beside them)
    said = {node.id for node in ast.walk(_handler_module()) if isinstance(node, ast.Name)}
    assert set(spoken) <= said, sorted(set(spoken) - said)
    handler = API_HANDLER.read_text("utf-8")
    assert not [text for text in spoken.values() if f'"{text}"' in handler]


def test_the_documented_restock_rules_are_the_validators(committed: dict[str, Any]) -> None:
    quantity = fastjsonschema.compile(_json_schema(committed["components"]["schemas"]["Restock"], committed))
    for value in (0, 1, restock.MAX_RESTOCK_QUANTITY, restock.MAX_RESTOCK_QUANTITY + 1, -1, "10", True, 1.5):
        try:
            quantity({"quantity": value})
        except fastjsonschema.JsonSchemaValueException:
            documented = False
        else:
            documented = True
        assert documented == (restock.quantity_errors(value) == []), value
    operation = committed["paths"]["/products/{product_id}/restock"]["post"]
    key = fastjsonschema.compile(_parameters(operation, "header")["Idempotency-Key"]["schema"])
    for value in ("a", "NF-2024_000123", "x" * 64, "x" * 65, "", "bad key!", "ação", "a\n"):
        try:
            key(value)
        except fastjsonschema.JsonSchemaValueException:
            documented = False
        else:
            documented = True
        assert documented == restock.is_valid_id(value), value


def test_the_documented_statuses_are_the_domains(committed: dict[str, Any]) -> None:
    schemas = committed["components"]["schemas"]
    assert schemas["OrderView"]["properties"]["order_status"]["enum"] == [
        domain.RECEIVED,
        domain.NEW_ORDER,
        domain.PRODUCT_PENDING,
    ]
    assert schemas["OrderItemView"]["properties"]["item_status"]["enum"] == [
        domain.RECEIVED,
        domain.RESERVED,
        domain.PENDING,
    ]
    assert (
        schemas["StatusChange"]["properties"]["status"]["enum"]
        == schemas["OrderView"]["properties"]["order_status"]["enum"]
    )
    for name in ("RestockAccepted", "RestockView"):
        assert schemas[name]["properties"]["restock_status"]["enum"] == [
            restock.RESTOCK_RECEIVED,
            restock.RESTOCK_APPLIED,
        ]


def test_every_answer_shape_is_used_by_the_document(committed: dict[str, Any]) -> None:
    refs = {node["$ref"] for _, node in _walk(committed) if isinstance(node, dict) and "$ref" in node}
    assert {openapi.REF.format(model=name) for name in committed["components"]["schemas"]} <= refs
