"""Orders to send: the lab's example with its own id and lines. One factory for bench, soak and the e2e suite."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sandbox.aws import ROOT

LAB_EXAMPLE = ROOT / "seed" / "orders" / "lab-example.json"


def lab_example() -> dict[str, Any]:
    """The lab's example order, its amounts as Decimal (money is never a float)."""
    example: dict[str, Any] = json.loads(LAB_EXAMPLE.read_text("utf-8"), parse_float=Decimal)
    return example


def order_with(
    order_id: str,
    lines: Iterable[tuple[str, int, Decimal]],
    template: dict[str, Any] | None = None,
    description: str = "item",
) -> dict[str, Any]:
    """The template (the lab's example) with this order_id and these (product_id, quantity, unit_price) lines;
    the payment amount is their total."""
    order = copy.deepcopy(template if template is not None else lab_example())
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
