"""The sweeper: claims whose claimant died before its send are sent again, exactly once in effect."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fakes import FakeQueue, FakeRestockQueue, FakeStore

from orders.model import NEW_ORDER, RECEIVED
from orders.restock import Restock
from orders.validation import OrderValidator, parse_order_body
from service.keys import CLAIMED_FILE_ORDERS
from service.use_cases import OrderIntake, OrderProcessor, Sweeper

validator = OrderValidator()
START = datetime(2024, 1, 1, tzinfo=UTC)  # FakeStore's clock starts here and moves one second per write


class Died(BaseException):
    """The function was killed (SIGKILL, a timeout): nothing after this point ran."""


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(stock={"PRD-1001": 10, "PRD-2002": 10})


def claimed_and_died(store: FakeStore, text: str) -> None:
    """An API call that claimed the order and was killed before its SendMessage."""
    queue = FakeQueue()
    queue.crash = Died()
    with pytest.raises(Died):
        OrderIntake(validator, store, queue).submit(text)


def sweeper(store: FakeStore, at_seconds: float, **options: float) -> tuple[Sweeper, FakeQueue, FakeRestockQueue]:
    """A sweeper whose clock reads START + at_seconds."""
    orders, restocks = FakeQueue(), FakeRestockQueue()
    clock = START + timedelta(seconds=at_seconds)
    return Sweeper(store, orders, restocks, clock=lambda: clock, **options), orders, restocks  # type: ignore[arg-type]


def test_an_order_claimed_and_never_sent_is_sent_again_and_then_processed(store: FakeStore, lab_text: str) -> None:
    # Given an order left Recebido by a function killed between its claim and its send
    claimed_and_died(store, lab_text)

    # When the sweeper runs after the threshold
    sweep, orders, _ = sweeper(store, at_seconds=60, stuck_after=20)
    result = sweep.sweep()

    # Then the very order is sent again, and the processor finishes it
    assert result.orders == 1
    assert [order.document for order in orders.sent] == [validator.validate(parse_order_body(lab_text)).document]
    status = OrderProcessor(store, _Silent()).process(orders.sent[0])
    assert status == NEW_ORDER


def test_a_claim_younger_than_the_threshold_is_left_to_its_claimant(store: FakeStore, lab_text: str) -> None:
    claimed_and_died(store, lab_text)

    sweep, orders, _ = sweeper(store, at_seconds=5, stuck_after=20)

    assert sweep.sweep().orders == 0
    assert orders.sent == []


def test_a_processed_order_is_never_sent_again(store: FakeStore, lab_text: str) -> None:
    claimed_and_died(store, lab_text)
    store.orders["ORD-20231001-0001"]["order_status"] = NEW_ORDER

    sweep, orders, _ = sweeper(store, at_seconds=60)

    assert sweep.sweep().orders == 0


def test_an_order_sent_by_the_api_and_processed_is_never_swept(store: FakeStore, lab_text: str) -> None:
    # The processor's write takes the claim out of the sweeper's partition, however long ago it was received
    receipt = OrderIntake(validator, store, FakeQueue()).submit(lab_text)
    OrderProcessor(store, _Silent()).process(receipt.order)

    sweep, orders, _ = sweeper(store, at_seconds=3600)

    assert sweep.sweep().orders == 0
    assert orders.sent == []


def test_a_swept_claim_is_marked_sent_so_the_next_sweep_leaves_it(store: FakeStore, lab_text: str) -> None:
    claimed_and_died(store, lab_text)

    first, _, _ = sweeper(store, at_seconds=60)
    second, orders, _ = sweeper(store, at_seconds=120)

    assert first.sweep().orders == 1
    assert second.sweep().orders == 0 and orders.sent == []
    assert store.orders["ORD-20231001-0001"]["order_status"] == RECEIVED, "still waiting for the processor"


def test_a_claim_sent_by_the_api_and_unprocessed_after_the_threshold_is_sent_once_more_and_marked(
    store: FakeStore, lab_text: str
) -> None:
    # Given an order the API claimed and sent, still waiting in the queue (a backlog) 60 s later
    api_queue = FakeQueue()
    OrderIntake(validator, store, api_queue).submit(lab_text)
    assert api_queue.sent_ids == ["ORD-20231001-0001"]

    # When the sweeper runs, and runs again a minute later
    first, resent, _ = sweeper(store, at_seconds=60, stuck_after=20)
    second, again, _ = sweeper(store, at_seconds=120, stuck_after=20)
    results = first.sweep(), second.sweep()

    # Then the first sweep sends it once more (the queue drops that copy by its deduplication id) and marks it, and
    # the second sends nothing; the order still waits for the processor
    assert [result.orders for result in results] == [1, 0]
    assert (resent.sent_ids, again.sent_ids) == (["ORD-20231001-0001"], [])
    record = store.orders["ORD-20231001-0001"]
    assert record["order_status"] == RECEIVED and "unsent" not in record and "message" not in record


def test_a_restock_claimed_and_never_sent_is_sent_again(store: FakeStore) -> None:
    store.claim_restock(Restock("KEY-1", "PRD-1001", 4), "api:x")
    store.claim_restock(Restock("KEY-2", "PRD-1001", 5), "api:y")
    store.apply_restock(Restock("KEY-2", "PRD-1001", 5))

    sweep, _, restocks = sweeper(store, at_seconds=60)
    result = sweep.sweep()

    assert result.restocks == 1
    assert restocks.sent == [Restock("KEY-1", "PRD-1001", 4)]


def test_a_claim_without_its_document_text_is_skipped_not_fatal(store: FakeStore, lab_text: str) -> None:
    # A claim written before claims kept the document's text cannot be sent; the rest of the sweep goes on
    claimed_and_died(store, lab_text)
    del store.orders["ORD-20231001-0001"]["document"]
    other = json.loads(lab_text)
    other["order_id"] = "ORD-OTHER"
    claimed_and_died(store, json.dumps(other))

    sweep, orders, _ = sweeper(store, at_seconds=60)
    result = sweep.sweep()

    assert (result.orders, [order.order_id for order in orders.sent]) == (1, ["ORD-OTHER"])


class _Silent:
    def pending_stock(self, notice: object) -> None:
        raise AssertionError("nothing is pending")


def test_a_files_claims_wait_for_their_files_resume_and_only_then_for_the_sweeper(
    store: FakeStore, lab_text: str
) -> None:
    # Given an order claimed by a data-lake file whose validator died before the send, and one claimed by the API
    order = validator.validate(parse_order_body(lab_text))
    store.claim(order, "s3://lake/incoming/a.json#etag:0")
    other = json.loads(lab_text)
    other["order_id"] = "ORD-API"
    claimed_and_died(store, json.dumps(other))

    # When the sweeper runs a minute later, then after `file_stuck_after`
    early, early_sent, _ = sweeper(store, at_seconds=60)
    early.sweep()
    late, late_sent, _ = sweeper(store, at_seconds=400)
    late.sweep()

    # Then the API's claim is sent at once; the file's is left to the file's own resume, and sent once that is overdue
    assert [o.order_id for o in early_sent.sent] == ["ORD-API"]
    assert [o.order_id for o in late_sent.sent] == [order.order_id]
    assert store.unsent(CLAIMED_FILE_ORDERS, START + timedelta(days=1), 10) == []
