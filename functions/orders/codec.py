"""The order as it travels in queue messages: JSON, money as exact decimal strings."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from orders.model import Order


def json_default(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> str:
    """Compact JSON in which every Decimal becomes its exact string."""
    return json.dumps(value, default=json_default, ensure_ascii=False, separators=(",", ":"))


def encode_order(order: Order) -> str:
    return to_json(order.document)


def stored_document(record: Mapping[str, Any]) -> Any:
    """The order document of a stored order: the JSON text its claim wrote (`encode_order`), or the map that records
    written before the document moved to the claim hold."""
    document = record.get("document", {})
    return json.loads(document) if isinstance(document, str) else document


def _same_amount(value: Any) -> str:
    # 2800.00 and 2800.0 are one amount
    return json_default(value.normalize() if isinstance(value, Decimal) else value)


def fingerprint(order: Order) -> str:
    """What makes two submissions of one order_id the same order: its validated document, keys sorted and amounts
    compared as numbers, so whitespace, key order and trailing zeros do not count (a client's retry of the same
    order is recognised as such)."""
    canonical = json.dumps(order.document, default=_same_amount, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _money(container: dict[str, Any], name: str) -> None:
    if name in container:
        container[name] = Decimal(str(container[name]))


def decode_order(body: str) -> Order:
    """Rebuild an Order written by encode_order; the message was validated before it was sent."""
    document: dict[str, Any] = json.loads(body)
    for item in document["items"]:
        _money(item, "unit_price")
    _money(document["payment"], "amount")
    _money(document["shipping"], "cost")
    return Order.of(document)
