"""The service layer wired with fakes that record state, the real adapters' error translation, the handlers."""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import socket
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from fakes import BUCKET, FakeFiles, FakeNotifier, FakeQueue, FakeRestockQueue, FakeStore, Lake

from orders.codec import encode_order
from orders.model import NEW_ORDER, PENDING, PRODUCT_PENDING, RECEIVED, RESERVED, Order, OrderRejected
from orders.report import report_key
from orders.stock import PendingNotice, decide
from orders.validation import OrderValidator, load_schema
from service.adapters import DynamoStore, SqsOrderQueue
from service.adapters import orders as order_table
from service.adapters.orders import PreparedWrite
from service.errors import AlreadyProcessed, DuplicateOrder, StockChanged, StoreBusy
from service.ports import DataLake, Notifier, OrderQueue, RestockQueue, Store
from service.use_cases import FileUnfinished, OrderIntake, OrderProcessor, RetryLater

PENDING_TOPIC = "arn:aws:sns:us-east-1:000000000000:pending"
MARIANA = "mariana.alves@example.com"
TRANSACT_PARAMS = "provide-client-params.dynamodb.TransactWriteItems"

validator = OrderValidator()


def variant(lab: dict[str, Any], order_id: str, **changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(lab)
    document["order_id"] = order_id
    document.update(changes)
    return document


def one_item(lab: dict[str, Any], order_id: str, product_id: str, quantity: int) -> Order:
    document = variant(lab, order_id)
    document["items"] = [{"product_id": product_id, "quantity": quantity, "unit_price": Decimal("10.00")}]
    document["payment"]["amount"] = Decimal("10.00") * quantity
    return validator.validate(document)


# ================================================================ the fakes are the ports
PORTS = [(Store, FakeStore), (OrderQueue, FakeQueue), (RestockQueue, FakeRestockQueue), (Notifier, FakeNotifier)]


@pytest.mark.parametrize(("port", "fake"), [*PORTS, (DataLake, FakeFiles)], ids=lambda p: p.__name__)
def test_each_fake_has_every_method_of_its_port_with_the_same_parameters(port: type, fake: type) -> None:
    # What the fakes do is held to the real adapters by tests/e2e/test_contract.py; that they answer the same calls,
    # here (mypy checks the real adapters against the ports).
    methods = {name: m for cls in port.__mro__ if cls is not object for name, m in vars(cls).items()}
    wanted = {name: m for name, m in methods.items() if inspect.isfunction(m) and not name.startswith("_")}

    assert wanted
    for name, method in wanted.items():
        assert list(inspect.signature(getattr(fake, name)).parameters) == list(inspect.signature(method).parameters)


# ================================================================ intake (POST /orders)
@pytest.fixture
def calls() -> list[str]:
    return []


def test_intake_claims_then_sends(lab_text: str, calls: list[str]) -> None:
    store, queue = FakeStore(calls=calls), FakeQueue(calls=calls)

    receipt = OrderIntake(validator, store, queue).submit(lab_text)

    assert calls == ["claim ORD-20231001-0001", "send ORD-20231001-0001"]
    assert queue.sent_ids == ["ORD-20231001-0001"]
    assert store.orders["ORD-20231001-0001"]["order_status"] == RECEIVED
    assert store.orders["ORD-20231001-0001"]["source"].startswith("api:")
    assert (receipt.order.items_total, receipt.replayed) == (Decimal("2800.00"), False)


def test_intake_of_another_order_with_a_used_id_sends_nothing(lab_text: str, calls: list[str]) -> None:
    store, queue = FakeStore(calls=calls), FakeQueue(calls=calls)
    intake = OrderIntake(validator, store, queue)
    intake.submit(lab_text)

    with pytest.raises(DuplicateOrder):
        intake.submit(lab_text.replace("Entregar no período da tarde.", "Entregar pela manhã."))

    assert queue.sent_ids == ["ORD-20231001-0001"]
    assert calls[-1] == "claim ORD-20231001-0001"


def test_a_client_retry_after_the_function_died_between_claim_and_send_gets_the_order_sent(
    lab_text: str, calls: list[str]
) -> None:
    # Given an API function that died after its claim, before its send (SIGKILL, a timeout): the order is
    # Recebido with no message, and the client got a 502
    store, queue = FakeStore(calls=calls), FakeQueue(calls=calls)
    queue.crash = SystemExit("killed")
    with pytest.raises(SystemExit):
        OrderIntake(validator, store, queue).submit(lab_text)
    assert (store.orders["ORD-20231001-0001"]["order_status"], queue.sent_ids) == (RECEIVED, [])

    # When the client retries the same body (before any sweep)
    queue.crash = None
    receipt = OrderIntake(validator, store, queue).submit(lab_text)

    # Then it is a replay: accepted, and sent this time
    assert receipt.replayed
    assert queue.sent_ids == ["ORD-20231001-0001"]


def test_intake_releases_the_claim_when_the_send_fails(lab_text: str, calls: list[str]) -> None:
    store, queue = FakeStore(calls=calls), FakeQueue(calls=calls)
    failure = ConnectionError("SQS unreachable")
    queue.send_error = failure

    with pytest.raises(ConnectionError) as caught:
        OrderIntake(validator, store, queue).submit(lab_text)

    assert caught.value is failure
    assert calls == ["claim ORD-20231001-0001", "send ORD-20231001-0001", "release ORD-20231001-0001"]
    assert store.orders == {}, "the order_id must be free for the client's retry"


def test_intake_of_an_invalid_order_claims_nothing(lab_text: str, calls: list[str]) -> None:
    store, queue = FakeStore(calls=calls), FakeQueue(calls=calls)

    with pytest.raises(OrderRejected):
        OrderIntake(validator, store, queue).submit(lab_text.replace('"RJ"', '"XX"'))

    assert calls == []


# ================================================================ file ingestion
@pytest.fixture
def lake() -> Lake:
    return Lake()


def test_ingestion_of_a_mixed_file(lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]) -> None:
    # Given a file with two valid orders, one invalid order and one entry that is not an order
    bad = variant(lab, "ORD-BAD")
    bad["customer"]["email"] = "sem-arroba"
    bad["items"][0]["quantity"] = 0
    entries = [variant(lab, "ORD-A"), bad, variant(lab, "ORD-B"), 42]
    lake.put("incoming/lote.json", to_json_text(entries).encode())

    # When it is ingested
    report = lake.ingest("incoming/lote.json")

    # Then the valid ones are sent, the others reported with their index, id and errors
    assert report is not None
    assert (report.received, len(report.accepted), len(report.rejections)) == (4, 2, 2)
    assert lake.queue.sent_ids == ["ORD-A", "ORD-B"]
    assert [(r.index, r.order_id) for r in report.rejections] == [(1, "ORD-BAD"), (3, None)]
    assert {e.field for e in report.rejections[0].errors} >= {"customer.email", "items[0].quantity"}
    assert [e.field for e in report.rejections[1].errors] == ["(pedido)"]
    assert lake.files.reports == [(BUCKET, report_key("incoming/lote.json", "seq-1"), report.as_dict())]
    assert lake.notifier.reports == [report.as_dict()]
    assert lake.store.files == {
        f"{BUCKET}/incoming/lote.json#seq-1": (report, report_key("incoming/lote.json", "seq-1"))
    }
    assert {oid: r["source"] for oid, r in lake.store.orders.items()} == {
        "ORD-A": f"s3://{BUCKET}/incoming/lote.json#seq-1:0",
        "ORD-B": f"s3://{BUCKET}/incoming/lote.json#seq-1:2",
    }


