"""Restocks: the rules of a restock request, the first-come, first-served plan, the use cases that take, apply and
release restocks (wired with fakes that record state), the handlers, and the real adapters' requests and error
translation (botocore's Stubber)."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from fakes import BUCKET, FakeFiles, FakeNotifier, FakeQueue, FakeRestockQueue, FakeSqs, FakeStore, Lake
from hypothesis import given, settings
from hypothesis import strategies as st

from orders import validation as validation_module
from orders.model import NEW_ORDER, PENDING, PRODUCT_PENDING, RECEIVED, RESERVED, FieldError, Order, history_entry
from orders.report import FileReport, report_key
from orders.restock import (
    MAX_RESTOCK_BYTES,
    PendingItem,
    Restock,
    RestockRejected,
    is_valid_id,
    parse_restock_body,
    plan_release,
    queue_position,
    release_reason,
    validate_restock,
)
from orders.stock import decide
from orders.validation import OrderValidator
from service.adapters import DynamoStore, SnsNotifier, SqsRestockQueue
from service.batch import BatchFailures, Heartbeat
from service.errors import DuplicateRestock, ItemGone, OrderChanged, StockChanged, StoreBusy
from service.use_cases import (
    ENQUEUE_FAILED,
    FileIngestion,
    OrderProcessor,
    RestockConflict,
    RestockIntake,
    RestockReceipt,
    RetryLater,
    StockRelease,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
RESTOCK_SEED = REPO_ROOT / "seed" / "restocks"
PENDING_TOPIC = "arn:aws:sns:us-east-1:000000000000:pending"
MARIANA = "mariana.alves@example.com"
OLDER, NEWER, NEWEST = "2024-03-01T10:00:00Z", "2024-03-02T10:00:00Z", "2024-03-03T10:00:00Z"
# When SQS took an order (its place in a product's queue); FakeStore's own clock starts in 2024, after these.
QUEUED_FIRST, QUEUED_LATER = datetime(2023, 6, 1, 10, 0, tzinfo=UTC), datetime(2023, 6, 1, 10, 5, tzinfo=UTC)
P, Q = "PRD-1001", "PRD-2002"

# The messages users read, as the rules state them.
REQUIRED = "campo obrigatório"
WHOLE = "deve ser um número inteiro"
RANGE = "deve estar entre 1 e 1000000"
ID_RULE = "deve ter de 1 a 64 caracteres entre A-Z, a-z, 0-9, _ e -"
NOT_OBJECT = 'deve ser um objeto JSON como {"quantity": 10}'
EMPTY = 'corpo vazio: envie {"quantity": N}'
TOO_BIG = "corpo maior que o limite de 4096 bytes"

validator = OrderValidator()


def rejected(call: Callable[[], Any]) -> list[tuple[str, str]]:
    """The (field, message) pairs of the RestockRejected that `call` raises."""
    with pytest.raises(RestockRejected) as caught:
        call()
    return [(e.field, e.message) for e in caught.value.errors]


def make_order(lab: dict[str, Any], order_id: str, lines: list[tuple[str, int]], order_date: str = OLDER) -> Order:
    document = copy.deepcopy(lab)
    document.update(order_id=order_id, order_date=order_date)
    document["items"] = [{"product_id": p, "quantity": q, "unit_price": Decimal("10.00")} for p, q in lines]
    document["payment"]["amount"] = Decimal("10.00") * sum(q for _, q in lines)
    return validator.validate(document)


# ================================================================ the rules of a restock request
@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param({}, [("quantity", REQUIRED)], id="missing"),
        pytest.param({"quantity": 0}, [("quantity", RANGE)], id="zero"),
        pytest.param({"quantity": -2}, [("quantity", RANGE)], id="negative"),
        pytest.param({"quantity": Decimal("1.5")}, [("quantity", WHOLE)], id="fraction"),
        pytest.param({"quantity": True}, [("quantity", WHOLE)], id="true"),
        pytest.param({"quantity": False}, [("quantity", WHOLE)], id="false"),
        pytest.param({"quantity": "10"}, [("quantity", WHOLE)], id="string"),
        pytest.param({"quantity": None}, [("quantity", WHOLE)], id="null"),
        pytest.param({"quantity": [3]}, [("quantity", WHOLE)], id="list"),
        pytest.param({"quantity": 1_000_001}, [("quantity", RANGE)], id="over-the-max"),
        pytest.param({"quantity": 10**30}, [("quantity", RANGE)], id="huge"),
    ],
)
def test_a_quantity_breaking_a_rule_is_rejected_with_its_message(
    document: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert rejected(lambda: validate_restock(document, "R-1", P)) == expected


@pytest.mark.parametrize("quantity", [1, 2, 999_999, 1_000_000])
def test_whole_quantities_from_one_to_a_million_are_accepted(quantity: int) -> None:
    assert validate_restock({"quantity": quantity}, "R-1", P) == Restock("R-1", P, quantity)


@pytest.mark.parametrize("product_id", ["", "x" * 65, "PRD 1", "PRD#1", "PRD/1", "é", "PRD-1\n"])
def test_an_impossible_product_in_the_path_is_rejected(product_id: str) -> None:
    assert rejected(lambda: validate_restock({"quantity": 1}, "R-1", product_id)) == [("product_id", ID_RULE)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param({"quantity": 2}, [("product_id", REQUIRED)], id="no-product"),
        pytest.param({"product_id": 7, "quantity": 2}, [("product_id", ID_RULE)], id="product-not-text"),
        pytest.param({"product_id": None, "quantity": 2}, [("product_id", ID_RULE)], id="product-null"),
        pytest.param(
            {"product_id": "a b", "quantity": 0}, [("product_id", ID_RULE), ("quantity", RANGE)], id="both-bad"
        ),
        pytest.param({}, [("product_id", REQUIRED), ("quantity", REQUIRED)], id="empty"),
    ],
)
def test_a_file_line_gets_every_error_at_once(line: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert rejected(lambda: validate_restock(line, "R-1")) == expected


@pytest.mark.parametrize("document", [[1], [{"quantity": 1}], "10", 10, None, True])
@pytest.mark.parametrize("product_id", [P, None], ids=["api", "file-line"])
def test_a_restock_that_is_not_an_object_is_rejected_whole(document: Any, product_id: str | None) -> None:
    assert rejected(lambda: validate_restock(document, "R-1", product_id)) == [("(corpo)", NOT_OBJECT)]


def test_unknown_fields_are_ignored_and_the_path_names_the_product() -> None:
    document = {"quantity": 3, "product_id": "not valid!", "restock_id": "forged", "note": "urgente"}

    restock = validate_restock(document, "R-1", P)

    assert restock == Restock("R-1", P, 3)
    assert restock.as_message() == {"restock_id": "R-1", "product_id": P, "quantity": 3}


def test_a_file_line_names_its_product_and_may_carry_other_fields() -> None:
    line = {"product_id": "PRD-9", "quantity": 4, "supplier": "ACME"}
    assert validate_restock(line, "R-2") == Restock("R-2", "PRD-9", 4)


@pytest.mark.parametrize("body", [None, "", "   ", "\n\t", b"", b"  \n"])
def test_an_empty_body_is_rejected(body: str | bytes | None) -> None:
    assert rejected(lambda: parse_restock_body(body)) == [("(corpo)", EMPTY)]


@pytest.mark.parametrize("encode", [False, True], ids=["text", "bytes"])
def test_a_body_over_4_kib_is_rejected_before_it_is_parsed(monkeypatch: pytest.MonkeyPatch, encode: bool) -> None:
    text = '{"quantity": 1}'
    text += " " * (MAX_RESTOCK_BYTES + 1 - len(text))
    parsed: list[Any] = []
    monkeypatch.setattr(validation_module, "parse_json", parsed.append)

    errors = rejected(lambda: parse_restock_body(text.encode() if encode else text))

    assert MAX_RESTOCK_BYTES == 4096
    assert errors == [("(corpo)", TOO_BIG)]
    assert parsed == [], "the body was not even parsed"


def test_the_body_limit_counts_bytes_not_characters() -> None:
    exactly = '{"quantity": 1}'
    exactly += " " * (MAX_RESTOCK_BYTES - len(exactly))
    wide = '{"quantity": 1, "note": "' + "é" * 2040 + '"}'  # about 2 070 characters, 4 110 bytes

    assert parse_restock_body(exactly) == {"quantity": 1}
    assert len(wide) < MAX_RESTOCK_BYTES < len(wide.encode())
    assert rejected(lambda: parse_restock_body(wide)) == [("(corpo)", TOO_BIG)]


@pytest.mark.parametrize(
    "body", ["{", '{"quantity": }', "NaN", '{"quantity": NaN}', '{"quantity": Infinity}', "[" * 3000]
)
def test_a_body_that_is_not_json_is_rejected(body: str) -> None:
    [(field, message)] = rejected(lambda: parse_restock_body(body))
    assert field == "(corpo)"
    assert message.startswith("JSON inválido: ")


def test_a_fraction_is_read_exactly_as_decimal_and_refused() -> None:
    document = parse_restock_body('{"quantity": 1.5}')

    assert document == {"quantity": Decimal("1.5")} and isinstance(document["quantity"], Decimal)
    assert rejected(lambda: validate_restock(document, "R-1", P)) == [("quantity", WHOLE)]


def test_a_body_in_bytes_is_read() -> None:
    assert parse_restock_body(b'{"quantity": 2}') == {"quantity": 2}


@pytest.mark.parametrize(
    ("value", "valid"),
    [("A", True), ("a" * 64, True), ("a-b_C9", True), ("", False), ("a" * 65, False), ("a b", False)]
    + [("a#b", False), ("ç", False), ("１", False), ("A\n", False), (1, False), (None, False), (["A"], False)],
)
def test_ids_are_1_to_64_characters_of_a_small_alphabet(value: Any, valid: bool) -> None:
    assert is_valid_id(value) is valid


# ================================================================ first come, first served
def queue_of(*quantities: int) -> list[PendingItem]:
    """Waiting items, oldest first."""
    return [
        PendingItem(f"ORD-{n:02d}", P, q, f"2024-03-{n + 1:02d}T10:00:00Z#ORD-{n:02d}")
        for n, q in enumerate(quantities)
    ]


@pytest.mark.parametrize(
    ("available", "quantities", "served"),
    [
        pytest.param(3, [2, 2], 1, id="only-the-older"),
        pytest.param(3, [5, 1], 0, id="a-later-smaller-item-never-jumps-ahead"),
        pytest.param(4, [1, 5, 1], 1, id="the-first-misfit-stops-the-queue"),
        pytest.param(10, [2, 3], 2, id="both"),
        pytest.param(5, [2, 3], 2, id="exact-fit"),
        pytest.param(0, [1], 0, id="no-stock"),
        pytest.param(7, [], 0, id="nobody-waits"),
    ],
)
def test_plan_release_examples(available: int, quantities: list[int], served: int) -> None:
    queue = queue_of(*quantities)
    assert plan_release(available, queue) == queue[:served]


@settings(max_examples=300, deadline=None)
@given(available=st.integers(0, 60), quantities=st.lists(st.integers(1, 20), max_size=12))
def test_plan_release_serves_a_prefix_that_fits_and_stops_at_the_first_misfit(
    available: int, quantities: list[int]
) -> None:
    queue = queue_of(*quantities)

    served = plan_release(available, iter(queue))

    assert served == queue[: len(served)], "oldest first, no item skipped"
    total = sum(item.quantity for item in served)
    assert total <= available
    if len(served) < len(queue):
        assert queue[len(served)].quantity > available - total, "the next item truly does not fit"


def test_the_reasons_an_order_keeps_in_its_history(lab: dict[str, Any]) -> None:
    order = make_order(lab, "ORD-1", [(P, 1), (Q, 2)])

    assert decide(order, {P: 1, Q: 2}).reason == "estoque reservado para todos os itens"
    assert decide(order, {P: 1}).reason == f"sem estoque disponível para: {Q} (2)"
    assert decide(order, {}).reason == f"sem estoque disponível para: {P} (1), {Q} (2)"
    assert release_reason("R-9") == "estoque reposto (reposição R-9): todos os itens reservados"
    assert history_entry(NEW_ORDER, "t", "r") == {"status": NEW_ORDER, "at": "t", "reason": "r"}


def test_a_restock_report_names_restock_ids_and_products() -> None:
    report = FileReport(BUCKET, "restock/a.json", kind="restocks")
    report.accepted.append("s3-abc-0")
    report.reject(1, Q, [FieldError("quantity", RANGE)])
    report.reject(2, 7, [FieldError("product_id", ID_RULE)])

    body = report.as_dict()

    assert (body["kind"], body["accepted_restock_ids"], "accepted_order_ids" in body) == (
        "restocks",
        ["s3-abc-0"],
        False,
    )
    assert body["rejections"] == [
        {"index": 1, "product_id": Q, "errors": [{"field": "quantity", "message": RANGE}]},
        {"index": 2, "product_id": None, "errors": [{"field": "product_id", "message": ID_RULE}]},
    ]


# ================================================================ taking a restock (POST /products/{id}/restock)
@pytest.fixture
def calls() -> list[str]:
    return []


def test_a_new_key_is_claimed_then_sent(calls: list[str]) -> None:
    store, queue = FakeStore(calls=calls), FakeRestockQueue(calls=calls)

    receipt = RestockIntake(store, queue).submit(P, '{"quantity": 5}', "KEY-1")

    assert receipt == RestockReceipt(Restock("KEY-1", P, 5), "Recebida", replayed=False)
    assert calls == ["claim_restock KEY-1", "send KEY-1"]
    assert queue.sent == [Restock("KEY-1", P, 5)]
    marker = store.restocks["KEY-1"]
    assert (marker["product_id"], marker["quantity"], marker["restock_status"]) == (P, 5, "Recebida")
    assert marker["source"].startswith("api:")
    assert store.stock == {}, "the stock rises when the restocker applies the restock, not before"


def test_without_a_key_each_request_gets_an_id_of_its_own() -> None:
    store, queue = FakeStore(), FakeRestockQueue()
    intake = RestockIntake(store, queue)

    first, second = (intake.submit(P, '{"quantity": 2}', None) for _ in range(2))

    ids = [first.restock.restock_id, second.restock.restock_id]
    assert ids[0] != ids[1]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert queue.sent_ids == ids and set(store.restocks) == set(ids)
    assert not first.replayed and not second.replayed


@pytest.mark.parametrize("key", ["", "bad key!", "x" * 65, "KEY#1", "chave-é"])
def test_an_impossible_key_is_rejected_before_anything_is_written(key: str, calls: list[str]) -> None:
    store, queue = FakeStore(calls=calls), FakeRestockQueue(calls=calls)

    errors = rejected(lambda: RestockIntake(store, queue).submit(P, '{"quantity": 5}', key))

    assert errors == [("Idempotency-Key", ID_RULE)]
    assert calls == [] and store.restocks == {}


def test_an_invalid_body_claims_nothing(calls: list[str]) -> None:
    store, queue = FakeStore(calls=calls), FakeRestockQueue(calls=calls)

    errors = rejected(lambda: RestockIntake(store, queue).submit(P, '{"quantity": 0}', "KEY-1"))

    assert errors == [("quantity", RANGE)]
    assert calls == []


def test_the_same_key_and_content_is_a_replay_sent_again_while_received() -> None:
    store, queue = FakeStore(), FakeRestockQueue()
    intake = RestockIntake(store, queue)
    first = intake.submit(P, '{"quantity": 4}', "KEY-1")
    source = store.restocks["KEY-1"]["source"]

    again = intake.submit(P, '{"quantity": 4, "note": "retry"}', "KEY-1")

    assert again == RestockReceipt(first.restock, "Recebida", replayed=True)
    assert queue.sent_ids == ["KEY-1", "KEY-1"], "the first send may have been lost: the queue drops a duplicate"
    assert list(store.restocks) == ["KEY-1"] and store.restocks["KEY-1"]["source"] == source


def test_a_replay_after_the_restock_was_applied_sends_nothing() -> None:
    store, queue = FakeStore(), FakeRestockQueue()
    intake = RestockIntake(store, queue)
    intake.submit(P, '{"quantity": 4}', "KEY-1")
    StockRelease(store, FakeNotifier()).apply(queue.sent[0])

    again = intake.submit(P, '{"quantity": 4}', "KEY-1")

    assert (again.restock_status, again.replayed) == ("Aplicada", True)
    assert queue.sent_ids == ["KEY-1"]
    assert store.stock == {P: 4}


@pytest.mark.parametrize(
    ("product_id", "body"), [(P, '{"quantity": 7}'), (Q, '{"quantity": 4}')], ids=["qty", "product"]
)
def test_a_key_reused_for_another_restock_is_a_conflict(product_id: str, body: str) -> None:
    store, queue = FakeStore(), FakeRestockQueue()
    intake = RestockIntake(store, queue)
    intake.submit(P, '{"quantity": 4}', "KEY-1")

    with pytest.raises(RestockConflict):
        intake.submit(product_id, body, "KEY-1")

    assert queue.sent_ids == ["KEY-1"]
    assert (store.restocks["KEY-1"]["product_id"], store.restocks["KEY-1"]["quantity"]) == (P, 4)


def test_a_failed_send_releases_the_claim_and_the_error_propagates(calls: list[str]) -> None:
    store, queue = FakeStore(calls=calls), FakeRestockQueue(calls=calls)
    failure = ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")
    queue.send_error = failure
    intake = RestockIntake(store, queue)

    with pytest.raises(ClientError) as caught:
        intake.submit(P, '{"quantity": 5}', "KEY-1")

    assert caught.value is failure
    assert calls == ["claim_restock KEY-1", "send KEY-1", "release_restock_claim KEY-1"]
    assert store.restocks == {}, "the key is free for the client's retry"
    queue.send_error = None
    assert intake.submit(P, '{"quantity": 5}', "KEY-1").replayed is False
    assert queue.sent_ids == ["KEY-1"]


# ================================================================ applying a restock and releasing waiting items
class Shop:
    """Orders taken and processed, restocks applied and released, through the real use cases over fakes."""

    def __init__(self, lab: dict[str, Any], stock: dict[str, int] | None = None, attempts: int = 5) -> None:
        self.lab = lab
        self.store = FakeStore(stock)
        self.notifier = FakeNotifier()
        self.sleeps: list[float] = []
        self.queue = FakeRestockQueue()  # the restocks' FIFO queue: restocks and requests to look at a queue again
        self.release = StockRelease(
            self.store, self.notifier, attempts=attempts, sleep=self.sleeps.append, releases=self.queue
        )

    def order(
        self, order_id: str, lines: list[tuple[str, int]], order_date: str = OLDER, queued_at: datetime | None = None
    ) -> str:
        """Take an order from the API and process it as the processor would (one batch); return its status.
        `queued_at`: when SQS took it (by default, the moment it is processed)."""
        order = make_order(self.lab, order_id, lines, order_date)
        self.store.claim(order, f"api:{order_id}")
        processor = OrderProcessor(self.store, self.notifier, sleep=self.sleeps.append, releases=self.queue)
        return processor.process(order, queued_at)

    def waiting(
        self, order_id: str, lines: list[tuple[str, int]], order_date: str = OLDER, queued_at: datetime | None = None
    ) -> str:
        assert self.order(order_id, lines, order_date, queued_at) == PRODUCT_PENDING
        return order_id

    def restock(self, product_id: str, quantity: int, restock_id: str = "R-1") -> list[str]:
        """Deliver a restock message to the restocker; return the orders whose items it served."""
        return [item.order_id for item in self.release.apply(Restock(restock_id, product_id, quantity))]

    def status(self, order_id: str) -> str:
        return str(self.store.orders[order_id]["order_status"])

    def item_status(self, order_id: str, product_id: str) -> str:
        [item] = [i for i in self.store.orders[order_id]["items"] if i["product_id"] == product_id]
        return str(item["item_status"])

    def books(self, product_id: str) -> tuple[int, int, int]:
        """(available, reserved, waiting) of a product."""
        store = self.store
        return store.stock.get(product_id, 0), store.reserved.get(product_id, 0), store.waiting.get(product_id, 0)

    def released(self) -> list[str]:
        """The orders whose release was published, in order."""
        return [notice["order_id"] for notice in self.notifier.released]

    def deliver_releases(self) -> list[str]:
        """Hand the restocker every request to look at a queue again; return the orders served."""
        served = []
        while self.queue.releases:
            product_id, _, restock_id = self.queue.releases.pop(0)
            served += [item.order_id for item in self.release.release_only(product_id, restock_id)]
        return served


@pytest.fixture
def shop(lab: dict[str, Any]) -> Shop:
    return Shop(lab)


def test_a_restock_serves_the_oldest_waiting_order_first_and_stops_at_the_first_that_does_not_fit(shop: Shop) -> None:
    # Given two orders waiting for 2 units each; the one queued later is processed first (message groups run in
    # parallel), so the instant SQS took each decides, not the order of processing
    newer = shop.waiting("ORD-NEWER", [(P, 2)], NEWER, QUEUED_LATER)
    older = shop.waiting("ORD-OLDER", [(P, 2)], OLDER, QUEUED_FIRST)

    # When 3 units arrive
    served = shop.restock(P, 3, "R-1")

    # Then only the older order is served; the newer keeps waiting, and the books account for every unit
    assert served == [older]
    assert (shop.status(older), shop.item_status(older, P)) == (NEW_ORDER, RESERVED)
    assert (shop.status(newer), shop.item_status(newer, P)) == (PRODUCT_PENDING, PENDING)
    assert shop.books(P) == (1, 2, 1)
    marker = shop.store.restocks["R-1"]
    assert (marker["restock_status"], marker["released_count"], shop.store.released_by("R-1")) == (
        "Aplicada",
        1,
        [older],
    )
    assert marker["released_at"]
    # And the release is told, once, then the outbox is empty
    [notice] = shop.notifier.released
    assert (notice["order_id"], notice["customer_email"]) == (older, MARIANA)
    assert notice["reason"] == release_reason("R-1")
    assert notice["items"] == [{"product_id": P, "quantity": 2}]
    assert shop.store.notices == {}


def test_a_huge_order_at_the_head_holds_the_queue_until_a_restock_covers_it(shop: Shop) -> None:
    # The documented policy (README, "Strictly first come, first served"): a head that does not fit is not skipped
    # Given an order for 100,000 units (the schema's limit) at the head, and small ones behind it
    huge = shop.waiting("ORD-HUGE", [(P, 100_000)], OLDER, QUEUED_FIRST)
    small = [shop.waiting(f"ORD-SMALL-{n}", [(P, 1)], NEWER, QUEUED_LATER) for n in range(3)]

    # When restocks arrive that would serve every small order, but not the head
    assert shop.restock(P, 60_000, "R-1") == []
    assert shop.restock(P, 39_999, "R-2") == []

    # Then nobody is served and the stock waits for the head, visibly
    assert shop.books(P) == (99_999, 0, 4)
    assert {shop.status(o) for o in small} == {PRODUCT_PENDING}

    # And once the head is covered, it is served first, then the rest in order
    assert shop.restock(P, 4, "R-3") == [huge, *small[:3]]
    assert shop.books(P) == (0, 100_003, 0)


def test_a_later_smaller_item_does_not_jump_the_queue_nor_does_a_new_order(shop: Shop) -> None:
    # Given an older order for 5 units and a newer one for 1
    older = shop.waiting("ORD-OLDER", [(P, 5)], OLDER)
    newer = shop.waiting("ORD-NEWER", [(P, 1)], NEWER)

    # When 3 units arrive: enough for the newer order, not for the older
    assert shop.restock(P, 3, "R-1") == []

    # Then nobody is served, and a new order for 1 unit does not take the stock the older one waits for
    assert shop.books(P) == (3, 0, 2)
    late = shop.waiting("ORD-LATE", [(P, 1)], NEWEST)
    assert shop.books(P) == (3, 0, 3)
    assert shop.store.released_by("R-1") == []

    # When 2 more units arrive, the older order is served first; the 0 left serve nobody else
    assert shop.restock(P, 2, "R-2") == [older]
    assert [shop.status(o) for o in (older, newer, late)] == [NEW_ORDER, PRODUCT_PENDING, PRODUCT_PENDING]
    assert shop.books(P) == (0, 5, 2)
    assert shop.released() == [older]


def test_a_restock_covering_both_releases_both_with_their_history(shop: Shop) -> None:
    first = shop.waiting("ORD-FIRST", [(P, 2)], OLDER)
    second = shop.waiting("ORD-SECOND", [(P, 3)], NEWER)

    assert shop.restock(P, 10, "R-1") == [first, second]

    assert shop.books(P) == (5, 5, 0)
    assert shop.released() == [first, second]
    for order_id in (first, second):
        record = shop.store.orders[order_id]
        history = record["status_history"]
        assert [h["status"] for h in history] == [RECEIVED, PRODUCT_PENDING, NEW_ORDER]
        assert history[0]["reason"] == "pedido recebido pela API"
        assert history[1]["reason"].startswith(f"sem estoque disponível para: {P} (")
        assert history[2]["reason"] == release_reason("R-1")
        assert history[0]["at"] < history[1]["at"] < history[2]["at"] == record["released_at"]
        assert record["pending_count"] == 0


def test_an_order_is_released_only_when_its_last_pending_item_is_reserved(lab: dict[str, Any]) -> None:
    # Given an order waiting for two products, with a third in stock
    shop = Shop(lab, stock={"IN-STOCK": 5})
    order_id = shop.waiting("ORD-1", [(P, 1), (Q, 1), ("IN-STOCK", 2)])
    assert shop.books("IN-STOCK") == (3, 2, 0)

    # When only the first product is restocked
    assert shop.restock(P, 1, "R-P") == [order_id]

    # Then its item is reserved, but the order still waits for the other, and nobody is told yet
    record = shop.store.orders[order_id]
    assert (record["order_status"], record["pending_count"]) == (PRODUCT_PENDING, 1)
    assert [i["item_status"] for i in record["items"]] == [RESERVED, PENDING, RESERVED]
    assert shop.notifier.released == [] and shop.store.notices == {}

    # When the second product is restocked, the order is complete, and told once
    assert shop.restock(Q, 4, "R-Q") == [order_id]
    record = shop.store.orders[order_id]
    assert (record["order_status"], record["pending_count"]) == (NEW_ORDER, 0)
    assert {i["item_status"] for i in record["items"]} == {RESERVED}
    assert [h["status"] for h in record["status_history"]] == [RECEIVED, PRODUCT_PENDING, NEW_ORDER]
    assert record["status_history"][-1]["reason"] == release_reason("R-Q")
    assert (shop.books(P), shop.books(Q), shop.books("IN-STOCK")) == ((0, 1, 0), (3, 1, 0), (3, 2, 0))
    [notice] = shop.notifier.released
    assert notice["order_id"] == order_id
    assert notice["items"] == [{"product_id": p, "quantity": q} for p, q in [(P, 1), (Q, 1), ("IN-STOCK", 2)]]


def test_an_item_another_release_reserved_first_is_skipped(shop: Shop) -> None:
    # Given two orders waiting, and another release that reserves the older one between our read and our write
    older = shop.waiting("ORD-A", [(P, 2)], OLDER)
    newer = shop.waiting("ORD-B", [(P, 3)], NEWER)

    def another_release() -> None:
        item = shop.store.pending[(older, P)]
        shop.store.reserve_pending(item, shop.store.get_order(older) or {}, "R-OTHER")

    shop.store.before_reserve = [another_release]

    # When 10 units arrive
    served = shop.restock(P, 10, "R-1")

    # Then ours goes on with the next item; nothing is reserved twice
    assert served == [newer]
    assert shop.store.released_by("R-1") == [newer]
    assert (shop.status(older), shop.status(newer)) == (NEW_ORDER, NEW_ORDER)
    assert shop.store.orders[older]["status_history"][-1]["reason"] == release_reason("R-OTHER")
    assert shop.books(P) == (5, 5, 0)
    assert shop.sleeps == [], "skipped without a pause"
    assert shop.released() == [older, newer], "the outbox holds the other release's notice too"


def test_stock_that_changed_under_a_reservation_is_read_again(shop: Shop) -> None:
    # Given two orders waiting for 2 and 3 units, and 5 units arriving
    older = shop.waiting("ORD-A", [(P, 2)], OLDER)
    newer = shop.waiting("ORD-B", [(P, 3)], NEWER)

    # When a unit disappears after the older order is served, before the newer one is
    def one_unit_gone() -> None:
        shop.store.stock[P] -= 1

    shop.store.before_reserve = [lambda: None, one_unit_gone]
    reads = shop.store.product_reads
    served = shop.restock(P, 5, "R-1")

    # Then the newer order's reservation fails its condition, the stock is read again, and the newer one waits
    assert served == [older]
    assert shop.store.product_reads - reads == 2
    assert (shop.status(older), shop.status(newer)) == (NEW_ORDER, PRODUCT_PENDING)
    assert shop.books(P) == (2, 2, 1), "never oversold"


def test_stock_read_again_after_a_failed_condition_serves_what_it_now_can(lab: dict[str, Any]) -> None:
    # Given two orders waiting, a unit gone before the first reservation, and stock landing while we wait
    shop = Shop(lab)
    older = shop.waiting("ORD-A", [(P, 2)], OLDER)
    newer = shop.waiting("ORD-B", [(P, 3)], NEWER)
    sleeps: list[float] = []

    def meanwhile(seconds: float) -> None:
        sleeps.append(seconds)
        shop.store.stock[P] += 10

    shop.release = StockRelease(shop.store, shop.notifier, sleep=meanwhile)
    shop.store.before_reserve = [lambda: shop.store.stock.update({P: 1})]

    # When 5 units arrive
    served = shop.restock(P, 5, "R-1")

    # Then the first attempt fails, the stock is read again after a pause, and both are served
    assert served == [older, newer]
    assert sleeps == [0.1]
    assert shop.books(P) == (6, 5, 0)


def test_a_reservation_racing_another_item_of_its_order_is_retried(shop: Shop) -> None:
    # Given an order waiting for two products
    order_id = shop.waiting("ORD-X", [(P, 1), (Q, 1)])

    # And, while P is released, Q is restocked and released for the same order (its pending_count moves)
    def q_released_meanwhile() -> None:
        shop.store.apply_restock(Restock("R-Q", Q, 1))
        item = shop.store.pending[(order_id, Q)]
        shop.store.reserve_pending(item, shop.store.get_order(order_id) or {}, "R-Q")

    shop.store.before_reserve = [q_released_meanwhile]

    # When P is restocked
    served = shop.restock(P, 1, "R-P")

    # Then the stale write fails, the order is read again, and the retry completes the order once
    assert served == [order_id]
    assert shop.store.reserve_attempts.count((order_id, P)) == 2
    record = shop.store.orders[order_id]
    assert (record["order_status"], record["pending_count"]) == (NEW_ORDER, 0)
    assert [h["status"] for h in record["status_history"]] == [RECEIVED, PRODUCT_PENDING, NEW_ORDER]
    assert record["status_history"][-1]["reason"] == release_reason("R-P")
    assert shop.released() == [order_id]
    assert (shop.books(P), shop.books(Q)) == ((0, 1, 0), (0, 1, 0))


def test_a_busy_store_is_retried_after_a_short_pause(shop: Shop) -> None:
    order_id = shop.waiting("ORD-X", [(P, 2)])
    shop.store.reserve_failures = [StoreBusy("TransactionConflict"), StoreBusy("ThrottlingException")]

    assert shop.restock(P, 2) == [order_id]

    assert shop.sleeps == [0.02, 0.04]
    assert shop.status(order_id) == NEW_ORDER


def test_a_reservation_that_keeps_failing_is_retried_later(lab: dict[str, Any]) -> None:
    shop = Shop(lab, attempts=3)
    order_id = shop.waiting("ORD-X", [(P, 2)])
    shop.store.reserve_failures = [OrderChanged(order_id)] * 3

    with pytest.raises(RetryLater):
        shop.restock(P, 2, "R-1")

    assert shop.status(order_id) == PRODUCT_PENDING
    assert shop.books(P) == (2, 0, 1)
    assert "released_at" not in shop.store.restocks["R-1"], "the release did not run to its end"


def test_waiting_items_the_index_does_not_show_yet_end_in_retry_later_then_a_redelivery_serves_them(
    lab: dict[str, Any],
) -> None:
    # Given an order waiting, whose item the index (GSI1 lags its table) does not show yet
    shop = Shop(lab, attempts=3)
    order_id = shop.waiting("ORD-X", [(P, 2)])
    shop.store.lagging = {P}

    # When the restock arrives
    with pytest.raises(RetryLater):
        shop.restock(P, 5, "R-1")

    # Then the stock rose, the queue was read a bounded number of times, with pauses that were not real sleeps
    assert shop.sleeps == [0.1, 0.2]
    assert shop.store.queue_reads == 3
    assert shop.books(P) == (5, 0, 1)
    assert "released_at" not in shop.store.restocks["R-1"]

    # When the index has caught up and the message is delivered again
    shop.store.lagging = set()
    served = shop.restock(P, 5, "R-1")

    # Then the already-applied restock is not applied again, but it still releases
    assert served == [order_id]
    assert shop.books(P) == (3, 2, 0)
    assert shop.store.calls.count("apply_restock R-1") == 2
    assert shop.store.released_by("R-1") == [order_id]


def test_a_failed_publish_leaves_the_notice_for_the_next_delivery(shop: Shop) -> None:
    # Given a release whose order-released message fails to publish, as the release goes and again at its end
    order_id = shop.waiting("ORD-X", [(P, 2)])
    shop.notifier.released_failures = [ConnectionError("SNS unreachable"), ConnectionError("SNS unreachable")]
    with pytest.raises(ConnectionError):
        shop.restock(P, 2, "R-1")
    assert shop.status(order_id) == NEW_ORDER
    assert list(shop.store.notices) == [(P, order_id)]

    # When the message is delivered again
    assert shop.restock(P, 2, "R-1") == []

    # Then the notice goes out once, the outbox is empty, and the stock rose once
    assert shop.released() == [order_id]
    assert shop.store.notices == {}
    assert shop.books(P) == (0, 2, 0)


def test_a_notice_left_behind_goes_out_with_the_next_restock_of_the_product(shop: Shop) -> None:
    order_id = shop.waiting("ORD-X", [(P, 2)])
    shop.notifier.released_failures = [ConnectionError("SNS unreachable")]
    with pytest.raises(ConnectionError):
        shop.restock(P, 2, "R-1")

    assert shop.restock(P, 4, "R-2") == []

    assert shop.released() == [order_id]
    assert shop.store.notices == {}
    assert shop.books(P) == (4, 2, 0)


@pytest.mark.parametrize("first_delivery", ["completes", "fails-to-publish"])
def test_a_redelivered_restock_keeps_the_orders_it_released(shop: Shop, first_delivery: str) -> None:
    # Given a restock whose first delivery served a waiting order
    order_id = shop.waiting("ORD-X", [(P, 2)])
    if first_delivery == "fails-to-publish":
        shop.notifier.released_failures = [ConnectionError("SNS unreachable")]
        with pytest.raises(ConnectionError):
            shop.restock(P, 2, "R-1")
    else:
        assert shop.restock(P, 2, "R-1") == [order_id]

    # When SQS delivers the same message again (at least once)
    shop.restock(P, 2, "R-1")

    # Then GET /restocks/{id} still names the order that restock released
    assert shop.books(P) == (0, 2, 0)
    assert shop.store.released_by("R-1") == [order_id]


def test_a_restock_of_a_product_nobody_stocked_creates_its_stock_and_releases_its_orders(shop: Shop) -> None:
    order_id = shop.waiting("ORD-X", [("PRD-NEW", 2)])
    assert shop.store.get_product("PRD-NEW") == {"product_id": "PRD-NEW", "waiting": 1}

    assert shop.restock("PRD-NEW", 2) == [order_id]

    assert shop.books("PRD-NEW") == (0, 2, 0)
    assert shop.status(order_id) == NEW_ORDER


def test_a_restock_nobody_waits_for_only_raises_the_stock(shop: Shop) -> None:
    assert shop.restock(P, 7) == []

    assert shop.books(P) == (7, 0, 0)
    assert shop.store.queue_reads == 0, "no waiting count, no queue to read"
    assert shop.store.released_by("R-1") == []


# ================================================================ new orders queue behind waiting items
def test_a_batch_queues_later_orders_behind_an_item_that_waits(lab: dict[str, Any]) -> None:
    store, notifier = FakeStore({P: 3}), FakeNotifier()
    worker = OrderProcessor(store, notifier)
    orders = [make_order(lab, "ORD-BIG", [(P, 5)]), make_order(lab, "ORD-SMALL", [(P, 1)], NEWER)]

    worker.prefetch(orders)
    statuses = [worker.process(order) for order in orders]

    assert statuses == [PRODUCT_PENDING, PRODUCT_PENDING]
    assert store.stock_reads == 1, "the batch knew someone now waits for the product: no failed write, no re-read"
    assert len(store.commit_attempts) == 2
    assert (store.stock[P], store.waiting[P]) == (3, 2)


def test_an_item_decided_pending_on_a_stale_figure_is_reserved_once_the_stock_is_seen(lab: dict[str, Any]) -> None:
    # Given a batch that read no stock, and a restock landing before the order is written
    store, notifier = FakeStore({P: 0}), FakeNotifier()
    worker = OrderProcessor(store, notifier)
    order = make_order(lab, "ORD-X", [(P, 2)])
    worker.prefetch([order])
    store.apply_restock(Restock("R-1", P, 5))

    # When the order is processed
    status = worker.process(order)

    # Then it does not join a queue beside free stock: the write is refused and the decision made again
    assert status == NEW_ORDER
    assert store.stock_reads == 2
    assert (store.stock[P], store.reserved[P], store.waiting.get(P, 0)) == (3, 2, 0)
    assert notifier.pending == []


# ================================================================ restock files in the data lake
class Crash(BaseException):
    """The Lambda dies mid-way (timeout, out of memory): nothing in the code catches it."""


class RestockLake(Lake):
    def put_seed(self, name: str) -> str:
        key = f"restock/{name}"
        self.put(key, (RESTOCK_SEED / name).read_bytes())
        return key


@pytest.fixture
def lake() -> RestockLake:
    return RestockLake()


def test_a_mixed_restock_file_is_reported_line_by_line(lake: RestockLake) -> None:
    # Given restock-mixed.json: 5 units of PRD-1001, 0 of PRD-2002, "dez" of PRD-3003, no product, 3 of PRD-3003
    key = lake.put_seed("restock-mixed.json")

    # When it is ingested
    report = lake.ingest(key)

    # Then the two valid lines are claimed and queued as restocks, the others reported by index and product
    assert report is not None and report.kind == "restocks"
    assert (report.received, len(report.accepted), len(report.rejections)) == (5, 2, 3)
    assert [(r.product_id, r.quantity) for r in lake.restocks.sent] == [("PRD-1001", 5), ("PRD-3003", 3)]
    assert lake.restocks.sent_ids == report.accepted
    assert all(re.fullmatch(r"s3-[0-9a-f]{24}-[04]", i) for i in report.accepted)
    assert [i[-2:] for i in report.accepted] == ["-0", "-4"]
    assert [(r.index, r.order_id, [(e.field, e.message) for e in r.errors]) for r in report.rejections] == [
        (1, "PRD-2002", [("quantity", RANGE)]),
        (2, "PRD-3003", [("quantity", WHOLE)]),
        (3, None, [("product_id", REQUIRED)]),
    ]
    body = report.as_dict()
    assert body["accepted_restock_ids"] == report.accepted
    assert body["rejections"][0]["product_id"] == "PRD-2002"
    assert lake.files.reports == [(BUCKET, report_key("restock/restock-mixed.json", "seq-1"), body)]
    assert lake.notifier.reports == [body]
    assert lake.queue.sent == [], "no order was sent"
    assert {i: (m["source"], m["restock_status"]) for i, m in lake.store.restocks.items()} == {
        report.accepted[0]: (f"s3://{BUCKET}/{key}#seq-1:0", "Recebida"),
        report.accepted[1]: (f"s3://{BUCKET}/{key}#seq-1:4", "Recebida"),
    }
    assert len(lake.store.files) == 1


def test_a_clean_restock_file_notifies_nobody(lake: RestockLake) -> None:
    report = lake.ingest(lake.put_seed("restock.json"))

    assert report is not None and len(report.accepted) == 2 and not report.has_problems
    assert [(r.product_id, r.quantity) for r in lake.restocks.sent] == [("PRD-1001", 20), ("PRD-2002", 10)]
    assert lake.notifier.reports == []


def test_the_same_event_twice_claims_and_applies_each_line_once(lake: RestockLake) -> None:
    # Given a first run that claimed the first line and died before queuing it
    key = lake.put_seed("restock.json")
    lake.restocks.crash = Crash()
    with pytest.raises(Crash):
        lake.ingest(key)
    [claimed] = lake.store.restocks

    # When the same S3 event is delivered again
    lake.restocks.crash = None
    report = lake.ingest(key)

    # Then the run recognises its own claim, and the line ids are the same as the first run's
    assert report is not None and report.rejections == [] and report.accepted[0] == claimed
    assert len(lake.store.restocks) == 2
    # And every message, even delivered twice, raises the stock once
    release = StockRelease(lake.store, lake.notifier)
    for restock in lake.restocks.sent * 2:
        release.apply(restock)
    assert lake.store.stock == {"PRD-1001": 20, "PRD-2002": 10}
    # And a third delivery of the event is recognised as done
    assert lake.ingest(key) is None
    assert len(lake.restocks.sent) == 2


def test_a_new_upload_of_the_file_is_a_new_restock(lake: RestockLake) -> None:
    key = lake.put_seed("restock.json")
    first = lake.ingest(key, tag="seq-1")

    second = lake.ingest(key, tag="seq-2")

    assert first is not None and second is not None
    assert set(first.accepted).isdisjoint(second.accepted)
    assert len(lake.restocks.sent) == 4


def test_a_line_the_queue_refuses_is_released_and_rejected(lake: RestockLake) -> None:
    lake.restocks.refuse = {"PRD-2002"}

    report = lake.ingest(lake.put_seed("restock.json"))

    assert report is not None and len(report.accepted) == 1
    assert [(r.index, r.order_id, [(e.field, e.message) for e in r.errors]) for r in report.rejections] == [
        (1, "PRD-2002", [("(fila)", ENQUEUE_FAILED)])
    ]
    assert list(lake.store.restocks) == report.accepted, "the refused line's claim was undone"
    assert lake.restocks.sent_ids == report.accepted
    assert len(lake.notifier.reports) == 1


def test_an_unreadable_line_of_a_restock_jsonl_file_is_reported_by_its_number(lake: RestockLake) -> None:
    lake.files.objects[(BUCKET, "restock/lines.jsonl")] = b'{"product_id": "PRD-1001", "quantity": 2}\n{oops\n'

    report = lake.ingest("restock/lines.jsonl")

    assert report is not None and len(report.accepted) == 1
    [rejection] = report.rejections
    assert (rejection.index, rejection.order_id, rejection.errors[0].field) == (1, None, "(linha 2)")


# ================================================================ the API handler
class RestockApi:
    def __init__(self, module: Any, store: FakeStore, queue: FakeRestockQueue) -> None:
        self.module, self.store, self.queue = module, store, queue

    def post(
        self,
        product_id: str,
        body: str | None,
        headers: dict[str, str] | None = None,
        encoded: bool = False,
    ) -> dict[str, Any]:
        event = {
            "httpMethod": "POST",
            "resource": "/products/{product_id}/restock",
            "pathParameters": {"product_id": product_id},
            "headers": {"Content-Type": "application/json"} if headers is None else headers,
            "body": base64.b64encode(body.encode()).decode() if encoded and body is not None else body,
            "isBase64Encoded": encoded,
        }
        response: dict[str, Any] = self.module.handler(event, None)
        return response

    def get(self, resource: str, **params: str) -> dict[str, Any]:
        response: dict[str, Any] = self.module.handler(
            {"httpMethod": "GET", "resource": resource, "pathParameters": params}, None
        )
        return response


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


@pytest.fixture
def api(lambda_env: None, monkeypatch: pytest.MonkeyPatch) -> RestockApi:
    module = importlib.import_module("handlers.api")
    store, queue = FakeStore(), FakeRestockQueue()
    monkeypatch.setattr(module, "_store", store)
    monkeypatch.setattr(module, "_restocks", RestockIntake(store, queue))
    return RestockApi(module, store, queue)


@pytest.mark.parametrize("header", ["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"])
def test_post_restock_is_202_and_reads_the_key_header_in_any_case(api: RestockApi, header: str) -> None:
    response = api.post(P, '{"quantity": 5}', {"Content-Type": "application/json", header: "KEY-1"})

    assert response["statusCode"] == 202
    assert body_of(response) == {
        "restock_id": "KEY-1",
        "product_id": P,
        "quantity": 5,
        "restock_status": "Recebida",
        "replayed": False,
        "message": "Reposição enviada para processamento.",
    }
    assert api.queue.sent == [Restock("KEY-1", P, 5)]


def test_post_restock_again_is_202_replayed(api: RestockApi) -> None:
    headers = {"Content-Type": "application/json", "Idempotency-Key": "KEY-1"}
    api.post(P, '{"quantity": 5}', headers)

    response = api.post(P, '{"quantity": 5}', headers)

    assert response["statusCode"] == 202
    body = body_of(response)
    assert (body["restock_id"], body["replayed"]) == ("KEY-1", True)
    assert body["message"] == "Reposição já recebida; aplicada uma única vez."
    assert list(api.store.restocks) == ["KEY-1"]


def test_post_restock_without_a_key_answers_the_generated_id(api: RestockApi) -> None:
    response = api.post(P, '{"quantity": 2}', encoded=True)

    assert response["statusCode"] == 202
    restock_id = body_of(response)["restock_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", restock_id)
    assert api.queue.sent_ids == [restock_id]


@pytest.mark.parametrize(
    ("product_id", "body", "headers", "fields"),
    [
        (P, '{"quantity": 0}', {}, ["quantity"]),
        (P, '{"quantity": 1.5}', {}, ["quantity"]),
        (P, '{"quantity": true}', {}, ["quantity"]),
        (P, "{}", {}, ["quantity"]),
        (P, "[1]", {}, ["(corpo)"]),
        (P, "{", {}, ["(corpo)"]),
        (P, None, {}, ["(corpo)"]),
        (P, '{"quantity": 1}', {"Idempotency-Key": "bad key!"}, ["Idempotency-Key"]),
        ("a b", '{"quantity": 1}', {}, ["product_id"]),
    ],
)
def test_post_restock_invalid_is_400_with_the_errors_and_changes_nothing(
    api: RestockApi, product_id: str, body: str | None, headers: dict[str, str], fields: list[str]
) -> None:
    response = api.post(product_id, body, {"Content-Type": "application/json", **headers})

    assert response["statusCode"] == 400
    answer = body_of(response)
    assert answer["message"] == "Reposição inválida."
    assert [e["field"] for e in answer["errors"]] == fields
    assert all(e["message"] for e in answer["errors"])
    assert api.store.restocks == {} and api.queue.sent == []


def test_post_restock_reusing_a_key_for_another_quantity_is_409(api: RestockApi) -> None:
    headers = {"Content-Type": "application/json", "Idempotency-Key": "KEY-1"}
    api.post(P, '{"quantity": 4}', headers)

    response = api.post(P, '{"quantity": 7}', headers)

    assert response["statusCode"] == 409
    assert body_of(response) == {
        "message": "Idempotency-Key já usada por uma reposição de outro produto ou quantidade."
    }
    assert api.queue.sent_ids == ["KEY-1"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_post_restock_declared_as_something_else_than_json_is_415(api: RestockApi, content_type: str) -> None:
    response = api.post(P, '{"quantity": 4}', {"content-type": content_type})

    assert response["statusCode"] == 415
    assert body_of(response) == {"message": "Envie a reposição com Content-Type: application/json."}
    assert api.store.restocks == {} and api.queue.sent == []


def test_post_restock_whose_send_fails_is_503_and_leaves_nothing(api: RestockApi) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": "KEY-1"}
    api.queue.send_error = ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")

    response = api.post(P, '{"quantity": 4}', headers)

    assert response["statusCode"] == 503
    assert api.store.restocks == {}, "the claim is undone, so the retry is a new restock, not a replay"
    api.queue.send_error = None
    retry = api.post(P, '{"quantity": 4}', headers)
    assert (retry["statusCode"], body_of(retry)["replayed"]) == (202, False)


def test_get_restock_follows_it_from_received_to_released(api: RestockApi) -> None:
    api.post(P, '{"quantity": 5}', {"Idempotency-Key": "KEY-1"})

    received = body_of(api.get("/restocks/{restock_id}", restock_id="KEY-1"))
    StockRelease(api.store, FakeNotifier()).apply(api.queue.sent[0])
    response = api.get("/restocks/{restock_id}", restock_id="KEY-1")

    assert received["restock_status"] == "Recebida"
    assert (received["applied_at"], received["released_at"], received["released_orders"]) == (None, None, [])
    assert (received["released_count"], received["next"]) == (0, None)
    assert response["statusCode"] == 200
    body = body_of(response)
    assert (body["restock_id"], body["product_id"], body["quantity"]) == ("KEY-1", P, 5)
    assert (body["released_count"], body["next"]) == (0, None)
    assert body["restock_status"] == "Aplicada"
    assert body["received_at"] < body["applied_at"] < body["released_at"]
    assert body["released_orders"] == []


def test_get_unknown_restock_is_404(api: RestockApi) -> None:
    response = api.get("/restocks/{restock_id}", restock_id="NOPE")

    assert response["statusCode"] == 404
    assert body_of(response) == {"message": "Reposição não encontrada."}


@pytest.mark.parametrize("bad", ["", "x" * 65, "A#1", "a b", "é", "x" * 2000])
def test_impossible_restock_ids_are_404_without_a_lookup(api: RestockApi, bad: str) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("no lookup expected")

    api.store.get_restock = refuse  # type: ignore[method-assign]

    assert api.get("/restocks/{restock_id}", restock_id=bad)["statusCode"] == 404


def test_get_order_and_product_show_the_history_and_the_waiting_items(api: RestockApi, lab: dict[str, Any]) -> None:
    # Given an order waiting for a product
    order = make_order(lab, "ORD-X", [(P, 2)])
    api.store.claim(order, "api:1")
    OrderProcessor(api.store, FakeNotifier()).process(order)

    product = body_of(api.get("/products/{product_id}", product_id=P))
    waiting = body_of(api.get("/orders/{order_id}", order_id="ORD-X"))

    assert product == {"product_id": P, "description": None, "available": 0, "reserved": 0, "waiting_items": 1}
    assert [h["status"] for h in waiting["status_history"]] == [RECEIVED, PRODUCT_PENDING]
    assert waiting["released_at"] is None

    # When the restock releases it
    StockRelease(api.store, FakeNotifier()).apply(Restock("R-1", P, 2))

    product = body_of(api.get("/products/{product_id}", product_id=P))
    released = body_of(api.get("/orders/{order_id}", order_id="ORD-X"))
    assert (product["available"], product["reserved"], product["waiting_items"]) == (0, 2, 0)
    assert released["order_status"] == NEW_ORDER
    assert [h["status"] for h in released["status_history"]] == [RECEIVED, PRODUCT_PENDING, NEW_ORDER]
    assert all(set(h) == {"status", "at", "reason"} for h in released["status_history"])
    assert released["released_at"] == released["status_history"][-1]["at"]
    assert released["items"] == [{"product_id": P, "quantity": 2, "unit_price": "10.00", "item_status": RESERVED}]


# ================================================================ the restocker handler
class Restocker:
    def __init__(self, module: Any, store: FakeStore, notifier: FakeNotifier, sqs: FakeSqs) -> None:
        self.module, self.store, self.notifier, self.sqs = module, store, notifier, sqs

    def handle(self, *records: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.module.handler({"Records": list(records)}, None)
        return response


def message(message_id: str, body: dict[str, Any] | str, group: str, receives: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": str(receives), "MessageGroupId": group},
    }


def restock_message(message_id: str, product_id: str, quantity: int, receives: int = 1) -> dict[str, Any]:
    return message(message_id, Restock(f"R-{message_id}", product_id, quantity).as_message(), product_id, receives)


@pytest.fixture
def restocker(lambda_env: None, monkeypatch: pytest.MonkeyPatch) -> Restocker:
    module = importlib.import_module("handlers.restocker")
    store, notifier, sqs = FakeStore(), FakeNotifier(), FakeSqs()
    release = StockRelease(store, notifier, sleep=lambda seconds: None)
    failures = BatchFailures(sqs, "restocks-url", notifier, max_receive_count=5, queue="restocks")
    monkeypatch.setattr(module, "_release", release)
    monkeypatch.setattr(module, "_failures", failures)
    monkeypatch.setattr(
        module, "_heartbeat", Heartbeat(FakeSqs(), "restocks-url")
    )  # its own: the retry delays are asserted
    return Restocker(module, store, notifier, sqs)


def test_restocker_applies_every_message(restocker: Restocker) -> None:
    response = restocker.handle(restock_message("a1", P, 3), restock_message("b1", Q, 4), restock_message("a2", P, 2))

    assert response == {"batchItemFailures": []}
    assert restocker.store.stock == {P: 5, Q: 4}
    assert {i: m["restock_status"] for i, m in restocker.store.restocks.items()} == dict.fromkeys(
        ["R-a1", "R-b1", "R-a2"], "Aplicada"
    )
    assert all(m["released_at"] for m in restocker.store.restocks.values())


def test_restocker_failure_holds_back_its_product_group_only(restocker: Restocker) -> None:
    restocker.store.apply_failures = [StoreBusy("ThrottlingException")]

    response = restocker.handle(restock_message("a1", P, 3), restock_message("b1", Q, 4), restock_message("a2", P, 2))

    assert response == {"batchItemFailures": [{"itemIdentifier": "a1"}, {"itemIdentifier": "a2"}]}
    assert restocker.store.stock == {Q: 4}, "a2 waits behind a1 in its group; group Q goes on"
    assert "apply_restock R-a2" not in restocker.store.calls
    assert restocker.sqs.visibility == [("rh-a1", 1), ("rh-a2", 0)]


@pytest.mark.parametrize(
    "poison",
    [
        "{not json",
        "[1]",
        json.dumps({"product_id": P, "quantity": 2}),
        json.dumps({"restock_id": "R-x", "product_id": P, "quantity": 0}),
        json.dumps({"restock_id": "R-x", "quantity": 2}),
    ],
    ids=["not-json", "not-an-object", "no-restock-id", "zero", "no-product"],
)
def test_restocker_poison_body_fails_only_its_record(restocker: Restocker, poison: str) -> None:
    response = restocker.handle(message("bad", poison, "PRD-BAD"), restock_message("b1", Q, 4))

    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert restocker.store.stock == {Q: 4}
    assert list(restocker.store.restocks) == ["R-b1"]


def test_restocker_poison_body_on_its_last_receive_is_announced_as_dead_lettered(restocker: Restocker) -> None:
    response = restocker.handle(message("bad", "{not json", "PRD-BAD", receives=5))

    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    [notice] = restocker.notifier.dead
    assert (notice["queue"], notice["message_id"], notice["receive_count"]) == ("restocks", "bad", 5)
    assert restocker.sqs.visibility == [("rh-bad", 0)]


# ================================================================ the real adapters: requests and error translation
TABLE = "orders"


@pytest.fixture
def dynamodb() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def capture(client: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of every call of `operation` (as sent, after the stub answered or not)."""
    seen: list[dict[str, Any]] = []
    service = client.meta.service_model.service_name
    client.meta.events.register(f"provide-client-params.{service}.{operation}", lambda params, **_: seen.append(params))
    return seen


