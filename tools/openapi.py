"""Generate docs/openapi.yaml, the OpenAPI 3 document of the API, from functions/orders/schema.json.

The request body is the same schema API Gateway uses as its model (`model.api_model`), converted to an
OpenAPI 3.0 Schema Object; the rest describes what functions/handlers/api.py and the gateway answer.
`python tools/openapi.py` rewrites the file; `--check` fails when it has drifted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from model import SCHEMA, api_model

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "openapi.yaml"
EXAMPLE = ROOT / "seed" / "orders" / "lab-example.json"
HEADER = "# GENERATED from functions/orders/schema.json by tools/openapi.py; do not edit by hand.\n"

# JSON Schema draft-4 keywords an OpenAPI 3.0 Schema Object does not have, or has with another meaning.
# `$schema` is dropped; the others must not appear in the order schema (the conversion would be lossy).
_DROPPED = frozenset({"$schema"})
_UNSUPPORTED = frozenset({"patternProperties", "dependencies", "const", "id", "$ref"})
_SUBSCHEMA = frozenset({"items", "not", "additionalProperties"})
_SUBSCHEMAS = frozenset({"allOf", "anyOf", "oneOf"})

# The answers' fixed texts, as functions/handlers/api.py writes them (a unit test checks they are there).
ACCEPTED = "Pedido enviado para processamento."
INVALID = "Pedido inválido."
DUPLICATE = "Pedido duplicado."
UNSUPPORTED_MEDIA = "Envie o pedido com Content-Type: application/json."
UNAVAILABLE = "Serviço indisponível no momento; tente novamente."
ORDER_NOT_FOUND = "Pedido não encontrado."
PRODUCT_NOT_FOUND = "Produto não encontrado."

ORDER_STATUSES = ["Recebido", "Novo Pedido", "Produto Pendente"]
ITEM_STATUSES = ["Recebido", "Reservado", "Pendente"]
MONEY = {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$", "example": "2500.00"}


def oas_schema(node: dict[str, Any]) -> dict[str, Any]:
    """A draft-4 schema (already inlined by api_model) as an OpenAPI 3.0 Schema Object."""
    unsupported = sorted(_UNSUPPORTED & node.keys())
    if unsupported:
        raise ValueError(f"schema keywords {unsupported} have no OpenAPI 3.0 equivalent here")
    if isinstance(node.get("type"), list) or isinstance(node.get("items"), list):
        raise ValueError("a list of types or of items schemas is not OpenAPI 3.0")
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            converted[key] = {name: oas_schema(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA and isinstance(value, dict):
            converted[key] = oas_schema(value)
        elif key in _SUBSCHEMAS:
            converted[key] = [oas_schema(sub) for sub in value]
        else:
            converted[key] = value
    return converted


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _message(*texts: str) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "string", "enum": list(texts)} if texts else {"type": "string"}
    return {"type": "object", "required": ["message"], "properties": {"message": message}}


def _json(description: str, schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {"application/json": media}}


def _id_parameter(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": (
            f"The {what}'s id. The API takes any string here; an id that could never have been accepted "
            "(not 1-64 characters of [A-Za-z0-9_-]) is simply not found (404)."
        ),
        "schema": {"type": "string", "minLength": 1},
    }


def _gateway_responses(*, routed_by_id: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if routed_by_id:
        responses["403"] = {"$ref": "#/components/responses/NoRoute"}
    responses["429"] = {"$ref": "#/components/responses/Throttled"}
    return responses


def document(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    """The whole OpenAPI document, from the order schema and the lab's example order."""
    order = oas_schema(api_model(schema))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Order pipeline API",
            "version": "1.0.0",
            "description": (
                "Sales orders in, order and stock status out (README, section 'The API'). POST /orders only "
                "validates, records the order as Recebido and queues it: processing is asynchronous, so poll "
                "GET /orders/{order_id} for the final status. Every answer is JSON. 500 and 502 are not listed: "
                "they would mean a defect (the function or the gateway failed), and the e2e suite fails on any."
            ),
        },
        "servers": [
            {
                "url": "http://localhost:4566/restapis/{apiId}/{stage}/_user_request_",
                "description": "The sandbox (MiniStack or LocalStack): `ApiBaseUrl` in .sandbox/outputs.json",
                "variables": {
                    "apiId": {"default": "your-api-id", "description": "`ApiId` in .sandbox/outputs.json"},
                    "stage": {"default": "dev"},
                },
            },
            {
                "url": "https://{apiId}.execute-api.{region}.amazonaws.com/{stage}",
                "description": "AWS: `ApiUrl` in the stack outputs",
                "variables": {
                    "apiId": {"default": "your-api-id", "description": "`ApiId` in the stack outputs"},
                    "region": {"default": "us-east-1"},
                    "stage": {"default": "dev"},
                },
            },
        ],
        "tags": [{"name": "orders"}, {"name": "products"}],
        "paths": {
            "/orders": {
                "post": {
                    "tags": ["orders"],
                    "operationId": "postOrder",
                    "summary": "Submit an order for processing",
                    "description": (
                        "Validates the order against the schema and the rules a schema cannot say (every "
                        "error at once), claims its order_id and queues it. Unknown extra fields are accepted "
                        "and dropped (not stored); the incoming order_status is ignored. Body limit 64 KiB."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Order"), "example": example}},
                    },
                    "responses": {
                        "202": _json(
                            "Accepted: recorded as Recebido and queued.",
                            _ref("Accepted"),
                            {"order_id": example["order_id"], "message": ACCEPTED},
                        ),
                        "400": _json(
                            "Invalid order or body: every error at once, by field "
                            "(`(corpo)`: the body, `(pedido)`: not an object).",
                            _ref("Invalid"),
                            {"message": INVALID, "errors": [{"field": "customer.cpf", "message": "formato inválido"}]},
                        ),
                        "409": _json("The order_id was already received.", _message(DUPLICATE)),
                        "415": _json("A Content-Type that is not JSON.", _message(UNSUPPORTED_MEDIA)),
                        "503": _json(
                            "The store or the queue refused; nothing was kept, retry the same order.",
                            _message(UNAVAILABLE),
                        ),
                        **_gateway_responses(routed_by_id=False),
                    },
                }
            },
            "/orders/{order_id}": {
                "get": {
                    "tags": ["orders"],
                    "operationId": "getOrder",
                    "summary": "An order's status and items",
                    "description": "After a 202 it never answers 404: it shows Recebido until processed.",
                    "parameters": [_id_parameter("order_id", "order")],
                    "responses": {
                        "200": _json("The order.", _ref("OrderView")),
                        "404": _json("Unknown order.", _message(ORDER_NOT_FOUND)),
                        **_gateway_responses(routed_by_id=True),
                    },
                }
            },
            "/products/{product_id}": {
                "get": {
                    "tags": ["products"],
                    "operationId": "getProduct",
                    "summary": "A product's stock",
                    "parameters": [_id_parameter("product_id", "product")],
                    "responses": {
                        "200": _json(
                            "The product's stock.",
                            _ref("Product"),
                            {"product_id": "PRD-1001", "description": "Smartphone XYZ", "available": 99, "reserved": 1},
                        ),
                        "404": _json("Unknown product.", _message(PRODUCT_NOT_FOUND)),
                        **_gateway_responses(routed_by_id=True),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Order": order,
                "Accepted": {
                    "type": "object",
                    "required": ["order_id", "message"],
                    "properties": {
                        "order_id": {"type": "string"},
                        "message": {"type": "string", "enum": [ACCEPTED]},
                    },
                },
                "Invalid": {
                    "type": "object",
                    "required": ["message", "errors"],
                    "properties": {
                        "message": {"type": "string", "enum": [INVALID]},
                        "errors": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["field", "message"],
                                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                            },
                        },
                    },
                },
                "OrderView": {
                    "type": "object",
                    "required": [
                        "order_id",
                        "order_status",
                        "order_date",
                        "received_at",
                        "processed_at",
                        "items_total",
                        "items",
                    ],
                    "properties": {
                        "order_id": {"type": "string"},
                        "order_status": {"type": "string", "enum": ORDER_STATUSES},
                        "order_date": {"type": "string", "nullable": True, "description": "As sent."},
                        "received_at": {"type": "string", "nullable": True, "description": "ISO 8601, UTC."},
                        "processed_at": {
                            "type": "string",
                            "nullable": True,
                            "description": "ISO 8601, UTC; null while Recebido.",
                        },
                        "items_total": {**MONEY, "nullable": True},
                        "items": {"type": "array", "items": _ref("OrderItemView")},
                    },
                },
                "OrderItemView": {
                    "type": "object",
                    "required": ["product_id", "quantity", "unit_price", "item_status"],
                    "properties": {
                        "product_id": {"type": "string"},
                        "quantity": {"type": "integer", "minimum": 1},
                        "unit_price": {**MONEY, "nullable": True},
                        "item_status": {"type": "string", "enum": ITEM_STATUSES},
                    },
                },
                "Product": {
                    "type": "object",
                    "required": ["product_id", "description", "available", "reserved"],
                    "properties": {
                        "product_id": {"type": "string"},
                        "description": {"type": "string", "nullable": True},
                        "available": {"type": "integer"},
                        "reserved": {"type": "integer"},
                    },
                },
            },
            "responses": {
                "NoRoute": _json(
                    "API Gateway's answer when the path matches no resource, e.g. an id that contains `/` "
                    "(even as %2F) or is `.` or `..`; the function is not called.",
                    _message(),
                    {"message": "Missing Authentication Token"},
                ),
                "Throttled": _json(
                    "Stage throttling (ApiThrottlingRateLimit/ApiThrottlingBurstLimit): the gateway answers "
                    "before the function runs; retry with back-off.",
                    _message(),
                    {"message": "Too Many Requests"},
                ),
            },
        },
    }


def render(doc: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)


def generate() -> str:
    schema = json.loads(SCHEMA.read_text("utf-8"))
    example = json.loads(EXAMPLE.read_text("utf-8"))
    return render(document(schema, example))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/openapi.yaml differs")
    args = parser.parse_args()
    wanted = generate()
    if args.check:
        current = OUTPUT.read_text("utf-8") if OUTPUT.exists() else ""
        if wanted != current:
            print("docs/openapi.yaml differs from what tools/openapi.py generates; run `make openapi`")
            return 1
        return 0
    OUTPUT.write_text(wanted, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
