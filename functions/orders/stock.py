"""The stock decision for one order: reserve what is there, leave the rest pending."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orders.codec import stored_document
from orders.model import NEW_ORDER, PENDING, PRODUCT_PENDING, RESERVED, Order, OrderItem


@dataclass(frozen=True)
class ItemDecision:
    item: OrderItem
    status: str
    queued: bool = False  # pending only because older items wait for the product, not for want of stock


@dataclass(frozen=True)
class StockDecision:
    order: Order
    items: tuple[ItemDecision, ...]

    @property
    def status(self) -> str:
        return NEW_ORDER if all(d.status == RESERVED for d in self.items) else PRODUCT_PENDING

    @property
    def reason(self) -> str:
        """Why the order got its status, for its history."""
        if self.status == NEW_ORDER:
            return "estoque reservado para todos os itens"
        waiting = ", ".join(f"{i.product_id} ({i.quantity})" for i in self.pending)
        return f"sem estoque disponível para: {waiting}"

    @property
    def reserved(self) -> tuple[OrderItem, ...]:
        return tuple(d.item for d in self.items if d.status == RESERVED)

    @property
    def pending(self) -> tuple[OrderItem, ...]:
        return tuple(d.item for d in self.items if d.status == PENDING)

    @property
    def queued(self) -> tuple[OrderItem, ...]:
        """Pending items the stock would cover, queued behind older ones: their product's queue must be looked at
        again, because an item older than the queue's head may have just joined it."""
        return tuple(d.item for d in self.items if d.queued)


def decide(order: Order, available: Mapping[str, int], waiting: Mapping[str, int] | None = None) -> StockDecision:
    """Reserve each item whose product has enough `available` units and nobody waiting for it (first come, first
    served); a product without stock record has none.

    Items of an order name distinct products (the validator refuses repeats), so each is judged alone.
    """
    waiting = waiting or {}

    def judge(item: OrderItem) -> ItemDecision:
        fits = available.get(item.product_id, 0) >= item.quantity
        if waiting.get(item.product_id, 0) > 0:
            return ItemDecision(item, PENDING, queued=fits)
        return ItemDecision(item, RESERVED if fits else PENDING)

    return StockDecision(order=order, items=tuple(judge(item) for item in order.items))


@dataclass(frozen=True)
class PendingNotice:
    """What the pending-stock notification tells: which items of an order wait for stock."""

    order_id: str
    customer_email: str
    items: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, decision: StockDecision) -> PendingNotice:
        email = decision.order.document.get("customer", {}).get("email", "")
        return cls(decision.order.order_id, email, tuple((i.product_id, i.quantity) for i in decision.pending))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PendingNotice:
        """Rebuild the notice from a stored order (a redelivery after a failed publish)."""
        email = stored_document(record).get("customer", {}).get("email", "")
        items = tuple(
            (str(i["product_id"]), int(i["quantity"]))
            for i in record.get("items", [])
            if i.get("item_status") == PENDING
        )
        return cls(str(record["order_id"]), email, items)