def cancelled(*codes: str) -> dict[str, Any]:
    return {
        "service_error_code": "TransactionCanceledException",
        "service_message": "Transaction cancelled",
        "modeled_fields": {"CancellationReasons": [{"Code": code} for code in codes]},
    }


def error(code: str) -> dict[str, Any]:
    return {"service_error_code": code, "service_message": code}


def order_record(pending_count: int | None, statuses: tuple[str, str] = (PENDING, PENDING)) -> dict[str, Any]:
    """A `Produto Pendente` order as get_order returns it, with items for Q then P."""
    record: dict[str, Any] = {
        "order_id": "ORD-X",
        "order_status": PRODUCT_PENDING,
        "document": {"customer": {"email": MARIANA}},
        "items": [
            {"product_id": Q, "quantity": Decimal(1), "unit_price": Decimal("10.00"), "item_status": statuses[0]},
            {"product_id": P, "quantity": Decimal(2), "unit_price": Decimal("10.00"), "item_status": statuses[1]},
        ],
    }
    if pending_count is not None:
        record["pending_count"] = Decimal(pending_count)
    return record


ITEM = PendingItem("ORD-X", P, 2, f"{OLDER}#ORD-X")


def reserve(dynamodb: Any, order: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
    """reserve_pending against a stub that accepts the transaction; returns the result and the writes sent."""
    seen = capture(dynamodb, "TransactWriteItems")
    with Stubber(dynamodb) as stub:
        stub.add_response("transact_write_items", {})
        last = DynamoStore(dynamodb, TABLE).reserve_pending(ITEM, order, "R-1")
        stub.assert_no_pending_responses()
    return last, seen[0]["TransactItems"]


def test_apply_restock_marks_the_restock_and_adds_the_units_in_one_transaction(dynamodb: Any) -> None:
    seen = capture(dynamodb, "TransactWriteItems")
    with Stubber(dynamodb) as stub:
        stub.add_response("transact_write_items", {})

        assert DynamoStore(dynamodb, TABLE).apply_restock(Restock("R-1", P, 5)) is True

    [request] = seen
    marker, product = (w["Update"] for w in request["TransactItems"])
    assert marker["Key"] == {"PK": {"S": "RESTOCK#R-1"}, "SK": {"S": "RESTOCK"}}
    assert marker["ConditionExpression"] == "attribute_not_exists(PK) OR restock_status = :received"
    values = marker["ExpressionAttributeValues"]
    assert (values[":applied"], values[":received"], values[":q"]) == ({"S": "Aplicada"}, {"S": "Recebida"}, {"N": "5"})
    assert product["Key"] == {"PK": {"S": f"PRODUCT#{P}"}, "SK": {"S": "STOCK"}}
    assert product["UpdateExpression"].endswith("ADD #available :q")
    assert product["ExpressionAttributeValues"][":q"] == {"N": "5"}


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (cancelled("ConditionalCheckFailed", "None"), False),
        (cancelled("None", "TransactionConflict"), StoreBusy),
        (cancelled("TransactionConflict", "None"), StoreBusy),
        (error("ThrottlingException"), StoreBusy),
        (error("ProvisionedThroughputExceededException"), StoreBusy),
        (error("ValidationException"), ClientError),
    ],
    ids=["applied-before", "conflict-on-product", "conflict-on-marker", "throttled", "throughput", "validation"],
)
def test_apply_restock_translates_aws_errors(dynamodb: Any, failure: dict[str, Any], expected: Any) -> None:
    with Stubber(dynamodb) as stub:
        stub.add_client_error("transact_write_items", **failure)
        store = DynamoStore(dynamodb, TABLE)
        if expected is False:
            assert store.apply_restock(Restock("R-1", P, 5)) is False
        else:
            with pytest.raises(expected) as caught:
                store.apply_restock(Restock("R-1", P, 5))
            assert expected is ClientError or isinstance(caught.value.__cause__, ClientError)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(("status", "expected"), [("Aplicada", False), ("Recebida", StoreBusy)])