def test_ingestion_of_a_clean_file_notifies_nobody(
    lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]
) -> None:
    lake.put("incoming/ok.jsonl", (to_json_text(lab) + "\n").encode())

    report = lake.ingest("incoming/ok.jsonl")

    assert report is not None and report.accepted == ["ORD-20231001-0001"] and not report.has_problems
    assert lake.queue.sent_ids == ["ORD-20231001-0001"]
    assert [key for _, key, _ in lake.files.reports] == [report_key("incoming/ok.jsonl", "seq-1")]
    assert lake.notifier.reports == []
    assert len(lake.store.files) == 1


def test_a_re_upload_and_a_same_named_file_keep_their_own_reports(
    lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]
) -> None:
    # Given incoming/restock/x.json, then new content under the same key, then an orders file named like a restock
    lake.put("incoming/restock/x.json", to_json_text(variant(lab, "ORD-V1")).encode())
    first = lake.ingest("incoming/restock/x.json", "1" * 32)
    lake.put("incoming/restock/x.json", to_json_text(variant(lab, "ORD-V2")).encode())
    second = lake.ingest("incoming/restock/x.json", "2" * 32)
    lake.put("incoming/x.json", to_json_text(variant(lab, "ORD-V3")).encode())
    third = lake.ingest("incoming/x.json", "1" * 32)

    # Then three reports were written under three keys, and each file's record points at its own
    assert first and second and third
    written = [key for _, key, _ in lake.files.reports]
    assert written == [
        "reports/incoming/restock/x.json.111111111111.report.json",
        "reports/incoming/restock/x.json.222222222222.report.json",
        "reports/incoming/x.json.111111111111.report.json",
    ]
    assert sorted(target for _, target in lake.store.files.values()) == sorted(written)


@pytest.mark.parametrize("data", [b"", b"\xe9", b"[]", b'{"order_id": "x"'])
def test_an_unreadable_file_is_reported_whole(lake: Lake, data: bytes) -> None:
    lake.put("incoming/bad.json", data)

    report = lake.ingest("incoming/bad.json")

    assert report is not None and report.file_error and report.received == 0
    assert lake.queue.sent == []
    assert [r["file_error"] for r in lake.notifier.reports] == [report.file_error]
    assert len(lake.files.reports) == 1 and len(lake.store.files) == 1


def test_a_file_too_big_to_read_is_reported(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.use_cases.MAX_FILE_BYTES", 4)
    monkeypatch.setattr("orders.files.MAX_FILE_BYTES", 4)
    lake.put("incoming/big.json", b"[{}, {}]")

    report = lake.ingest("incoming/big.json")

    assert report is not None and report.file_error is not None and "4 bytes" in report.file_error
    assert len(lake.notifier.reports) == 1


def test_a_duplicate_s3_event_is_ignored(lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]) -> None:
    bad = variant(lab, "ORD-BAD", order_date="ontem")
    lake.put("incoming/a.json", to_json_text([lab, bad]).encode())
    lake.ingest("incoming/a.json", tag="seq-1")

    again = lake.ingest("incoming/a.json", tag="seq-1")

    assert again is None
    assert lake.queue.sent_ids == ["ORD-20231001-0001"]
    assert len(lake.files.reports) == 1
    assert len(lake.notifier.reports) == 1


def test_a_new_upload_of_the_same_key_rejects_orders_already_received(
    lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]
) -> None:
    lake.put("incoming/a.json", to_json_text(lab).encode())
    lake.ingest("incoming/a.json", tag="seq-1")

    report = lake.ingest("incoming/a.json", tag="seq-2")

    assert report is not None and report.accepted == []
    assert [(r.index, r.order_id, [e.field for e in r.errors]) for r in report.rejections] == [
        (0, "ORD-20231001-0001", ["order_id"])
    ]
    assert lake.queue.sent_ids == ["ORD-20231001-0001"]


