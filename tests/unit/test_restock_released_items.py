"""Issue 11, point 2: a restock's released orders are items of their own, so a release of any size completes, costs
the same per order, and GET /restocks/{id} pages them."""

from __future__ import annotations

import copy
import importlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from fakes import MAX_ITEM_BYTES, FakeNotifier, FakeRestockQueue, FakeStore, item_size

from orders.model import NEW_ORDER, PENDING, PRODUCT_PENDING, Order
from orders.restock import RELEASED_PAGE, PendingItem, Restock, cursor_position, page_cursor, queue_position
from orders.validation import OrderValidator
from service.adapters import DynamoStore
from service.use_cases import OrderProcessor, StockRelease

QUEUED = datetime(2024, 3, 1, 13, 0, tzinfo=UTC)  # when SQS took the orders

PENDING_TOPIC = "arn:aws:sns:us-east-1:000000000000:pending"
TABLE = "orders"
P = "PRD-1001"
START = datetime(2024, 3, 1, tzinfo=UTC)
BAD_CURSOR = "Parâmetro after inválido: use o valor de next da página anterior."

validator = OrderValidator()


def long_id(n: int) -> str:
    """An order id of the longest kind (64 characters): the sizes that broke the list in the issue."""
    return f"ORD-{n:06d}-".ljust(64, "x")


def make_order(lab: dict[str, Any], order_id: str, minute: int) -> Order:
    document = copy.deepcopy(lab)
    document.update(order_id=order_id, order_date=(START + timedelta(minutes=minute)).isoformat())
    document["items"] = [{"product_id": P, "quantity": 1, "unit_price": Decimal("10.00")}]
    document["payment"]["amount"] = Decimal("10.00")
    return validator.validate(document)


def waiting_orders(store: FakeStore, lab: dict[str, Any], count: int) -> list[str]:
    """`count` orders of one unit of P, taken and processed while P has no stock: they all wait, oldest first."""
    processor = OrderProcessor(store, FakeNotifier(), sleep=lambda _: None)
    order_ids = []
    for n in range(count):
        order = make_order(lab, long_id(n), n)
        store.claim(order, f"api:{order.order_id}")
        assert processor.process(order) == PRODUCT_PENDING
        order_ids.append(order.order_id)
    return order_ids


# ================================================================ a release of 10,000 waiting orders
def test_a_restock_releases_ten_thousand_waiting_orders_and_its_record_stays_small(lab: dict[str, Any]) -> None:
    # Given 10,000 orders of 64-character ids waiting for one product (as a list they would take about 650 KB)
    store = FakeStore({P: 0})
    order_ids = waiting_orders(store, lab, 10_000)
    release = StockRelease(store, FakeNotifier(), sleep=lambda _: None, releases=FakeRestockQueue())

    # When a restock of 10,000 units arrives
    served = release.apply(Restock("R-BIG", P, 10_000))

    # Then every order is served, oldest first, and is `Novo Pedido`; the books balance
    assert [item.order_id for item in served] == order_ids
    assert {store.orders[o]["order_status"] for o in order_ids} == {NEW_ORDER}
    assert (store.stock[P], store.reserved[P], store.waiting[P]) == (0, 10_000, 0)
    # And the restock counts them in a record far below DynamoDB's 400 KB, and lists them in items of their own
    record = store.restocks["R-BIG"]
    assert (record["released_count"], record["released_at"] is not None) == (10_000, True)
    assert item_size(record) < MAX_ITEM_BYTES // 100
    assert store.released_by("R-BIG") == order_ids


def test_a_long_release_tells_its_orders_as_it_goes_not_all_at_its_end(lab: dict[str, Any]) -> None:
    # Given 250 waiting orders, and a count of the messages already out at each reservation
    store = FakeStore({P: 0})
    order_ids = waiting_orders(store, lab, 250)
    notifier = FakeNotifier()
    release = StockRelease(store, notifier, sleep=lambda _: None, releases=FakeRestockQueue())
    told_before: list[int] = []
    reserve = store.reserve_pending

    def counting(item: PendingItem, order: dict[str, Any], restock_id: str | None) -> bool:
        told_before.append(len(notifier.released))
        return reserve(item, order, restock_id)

    store.reserve_pending = counting  # type: ignore[method-assign]

    # When a restock serves them all
    release.apply(Restock("R-1", P, 250))

    # Then each round of the queue (100 items) was told before the next began: the messages of a release of
    # thousands never wait for its end, where the time kept back would not cover them
    assert (told_before[100], told_before[200]) == (100, 200)
    assert [notice["order_id"] for notice in notifier.released] == order_ids


