"""docs/openapi.yaml: generated from the order schema, valid OpenAPI 3.0, and true to what the handler says."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastjsonschema
import model
import openapi
import pytest
import yaml

from orders import model as domain
from orders.validation import OrderValidator, parse_json

ROOT = Path(__file__).resolve().parents[2]
API_HANDLER = ROOT / "functions" / "handlers" / "api.py"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


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


def _json_schema(node: Any, doc: dict[str, Any]) -> Any:
    """An OpenAPI 3.0 Schema Object as plain JSON Schema: references inlined, `nullable` as a null type."""
    if isinstance(node, list):
        return [_json_schema(value, doc) for value in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(_resolve(doc, node["$ref"]), doc)
    converted = {key: _json_schema(value, doc) for key, value in node.items() if key not in {"nullable", "example"}}
    if node.get("nullable"):
        converted["type"] = [node["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


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
    # The one documented conversion: OpenAPI 3.0 has no `$schema`; patterns, enums and bounds stay as they are.
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


def test_a_keyword_without_an_openapi_3_0_equivalent_is_refused() -> None:
    with pytest.raises(ValueError, match="list of types"):
        openapi.oas_schema({"type": "object", "properties": {"a": {"type": ["string", "null"]}}})
    with pytest.raises(ValueError, match="patternProperties"):
        openapi.oas_schema({"type": "object", "patternProperties": {"^x": {}}})
    # A property merely named like a keyword is fine.
    assert openapi.oas_schema({"properties": {"id": {"type": "string"}}}) == {"properties": {"id": {"type": "string"}}}


# -------------------------------------------------------------------------------- a valid OpenAPI 3 document


def test_the_document_has_the_shape_of_openapi_3_0(committed: dict[str, Any]) -> None:
    try:  # not a dependency: when someone has it, it checks the whole specification too
        from openapi_spec_validator import validate
    except ImportError:
        pass
    else:
        validate(committed)
    assert re.fullmatch(r"3\.0\.\d+", committed["openapi"])
    assert committed["info"]["title"] and committed["info"]["version"]
    assert set(committed["paths"]) == {"/orders", "/orders/{order_id}", "/products/{product_id}"}
    operation_ids = [operation["operationId"] for _, _, operation in _operations(committed)]
    assert len(operation_ids) == len(set(operation_ids)) == 3
    for path, method, operation in _operations(committed):
        templated = set(re.findall(r"{([^}]+)}", path))
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert templated == declared, f"{method} {path}"
        assert all(p["required"] is True for p in operation.get("parameters", []) if p["in"] == "path")
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
    assert len(examples) >= 5
    for path, media in examples:
        check = fastjsonschema.compile(_json_schema(media["schema"], committed))
        try:
            check(media["example"])
        except fastjsonschema.JsonSchemaValueException as exc:
            pytest.fail(f"{path}: {exc.message}")


def test_the_request_example_is_the_labs_order_and_valid(committed: dict[str, Any]) -> None:
    # Checked by the project's own validator: fastjsonschema mistranslates the e-mail pattern's `$`.
    example = committed["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert example == json.loads(openapi.EXAMPLE.read_text("utf-8"))
    assert OrderValidator().validate(parse_json(json.dumps(example))).order_id == example["order_id"]


# -------------------------------------------------------------------------------- true to the handler


def test_the_documented_status_codes_are_those_the_api_answers(committed: dict[str, Any]) -> None:
    statuses = {f"{method.upper()} {path}": set(op["responses"]) for path, method, op in _operations(committed)}
    assert statuses == {
        "POST /orders": {"202", "400", "409", "415", "503", "429"},
        "GET /orders/{order_id}": {"200", "404", "403", "429"},
        "GET /products/{product_id}": {"200", "404", "403", "429"},
    }
    handler = API_HANDLER.read_text("utf-8")
    for status in ("202", "400", "409", "415", "503", "200", "404"):
        assert re.search(rf"_response\(\s*{status},", handler), status


def test_the_documented_messages_are_the_handlers_own_words() -> None:
    handler = API_HANDLER.read_text("utf-8")
    for text in (
        openapi.ACCEPTED,
        openapi.INVALID,
        openapi.DUPLICATE,
        openapi.UNSUPPORTED_MEDIA,
        openapi.UNAVAILABLE,
        openapi.ORDER_NOT_FOUND,
        openapi.PRODUCT_NOT_FOUND,
    ):
        assert f'"{text}"' in handler, text


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