def test_a_retry_after_a_crash_resends_its_own_claims(
    lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]
) -> None:
    # Given a first run that claimed both orders and died before enqueuing them
    lake.put("incoming/a.json", to_json_text([variant(lab, "ORD-A"), variant(lab, "ORD-B")]).encode())
    lake.queue.crash = TimeoutError("Lambda timed out")
    with pytest.raises(TimeoutError):
        lake.ingest("incoming/a.json", tag="seq-1")
    assert set(lake.store.orders) == {"ORD-A", "ORD-B"}

    # When the same S3 event is delivered again
    lake.queue.crash = None
    report = lake.ingest("incoming/a.json", tag="seq-1")

    # Then both are sent, not rejected as duplicates of themselves
    assert report is not None and report.accepted == ["ORD-A", "ORD-B"] and report.rejections == []
    assert lake.queue.sent_ids == ["ORD-A", "ORD-B"]
    assert lake.notifier.reports == []
    assert len(lake.store.files) == 1


def test_a_validator_killed_mid_file_resumes_after_the_chunks_it_kept(
    lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]
) -> None:
    # Given a 250-order file (three chunks, one bad order in the first) whose validator was killed in the third chunk
    entries = [variant(lab, f"ORD-{n:03d}") for n in range(250)]
    entries[7]["items"][0]["quantity"] = 0
    lake.put("incoming/big.json", to_json_text(entries).encode())
    sends = iter(range(1000))
    real_send = lake.queue.send_batch

    def dies_in_the_third_chunk(orders: list[Order]) -> list[str]:
        if orders[0].order_id >= "ORD-200" and next(sends) == 0:
            raise SystemExit("SIGKILL")
        return real_send(orders)

    lake.queue.send_batch = dies_in_the_third_chunk  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        lake.ingest("incoming/big.json", tag="e1")
    assert len(lake.queue.sent) == 199 and lake.store.files == {}

    # When the message comes back (the heartbeat stopped: within its 20 s window)
    report = lake.ingest("incoming/big.json", tag="e1")

    # Then only the third chunk is claimed and sent again; the report covers the whole file, once
    assert len(lake.queue.sent) == 249
    assert report is not None and (report.received, len(report.accepted)) == (250, 249)
    assert [r.index for r in report.rejections] == [7]
    assert len(lake.files.reports) == 1


def test_a_file_longer_than_one_invocation_goes_on_after_the_chunks_done(
    lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]
) -> None:
    lake.put("incoming/long.json", to_json_text([variant(lab, f"ORD-{n:03d}") for n in range(250)]).encode())
    clock = iter([60.0, 60.0, 5.0])  # plenty for two chunks, then short of the 10 s kept back

    with pytest.raises(FileUnfinished):
        lake.ingest("incoming/long.json", tag="e1", time_left=lambda: next(clock))
    assert len(lake.queue.sent) == 200 and lake.files.reports == []

    report = lake.ingest("incoming/long.json", tag="e1", time_left=lambda: 60.0)

    assert report is not None and len(report.accepted) == 250 and len(lake.queue.sent) == 250


def test_an_order_received_through_the_api_is_a_duplicate_in_a_file(
    lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]
) -> None:
    lake.store.claim(validator.validate(lab), "api:1")
    lake.put("incoming/a.json", to_json_text(lab).encode())

    report = lake.ingest("incoming/a.json")

    assert report is not None and [r.order_id for r in report.rejections] == ["ORD-20231001-0001"]
    assert lake.queue.sent == []


def test_a_repeated_order_id_inside_one_file_rejects_the_second(
    lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]
) -> None:
    second = variant(lab, "ORD-20231001-0001", notes="outra vez")
    lake.put("incoming/a.json", to_json_text([lab, second]).encode())

    report = lake.ingest("incoming/a.json")

    assert report is not None and report.accepted == ["ORD-20231001-0001"]
    assert [(r.index, r.order_id, [e.field for e in r.errors]) for r in report.rejections] == [
        (1, "ORD-20231001-0001", ["order_id"])
    ]
    assert lake.queue.sent_ids == ["ORD-20231001-0001"]
    assert len(lake.notifier.reports) == 1


def test_a_repeated_order_id_stays_rejected_on_retry(
    lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]
) -> None:
    lake.put("incoming/a.json", to_json_text([lab, variant(lab, "ORD-20231001-0001")]).encode())
    lake.queue.crash = TimeoutError("Lambda timed out")
    with pytest.raises(TimeoutError):
        lake.ingest("incoming/a.json")
    lake.queue.crash = None

    report = lake.ingest("incoming/a.json")

    assert report is not None and report.accepted == ["ORD-20231001-0001"]
    assert [r.index for r in report.rejections] == [1]


def test_orders_sqs_keeps_refusing_are_released_and_reported(
    lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]
) -> None:
    # Given SQS that never takes ORD-B
    lake.put("incoming/a.json", to_json_text([variant(lab, "ORD-A"), variant(lab, "ORD-B")]).encode())
    lake.queue.refuse = {"ORD-B"}

    # When the file is ingested
    report = lake.ingest("incoming/a.json")

    # Then ORD-B is not left claimed as Recebido: it is released and reported as not taken
    assert report is not None and report.accepted == ["ORD-A"]
    assert [(r.index, r.order_id, [e.field for e in r.errors]) for r in report.rejections] == [(1, "ORD-B", ["(fila)"])]
    assert set(lake.store.orders) == {"ORD-A"}
    assert lake.queue.sent_ids == ["ORD-A"]
    assert len(lake.notifier.reports) == 1 and len(lake.files.reports) == 1
    assert len(lake.store.files) == 1


def test_a_refusal_that_clears_is_retried_in_place(
    lake: Lake, lab: dict[str, Any], to_json_text: Callable[[Any], str]
) -> None:
    lake.put("incoming/a.json", to_json_text([variant(lab, "ORD-A"), variant(lab, "ORD-B")]).encode())
    lake.queue.refuse, lake.queue.refuse_times = {"ORD-B"}, 2

    report = lake.ingest("incoming/a.json")

    assert report is not None and report.accepted == ["ORD-A", "ORD-B"] and report.rejections == []
    assert sorted(lake.queue.sent_ids) == ["ORD-A", "ORD-B"]


