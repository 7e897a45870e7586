"""The order of a product's waiting items: by the instant the system queued the order, never by its order_date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from fakes import FakeStore

from orders.model import Order, OrderItem
from orders.restock import queue_position
from orders.stock import decide

QUEUED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _order(order_id: str, order_date: str) -> Order:
    item = OrderItem("PRD-1", 1, Decimal("10.00"), None)
    return Order(order_id=order_id, order_date=order_date, items=(item,), document={"order_id": order_id})


def test_an_order_dated_year_1_does_not_jump_ahead_of_one_queued_before_it() -> None:
    # Given an order queued first, with a truthful date, waiting for a product without stock
    store = FakeStore(stock={"PRD-1": 0})
    honest, forged = _order("HONEST", "2026-03-01T11:59:00Z"), _order("FORGED", "0001-01-01T00:00:00Z")
    store.commit(store.prepare_commit(decide(honest, {"PRD-1": 0}, {}), queued_at=QUEUED))

    # When a later order claims to be from year 1
    later = QUEUED + timedelta(seconds=1)
    store.commit(store.prepare_commit(decide(forged, {"PRD-1": 0}, {"PRD-1": 1}), queued_at=later))

    # Then the queue still serves the first one queued first
    queue = sorted(store.pending.values(), key=lambda item: item.queued_at)
    assert [item.order_id for item in queue] == ["HONEST", "FORGED"]


def test_offsets_are_compared_as_instants_not_as_text() -> None:
    brasilia = queue_position(datetime(2024, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=-3))), "A")
    utc = queue_position(datetime(2024, 3, 1, 12, 0, tzinfo=UTC), "B")

    assert utc < brasilia


def test_a_moment_without_offset_counts_as_utc() -> None:
    assert queue_position(datetime(2024, 3, 1, 9, 30), "A") == queue_position(
        datetime(2024, 3, 1, 9, 30, tzinfo=UTC), "A"
    )


def test_fractions_and_ids_keep_a_total_order() -> None:
    keys = [
        queue_position(QUEUED, "B"),
        queue_position(QUEUED + timedelta(milliseconds=500), "A"),
        queue_position(QUEUED, "A"),
        queue_position(QUEUED - timedelta(days=400), "Z"),
    ]

    assert sorted(keys) == [keys[3], keys[2], keys[0], keys[1]]
