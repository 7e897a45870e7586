"""API Gateway (REST, AWS_PROXY): POST /orders, GET /orders/{order_id}, GET /products/{product_id},
POST /products/{product_id}/restock, GET /restocks/{restock_id}."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from email.message import Message
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from handlers.answers import (
    ACCEPTED,
    DUPLICATE,
    INVALID,
    NOT_UTF8,
    ORDER_NOT_FOUND,
    PRODUCT_NOT_FOUND,
    REPLAYED,
    RESTOCK_ACCEPTED,
    RESTOCK_BAD_CURSOR,
    RESTOCK_CONFLICT,
    RESTOCK_INVALID,
    RESTOCK_NOT_FOUND,
    RESTOCK_REPLAYED,
    RESTOCK_UNSUPPORTED_MEDIA,
    ROUTE_NOT_FOUND,
    UNAVAILABLE,
    UNSUPPORTED_MEDIA,
)
from orders.model import FieldError, OrderRejected
from orders.restock import RestockRejected, cursor_position, is_valid_id, page_cursor
from service.bootstrap import ApiWiring
from service.errors import DuplicateOrder, StoreBusy
from service.logs import log
from service.use_cases import RestockConflict

_wired = ApiWiring()
_store = _wired.store
_intake = _wired.orders
_restocks = _wired.restocks


def _json_value(value: Any) -> Any:
    # Counts come back from DynamoDB as Decimal; money is formatted by _money before this.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _money(value: Any) -> str | None:
    # copy_abs: a zero stored as -0.0 (before the validator unsigned it) still shows as 0.00, never -0.00.
    if value is None:
        return None
    amount = Decimal(value)
    return f"{amount.copy_abs() if amount.is_zero() else amount:.2f}"


def _response(status: int, body: Any) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json; charset=utf-8"},
        "body": json.dumps(body, default=_json_value, ensure_ascii=False),
    }


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _charset(content_type: str) -> str | None:
    """The charset parameter of a Content-Type, unquoted and in lower case; None when it names none."""
    header = Message()
    header["content-type"] = content_type
    return header.get_content_charset()


def _json_body(event: dict[str, Any], refusal: str) -> tuple[str | bytes | None, dict[str, Any] | None]:
    """The request body, or the 415 answer when it is declared as something other than JSON in UTF-8.

    Whether the body itself is UTF-8 is decided with its JSON, in orders.validation.utf8_text (a 400).
    """
    content_type = _header(event, "content-type")
    if content_type and "json" not in content_type.lower():
        return None, _response(415, {"message": refusal})
    if content_type and _charset(content_type) not in {None, "utf-8", "utf8"}:
        return None, _response(415, {"message": NOT_UTF8})
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        body = base64.b64decode(body)
    return body, None


def _invalid(message: str, errors: list[FieldError], **fields: Any) -> dict[str, Any]:
    found = [e.as_dict() for e in errors]
    log("INFO", "request rejected", errors=found, **fields)
    return _response(400, {"message": message, "errors": found})


def _fields(record: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: record.get(name) for name in names}


def _accepted(answer: dict[str, Any], replayed: bool, again: str, first: str) -> dict[str, Any]:
    return _response(202, {**answer, "replayed": replayed, "message": again if replayed else first})


def post_order(event: dict[str, Any]) -> dict[str, Any]:
    body, refused = _json_body(event, UNSUPPORTED_MEDIA)
    if refused is not None:
        return refused
    try:
        receipt = _intake.submit(body)
    except OrderRejected as exc:
        return _invalid(INVALID, exc.errors, order_id=exc.order_id)
    except DuplicateOrder:
        return _response(409, {"message": DUPLICATE})
    except (BotoCoreError, ClientError, StoreBusy):
        # The claim was undone and logged (OrderIntake.submit): nothing is stuck, the client may retry.
        return _response(503, {"message": UNAVAILABLE})
    return _accepted(
        {"order_id": receipt.order.order_id},
        receipt.replayed,
        REPLAYED,
        ACCEPTED,
    )


# An id is 1-64 characters of [A-Za-z0-9_-] (orders/schema.json): anything else cannot exist, and must not reach
# DynamoDB as a key (an empty or oversized key is a ValidationException, not a 404).
def get_order(order_id: str) -> dict[str, Any]:
    record = _store.get_order(order_id) if is_valid_id(order_id) else None
    if record is None:
        return _response(404, {"message": ORDER_NOT_FOUND})
    items = [
        {
            **_fields(item, "product_id", "quantity"),
            "unit_price": _money(item.get("unit_price")),
            **_fields(item, "item_status"),
        }
        for item in record.get("items", [])
    ]
    return _response(
        200,
        {
            **_fields(record, "order_id", "order_status", "order_date", "received_at", "processed_at", "released_at"),
            "status_history": record.get("status_history", []),
            "items_total": _money(record.get("items_total")),
            "items": items,
        },
    )


def get_product(product_id: str) -> dict[str, Any]:
    record = _store.get_product(product_id) if is_valid_id(product_id) else None
    if record is None:
        return _response(404, {"message": PRODUCT_NOT_FOUND})
    counts = {"available": "available", "reserved": "reserved", "waiting_items": "waiting"}
    body = {"product_id": record.get("product_id", product_id), "description": record.get("description")}
    return _response(200, body | {shown: int(record.get(stored, 0)) for shown, stored in counts.items()})


def post_restock(event: dict[str, Any], product_id: str) -> dict[str, Any]:
    body, refused = _json_body(event, RESTOCK_UNSUPPORTED_MEDIA)
    if refused is not None:
        return refused
    try:
        receipt = _restocks.submit(product_id, body, _header(event, "idempotency-key"))
    except RestockRejected as exc:
        return _invalid(RESTOCK_INVALID, exc.errors, product_id=product_id)
    except RestockConflict:
        return _response(409, {"message": RESTOCK_CONFLICT})
    except (BotoCoreError, ClientError, StoreBusy):
        return _response(503, {"message": UNAVAILABLE})
    return _accepted(
        {**receipt.restock.as_message(), "restock_status": receipt.restock_status},
        receipt.replayed,
        RESTOCK_REPLAYED,
        RESTOCK_ACCEPTED,
    )


def get_restock(restock_id: str, query: dict[str, Any]) -> dict[str, Any]:
    """The restock, how many orders it served, and one page of them; `?after=<next>` asks for the page after."""
    after = query.get("after")
    position = None if after is None else cursor_position(str(after))
    if after is not None and position is None:
        return _response(400, {"message": RESTOCK_BAD_CURSOR})
    record = _store.get_restock(restock_id) if is_valid_id(restock_id) else None
    if record is None:
        return _response(404, {"message": RESTOCK_NOT_FOUND})
    orders, last = _store.released_orders(restock_id, position)
    # A restock released before the orders had items of their own kept them in its record: they come first.
    earlier = [str(order_id) for order_id in record.get("released_orders", [])]
    if position is None:
        orders = earlier + orders
    return _response(
        200,
        {
            "restock_id": restock_id,
            **_fields(record, "product_id", "quantity", "restock_status", "received_at", "applied_at", "released_at"),
            "released_count": int(record.get("released_count", 0)) + len(earlier),
            "released_orders": orders,
            "next": None if last is None else page_cursor(last),
        },
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method = event.get("httpMethod")
    resource = event.get("resource")
    params = event.get("pathParameters") or {}
    if method == "POST" and resource == "/orders":
        return post_order(event)
    if method == "GET" and resource == "/orders/{order_id}":
        return get_order(params.get("order_id", ""))
    if method == "GET" and resource == "/products/{product_id}":
        return get_product(params.get("product_id", ""))
    if method == "POST" and resource == "/products/{product_id}/restock":
        return post_restock(event, params.get("product_id", ""))
    if method == "GET" and resource == "/restocks/{restock_id}":
        return get_restock(params.get("restock_id", ""), event.get("queryStringParameters") or {})
    return _response(404, {"message": ROUTE_NOT_FOUND})