# ================================================================ processing
def processor(
    store: FakeStore, notifier: FakeNotifier, sleeps: list[float] | None = None, attempts: int = 6
) -> OrderProcessor:
    record = sleeps.append if sleeps is not None else (lambda seconds: None)
    return OrderProcessor(store, notifier, max_attempts=attempts, sleep=record)  # type: ignore[arg-type]


@pytest.fixture
def order(lab: dict[str, Any]) -> Order:
    return validator.validate(lab)


def test_all_in_stock_reserves_and_notifies_nobody(order: Order) -> None:
    store, notifier = FakeStore({"PRD-1001": 1, "PRD-2002": 5}), FakeNotifier()
    store.claim(order, "api:1")

    status = processor(store, notifier).process(order)

    assert status == NEW_ORDER
    assert store.stock == {"PRD-1001": 0, "PRD-2002": 3}
    record = store.orders[order.order_id]
    assert record["order_status"] == NEW_ORDER and record["source"] == "api:1"
    assert [i["item_status"] for i in record["items"]] == [RESERVED, RESERVED]
    assert notifier.pending == []


def test_short_stock_leaves_the_order_pending_and_notifies_once(order: Order) -> None:
    store, notifier = FakeStore({"PRD-1001": 3, "PRD-2002": 1}), FakeNotifier()

    status = processor(store, notifier).process(order)

    assert status == PRODUCT_PENDING
    assert store.stock == {"PRD-1001": 2, "PRD-2002": 1}
    record = store.orders[order.order_id]
    assert [(i["product_id"], i["item_status"]) for i in record["items"]] == [
        ("PRD-1001", RESERVED),
        ("PRD-2002", PENDING),
    ]
    assert notifier.pending == [PendingNotice(order.order_id, MARIANA, (("PRD-2002", 2),))]
    assert record["pending_notified"] is True


def test_a_redelivered_order_changes_nothing(order: Order) -> None:
    store, notifier = FakeStore({"PRD-1001": 5, "PRD-2002": 5}), FakeNotifier()
    processor(store, notifier).process(order)

    status = processor(store, notifier).process(order)

    assert status == NEW_ORDER
    assert store.stock == {"PRD-1001": 4, "PRD-2002": 3}
    assert notifier.pending == []


def test_a_redelivered_pending_order_already_notified_is_not_notified_again(order: Order) -> None:
    store, notifier = FakeStore({"PRD-1001": 5}), FakeNotifier()
    processor(store, notifier).process(order)

    assert processor(store, notifier).process(order) == PRODUCT_PENDING

    assert len(notifier.pending) == 1
    assert store.stock == {"PRD-1001": 4}


def test_a_notice_lost_after_the_commit_is_published_on_redelivery(order: Order) -> None:
    # Given a first delivery that committed the pending order but failed to publish
    store, notifier = FakeStore({"PRD-1001": 5}), FakeNotifier()
    notifier.failures = [ConnectionError("SNS unreachable")]
    with pytest.raises(ConnectionError):
        processor(store, notifier).process(order)
    assert store.orders[order.order_id]["pending_notified"] is False

    # When the message is delivered again, twice
    first = processor(store, notifier).process(order)
    second = processor(store, notifier).process(order)

    # Then the notice goes out exactly once, rebuilt from the stored order
    assert first == second == PRODUCT_PENDING
    assert notifier.pending == [PendingNotice(order.order_id, MARIANA, (("PRD-2002", 2),))]
    assert store.orders[order.order_id]["pending_notified"] is True
    assert store.stock == {"PRD-1001": 4}


def test_stock_changed_decides_again_with_fresh_stock(order: Order) -> None:
    # Given stock that another order takes between the read and the write
    store, notifier, sleeps = FakeStore({"PRD-1001": 1, "PRD-2002": 2}), FakeNotifier(), []
    store.before_commit = [lambda: store.stock.update({"PRD-2002": 1})]

    status = processor(store, notifier, sleeps).process(order)

    assert [w.decision.status for w in store.commit_attempts] == [NEW_ORDER, PRODUCT_PENDING]
    assert store.stock_reads == 2
    assert status == PRODUCT_PENDING
    assert store.stock == {"PRD-1001": 0, "PRD-2002": 1}
    assert [n.items for n in notifier.pending] == [(("PRD-2002", 2),)]


def test_store_busy_is_retried(order: Order) -> None:
    store, notifier, sleeps = FakeStore({"PRD-1001": 1, "PRD-2002": 2}), FakeNotifier(), []
    store.commit_failures = [StoreBusy("TransactionConflict"), StoreBusy("ThrottlingException")]

    assert processor(store, notifier, sleeps).process(order) == NEW_ORDER

    assert len(store.commit_attempts) == 3
    assert len({id(w) for w in store.commit_attempts}) == 1, "the same prepared write (and token) is sent again"
    assert store.stock_reads == 1
    assert len(sleeps) == 2 and all(0 < s <= 0.5 for s in sleeps)
    assert store.stock == {"PRD-1001": 0, "PRD-2002": 0}


def test_exhausted_attempts_ask_to_retry_later(order: Order) -> None:
    store, notifier = FakeStore({"PRD-1001": 1, "PRD-2002": 2}), FakeNotifier()
    store.commit_failures = [StoreBusy("a"), StockChanged("b"), StoreBusy("c")]

    with pytest.raises(RetryLater):
        processor(store, notifier, attempts=3).process(order)

    assert len(store.commit_attempts) == 3
    assert order.order_id not in store.orders
    assert store.stock == {"PRD-1001": 1, "PRD-2002": 2}
    assert notifier.pending == []


def test_an_unexpected_store_error_is_not_swallowed(order: Order) -> None:
    store, notifier = FakeStore({"PRD-1001": 1, "PRD-2002": 2}), FakeNotifier()
    store.commit_failures = [ValueError("boom")]

    with pytest.raises(ValueError):
        processor(store, notifier).process(order)

    assert len(store.commit_attempts) == 1


