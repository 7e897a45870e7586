"""An order's life as it is recorded: received, decided, and completed by the release of its last waiting item.

The store (and its fake) write what these return; the decisions themselves (the status history, whether a released
item is the order's last) are made here, once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orders.codec import encode_order, fingerprint, stored_document
from orders.model import NEW_ORDER, PENDING, RECEIVED, Order, history_entry
from orders.restock import release_reason
from orders.stock import StockDecision


def stamp(moment: datetime) -> str:
    """How an instant is recorded (received_at, processed_at ...): ISO 8601 in UTC, milliseconds, so that instants
    compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _recorded(order: Order, status: str, statuses: Mapping[str, str]) -> dict[str, Any]:
    """What every record of the order holds, whatever its status."""
    items = [
        {
            "product_id": i.product_id,
            "quantity": i.quantity,
            "unit_price": i.unit_price,
            "item_status": statuses[i.product_id],
        }
        for i in order.items
    ]
    return {
        "entity": "order",
        "order_id": order.order_id,
        "order_status": status,
        "order_date": order.order_date,
        "items": items,
        "items_total": order.items_total,
    }


def received(order: Order, source: str, now: str) -> dict[str, Any]:
    """The order as claimed, `Recebido`: with its document, stored once, here, as the JSON text the queue carries (the
    sweeper sends it again if the claimant dies before its send; the processor's write leaves it as it is), and its
    fingerprint, which tells a client's retry of the same body (202 again) from another order reusing the id (409)."""
    reason = "pedido recebido pela API" if source.startswith("api:") else "pedido recebido em arquivo do data lake"
    return {
        **_recorded(order, RECEIVED, dict.fromkeys((i.product_id for i in order.items), RECEIVED)),
        "received_at": now,
        "source": source,
        "document": encode_order(order),
        "body_hash": fingerprint(order),
        "status_history": [history_entry(RECEIVED, now, reason)],
    }


def decided(decision: StockDecision, now: str) -> dict[str, Any]:
    """The fields a stock decision sets on the order (its history gains `history_entry(status, now, reason)`)."""
    statuses = {d.item.product_id: d.status for d in decision.items}
    return {
        **_recorded(decision.order, decision.status, statuses),
        "processed_at": now,
        "pending_count": len(decision.pending),
        "pending_notified": False,
    }


@dataclass(frozen=True)
class ItemRelease:
    """One waiting item of a stored order reserved for a restock, judged on the order as it was read."""

    index: int  # the item's place in the order's items
    left: int  # the order's pending items before this one is reserved
    counted: bool  # whether the order records pending_count (an order written before it existed does not)
    reason: str  # why the order becomes `Novo Pedido`, for its history and its message

    @classmethod
    def of(cls, order: Mapping[str, Any], product_id: str, restock_id: str | None) -> ItemRelease:
        items = order.get("items", [])
        index = next(n for n, i in enumerate(items) if i["product_id"] == product_id)
        count = order.get("pending_count")
        left = int(count) if count is not None else sum(1 for i in items if i.get("item_status") == PENDING)
        return cls(index, left, count is not None, release_reason(restock_id))

    @property
    def completes(self) -> bool:
        """Whether it is the order's last pending item: the order is then `Novo Pedido`."""
        return self.left <= 1

    def history(self, now: str) -> dict[str, str]:
        return history_entry(NEW_ORDER, now, self.reason)

    def notice(self, order: Mapping[str, Any], now: str) -> dict[str, Any]:
        """The order-released message, kept in the outbox with the reservation and published after it."""
        return {
            "order_id": order["order_id"],
            "customer_email": stored_document(order).get("customer", {}).get("email", ""),
            "reason": self.reason,
            "released_at": now,
            "items": [{"product_id": i["product_id"], "quantity": i["quantity"]} for i in order.get("items", [])],
        }