# ================================================================ GET /restocks/{id}, page by page
@pytest.fixture
def api(lambda_env: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = importlib.import_module("handlers.api")
    monkeypatch.setattr(module, "_store", FakeStore())
    return module


def get_restock(api: Any, restock_id: str, **query: str) -> tuple[int, dict[str, Any]]:
    event = {
        "httpMethod": "GET",
        "resource": "/restocks/{restock_id}",
        "pathParameters": {"restock_id": restock_id},
        "queryStringParameters": query or None,  # what API Gateway sends when there is none
    }
    response = api.handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def released(store: FakeStore, restock_id: str, count: int) -> list[str]:
    """A restock applied and released to `count` orders, as the reservations record it."""
    store.apply_restock(Restock(restock_id, P, count))
    order_ids = [f"ORD-{n:05d}" for n in range(count)]
    store.restocks[restock_id]["released_count"] = Decimal(count)
    store.released[restock_id] = {queue_position(QUEUED, o): o for o in order_ids}
    store.mark_restock_released(restock_id)
    return order_ids


def test_get_restock_pages_through_every_released_order(api: Any) -> None:
    # Given a restock that served 2,500 orders
    order_ids = released(api._store, "R-1", 2_500)

    # When a client follows `next` from the first page to the last
    pages = []
    status, body = get_restock(api, "R-1")
    pages.append(body)
    while body["next"] is not None:
        status, body = get_restock(api, "R-1", after=body["next"])
        assert status == 200
        pages.append(body)

    # Then it has read each order once, in queue order, in pages of at most RELEASED_PAGE
    assert [len(page["released_orders"]) for page in pages] == [RELEASED_PAGE, RELEASED_PAGE, 500]
    assert [o for page in pages for o in page["released_orders"]] == order_ids
    assert {page["released_count"] for page in pages} == {2_500}
    assert {(page["restock_status"], page["product_id"]) for page in pages} == {("Aplicada", P)}


def test_a_release_of_exactly_one_page_has_no_next(api: Any) -> None:
    released(api._store, "R-1", RELEASED_PAGE)

    status, body = get_restock(api, "R-1")

    assert (status, len(body["released_orders"]), body["next"]) == (200, RELEASED_PAGE, None)


def test_a_restock_released_before_the_orders_had_items_shows_its_list_on_the_first_page(api: Any) -> None:
    # Given a record written by the release of earlier versions: the orders listed in the record itself
    api._store.apply_restock(Restock("R-OLD", P, 2))
    api._store.restocks["R-OLD"]["released_orders"] = ["ORD-A", "ORD-B"]

    status, body = get_restock(api, "R-OLD")

    assert (status, body["released_count"], body["released_orders"], body["next"]) == (
        200,
        2,
        ["ORD-A", "ORD-B"],
        None,
    )


@pytest.mark.parametrize(
    "after",
    ["", "nope", "%%%", "a" * 300, page_cursor("not a position"), page_cursor("2024#" + "x" * 65), "YQ"],
    ids=["empty", "not-base64-position", "not-url-safe", "too-long", "no-hash", "id-too-long", "one-letter"],
)
def test_an_after_that_is_not_a_next_is_400_without_a_lookup(api: Any, after: str) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("no lookup expected")

    api._store.get_restock = refuse

    assert get_restock(api, "R-1", after=after) == (400, {"message": BAD_CURSOR})


def test_a_cursor_is_url_safe_and_stands_for_its_position() -> None:
    position = queue_position(QUEUED, "ORD_x-1")

    cursor = page_cursor(position)

    assert cursor.replace("-", "").replace("_", "").isalnum()
    assert cursor_position(cursor) == position


# ================================================================ the real adapter: what it writes and reads
@pytest.fixture
def dynamodb() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def order_record(order_id: str) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "order_status": PRODUCT_PENDING,
        "pending_count": Decimal(1),
        "document": {"customer": {"email": "cliente@example.com"}},
        "items": [{"product_id": P, "quantity": Decimal(1), "item_status": PENDING}],
    }