# ================================================================ the real DynamoStore: AWS errors become domain errors
@pytest.fixture
def dynamodb() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _cancelled(*codes: str) -> dict[str, Any]:
    return {
        "service_error_code": "TransactionCanceledException",
        "service_message": "Transaction cancelled",
        "modeled_fields": {"CancellationReasons": [{"Code": code} for code in codes]},
    }


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_cancelled("ConditionalCheckFailed", "None", "None"), AlreadyProcessed),
        (_cancelled("None", "ConditionalCheckFailed", "None"), StockChanged),
        (_cancelled("None", "None", "ConditionalCheckFailed"), StockChanged),
        (_cancelled("TransactionConflict", "None", "None"), StoreBusy),
        (_cancelled("None", "ThrottlingError", "None"), StoreBusy),
        ({"service_error_code": "ThrottlingException", "service_message": "slow down"}, StoreBusy),
        ({"service_error_code": "ProvisionedThroughputExceededException", "service_message": "x"}, StoreBusy),
        ({"service_error_code": "TransactionConflictException", "service_message": "x"}, StoreBusy),
    ],
)
def test_commit_translates_aws_errors(dynamodb: Any, order: Order, error: dict[str, Any], expected: type) -> None:
    store = DynamoStore(dynamodb, "orders")
    write = store.prepare_commit(decide(order, {"PRD-1001": 1, "PRD-2002": 2}))
    with Stubber(dynamodb) as stub:
        stub.add_client_error("transact_write_items", **error)

        with pytest.raises(expected) as caught:
            store.commit(write)

        stub.assert_no_pending_responses()
    assert isinstance(caught.value.__cause__, ClientError)


def test_commit_lets_other_errors_through(dynamodb: Any, order: Order) -> None:
    with Stubber(dynamodb) as stub:
        stub.add_client_error("transact_write_items", service_error_code="ValidationException", service_message="x")

        with pytest.raises(ClientError):
            store = DynamoStore(dynamodb, "orders")
            store.commit(store.prepare_commit(decide(order, {})))


@pytest.mark.parametrize(("stored", "expected"), [(NEW_ORDER, AlreadyProcessed), (RECEIVED, StockChanged)])
def test_commit_without_reasons_reads_the_order(dynamodb: Any, order: Order, stored: str, expected: type) -> None:
    # Some emulators omit CancellationReasons: the store reads the order to tell which condition failed.
    key = {"PK": {"S": f"ORDER#{order.order_id}"}, "SK": {"S": "ORDER"}}
    with Stubber(dynamodb) as stub:
        stub.add_client_error("transact_write_items", service_error_code="TransactionCanceledException")
        stub.add_response(
            "get_item",
            {"Item": {**key, "order_id": {"S": order.order_id}, "order_status": {"S": stored}}},
            {"TableName": "orders", "Key": key, "ConsistentRead": True},
        )

        with pytest.raises(expected):
            store = DynamoStore(dynamodb, "orders")
            store.commit(store.prepare_commit(decide(order, {"PRD-1001": 1, "PRD-2002": 2})))

        stub.assert_no_pending_responses()


def test_commit_writes_order_reservations_and_pending_items_in_one_transaction(dynamodb: Any, order: Order) -> None:
    seen: list[dict[str, Any]] = []
    dynamodb.meta.events.register(TRANSACT_PARAMS, lambda params, **_: seen.append(params))
    with Stubber(dynamodb) as stub:
        stub.add_response("transact_write_items", {})

        store = DynamoStore(dynamodb, "orders")
        store.commit(store.prepare_commit(decide(order, {"PRD-1001": 1})))

    writes = seen[0]["TransactItems"]
    assert [next(iter(w)) for w in writes] == ["Update", "Update", "Update", "Put"]
    assert writes[0]["Update"]["Key"]["PK"] == {"S": "ORDER#ORD-20231001-0001"}
    reserve, wait = writes[1]["Update"], writes[2]["Update"]
    assert reserve["Key"]["PK"] == {"S": "PRODUCT#PRD-1001"}
    assert reserve["ExpressionAttributeValues"][":q"] == {"N": "1"}
    assert "#waiting <= :zero" in reserve["ConditionExpression"], "no new order takes stock others wait for"
    # The pending item joins its product's queue, counted on the product, only if it truly does not fit.
    assert wait["Key"]["PK"] == {"S": "PRODUCT#PRD-2002"}
    assert wait["UpdateExpression"].endswith("ADD #waiting :one")
    assert wait["ConditionExpression"] == "attribute_not_exists(#available) OR #available < :q"
    assert writes[3]["Put"]["Item"]["SK"] == {"S": "PENDING#PRD-2002"}


def test_an_item_queued_behind_others_is_written_only_if_they_still_wait_and_the_stock_is_there(
    dynamodb: Any, order: Order
) -> None:
    # PRD-2002 has the units, but an older item waits for it: this one queues behind, under exactly that state.
    decision = decide(order, {"PRD-1001": 5, "PRD-2002": 9}, {"PRD-2002": 1})

    writes = DynamoStore(dynamodb, "orders").prepare_commit(decision).items

    assert [d.item.product_id for d in decision.items if d.queued] == ["PRD-2002"]
    wait = writes[2]["Update"]
    assert wait["Key"]["PK"] == {"S": "PRODUCT#PRD-2002"}
    assert wait["ConditionExpression"] == "#waiting > :zero AND #available >= :q"


def test_the_largest_order_fits_one_transaction_even_with_every_item_pending(
    dynamodb: Any, lab: dict[str, Any]
) -> None:
    # TransactWriteItems takes 100 actions: the order, plus two per pending item (its record and its product).
    lab = copy.deepcopy(lab)
    maximum = load_schema()["properties"]["items"]["maxItems"]
    lab["items"] = [
        {"product_id": f"PRD-{n:04d}", "quantity": 1, "unit_price": Decimal("1.00")} for n in range(maximum)
    ]
    lab["payment"]["amount"] = Decimal(maximum)
    order = OrderValidator().validate(lab)

    writes = DynamoStore(dynamodb, "orders").prepare_commit(decide(order, {})).items

    assert len(order.items) == maximum
    assert len(writes) == 1 + 2 * maximum <= 100