def test_apply_restock_without_reasons_reads_the_marker(dynamodb: Any, status: str, expected: Any) -> None:
    # Some emulators omit CancellationReasons: the marker tells whether the restock was applied before.
    key = {"PK": {"S": "RESTOCK#R-1"}, "SK": {"S": "RESTOCK"}}
    with Stubber(dynamodb) as stub:
        stub.add_client_error("transact_write_items", service_error_code="TransactionCanceledException")
        stub.add_response(
            "get_item",
            {"Item": {**key, "restock_status": {"S": status}}},
            {"TableName": TABLE, "Key": key, "ConsistentRead": True},
        )
        store = DynamoStore(dynamodb, TABLE)
        if expected is False:
            assert store.apply_restock(Restock("R-1", P, 5)) is False
        else:
            with pytest.raises(expected):
                store.apply_restock(Restock("R-1", P, 5))
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (cancelled("ConditionalCheckFailed", "None", "None"), StockChanged),
        (cancelled("ConditionalCheckFailed", "ConditionalCheckFailed", "None"), StockChanged),
        (cancelled("None", "ConditionalCheckFailed", "None"), ItemGone),
        (cancelled("None", "ConditionalCheckFailed", "ConditionalCheckFailed"), ItemGone),
        (cancelled("None", "None", "ConditionalCheckFailed"), OrderChanged),
        ({"service_error_code": "TransactionCanceledException", "service_message": "x"}, OrderChanged),
        (cancelled("TransactionConflict", "None", "None"), StoreBusy),
        (error("ThrottlingException"), StoreBusy),
        (error("TransactionConflictException"), StoreBusy),
        (error("ValidationException"), ClientError),
    ],
    ids=[
        "product",
        "product-first",
        "marker",
        "marker-first",
        "order",
        "no-reasons",
        "conflict",
        "throttled",
        "conflict-exception",
        "validation",
    ],
)
def test_reserve_pending_maps_each_failed_condition_to_what_the_caller_does_next(
    dynamodb: Any, failure: dict[str, Any], expected: type
) -> None:
    with Stubber(dynamodb) as stub:
        stub.add_client_error("transact_write_items", **failure)

        with pytest.raises(expected) as caught:
            DynamoStore(dynamodb, TABLE).reserve_pending(ITEM, order_record(2), "R-1")

        stub.assert_no_pending_responses()
    assert expected is ClientError or isinstance(caught.value.__cause__, ClientError)


