"""What the ports' callers are told when a write cannot be done as asked (service.adapters.table.refusal reads the
store's errors into these)."""

from __future__ import annotations

from typing import Any


class DuplicateOrder(Exception):
    """The order_id was already received; `existing` is the record as it stands (its `source` says where from)."""

    def __init__(self, order_id: str, existing: dict[str, Any]) -> None:
        super().__init__(f"order {order_id} already received")
        self.existing = existing


class AlreadyProcessed(Exception):
    """The order is already in a final state: a redelivery."""


class StockChanged(Exception):
    """Some product no longer has the stock the decision counted on: decide again."""


class StoreBusy(Exception):
    """Throttling or a transaction conflict: safe to retry the same write."""


class DuplicateRestock(Exception):
    """The restock_id (idempotency key) was already received; `existing` is what it was received with."""

    def __init__(self, restock_id: str, existing: dict[str, Any]) -> None:
        super().__init__(f"restock {restock_id} already received")
        self.existing = existing


class ItemGone(Exception):
    """The pending item is no longer pending: another release reserved it first."""


class OrderChanged(Exception):
    """The order changed between our read and our write (another of its items was released): read again."""