def test_a_retried_write_is_the_same_request_and_a_new_decision_a_new_token(
    dynamodb: Any, order: Order, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DynamoDB answers IdempotentParameterMismatchException when a ClientRequestToken comes back within
    # ten minutes with other parameters: a StoreBusy retry sends the very same request; anything
    # prepared anew (a redelivery, a decision on fresh stock) carries a token of its own.
    clock = iter(["2024-01-01T00:00:00.000+00:00", "2024-01-01T00:00:01.000+00:00"])
    monkeypatch.setattr(order_table, "now", lambda: next(clock))
    seen: list[dict[str, Any]] = []
    dynamodb.meta.events.register(TRANSACT_PARAMS, lambda params, **_: seen.append(params))
    store = DynamoStore(dynamodb, "orders")
    decision = decide(order, {"PRD-1001": 1, "PRD-2002": 2})
    write, again = store.prepare_commit(decision), store.prepare_commit(decision)
    with Stubber(dynamodb) as stub:
        for _ in range(3):
            stub.add_response("transact_write_items", {})

        store.commit(write)
        store.commit(write)
        store.commit(again)

    assert isinstance(write, PreparedWrite)
    tokens = [params["ClientRequestToken"] for params in seen]
    assert tokens[0] == tokens[1] != tokens[2]
    assert seen[0] == seen[1]


def test_claim_of_a_taken_order_id_names_the_first_source(dynamodb: Any, order: Order) -> None:
    with Stubber(dynamodb) as stub:
        stub.add_client_error(
            "put_item",
            service_error_code="ConditionalCheckFailedException",
            modeled_fields={"Item": {"source": {"S": "s3://lake/incoming/a.json#seq-1:0"}}},
        )

        with pytest.raises(DuplicateOrder) as caught:
            DynamoStore(dynamodb, "orders").claim(order, "api:2")

    assert caught.value.existing["source"] == "s3://lake/incoming/a.json#seq-1:0"


# ================================================================ the processor handler: partial batch responses
class FailingProcessor:
    def __init__(self, fail_on: int) -> None:
        self.fail_on = fail_on
        self.seen: list[str] = []

    def prefetch(self, orders: list[Any]) -> None:
        pass

    def write_together(self, orders: list[Any]) -> None:
        pass

    def process(self, order: Order, queued_at: Any = None) -> str:
        self.seen.append(order.order_id)
        if len(self.seen) == self.fail_on:
            raise StoreBusy("conflict")
        return NEW_ORDER


@pytest.fixture
def processor_handler(lambda_env: None) -> Any:
    return importlib.import_module("handlers.processor")


def _messages(lab: dict[str, Any], count: int) -> list[dict[str, Any]]:
    orders = [validator.validate(variant(lab, f"ORD-{n}")) for n in range(1, count + 1)]
    return [{"messageId": f"m{n}", "body": encode_order(o)} for n, o in enumerate(orders, start=1)]


def test_processor_handler_reports_the_failure_and_everything_after_it(
    processor_handler: Any, lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FailingProcessor(fail_on=2)
    monkeypatch.setattr(processor_handler, "_processor", fake)

    response = processor_handler.handler({"Records": _messages(lab, 4)}, None)

    assert response == {"batchItemFailures": [{"itemIdentifier": m} for m in ["m2", "m3", "m4"]]}
    assert fake.seen == ["ORD-1", "ORD-2"], "FIFO: nothing after the failure is processed"


def test_processor_handler_success_reports_nothing(
    processor_handler: Any, lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FailingProcessor(fail_on=0)
    monkeypatch.setattr(processor_handler, "_processor", fake)

    assert processor_handler.handler({"Records": _messages(lab, 3)}, None) == {"batchItemFailures": []}
    assert fake.seen == ["ORD-1", "ORD-2", "ORD-3"]


@pytest.mark.parametrize("unnamed", [1, 2])
def test_processor_handler_never_reports_an_empty_id(
    processor_handler: Any, lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch, unnamed: int
) -> None:
    monkeypatch.setattr(processor_handler, "_processor", FailingProcessor(fail_on=2))
    messages = _messages(lab, 3)
    del messages[unnamed]["messageId"]

    with pytest.raises(RuntimeError, match="messageId"):
        processor_handler.handler({"Records": messages}, None)


def test_processor_handler_reports_an_unreadable_message(
    processor_handler: Any, lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processor_handler, "_processor", FailingProcessor(fail_on=0))
    messages = _messages(lab, 2)
    messages[0]["body"] = "{not json"

    assert processor_handler.handler({"Records": messages}, None) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]
    }


# ================================================================ the guard itself
def test_unit_tests_cannot_open_sockets() -> None:
    with pytest.raises(RuntimeError):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)


# ================================================================ one stock read per batch
def test_a_batch_reads_stock_once_and_tracks_its_own_reservations(lab: dict[str, Any]) -> None:
    store, notifier = FakeStore(stock={"P": 3}), FakeNotifier()
    worker = processor(store, notifier)
    orders = [one_item(lab, f"ORD-{n}", "P", 1) for n in range(5)]

    worker.prefetch(orders)
    statuses = [worker.process(order) for order in orders]

    assert statuses == [NEW_ORDER] * 3 + [PRODUCT_PENDING] * 2
    assert store.stock_reads == 1, "the cache, decremented after each commit, decided every order"
    assert store.stock == {"P": 0}