def test_reserve_pending_of_an_item_that_is_not_the_last(dynamodb: Any) -> None:
    last, writes = reserve(dynamodb, order_record(2))

    assert last is False
    assert [next(iter(w)) for w in writes] == ["Update", "Delete", "Update", "Update", "Put"], "no outbox record"
    product, marker, order = writes[0]["Update"], writes[1]["Delete"], writes[2]["Update"]
    # The restock counts and records the order it served in the same transaction, so a redelivery can never lose or
    # repeat it (tests/unit/test_restock_released_items.py: the record of the restock stays the same size)
    restock, served = writes[3]["Update"], writes[4]["Put"]["Item"]
    assert restock["Key"] == {"PK": {"S": "RESTOCK#R-1"}, "SK": {"S": "RESTOCK"}}
    assert restock["UpdateExpression"] == "ADD released_count :one"
    assert (served["PK"], served["SK"], served["order_id"]) == (
        {"S": "RESTOCK#R-1"},
        {"S": f"RELEASED#{ITEM.queued_at}"},
        {"S": "ORD-X"},
    )
    assert product["Key"]["PK"] == {"S": f"PRODUCT#{P}"}
    assert product["ConditionExpression"] == "#available >= :q"
    assert product["UpdateExpression"].endswith("ADD #waiting :minus")
    assert (product["ExpressionAttributeValues"][":q"], product["ExpressionAttributeValues"][":minus"]) == (
        {"N": "2"},
        {"N": "-1"},
    )
    assert marker["Key"] == {"PK": {"S": "ORDER#ORD-X"}, "SK": {"S": f"PENDING#{P}"}}
    assert marker["ConditionExpression"] == "attribute_exists(PK)"
    assert order["Key"] == {"PK": {"S": "ORDER#ORD-X"}, "SK": {"S": "ORDER"}}
    assert order["ConditionExpression"] == "#status = :pp AND #items[1].item_status = :pending AND #count = :count"
    values = order["ExpressionAttributeValues"]
    assert (values[":count"], values[":left"]) == ({"N": "2"}, {"N": "1"}), "optimistic check of pending_count"
    assert "#items[1].item_status = :reserved" in order["UpdateExpression"]
    assert ":new" not in values and "#history" not in order["UpdateExpression"], "the order keeps waiting"