def test_each_reservation_writes_the_same_bounded_change_to_the_restock_record(dynamodb: Any) -> None:
    # Given the first and the 10,000th reservation of one restock
    sent: list[dict[str, Any]] = []
    dynamodb.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems", lambda params, **_: sent.append(params)
    )
    items = [PendingItem(long_id(n), P, 1, queue_position(QUEUED, long_id(n))) for n in (0, 9_999)]
    with Stubber(dynamodb) as stub:
        for item in items:
            stub.add_response("transact_write_items", {})
            DynamoStore(dynamodb, TABLE).reserve_pending(item, order_record(item.order_id), "R-1")

    # Then each changes the restock record by a count only: nothing in it grows with the orders served
    record_key = {"PK": {"S": "RESTOCK#R-1"}, "SK": {"S": "RESTOCK"}}
    to_record = [
        [w["Update"] for w in request["TransactItems"] if w.get("Update", {}).get("Key") == record_key]
        for request in sent
    ]
    assert to_record[0] == to_record[1] and len(to_record[0]) == 1
    assert to_record[0][0]["UpdateExpression"] == "ADD released_count :one"
    # And the order served is an item of its own in the restock's partition, sorted by its place in the queue
    puts = [[w["Put"]["Item"] for w in request["TransactItems"] if "Put" in w] for request in sent]
    served = [[p for p in put if p["PK"] == {"S": "RESTOCK#R-1"}] for put in puts]
    assert [[(p["SK"]["S"], p["order_id"]["S"]) for p in s] for s in served] == [
        [(f"RELEASED#{item.queued_at}", item.order_id)] for item in items
    ]


def query_of(after: str | None, limit: int) -> dict[str, Any]:
    request = {
        "TableName": TABLE,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :sk)",
        "ExpressionAttributeValues": {":pk": {"S": "RESTOCK#R-1"}, ":sk": {"S": "RELEASED#"}},
        "ProjectionExpression": "SK, order_id",
        "ConsistentRead": True,
        "Limit": limit,
    }
    if after is not None:
        request["ExclusiveStartKey"] = {"PK": {"S": "RESTOCK#R-1"}, "SK": {"S": f"RELEASED#{after}"}}
    return request


def served_items(*order_ids: str) -> list[dict[str, Any]]:
    return [{"SK": {"S": f"RELEASED#pos-{o}"}, "order_id": {"S": o}} for o in order_ids]


def test_released_orders_reads_one_more_than_a_page_to_know_whether_another_follows(dynamodb: Any) -> None:
    with Stubber(dynamodb) as stub:
        stub.add_response("query", {"Items": served_items("A", "B", "C")}, query_of(None, 3))
        stub.add_response("query", {"Items": served_items("C")}, query_of("pos-B", 3))
        store = DynamoStore(dynamodb, TABLE)

        first = store.released_orders("R-1", limit=2)
        last = store.released_orders("R-1", after=first[1], limit=2)

        stub.assert_no_pending_responses()
    assert (first, last) == ((["A", "B"], "pos-B"), (["C"], None))


def test_released_orders_goes_on_where_dynamodb_stopped_a_query_short(dynamodb: Any) -> None:
    # DynamoDB ends a Query at 1 MB with a LastEvaluatedKey, however many items were asked for
    stopped = {"PK": {"S": "RESTOCK#R-1"}, "SK": {"S": "RELEASED#pos-A"}}
    with Stubber(dynamodb) as stub:
        stub.add_response("query", {"Items": served_items("A"), "LastEvaluatedKey": stopped}, query_of(None, 3))
        # boto3's paginator asks for a whole page again, and stops at one more than the page
        stub.add_response("query", {"Items": served_items("B")}, query_of("pos-A", 3))

        assert DynamoStore(dynamodb, TABLE).released_orders("R-1", limit=2) == (["A", "B"], None)

        stub.assert_no_pending_responses()


def test_release_notices_reads_every_page_of_the_outbox(dynamodb: Any) -> None:
    # Given an outbox of a long release that one Query (1 MB) does not return whole
    request = {
        "TableName": TABLE,
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"RELEASED#{P}"}},
        "ConsistentRead": True,
    }

    def notice(order_id: str) -> dict[str, Any]:
        return {"PK": {"S": f"RELEASED#{P}"}, "SK": {"S": f"ORDER#{order_id}"}, "order_id": {"S": order_id}}

    with Stubber(dynamodb) as stub:
        stub.add_response("query", {"Items": [notice("A")], "LastEvaluatedKey": notice("A")})
        stub.add_response("query", {"Items": [notice("B")]}, {**request, "ExclusiveStartKey": notice("A")})

        notices = DynamoStore(dynamodb, TABLE).release_notices(P)

        stub.assert_no_pending_responses()
    assert [n["order_id"] for n in notices] == ["A", "B"]
