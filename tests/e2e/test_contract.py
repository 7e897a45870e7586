"""The contract of the store: the same scenarios against the unit suite's fake (tests/unit/fakes.py) and against the
real adapter on the running sandbox's table, so the fake cannot drift from what DynamoDB does.

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

from orders.codec import fingerprint
from orders.model import NEW_ORDER, PRODUCT_PENDING, RECEIVED, Order
from orders.report import FileReport
from orders.restock import Restock
from orders.stock import decide
from orders.validation import OrderValidator
from service.adapters import (
    CLAIMED_ORDERS,
    CLAIMED_RESTOCKS,
    DuplicateOrder,
    DuplicateRestock,
    OrderStore,
    stamp,
)

sys.path.insert(0, str(ROOT / "tests" / "unit"))  # the fakes under contract live with the unit suite
from fakes import FakeStore  # noqa: E402

SEED = ROOT / "seed" / "orders" / "valid-pending-stock.json"
LATER = stamp(datetime.now(UTC) + timedelta(days=1))  # every claim of the test was received before this


@pytest.fixture(params=["fake", "real"])
def store(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        return FakeStore()
    aws, outputs = request.getfixturevalue("aws"), request.getfixturevalue("outputs")
    return OrderStore(aws.client("dynamodb"), outputs["OrdersTable"])


def an_order(*quantities: int) -> Order:
    """An order of its own, one new product per quantity."""
    document = json.loads(SEED.read_text("utf-8"), parse_float=Decimal)  # money is Decimal, as the API parses it
    item = document["items"][0]
    document["order_id"] = unique("CONTRACT")
    document["items"] = [{**item, "product_id": unique("CT-PRD"), "quantity": q} for q in quantities]
    document["payment"]["amount"] = sum(q * item["unit_price"] for q in quantities) + document["shipping"]["cost"]
    return OrderValidator().validate(document)


def settles(check: Callable[[], bool]) -> None:
    eventually(check, timeout=10)


def unsent(store: Any, partition: str, field: str) -> set[str]:
    return {str(record[field]) for record in store.stuck_claims(partition, LATER, 1000)}


# ---------------------------------------------------------------- orders
def test_an_order_is_claimed_once_and_a_second_claim_sees_the_first(store: Any) -> None:
    order = an_order(1)
    store.claim(order, "api:first")

    with pytest.raises(DuplicateOrder) as duplicate:
        store.claim(order, "api:second")

    assert duplicate.value.source == "api:first"
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
    settles(lambda: order.order_id in unsent(store, CLAIMED_ORDERS, "order_id"))

    store.mark_sent([order.order_id])

    settles(lambda: order.order_id not in unsent(store, CLAIMED_ORDERS, "order_id"))
    record = store.get_order(order.order_id)
    assert record["order_status"] == RECEIVED and "message" not in record


def test_an_order_without_stock_waits_and_a_restock_releases_it(store: Any) -> None:
    # Given an order for two units of a product nobody stocked, processed from its claim
    order = an_order(2)
    [product] = [item.product_id for item in order.items]
    store.claim(order, "api:1")
    decision = decide(order, *store.stock_levels([product]))
    store.commit(store.prepare_commit(decision, datetime.now(UTC)))
    waiting = store.get_order(order.order_id)
    settles(lambda: [i.order_id for i in store.pending_queue(product)] == [order.order_id])
    [item] = store.pending_queue(product)

    # When a restock of three arrives and the waiting item is reserved for it
    restock = Restock(unique("CT-R"), product, 3)
    applied, again = store.apply_restock(restock), store.apply_restock(restock)
    last = store.reserve_pending(item, store.get_order(order.order_id), restock.restock_id)

    # Then the order is released, once, with its history, its outbox notice and its place in the restock
    released = store.get_order(order.order_id)
    assert waiting["order_status"] == PRODUCT_PENDING and int(waiting["pending_count"]) == 1
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
    settles(lambda: restock.restock_id in unsent(store, CLAIMED_RESTOCKS, "restock_id"))

    with pytest.raises(DuplicateRestock) as duplicate:
        store.claim_restock(restock, "api:other")
    store.mark_restock_sent(restock.restock_id)
    settles(lambda: restock.restock_id not in unsent(store, CLAIMED_RESTOCKS, "restock_id"))
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