def test_reserve_pending_of_the_last_item_releases_the_order_with_its_outbox_record(dynamodb: Any) -> None:
    last, writes = reserve(dynamodb, order_record(1, statuses=(RESERVED, PENDING)))

    assert last is True
    assert [next(iter(w)) for w in writes] == ["Update", "Delete", "Update", "Update", "Put", "Put"]
    order = writes[2]["Update"]
    assert order["ExpressionAttributeValues"][":count"] == {"N": "1"}
    assert order["ExpressionAttributeValues"][":left"] == {"N": "0"}
    assert order["ExpressionAttributeValues"][":new"] == {"S": NEW_ORDER}
    assert order["ExpressionAttributeValues"][":gsi"] == {"S": f"STATUS#{NEW_ORDER}"}
    assert "#history = list_append(if_not_exists(#history, :none), :entry)" in order["UpdateExpression"]
    [entry] = order["ExpressionAttributeValues"][":entry"]["L"]
    assert (entry["M"]["status"], entry["M"]["reason"]) == ({"S": NEW_ORDER}, {"S": release_reason("R-1")})
    outbox = writes[5]["Put"]["Item"]
    assert (outbox["PK"], outbox["SK"]) == ({"S": f"RELEASED#{P}"}, {"S": "ORDER#ORD-X"})
    assert (outbox["order_id"], outbox["customer_email"]) == ({"S": "ORD-X"}, {"S": MARIANA})
    assert outbox["reason"] == {"S": release_reason("R-1")}
    assert outbox["released_at"] == entry["M"]["at"]
    assert outbox["items"]["L"] == [
        {"M": {"product_id": {"S": Q}, "quantity": {"N": "1"}}},
        {"M": {"product_id": {"S": P}, "quantity": {"N": "2"}}},
    ]


