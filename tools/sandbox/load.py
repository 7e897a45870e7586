"""Orders to send: the lab's example with its own id and lines. One factory for bench, soak and the e2e suite."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from typing import Any

from sandbox.aws import ROOT

LAB_EXAMPLE = ROOT / "seed" / "orders" / "lab-example.json"


@cache  # bench and soak build thousands of orders from it
def _lab_example_text() -> str:
    return LAB_EXAMPLE.read_text("utf-8")


def lab_example() -> dict[str, Any]:
    """A fresh copy of the lab's example order, its amounts as Decimal (money is never a float)."""
    example: dict[str, Any] = json.loads(_lab_example_text(), parse_float=Decimal)
    return example


def order_with(order_id: str, lines: Iterable[tuple[str, int, Decimal]], description: str = "item") -> dict[str, Any]:
    """The lab's example with this order_id and these (product_id, quantity, unit_price) lines; the payment amount
    is their total."""
    order = lab_example()
    order["order_id"] = order_id
    order["items"] = [
        {"product_id": product, "description": description, "quantity": quantity, "unit_price": price}
        for product, quantity, price in lines
    ]
    order["payment"]["amount"] = sum((item["unit_price"] * item["quantity"] for item in order["items"]), Decimal(0))
    return order


def to_wire(document: Any) -> str:
    """The JSON a client sends: Decimal amounts as JSON numbers, text as it is (not \\u-escaped)."""
    # Only for the HTTP body: a 2-decimal Decimal's shortest float repr reads back as the same Decimal.
    return json.dumps(document, default=float, ensure_ascii=False)
