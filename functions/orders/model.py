"""The order, its items and the words the system uses for their states."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

RECEIVED = "Recebido"
NEW_ORDER = "Novo Pedido"
PRODUCT_PENDING = "Produto Pendente"
FINAL_STATUSES = (NEW_ORDER, PRODUCT_PENDING)  # where every accepted order ends

RESERVED = "Reservado"
PENDING = "Pendente"


def history_entry(status: str, at: str, reason: str) -> dict[str, str]:
    """One line of an order's status history: what it became, when, and why (in Portuguese, shown to users)."""
    return {"status": status, "at": at, "reason": reason}


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class Rejected(Exception):
    """A request that breaks one or more rules; carries every error at once."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class OrderRejected(Rejected):
    def __init__(self, errors: list[FieldError], order_id: str | None = None) -> None:
        super().__init__(errors)
        self.order_id = order_id


class OrderItem(NamedTuple):
    # A NamedTuple rather than a frozen dataclass: as immutable, and several times cheaper to build.
    product_id: str
    quantity: int
    unit_price: Decimal
    description: str | None = None


@dataclass(frozen=True)
class Order:
    """A validated order: `document` keeps the known fields as sent (money as Decimal)."""

    order_id: str
    order_date: str
    items: tuple[OrderItem, ...]
    document: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, document: dict[str, Any]) -> Order:
        """The order a validated document describes: the validator's, or a queue message's (orders.codec)."""
        items = []
        for line in document["items"]:
            price = line["unit_price"]
            price = price if type(price) is Decimal else Decimal(price)
            items.append(OrderItem(line["product_id"], line["quantity"], price, line.get("description")))
        return cls(document["order_id"], document["order_date"], tuple(items), document)

    @property
    def items_total(self) -> Decimal:
        return sum((item.unit_price * item.quantity for item in self.items), Decimal(0))