def test_reserve_pending_of_an_order_written_before_pending_count_checks_its_absence(dynamodb: Any) -> None:
    last, writes = reserve(dynamodb, order_record(None, statuses=(RESERVED, PENDING)))

    assert last is True, "counted from the items: this was the last one waiting"
    order = writes[2]["Update"]
    assert order["ConditionExpression"].endswith("attribute_not_exists(#count)")
    assert order["ExpressionAttributeValues"][":left"] == {"N": "0"}


# DynamoDB refuses a request whose ExpressionAttributeValues or ExpressionAttributeNames hold a placeholder that no
# expression uses (ValidationException "Value provided in ExpressionAttribute... unused in expressions").
_EXPRESSIONS = ("UpdateExpression", "ConditionExpression", "KeyConditionExpression", "ProjectionExpression")


def unused_placeholders(request: dict[str, Any]) -> set[str]:
    text = " ".join(str(request.get(name, "")) for name in _EXPRESSIONS)
    declared = set(request.get("ExpressionAttributeNames", {})) | set(request.get("ExpressionAttributeValues", {}))
    return {p for p in declared if not re.search(re.escape(p) + r"(?![A-Za-z0-9_])", text)}


def each_request(writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [body for write in writes for body in write.values()]


@pytest.mark.parametrize(
    "order",
    [
        order_record(2),
        order_record(1, (RESERVED, PENDING)),
        order_record(None),
        order_record(None, (RESERVED, PENDING)),
    ],
    ids=["counted-not-last", "counted-last", "uncounted-not-last", "uncounted-last"],
)
def test_reserve_pending_declares_only_placeholders_it_uses(dynamodb: Any, order: dict[str, Any]) -> None:
    _, writes = reserve(dynamodb, order)

    assert [unused_placeholders(request) for request in each_request(writes)] == [set()] * len(writes)


def test_other_restock_writes_declare_only_placeholders_they_use(dynamodb: Any, lab: dict[str, Any]) -> None:
    transactions = capture(dynamodb, "TransactWriteItems")
    updates = capture(dynamodb, "UpdateItem")
    deletes = capture(dynamodb, "DeleteItem")
    store = DynamoStore(dynamodb, TABLE)
    with Stubber(dynamodb) as stub:
        for operation in ("transact_write_items", "update_item", "delete_item"):
            stub.add_response(operation, {})

        store.apply_restock(Restock("R-1", P, 5))
        store.mark_restock_released("R-1")
        store.release_restock_claim("R-1", "api:1")
    # An order with one item reserved and one joining its product's queue
    processed = store.prepare_commit(decide(make_order(lab, "ORD-X", [(P, 1), (Q, 2)]), {P: 1})).items

    requests = [*each_request(transactions[0]["TransactItems"]), *updates, *deletes, *each_request(processed)]
    assert len(requests) == 2 + 1 + 1 + 4
    assert [unused_placeholders(request) for request in requests] == [set()] * len(requests)


def test_a_processed_order_records_its_pending_count_and_history(dynamodb: Any, lab: dict[str, Any]) -> None:
    store = DynamoStore(dynamodb, TABLE)
    order = make_order(lab, "ORD-X", [(P, 1), (Q, 2)])

    update = store.prepare_commit(decide(order, {P: 1})).items[0]["Update"]

    slot = {name: placeholder for placeholder, name in update["ExpressionAttributeNames"].items()}
    values = update["ExpressionAttributeValues"]
    assert values[slot["pending_count"].replace("#", ":")] == {"N": "1"}
    assert "#history = list_append(if_not_exists(#history, :none), :entry)" in update["UpdateExpression"]
    [entry] = values[":entry"]["L"]
    assert (entry["M"]["status"], entry["M"]["reason"]) == (
        {"S": PRODUCT_PENDING},
        {"S": f"sem estoque disponível para: {Q} (2)"},
    )


def test_stock_levels_read_available_and_waiting_of_each_product(dynamodb: Any) -> None:
    names = ["FREE", "QUEUED", "NEVER-WAITED", "ONLY-WAITING", "MISSING"]
    keys = [{"PK": {"S": f"PRODUCT#{name}"}, "SK": {"S": "STOCK"}} for name in names]
    found = [
        {"PK": {"S": "PRODUCT#FREE"}, "available": {"N": "5"}, "waiting": {"N": "0"}},
        {"PK": {"S": "PRODUCT#QUEUED"}, "available": {"N": "5"}, "waiting": {"N": "2"}},
        {"PK": {"S": "PRODUCT#NEVER-WAITED"}, "available": {"N": "4"}},
        {"PK": {"S": "PRODUCT#ONLY-WAITING"}, "waiting": {"N": "1"}},
    ]
    request = {
        TABLE: {
            "Keys": keys,
            "ConsistentRead": True,
            "ProjectionExpression": "PK, #available, #waiting",
            "ExpressionAttributeNames": {"#available": "available", "#waiting": "waiting"},
        }
    }
    with Stubber(dynamodb) as stub:
        stub.add_response("batch_get_item", {"Responses": {TABLE: found}}, {"RequestItems": request})

        levels = DynamoStore(dynamodb, TABLE).stock_levels(names)

    assert levels == (
        {"FREE": 5, "QUEUED": 5, "NEVER-WAITED": 4, "ONLY-WAITING": 0},
        {"FREE": 0, "QUEUED": 2, "NEVER-WAITED": 0, "ONLY-WAITING": 1},
    )


def test_stock_is_read_in_rounds_of_at_most_100_keys(dynamodb: Any) -> None:
    # BatchGetItem takes 100 keys at most: a batch of ten 49-item orders asks for up to 490 products.
    names = [f"P{n:03d}" for n in range(250)]
    sizes: list[int] = []
    dynamodb.meta.events.register(
        "provide-client-params.dynamodb.BatchGetItem",
        lambda params, **_: sizes.append(len(params["RequestItems"][TABLE]["Keys"])),
    )
    with Stubber(dynamodb) as stub:
        for _ in range(3):
            stub.add_response("batch_get_item", {"Responses": {TABLE: []}})

        DynamoStore(dynamodb, TABLE).stock_levels(names)

    assert sizes == [100, 100, 50]


def test_pending_queue_reads_the_index_oldest_first(dynamodb: Any) -> None:
    def marker(order_id: str, order_date: str, quantity: int) -> dict[str, Any]:
        return {
            "PK": {"S": f"ORDER#{order_id}"},
            "SK": {"S": f"PENDING#{P}"},
            "order_id": {"S": order_id},
            "product_id": {"S": P},
            "quantity": {"N": str(quantity)},
            "GSI1SK": {"S": f"{order_date}#{order_id}"},
        }

    expected = {
        "TableName": TABLE,
        "IndexName": "GSI1",
        "KeyConditionExpression": "GSI1PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"PENDING#{P}"}},
        "ScanIndexForward": True,
        "Limit": 100,
    }
    with Stubber(dynamodb) as stub:
        stub.add_response("query", {"Items": [marker("ORD-A", OLDER, 2), marker("ORD-B", NEWER, 3)]}, expected)

        queue = DynamoStore(dynamodb, TABLE).pending_queue(P)

    assert queue == [
        PendingItem("ORD-A", P, 2, f"{OLDER}#ORD-A"),
        PendingItem("ORD-B", P, 3, f"{NEWER}#ORD-B"),
    ]


def test_claim_restock_of_a_used_key_returns_what_it_was_received_with(dynamodb: Any) -> None:
    with Stubber(dynamodb) as stub:
        stub.add_client_error(
            "put_item",
            service_error_code="ConditionalCheckFailedException",
            modeled_fields={
                "Item": {"product_id": {"S": P}, "quantity": {"N": "4"}, "restock_status": {"S": "Aplicada"}}
            },
        )

        with pytest.raises(DuplicateRestock) as caught:
            DynamoStore(dynamodb, TABLE).claim_restock(Restock("KEY-1", P, 4), "api:2")

    assert caught.value.existing == {"product_id": P, "quantity": 4, "restock_status": "Aplicada"}


def test_release_restock_claim_leaves_a_claim_that_is_no_longer_ours(dynamodb: Any) -> None:
    key = {"PK": {"S": "RESTOCK#R-1"}, "SK": {"S": "RESTOCK"}}
    with Stubber(dynamodb) as stub:
        stub.add_client_error(
            "delete_item",
            service_error_code="ConditionalCheckFailedException",
            expected_params={
                "TableName": TABLE,
                "Key": key,
                "ConditionExpression": "restock_status = :received AND #source = :source",
                "ExpressionAttributeNames": {"#source": "source"},
                "ExpressionAttributeValues": {":received": {"S": "Recebida"}, ":source": {"S": "api:1"}},
            },
        )

        DynamoStore(dynamodb, TABLE).release_restock_claim("R-1", "api:1")

        stub.assert_no_pending_responses()


def test_release_notices_are_read_consistently_and_cleared_one_by_one(dynamodb: Any) -> None:
    notice = {
        "PK": {"S": f"RELEASED#{P}"},
        "SK": {"S": "ORDER#ORD-X"},
        "order_id": {"S": "ORD-X"},
        "items": {"L": [{"M": {"product_id": {"S": P}, "quantity": {"N": "2"}}}]},
    }
    with Stubber(dynamodb) as stub:
        stub.add_response(
            "query",
            {"Items": [notice]},
            {
                "TableName": TABLE,
                "KeyConditionExpression": "PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"RELEASED#{P}"}},
                "ConsistentRead": True,
            },
        )
        stub.add_response("delete_item", {}, {"TableName": TABLE, "Key": {"PK": notice["PK"], "SK": notice["SK"]}})
        store = DynamoStore(dynamodb, TABLE)

        [found] = store.release_notices(P)
        store.clear_release_notice(P, "ORD-X")

        stub.assert_no_pending_responses()
    assert (found["order_id"], found["items"]) == ("ORD-X", [{"product_id": P, "quantity": 2}])


def test_restock_queue_groups_by_product_and_deduplicates_by_restock_id() -> None:
    sqs = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    expected = {
        "QueueUrl": "https://sqs.example/restocks.fifo",
        "MessageBody": json.dumps({"restock_id": "R-1", "product_id": P, "quantity": 5}, separators=(",", ":")),
        "MessageGroupId": P,
        "MessageDeduplicationId": "R-1",
    }
    with Stubber(sqs) as stub:
        stub.add_response("send_message", {}, expected)

        SqsRestockQueue(sqs, "https://sqs.example/restocks.fifo").send(Restock("R-1", P, 5))

        stub.assert_no_pending_responses()


def publish_released(notice: dict[str, Any]) -> dict[str, Any]:
    """Publish through the real Notifier against a stub; return the Publish parameters."""
    sns = boto3.client("sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    seen = capture(sns, "Publish")
    with Stubber(sns) as stub:
        stub.add_response(
            "publish", {}, {"TopicArn": PENDING_TOPIC, "Subject": ANY, "Message": ANY, "MessageAttributes": ANY}
        )

        SnsNotifier(sns, "errors", PENDING_TOPIC).order_released(notice)

    [params] = seen
    return params


def outbox_notice() -> dict[str, Any]:
    """An outbox record as release_notices returns it (numbers come back from DynamoDB as Decimal)."""
    return {
        "order_id": "ORD-X",
        "customer_email": MARIANA,
        "reason": release_reason("R-1"),
        "released_at": "2024-03-04T10:00:00.000+00:00",
        "items": [{"product_id": P, "quantity": Decimal(2)}],
    }


def test_order_released_goes_on_the_pending_topic_masked_with_its_own_event() -> None:
    params = publish_released(outbox_notice())

    assert params["Subject"] == "Pedido ORD-X: liberado"
    assert params["MessageAttributes"] == {"event": {"DataType": "String", "StringValue": "order_released"}}
    message = json.loads(params["Message"])
    assert (message["event"], message["order_id"], message["order_status"]) == ("order_released", "ORD-X", NEW_ORDER)
    assert message["customer_email"] == "m***@example.com"
    assert (message["reason"], message["released_at"]) == (release_reason("R-1"), "2024-03-04T10:00:00.000+00:00")
    assert MARIANA not in params["Message"]


def test_order_released_counts_units_as_numbers_like_order_pending() -> None:
    params = publish_released(outbox_notice())

    assert json.loads(params["Message"])["items"] == [{"product_id": P, "quantity": 2}]


# ================================================================ races and limits found in review
def test_an_older_order_that_joins_the_queue_at_its_head_and_fits_is_served_without_a_restock(shop: Shop) -> None:
    # Given an order waiting for 10 units, and 5 units that do not serve it (strict first come, first served)
    younger = shop.waiting("ORD-YOUNGER", [(P, 10)], NEWER)
    shop.restock(P, 5)
    assert shop.books(P) == (5, 0, 1)

    # When an order queued earlier is processed late (its message group was busy) for 3 units: it queues, and
    # asks for a look
    older = shop.waiting("ORD-OLDER", [(P, 3)], OLDER, QUEUED_FIRST)
    assert [product for product, _, _ in shop.queue.releases] == [P]

    # Then the restocker serves it from the 5 units, as the new head of the queue; the younger one keeps waiting
    assert shop.deliver_releases() == [older]
    assert (shop.status(older), shop.status(younger)) == (NEW_ORDER, PRODUCT_PENDING)
    assert shop.books(P) == (2, 3, 1)
    assert shop.released() == [older]
    history = shop.store.orders[older]["status_history"]
    assert history[-1]["reason"] == release_reason(None)


def test_an_item_pending_for_want_of_stock_asks_for_no_look(shop: Shop) -> None:
    shop.waiting("ORD-A", [(P, 10)], OLDER)
    shop.waiting("ORD-B", [(P, 3)], NEWER)  # no stock at all: nothing to look at

    assert shop.queue.releases == []


def test_a_redelivered_pending_order_asks_again_for_its_queues(shop: Shop) -> None:
    order_id = shop.waiting("ORD-A", [(P, 2)], OLDER)
    processor = OrderProcessor(shop.store, shop.notifier, releases=shop.queue)

    processor.process(make_order(shop.lab, order_id, [(P, 2)], OLDER))

    assert [product for product, _, _ in shop.queue.releases] == [P]


def test_a_head_the_index_still_shows_after_its_reservation_does_not_stop_the_queue(shop: Shop) -> None:
    # On AWS the index may lag: an item reserved a moment ago can still show at the head.
    big = shop.waiting("ORD-BIG", [(P, 2)], OLDER, QUEUED_FIRST)
    small = shop.waiting("ORD-SMALL", [(P, 1)], NEWER, QUEUED_LATER)
    shop.restock(P, 2)
    assert shop.status(big) == NEW_ORDER
    ghost = PendingItem(big, P, 2, queue_position(QUEUED_FIRST, big))
    real = shop.store.pending_queue

    shop.store.pending_queue = lambda product_id, limit=100: [ghost, *real(product_id, limit)]  # type: ignore[method-assign]
    served = shop.restock(P, 1, "R-2")

    assert served == [small]
    assert shop.books(P) == (0, 3, 0)


def test_a_release_short_of_time_hands_the_rest_to_a_new_message(shop: Shop) -> None:
    first = shop.waiting("ORD-1", [(P, 1)], OLDER)
    second = shop.waiting("ORD-2", [(P, 1)], NEWER)
    clock = iter([60.0, 5.0])  # plenty for the first item, then short

    served = shop.release.apply(Restock("R-1", P, 2), time_left=lambda: next(clock))

    assert [i.order_id for i in served] == [first]
    assert "released_at" not in shop.store.restocks["R-1"], "not finished: not marked released"
    assert [(product, restock) for product, _, restock in shop.queue.releases] == [(P, "R-1")]
    assert shop.deliver_releases() == [second]
    assert shop.store.released_by("R-1") == [first, second]
    assert shop.store.restocks["R-1"]["released_at"]


def test_orders_completed_before_a_failure_are_told_all_the_same(shop: Shop) -> None:
    first = shop.waiting("ORD-1", [(P, 1)], OLDER)
    shop.waiting("ORD-2", [(P, 1)], NEWER)
    calls = {"n": 0}
    real = shop.store.reserve_pending

    def second_fails(item: PendingItem, order: dict[str, Any], restock_id: str | None) -> bool:
        calls["n"] += 1
        if calls["n"] > 1:
            raise StoreBusy("throttled")
        return real(item, order, restock_id)

    shop.store.reserve_pending = second_fails  # type: ignore[method-assign]

    with pytest.raises(RetryLater):
        shop.release.apply(Restock("R-1", P, 2))

    assert shop.released() == [first], "the outbox is published even though the release failed"


def test_a_restock_file_over_the_line_limit_is_refused_whole_and_applies_nothing(lab: dict[str, Any]) -> None:
    from orders.restock import MAX_RESTOCK_LINES

    store, queue, files = FakeStore(), FakeRestockQueue(), FakeFiles()
    lines = [{"product_id": P, "quantity": 1}] * (MAX_RESTOCK_LINES + 1)
    files.objects[("lake", "restock/big.json")] = json.dumps(lines).encode()
    ingestion = FileIngestion(OrderValidator(), store, FakeQueue(), files, FakeNotifier(), restocks=queue)

    report = ingestion.ingest("lake", "restock/big.json", "etag-1")

    assert report is not None and report.file_error and str(MAX_RESTOCK_LINES) in report.file_error
    assert (report.received, queue.sent, store.restocks) == (0, [], {})
