"""Generate docs/openapi.yaml, the OpenAPI 3 document of the API, from functions/orders/schema.json.

The request body is the same schema API Gateway uses as its model (`model.api_model`), converted to an
OpenAPI 3.0 Schema Object; the rest describes what functions/handlers/api.py and the gateway answer.
`python tools/openapi.py` rewrites the file; `--check` fails when it has drifted.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from gateway import BUILT_IN_REFUSAL
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
REPLAYED = "Pedido já recebido com este mesmo conteúdo; nada foi duplicado."
INVALID = "Pedido inválido."
DUPLICATE = "Pedido duplicado."
UNSUPPORTED_MEDIA = "Envie o pedido com Content-Type: application/json."
UNAVAILABLE = "Serviço indisponível no momento; tente novamente."
ORDER_NOT_FOUND = "Pedido não encontrado."
PRODUCT_NOT_FOUND = "Produto não encontrado."
RESTOCK_ACCEPTED = "Reposição enviada para processamento."
RESTOCK_REPLAYED = "Reposição já recebida; aplicada uma única vez."
RESTOCK_INVALID = "Reposição inválida."
RESTOCK_CONFLICT = "Idempotency-Key já usada por uma reposição de outro produto ou quantidade."
RESTOCK_UNSUPPORTED_MEDIA = "Envie a reposição com Content-Type: application/json."
RESTOCK_NOT_FOUND = "Reposição não encontrada."
NOT_UTF8 = "Envie o corpo em UTF-8: Content-Type: application/json; charset=utf-8, ou sem charset."
RESTOCK_BAD_CURSOR = "Parâmetro after inválido: use o valor de next da página anterior."

ORDER_STATUSES = ["Recebido", "Novo Pedido", "Produto Pendente"]
ITEM_STATUSES = ["Recebido", "Reservado", "Pendente"]
RESTOCK_STATUSES = ["Recebida", "Aplicada"]
MONEY = {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$", "example": "2500.00"}
TIMESTAMP = {"type": "string", "nullable": True}
# The ids' rule of orders/schema.json (order_id, product_id), which restock ids and Idempotency-Key follow too.
ID = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"}
# The limits of functions/orders/restock.py (a unit test checks they are the same).
MAX_RESTOCK_QUANTITY = 1_000_000
MAX_RESTOCK_BYTES = 4 * 1024
RELEASED_PAGE = 1_000

# One story for the examples: the lab's order waited for PRD-2002 until this restock served it.
RESTOCK_EXAMPLE = {"restock_id": "NF-2024-000123", "product_id": "PRD-2002", "quantity": 50}
RECEIVED_AT, PROCESSED_AT = "2023-10-01T10:30:01.250+00:00", "2023-10-01T10:30:01.480+00:00"
RESTOCKED_AT, APPLIED_AT = "2023-10-02T09:14:59.870+00:00", "2023-10-02T09:15:00.020+00:00"
ORDER_RELEASED_AT, RESTOCK_RELEASED_AT = "2023-10-02T09:15:00.110+00:00", "2023-10-02T09:15:00.150+00:00"


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


def _invalid(text: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["message", "errors"],
        "properties": {
            "message": {"type": "string", "enum": [text]},
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
    }


def _id_parameter(name: str, what: str, *, otherwise: str = "is simply not found (404)") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": (
            f"The {what}'s id. The API takes any string here; an id that could never have been accepted "
            f"(not 1-64 characters of [A-Za-z0-9_-]) {otherwise}."
        ),
        "schema": {"type": "string", "minLength": 1},
    }


def _money(value: float | Decimal) -> str:
    return f"{Decimal(str(value)):.2f}"


def _order_view_example(example: dict[str, Any]) -> dict[str, Any]:
    """The lab's order as GET /orders/{order_id} shows it once the restock of the examples released it."""
    waited = RESTOCK_EXAMPLE["product_id"]
    quantity = next(item["quantity"] for item in example["items"] if item["product_id"] == waited)
    return {
        "order_id": example["order_id"],
        "order_status": "Novo Pedido",
        "order_date": example["order_date"],
        "received_at": RECEIVED_AT,
        "processed_at": PROCESSED_AT,
        "released_at": ORDER_RELEASED_AT,
        "status_history": [
            {"status": "Recebido", "at": RECEIVED_AT, "reason": "pedido recebido pela API"},
            {
                "status": "Produto Pendente",
                "at": PROCESSED_AT,
                "reason": f"sem estoque disponível para: {waited} ({quantity})",
            },
            {
                "status": "Novo Pedido",
                "at": ORDER_RELEASED_AT,
                "reason": f"estoque reposto (reposição {RESTOCK_EXAMPLE['restock_id']}): todos os itens reservados",
            },
        ],
        "items_total": _money(sum(Decimal(str(i["unit_price"])) * i["quantity"] for i in example["items"])),
        "items": [
            {
                "product_id": item["product_id"],
                "quantity": item["quantity"],
                "unit_price": _money(item["unit_price"]),
                "item_status": "Reservado",
            }
            for item in example["items"]
        ],
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
                "Sales orders and restocks in, order, stock and restock status out (README, sections 'The API' "
                "and 'Restocking'). POST /orders only validates, records the order as Recebido and queues it: "
                "processing is asynchronous, so poll GET /orders/{order_id} for the final status. Likewise "
                "POST /products/{product_id}/restock records the restock as Recebida and queues it; poll "
                "GET /restocks/{restock_id} to see it Aplicada and the waiting orders it served. Every answer is "
                "JSON. 500 and 502 are not listed: they would mean a defect (the function or the gateway failed), "
                "and the e2e suite fails on any."
            ),
        },
        "servers": [
            {
                "url": "http://localhost:4566/_aws/execute-api/{apiId}/{stage}",
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
        "tags": [{"name": "orders"}, {"name": "products"}, {"name": "restocks"}],
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
                            "Accepted: recorded as Recebido and queued. The same order sent again (the same JSON "
                            "document, whatever its whitespace, key order or trailing zeros) is an idempotent "
                            "replay: 202 again with `replayed: true`, nothing created twice, and sent again while "
                            "it is still Recebido (a client's retry after a 502 or a timeout is safe).",
                            _ref("Accepted"),
                            {"order_id": example["order_id"], "replayed": False, "message": ACCEPTED},
                        ),
                        "400": _json(
                            "Invalid order or body: every error at once, by field "
                            "(`(corpo)`: the body, `(pedido)`: not an object). Where the gateway enforces its model, "
                            "a body the model refuses gets one `(corpo)` error from the gateway instead; LocalStack "
                            "4.14 does not apply that gateway response and answers `GatewayRefusal` (README, "
                            '"One contract, three gateways").',
                            {"oneOf": [_ref("Invalid"), _ref("GatewayRefusal")]},
                            {"message": INVALID, "errors": [{"field": "customer.cpf", "message": "formato inválido"}]},
                        ),
                        "409": _json(
                            "The order_id was already received with another document; nothing was kept.",
                            _message(DUPLICATE),
                        ),
                        "415": _json(
                            "A Content-Type that is not JSON, or a charset other than UTF-8.",
                            _message(UNSUPPORTED_MEDIA, NOT_UTF8),
                        ),
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
                        "200": _json(
                            "The order, with every change of its status.",
                            _ref("OrderView"),
                            _order_view_example(example),
                        ),
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
                            {
                                "product_id": "PRD-1001",
                                "description": "Smartphone XYZ",
                                "available": 99,
                                "reserved": 1,
                                "waiting_items": 0,
                            },
                        ),
                        "404": _json("Unknown product.", _message(PRODUCT_NOT_FOUND)),
                        **_gateway_responses(routed_by_id=True),
                    },
                }
            },
            "/products/{product_id}/restock": {
                "post": {
                    "tags": ["restocks"],
                    "operationId": "postRestock",
                    "summary": "Add stock to a product and serve the orders waiting for it",
                    "description": (
                        "Validates the restock (every error at once), claims its Idempotency-Key as its restock_id "
                        "and queues it: the restocker raises `available` once, then reserves the product's waiting "
                        "items strictly first come, first served (by the time each order was queued, never by "
                        "order_date); an order whose last waiting item is reserved becomes Novo Pedido. A product "
                        "nobody stocked yet is accepted: its "
                        "first restock creates its stock. Unknown extra fields are ignored. Body limit "
                        f"{MAX_RESTOCK_BYTES // 1024} KiB."
                    ),
                    "parameters": [
                        _id_parameter("product_id", "product", otherwise="is refused (400, field `product_id`)"),
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": (
                                "The restock's id, chosen by the client (e.g. the invoice number) so that a retry "
                                "is applied once: the same key again, with the same product and quantity, answers "
                                "202 with `replayed: true`; with another product or quantity, 409. A key names one "
                                "restock whatever its product. When absent, one is generated and returned as "
                                "restock_id. A key that is not 1-64 characters of [A-Za-z0-9_-] is refused (400, "
                                "field `Idempotency-Key`)."
                            ),
                            "schema": ID,
                            "example": RESTOCK_EXAMPLE["restock_id"],
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": _ref("Restock"),
                                "example": {"quantity": RESTOCK_EXAMPLE["quantity"]},
                            }
                        },
                    },
                    "responses": {
                        "202": _json(
                            "Accepted: recorded as Recebida and queued. For a key already received with the same "
                            "product and quantity: that restock again, with its current status and `replayed: "
                            "true`; nothing more is applied.",
                            _ref("RestockAccepted"),
                            {
                                **RESTOCK_EXAMPLE,
                                "restock_status": "Recebida",
                                "replayed": False,
                                "message": RESTOCK_ACCEPTED,
                            },
                        ),
                        "400": _json(
                            "Invalid restock: every error of the header, path and body at once, by field "
                            "(`Idempotency-Key`, `product_id`, `quantity`, `(corpo)`: the body, or not an object).",
                            _ref("RestockInvalid"),
                            {
                                "message": RESTOCK_INVALID,
                                "errors": [
                                    {"field": "quantity", "message": f"deve estar entre 1 e {MAX_RESTOCK_QUANTITY}"}
                                ],
                            },
                        ),
                        "409": _json(
                            "The Idempotency-Key was already used by a restock of another product or quantity; "
                            "nothing was applied.",
                            _message(RESTOCK_CONFLICT),
                        ),
                        "415": _json(
                            "A Content-Type that is not JSON, or a charset other than UTF-8.",
                            _message(RESTOCK_UNSUPPORTED_MEDIA, NOT_UTF8),
                        ),
                        "503": _json(
                            "The store or the queue refused; retry with the same Idempotency-Key: it is applied once.",
                            _message(UNAVAILABLE),
                        ),
                        **_gateway_responses(routed_by_id=True),
                    },
                }
            },
            "/restocks/{restock_id}": {
                "get": {
                    "tags": ["restocks"],
                    "operationId": "getRestock",
                    "summary": "A restock's status and the orders it served",
                    "description": (
                        "After a 202 it never answers 404: it shows Recebida until applied, then Aplicada; "
                        "released_at is set when the release of the product's waiting items has run to its end. "
                        f"released_count counts the orders it served; released_orders lists up to {RELEASED_PAGE:,} "
                        "of them, oldest in the queue first, and `next`, when not null, is the `after` that asks "
                        "for the page after this one."
                    ),
                    "parameters": [
                        _id_parameter("restock_id", "restock"),
                        {
                            "name": "after",
                            "in": "query",
                            "required": False,
                            "description": (
                                "The `next` of the page before, as it was answered (an opaque, URL-safe text); "
                                "absent for the first page. Anything else is refused (400)."
                            ),
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": _json(
                            "The restock.",
                            _ref("RestockView"),
                            {
                                **RESTOCK_EXAMPLE,
                                "restock_status": "Aplicada",
                                "received_at": RESTOCKED_AT,
                                "applied_at": APPLIED_AT,
                                "released_at": RESTOCK_RELEASED_AT,
                                "released_count": 1,
                                "released_orders": [example["order_id"]],
                                "next": None,
                            },
                        ),
                        "400": _json("An `after` that is not the `next` of a page.", _message(RESTOCK_BAD_CURSOR)),
                        "404": _json("Unknown restock.", _message(RESTOCK_NOT_FOUND)),
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
                    "required": ["order_id", "replayed", "message"],
                    "properties": {
                        "order_id": {"type": "string"},
                        "replayed": {"type": "boolean", "description": "True when the same order was received before."},
                        "message": {"type": "string", "enum": [ACCEPTED, REPLAYED]},
                    },
                },
                "Invalid": _invalid(INVALID),
                "GatewayRefusal": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string", "enum": [BUILT_IN_REFUSAL["message"]]}},
                },
                "OrderView": {
                    "type": "object",
                    "required": [
                        "order_id",
                        "order_status",
                        "order_date",
                        "received_at",
                        "processed_at",
                        "released_at",
                        "status_history",
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
                        "released_at": {
                            **TIMESTAMP,
                            "description": (
                                "ISO 8601, UTC: when a restock reserved the last of its waiting items and it became "
                                "Novo Pedido; null for an order that never waited, or still waits."
                            ),
                        },
                        "status_history": {
                            "type": "array",
                            "description": "Every change of order_status, oldest first.",
                            "items": _ref("StatusChange"),
                        },
                        "items_total": {**MONEY, "nullable": True},
                        "items": {"type": "array", "items": _ref("OrderItemView")},
                    },
                },
                "StatusChange": {
                    "type": "object",
                    "required": ["status", "at", "reason"],
                    "properties": {
                        "status": {"type": "string", "enum": ORDER_STATUSES},
                        "at": {"type": "string", "description": "ISO 8601, UTC."},
                        "reason": {"type": "string", "description": "Why, in Portuguese, for the customer's eyes."},
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
                    "required": ["product_id", "description", "available", "reserved", "waiting_items"],
                    "properties": {
                        "product_id": {"type": "string"},
                        "description": {
                            "type": "string",
                            "nullable": True,
                            "description": (
                                "Null for a product the seed did not describe (first named by a waiting order or a "
                                "restock)."
                            ),
                        },
                        "available": {"type": "integer"},
                        "reserved": {"type": "integer"},
                        "waiting_items": {
                            "type": "integer",
                            "description": "Order items waiting for this product (Pendente), served by its restocks.",
                        },
                    },
                },
                "Restock": {
                    "type": "object",
                    "required": ["quantity"],
                    "properties": {"quantity": {"type": "integer", "minimum": 1, "maximum": MAX_RESTOCK_QUANTITY}},
                },
                "RestockAccepted": {
                    "type": "object",
                    "required": ["restock_id", "product_id", "quantity", "restock_status", "replayed", "message"],
                    "properties": {
                        "restock_id": {**ID, "description": "The Idempotency-Key, or the one generated."},
                        "product_id": {"type": "string"},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_RESTOCK_QUANTITY},
                        "restock_status": {"type": "string", "enum": RESTOCK_STATUSES},
                        "replayed": {"type": "boolean", "description": "True when the key was received before."},
                        "message": {"type": "string", "enum": [RESTOCK_ACCEPTED, RESTOCK_REPLAYED]},
                    },
                },
                "RestockInvalid": _invalid(RESTOCK_INVALID),
                "RestockView": {
                    "type": "object",
                    "required": [
                        "restock_id",
                        "product_id",
                        "quantity",
                        "restock_status",
                        "received_at",
                        "applied_at",
                        "released_at",
                        "released_count",
                        "released_orders",
                        "next",
                    ],
                    "properties": {
                        "restock_id": {"type": "string"},
                        "product_id": {"type": "string"},
                        "quantity": {"type": "integer", "minimum": 1},
                        "restock_status": {"type": "string", "enum": RESTOCK_STATUSES},
                        "received_at": {
                            **TIMESTAMP,
                            "description": "ISO 8601, UTC; null for a restock that reached the queue another way.",
                        },
                        "applied_at": {**TIMESTAMP, "description": "ISO 8601, UTC; null while Recebida."},
                        "released_at": {
                            **TIMESTAMP,
                            "description": "ISO 8601, UTC: when the release of the waiting items ended; null before.",
                        },
                        "released_count": {
                            "type": "integer",
                            "minimum": 0,
                            "description": "How many orders had a waiting item reserved by this restock.",
                        },
                        "released_orders": {
                            "type": "array",
                            "description": (
                                "One page of the orders whose waiting items this restock reserved, oldest in the "
                                f"queue first; at most {RELEASED_PAGE:,}."
                            ),
                            "items": {"type": "string"},
                        },
                        "next": {
                            "type": "string",
                            "nullable": True,
                            "description": "Pass as `?after=` for the next page; null on the last page.",
                        },
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


class _Dumper(yaml.SafeDumper):
    """Writes a value used twice (a list of statuses) twice, not as a YAML anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(doc: dict[str, Any]) -> str:
    return HEADER + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


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