def test_a_stale_cache_costs_a_re_read_never_an_oversell(lab: dict[str, Any]) -> None:
    store, notifier = FakeStore(stock={"P": 2}), FakeNotifier()
    worker = processor(store, notifier)
    orders = [one_item(lab, f"ORD-{n}", "P", 1) for n in range(2)]
    worker.prefetch(orders)
    store.stock["P"] = 1  # another consumer took a unit after the prefetch

    statuses = [worker.process(order) for order in orders]

    assert statuses == [NEW_ORDER, PRODUCT_PENDING]
    assert store.stock == {"P": 0}
    assert store.stock_reads == 2, "the failed condition forced one fresh read"


def test_the_next_batches_reuse_a_recent_read_and_a_later_one_reads_again(lab: dict[str, Any]) -> None:
    store, notifier = FakeStore(stock={"P": 9}), FakeNotifier()
    worker = processor(store, notifier)
    now = [100.0]
    worker.clock = lambda: now[0]

    for n, at in enumerate((100.0, 100.9, 101.5)):  # within `figures_for` (1 s) of the read, then past it
        now[0] = at
        order = one_item(lab, f"ORD-{n}", "P", 2)
        worker.prefetch([order])
        assert worker.process(order) == NEW_ORDER
    assert store.stock_reads == 2, "the second batch decided on the first one's figures, less its own reservation"
    assert store.stock == {"P": 3}


def test_a_figure_gone_stale_between_batches_costs_a_refused_write_never_an_oversell(lab: dict[str, Any]) -> None:
    # Given a batch read three units, then another consumer took two before the next batch, within `figures_for`
    store, notifier = FakeStore(stock={"P": 4}), FakeNotifier()
    worker = processor(store, notifier)
    worker.clock = lambda: 100.0
    first = one_item(lab, "ORD-0", "P", 1)
    worker.prefetch([first])
    worker.process(first)
    store.stock["P"] = 1

    # When the next batch's two orders of one unit are written together on the old figure, then processed
    batch = [one_item(lab, f"ORD-{n}", "P", 1) for n in (1, 2)]
    worker.prefetch(batch)
    worker.write_together(batch)
    statuses = [worker.process(order) for order in batch]

    # Then the transaction was refused, each order met its own conditions, and the next batch reads again
    assert [len(write.decisions) for write in store.commit_attempts][1:] == [2, 1, 1, 1]
    assert statuses == [NEW_ORDER, PRODUCT_PENDING] and store.stock == {"P": 0}
    reads = store.stock_reads
    worker.prefetch([one_item(lab, "ORD-3", "P", 1)])
    assert store.stock_reads == reads + 1


# ================================================================ orders of a batch written together
def test_orders_that_reserve_everything_are_written_in_one_transaction(lab: dict[str, Any]) -> None:
    store, notifier = FakeStore(stock={"P": 5, "Q": 5}), FakeNotifier()
    worker = processor(store, notifier)
    orders = [one_item(lab, f"ORD-{n}", "PQ"[n % 2], 2) for n in range(4)]

    worker.prefetch(orders)
    worker.write_together(orders)
    statuses = [worker.process(order) for order in orders]

    assert statuses == [NEW_ORDER] * 4
    assert [len(write.decisions) for write in store.commit_attempts] == [4], "one transaction, nothing after it"
    assert store.stock == {"P": 1, "Q": 1} and store.reserved == {"P": 4, "Q": 4}
    assert all(store.orders[o.order_id]["order_status"] == NEW_ORDER for o in orders)


def test_a_refused_transaction_of_many_leaves_each_order_to_its_own_conditions(lab: dict[str, Any]) -> None:
    # Given three orders of one unit decided together on three units, of which another consumer then takes one
    store, notifier = FakeStore(stock={"P": 3}), FakeNotifier()
    worker = processor(store, notifier)
    orders = [one_item(lab, f"ORD-{n}", "P", 1) for n in range(3)]
    worker.prefetch(orders)
    store.stock["P"] = 2

    # When they are written together, then processed
    worker.write_together(orders)
    statuses = [worker.process(order) for order in orders]

    # Then the transaction changed nothing, and each order got what its own turn found: no oversell, none lost
    assert [len(write.decisions) for write in store.commit_attempts] == [3, 1, 1, 1, 1]
    assert statuses == [NEW_ORDER, NEW_ORDER, PRODUCT_PENDING]
    assert store.stock == {"P": 0} and store.reserved == {"P": 2}


def test_an_order_that_must_wait_is_written_alone_and_later_orders_queue_behind_it(lab: dict[str, Any]) -> None:
    # Given a batch: an order for more than the stock, then two that the stock would cover
    store, notifier = FakeStore(stock={"P": 3, "Q": 9}), FakeNotifier()
    worker = processor(store, notifier)
    batch = [one_item(lab, "ORD-BIG", "P", 5), one_item(lab, "ORD-SMALL", "P", 1), one_item(lab, "ORD-Q", "Q", 1)]

    worker.prefetch(batch)
    worker.write_together(batch)
    statuses = [worker.process(order) for order in batch]

    # Then nothing is written together (one order alone is no transaction of many), and first come, first served
    assert statuses == [PRODUCT_PENDING, PRODUCT_PENDING, NEW_ORDER]
    assert all(len(write.decisions) == 1 for write in store.commit_attempts)
    assert store.stock == {"P": 3, "Q": 8} and store.waiting == {"P": 2}


