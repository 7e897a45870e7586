"""The contract of the store's ports (service.ports): the same scenarios against the unit suite's fake
(tests/unit/fakes.py) and against the real adapters (service.adapters.DynamoStore) on the running sandbox's table, so
the fake cannot drift from what DynamoDB does.

Each scenario uses ids of its own; on the real side a read through GSI1 (which may lag its table on AWS) is
polled with a deadline."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from e2e_support import ROOT, eventually, unique

from orders.codec import encode_order, fingerprint, stored_document
from orders.model import NEW_ORDER, PENDING, PRODUCT_PENDING, RECEIVED, RESERVED, Order
from orders.report import FileReport
from orders.restock import Restock
from orders.stock import decide
from orders.validation import OrderValidator
from service.adapters import DynamoStore
from service.errors import AlreadyProcessed, DuplicateOrder, DuplicateRestock, ItemGone, OrderChanged, StockChanged
from service.keys import CLAIMED_FILE_ORDERS, CLAIMED_ORDERS, CLAIMED_RESTOCKS

sys.path.insert(0, str(ROOT / "tests" / "unit"))  # the fakes under contract live with the unit suite
from fakes import FakeStore  # noqa: E402

SEED = ROOT / "seed" / "orders" / "valid-pending-stock.json"
LATER = datetime.now(UTC) + timedelta(days=1)  # every claim of the test was received before this
EARLIER = datetime(2020, 1, 1, tzinfo=UTC)  # and none before this (the fake's clock starts in 2024)


@pytest.fixture(params=["fake", "real"])
def store(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        return FakeStore()
    aws, outputs = request.getfixturevalue("aws"), request.getfixturevalue("outputs")
    return DynamoStore(aws.client("dynamodb"), outputs["OrdersTable"])


def an_order(*quantities: int, products: list[str] | None = None) -> Order:
    """An order of its own, one product per quantity (new ones unless named)."""
    document = json.loads(SEED.read_text("utf-8"), parse_float=Decimal)  # money is Decimal, as the API parses it
    item = document["items"][0]
    document["order_id"] = unique("CONTRACT")
    names = products or [unique("CT-PRD") for _ in quantities]
    document["items"] = [{**item, "product_id": p, "quantity": q} for p, q in zip(names, quantities, strict=True)]
    document["payment"]["amount"] = sum(q * item["unit_price"] for q in quantities) + document["shipping"]["cost"]
    return OrderValidator().validate(document)


def settles(check: Callable[[], bool]) -> None:
    eventually(check, timeout=10)


def unsent_orders(store: Any, before: datetime = LATER) -> set[str]:
    return {str(record["order_id"]) for record in store.unsent(CLAIMED_ORDERS, before, 1000)}


def unsent_file_orders(store: Any, before: datetime = LATER) -> set[str]:
    return {str(record["order_id"]) for record in store.unsent(CLAIMED_FILE_ORDERS, before, 1000)}


def unsent_restocks(store: Any, before: datetime = LATER) -> set[str]:
    return {str(record["restock_id"]) for record in store.unsent(CLAIMED_RESTOCKS, before, 1000)}


def waiting(store: Any, product: str) -> list[str]:
    return [item.order_id for item in store.pending_queue(product)]


# ---------------------------------------------------------------- orders
def test_an_order_is_claimed_once_and_a_second_claim_sees_the_first(store: Any) -> None:
    order = an_order(1)
    store.claim(order, "api:first")

    with pytest.raises(DuplicateOrder) as duplicate:
        store.claim(order, "api:second")

    assert duplicate.value.existing["source"] == "api:first"
    assert duplicate.value.existing["order_status"] == RECEIVED
    assert duplicate.value.existing["body_hash"] == fingerprint(order)
    assert [entry["status"] for entry in store.get_order(order.order_id)["status_history"]] == [RECEIVED]


def test_a_claim_is_released_only_by_its_own_source(store: Any) -> None:
    order = an_order(1)
    store.claim(order, "api:mine")

    store.release(order.order_id, "api:someone-else")
    kept = store.get_order(order.order_id)
    store.release(order.order_id, "api:mine")

    assert kept is not None and kept["source"] == "api:mine"
    assert store.get_order(order.order_id) is None


def test_claim_many_reports_the_ids_taken_before_with_their_source(store: Any) -> None:
    first, second = an_order(1), an_order(1)
    store.claim(first, "api:earlier")

    taken = store.claim_many([(first, "s3://f:0"), (second, "s3://f:1")])

    assert taken == {first.order_id: "api:earlier"}
    assert store.get_order(second.order_id)["source"] == "s3://f:1"


def test_a_claim_waits_for_the_sweeper_until_it_is_marked_sent(store: Any) -> None:
    order = an_order(1)
    store.claim(order, "api:1")
    settles(lambda: order.order_id in unsent_orders(store))

    store.mark_sent([order.order_id])

    settles(lambda: order.order_id not in unsent_orders(store))
    record = store.get_order(order.order_id)
    assert record["order_status"] == RECEIVED and record["document"] == encode_order(order)


def test_a_files_claims_wait_in_their_own_partition_until_marked_sent(store: Any) -> None:
    from_file, from_api = an_order(1), an_order(1)
    store.claim_many([(from_file, "s3://lake/incoming/f.json#tag:0")])
    store.claim(from_api, "api:1")
    settles(lambda: from_file.order_id in unsent_file_orders(store) and from_api.order_id in unsent_orders(store))
    assert from_file.order_id not in unsent_orders(store) and from_api.order_id not in unsent_file_orders(store)

    store.mark_sent([from_file.order_id])

    settles(lambda: from_file.order_id not in unsent_file_orders(store))
    assert store.get_order(from_file.order_id)["order_status"] == RECEIVED


def test_an_order_never_claimed_gets_its_document_from_the_processor(store: Any) -> None:
    # An order sent straight to the queue has no claim: the processor's write is the first, and stores the document
    order = an_order(2)
    decision = decide(order, *store.stock_levels([item.product_id for item in order.items]))

    store.commit(store.prepare_commit(decision, queued_at=datetime.now(UTC)))

    record = store.get_order(order.order_id)
    assert (record["source"], record["document"]) == ("queue", encode_order(order))
    assert stored_document(record) == json.loads(encode_order(order))


def test_an_order_without_stock_waits_and_a_restock_releases_it(store: Any) -> None:
    # Given an order for two units of a product nobody stocked, processed from its claim
    order = an_order(2)
    [product] = [item.product_id for item in order.items]
    store.claim(order, "api:1")
    decision = decide(order, *store.stock_levels([product]))
    store.commit(store.prepare_commit(decision, queued_at=datetime.now(UTC)))
    store.mark_notified(order.order_id)
    pending = store.get_order(order.order_id)
    settles(lambda: waiting(store, product) == [order.order_id])
    [item] = store.pending_queue(product)

    # When a restock of three arrives and the waiting item is reserved for it
    restock = Restock(unique("CT-R"), product, 3)
    applied, again = store.apply_restock(restock), store.apply_restock(restock)
    last = store.reserve_pending(item, store.get_order(order.order_id), restock.restock_id)

    # Then the order is released, once, with its history, its outbox notice and its place in the restock
    released = store.get_order(order.order_id)
    assert pending["order_status"] == PRODUCT_PENDING and int(pending["pending_count"]) == 1
    assert pending["pending_notified"] is True and pending["document"] == encode_order(order)  # the claim's, kept
    assert (applied, again, last) == (True, False, True)
    assert released["order_status"] == NEW_ORDER
    assert [e["status"] for e in released["status_history"]] == [RECEIVED, PRODUCT_PENDING, NEW_ORDER]
    assert [i["item_status"] for i in released["items"]] == ["Reservado"]
    product_record = store.get_product(product)
    assert (int(product_record["available"]), int(product_record["reserved"])) == (1, 2)
    assert int(product_record.get("waiting", 0)) == 0
    assert store.released_orders(restock.restock_id) == ([order.order_id], None)
    assert [n["order_id"] for n in store.release_notices(product)] == [order.order_id]
    store.clear_release_notice(product, order.order_id)
    assert store.release_notices(product) == []
    assert not store.still_pending(item)


# ---------------------------------------------------------------- restocks
def test_a_restock_is_claimed_once_released_only_by_its_source_and_swept_until_sent(store: Any) -> None:
    restock = Restock(unique("CT-R"), unique("CT-PRD"), 4)
    store.claim_restock(restock, "api:mine")
    settles(lambda: restock.restock_id in unsent_restocks(store))

    with pytest.raises(DuplicateRestock) as duplicate:
        store.claim_restock(restock, "api:other")
    store.mark_restock_sent(restock.restock_id)
    settles(lambda: restock.restock_id not in unsent_restocks(store))
    store.release_restock_claim(restock.restock_id, "api:other")
    kept = store.get_restock(restock.restock_id)
    store.release_restock_claim(restock.restock_id, "api:mine")

    assert duplicate.value.existing["source"] == "api:mine"
    assert int(duplicate.value.existing["quantity"]) == 4
    assert kept is not None and kept["restock_status"] == "Recebida"
    assert store.get_restock(restock.restock_id) is None


# ---------------------------------------------------------------- files
def test_a_file_keeps_its_chunks_until_it_is_done(store: Any) -> None:
    file_id = f"bucket/incoming/{unique('ct')}.json#etag"
    part = {"received": 2, "accepted": ["A"], "rejections": []}

    store.save_file_part(file_id, 100, part)
    before = store.file_done(file_id)
    store.mark_file_done(file_id, FileReport(bucket="bucket", key="incoming/x.json", kind="orders"), "reports/x")

    assert store.file_parts(file_id) == {100: part}
    assert (before, store.file_done(file_id)) == (False, True)


def test_a_decision_is_recorded_once_and_one_on_stale_stock_is_decided_again(store: Any) -> None:
    # Given a product with one unit, and an order claimed for it
    order = an_order(1)
    [product] = [item.product_id for item in order.items]
    store.apply_restock(Restock(unique("CT-R"), product, 1))
    store.claim(order, "api:1")
    decision = decide(order, *store.stock_levels([product]))

    # When it is recorded, then decided and recorded again, and another order decided on the same figures follows
    store.commit(store.prepare_commit(decision))
    with pytest.raises(AlreadyProcessed):
        store.commit(store.prepare_commit(decision))
    stale = an_order(1, products=[product])
    with pytest.raises(StockChanged):
        store.commit(store.prepare_commit(decide(stale, {product: 1})))

    # Then the unit went to the first order, once, and the second was not written
    recorded = store.get_order(order.order_id)
    assert recorded["order_status"] == NEW_ORDER and [i["item_status"] for i in recorded["items"]] == [RESERVED]
    assert [e["status"] for e in recorded["status_history"]] == [RECEIVED, NEW_ORDER]
    assert store.stock_levels([product, unique("CT-NONE")]) == ({product: 0}, {product: 0})
    assert store.get_order(stale.order_id) is None


def test_orders_written_together_are_all_recorded_or_none(store: Any) -> None:
    # Given a product with four units and three orders claimed for it, the first already processed
    product = unique("CT-PRD")
    store.apply_restock(Restock(unique("CT-R"), product, 4))
    done, first, second = (an_order(1, products=[product]) for _ in range(3))
    for order in (done, first, second):
        store.claim(order, "api:1")
    store.commit(store.prepare_commit(decide(done, *store.stock_levels([product]))))

    # When the three are written together, then the two still received
    with pytest.raises(StockChanged):
        store.commit(store.prepare_commit(*(decide(o, {product: 3}) for o in (done, first, second))))
    untouched = store.stock_levels([product])
    store.commit(store.prepare_commit(*(decide(o, {product: 3}) for o in (first, second))))

    # Then the refused transaction changed nothing, and the second took one unit per order, once
    assert untouched == ({product: 3}, {product: 0})
    assert store.stock_levels([product]) == ({product: 1}, {product: 0})
    for order in (first, second):
        recorded = store.get_order(order.order_id)
        assert recorded["order_status"] == NEW_ORDER and [i["item_status"] for i in recorded["items"]] == [RESERVED]
        assert [e["status"] for e in recorded["status_history"]] == [RECEIVED, NEW_ORDER]
    assert int(store.get_product(product)["reserved"]) == 3


def test_waiting_items_are_served_first_come_first_served_and_each_once(store: Any) -> None:
    # Given two orders waiting for a product, recorded in the opposite order of their arrival in the queue
    product, other = unique("CT-PRD"), unique("CT-PRD")
    first, second = an_order(2, 1, products=[product, other]), an_order(1, products=[product])
    arrived = datetime.now(UTC)
    for order, at in ((second, arrived + timedelta(seconds=1)), (first, arrived)):
        store.commit(store.prepare_commit(decide(order, *store.stock_levels([product, other])), queued_at=at))
    settles(lambda: waiting(store, product) == [first.order_id, second.order_id])
    head, tail = store.pending_queue(product)
    [first_other] = store.pending_queue(other)
    restock = Restock(unique("CT-R"), product, 4)
    store.apply_restock(restock)
    read_before = store.get_order(first.order_id)

    # When the head is reserved, then again; the tail; and the first order's other item without stock, then on a
    # stale read of its order
    completes = store.reserve_pending(head, store.get_order(first.order_id), restock.restock_id)
    with pytest.raises(ItemGone):
        store.reserve_pending(head, store.get_order(first.order_id), restock.restock_id)
    last = store.reserve_pending(tail, store.get_order(second.order_id), restock.restock_id)
    with pytest.raises(StockChanged):  # nothing of the other product yet
        store.reserve_pending(first_other, store.get_order(first.order_id), None)
    store.apply_restock(Restock(unique("CT-R"), other, 1))
    with pytest.raises(OrderChanged):  # read before its first item was reserved
        store.reserve_pending(first_other, read_before, None)

    # Then each was served once, in queue order, and only the second order is complete
    assert (completes, last) == (False, True)
    assert [i["item_status"] for i in store.get_order(first.order_id)["items"]] == [RESERVED, PENDING]
    assert store.get_order(second.order_id)["order_status"] == NEW_ORDER
    page, after = store.released_orders(restock.restock_id, limit=1)
    assert (page, store.released_orders(restock.restock_id, after, limit=1)) == (
        [first.order_id],
        ([second.order_id], None),
    )
    assert int(store.get_restock(restock.restock_id)["released_count"]) == 2
    assert [n["order_id"] for n in store.release_notices(product)] == [second.order_id]
    assert (store.still_pending(head), store.still_pending(first_other)) == (False, True)
    settles(lambda: waiting(store, product) == [])


def test_the_sweeper_sees_only_claims_still_unsent(store: Any) -> None:
    # Given claims of orders and restocks, one of each moved on (processed, applied)
    left, processed = an_order(1), an_order(1)
    store.claim(left, "api:left")
    store.claim(processed, "api:processed")
    store.commit(store.prepare_commit(decide(processed, {})))
    stuck, applied = Restock(unique("CT-R"), unique("CT-PRD"), 1), Restock(unique("CT-R"), unique("CT-PRD"), 1)
    store.claim_restock(stuck, "api:stuck")
    store.claim_restock(applied, "api:applied")
    store.apply_restock(applied)
    store.mark_restock_released(applied.restock_id)

    # Then only the ones left are seen, and only as received before the instant asked about
    settles(lambda: left.order_id in unsent_orders(store) and processed.order_id not in unsent_orders(store))
    settles(lambda: stuck.restock_id in unsent_restocks(store) and applied.restock_id not in unsent_restocks(store))
    assert left.order_id not in unsent_orders(store, EARLIER)
    assert stuck.restock_id not in unsent_restocks(store, EARLIER)
    assert store.get_restock(applied.restock_id)["released_at"]