def test_a_transaction_of_many_orders_stays_within_100_actions(dynamodb: Any, lab: dict[str, Any]) -> None:
    # Given ten orders of 30 products each, all in stock, and one more for products already written
    def of(n: int, products: range) -> Order:
        document = variant(lab, f"ORD-{n}")
        document["items"] = [{"product_id": f"P{p}", "quantity": 1, "unit_price": Decimal("1.00")} for p in products]
        document["payment"]["amount"] = Decimal(len(products))
        return validator.validate(document)

    orders = [of(n, range(30 * n, 30 * n + 30)) for n in range(10)]
    seen: list[dict[str, Any]] = []
    dynamodb.meta.events.register(TRANSACT_PARAMS, lambda params, **_: seen.append(params))
    store = DynamoStore(dynamodb, "orders")
    worker = OrderProcessor(store, FakeNotifier())  # type: ignore[arg-type]
    with Stubber(dynamodb) as stub:
        for start in range(0, 300, 100):  # the prefetch: BatchGetItem takes 100 keys
            stock = [{"PK": {"S": f"PRODUCT#P{p}"}, "available": {"N": "9"}} for p in range(start, start + 100)]
            stub.add_response("batch_get_item", {"Responses": {"orders": stock}})
        for _ in range(4):
            stub.add_response("transact_write_items", {})

        # When they are written together, then processed
        worker.prefetch(orders)
        worker.write_together(orders)
        statuses = {worker.process(order) for order in orders}

        stub.assert_no_pending_responses()

    # Then in runs of three orders (3 + 90 actions), never an item twice in one; the last order alone, its own way
    assert statuses == {NEW_ORDER}
    assert [len(params["TransactItems"]) for params in seen] == [93, 93, 93, 31]
    for params in seen:
        keys = [json.dumps(next(iter(w.values()))["Key"], sort_keys=True) for w in params["TransactItems"]]
        assert len(keys) == len(set(keys))


def test_a_transaction_of_many_reserves_each_product_once_for_the_sum(dynamodb: Any, lab: dict[str, Any]) -> None:
    orders = [one_item(lab, f"ORD-{n}", "P", n + 1) for n in range(3)]

    write = DynamoStore(dynamodb, "orders").prepare_commit(*(decide(o, {"P": 9}) for o in orders))

    [reserve] = [w["Update"] for w in write.items if w["Update"]["Key"]["PK"] == {"S": "PRODUCT#P"}]
    assert reserve["ExpressionAttributeValues"][":q"] == {"N": "6"}
    assert "#waiting <= :zero" in reserve["ConditionExpression"]
    assert write.order_ids == ("ORD-0", "ORD-1", "ORD-2") and len(write.items) == 4


@pytest.mark.parametrize("reason", ["ConditionalCheckFailed", "TransactionConflict"])
def test_a_cancelled_transaction_of_many_is_stock_changed_whatever_the_reason(
    dynamodb: Any, lab: dict[str, Any], reason: str
) -> None:
    orders = [one_item(lab, f"ORD-{n}", "P", 1) for n in range(2)]
    store = DynamoStore(dynamodb, "orders")
    write = store.prepare_commit(*(decide(o, {"P": 9}) for o in orders))
    with Stubber(dynamodb) as stub:
        stub.add_client_error("transact_write_items", **_cancelled("None", reason, "None"))

        with pytest.raises(StockChanged):
            store.commit(write)


# ================================================================ claims of a file chunk in one transaction
def test_claim_many_retries_without_the_orders_already_received(dynamodb: Any, lab: dict[str, Any]) -> None:
    store = DynamoStore(dynamodb, "orders")
    claims = [(one_item(lab, f"ORD-{n}", "P", 1), f"s3://f#e:{n}") for n in range(3)]
    with Stubber(dynamodb) as stub:
        # Given ORD-1 was already received from the API
        stub.add_client_error("transact_write_items", **_cancelled("None", "ConditionalCheckFailed", "None"))
        stub.add_response(
            "get_item",
            {"Item": {"order_id": {"S": "ORD-1"}, "source": {"S": "api:x"}}},
            {
                "TableName": "orders",
                "Key": {"PK": {"S": "ORDER#ORD-1"}, "SK": {"S": "ORDER"}},
                "ConsistentRead": True,
            },
        )
        stub.add_response("transact_write_items", {})

        # When the chunk is claimed
        taken = store.claim_many(claims)

        # Then ORD-1 is reported with its source, and the other two are claimed in a second transaction
        stub.assert_no_pending_responses()
    assert taken == {"ORD-1": "api:x"}


def test_claim_many_without_reasons_falls_back_to_one_claim_at_a_time(dynamodb: Any, lab: dict[str, Any]) -> None:
    store = DynamoStore(dynamodb, "orders")
    claims = [(one_item(lab, f"ORD-{n}", "P", 1), f"s3://f#e:{n}") for n in range(2)]
    with Stubber(dynamodb) as stub:
        stub.add_client_error("transact_write_items", service_error_code="TransactionCanceledException")
        stub.add_response("put_item", {})
        stub.add_client_error(
            "put_item",
            service_error_code="ConditionalCheckFailedException",
            modeled_fields={"Item": {"source": {"S": "api:y"}}},
        )

        taken = store.claim_many(claims)

        stub.assert_no_pending_responses()
    assert taken == {"ORD-1": "api:y"}


class BatchClient:
    """An SQS client for `send_message_batch` only: one call raises, one answers with a failed entry."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        ids = [entry["MessageGroupId"] for entry in Entries]
        if "ORD-B-10" in ids:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "busy"}}, "SendMessageBatch")
        self.sent += ids
        return {"Failed": [{"Id": str(ids.index("ORD-B-25")), "Code": "InternalError"}]} if "ORD-B-25" in ids else {}


def test_a_files_orders_are_sent_in_batches_of_ten_and_only_the_refused_ones_are_named(lab: dict[str, Any]) -> None:
    # Given 35 orders for the queue (four batches)
    client = BatchClient()
    orders = [one_item(lab, f"ORD-B-{n:02d}", "PRD-1", 1) for n in range(35)]

    # When they are sent, the second batch's call failing and one entry of the third refused
    refused = SqsOrderQueue(client, "queue-url").send_batch(orders)

    # Then exactly the second batch and that entry are refused, and every other order was sent once
    assert sorted(refused) == sorted([f"ORD-B-{n:02d}" for n in range(10, 20)] + ["ORD-B-25"])
    assert client.sent == [order.order_id for order in orders if not "ORD-B-10" <= order.order_id <= "ORD-B-19"]
