"""Failed SQS records: partial batch responses, retry back-off, dead-letter notices, FIFO groups."""

from __future__ import annotations

import importlib
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from fakes import FakeNotifier, FakeSqs, FakeStore

from service.batch import BatchFailures, Heartbeat, group_heads, retry_delay
from service.use_cases import OrderProcessor


class RecordingSqs:
    def __init__(self) -> None:
        self.visibility: list[tuple[str, int]] = []

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:  # noqa: N803
        self.visibility.append((ReceiptHandle, VisibilityTimeout))


def record(message_id: str, receives: int = 1, group: str | None = None, body: str = "{}") -> dict[str, Any]:
    attributes = {"ApproximateReceiveCount": str(receives)}
    if group is not None:
        attributes["MessageGroupId"] = group
    return {"messageId": message_id, "receiptHandle": f"rh-{message_id}", "body": body, "attributes": attributes}


@pytest.fixture
def parts() -> tuple[BatchFailures, RecordingSqs, FakeNotifier]:
    sqs, notifier = RecordingSqs(), FakeNotifier()
    return BatchFailures(sqs, "q", notifier, max_receive_count=5, queue="orders"), sqs, notifier  # type: ignore[arg-type]


def test_retry_delay_grows_and_is_capped() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 16]
    assert retry_delay(50) == 60


def test_failed_records_are_handed_back_with_a_back_off(parts: Any) -> None:
    failures, sqs, notifier = parts
    response = failures.respond([(record("a", receives=3), ValueError("boom")), (record("b"), None)])
    assert response == {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}
    assert sqs.visibility == [("rh-a", 4), ("rh-b", 0)], "a held-back record is retried at once"
    assert notifier.dead == []


def test_the_last_receive_publishes_a_dead_letter_notice(parts: Any) -> None:
    failures, sqs, notifier = parts
    failures.respond([(record("a", receives=5, body='{"order_id": "O-1", "customer": {"cpf": "1"}}'), KeyError("x"))])
    assert sqs.visibility == [("rh-a", 0)]
    (notice,) = notifier.dead
    assert notice["event"] == "message_dead_lettered"
    assert (notice["queue"], notice["message_id"], notice["order_id"], notice["receive_count"]) == (
        "orders",
        "a",
        "O-1",
        5,
    )
    assert "cpf" not in str(notice), "the body is not copied into the notice"


def test_nothing_failed_means_an_empty_response(parts: Any) -> None:
    failures, sqs, _ = parts
    assert failures.respond([]) == {"batchItemFailures": []}
    assert sqs.visibility == []


def test_a_record_without_id_fails_the_whole_invocation(parts: Any) -> None:
    failures, _, _ = parts
    unnamed = record("a")
    del unnamed["messageId"]
    with pytest.raises(RuntimeError, match="messageId"):
        failures.respond([(unnamed, ValueError("x"))])


# ================================================================ the processor handler keeps FIFO order per group
class FailsOn:
    def __init__(self, *order_ids: str) -> None:
        self.bad = set(order_ids)
        self.seen: list[str] = []

    def prefetch(self, orders: list[Any]) -> None:
        pass

    def write_together(self, orders: list[Any]) -> None:
        pass

    def process(self, order: Any, queued_at: Any = None) -> str:
        self.seen.append(order.order_id)
        if order.order_id in self.bad:
            raise ValueError(order.order_id)
        return "Novo Pedido"


@pytest.fixture
def processor(lambda_env: None, monkeypatch: pytest.MonkeyPatch, parts: Any) -> Any:
    module = importlib.import_module("handlers.processor")
    monkeypatch.setattr(module, "_failures", parts[0])
    return module


def messages(lab_text: str, *pairs: tuple[str, str]) -> list[dict[str, Any]]:
    from orders.codec import encode_order
    from orders.validation import OrderValidator, parse_json

    out = []
    for order_id, group in pairs:
        document = parse_json(lab_text)
        document["order_id"] = order_id
        out.append(record(order_id, group=group, body=encode_order(OrderValidator().validate(document))))
    return out


def test_a_failure_holds_back_its_group_only(processor: Any, monkeypatch: pytest.MonkeyPatch, lab_text: str) -> None:
    fake = FailsOn("A1")
    monkeypatch.setattr(processor, "_processor", fake)
    batch = messages(lab_text, ("A1", "A"), ("B1", "B"), ("A2", "A"), ("B2", "B"))

    response = processor.handler({"Records": batch}, None)

    assert response == {"batchItemFailures": [{"itemIdentifier": "A1"}, {"itemIdentifier": "A2"}]}
    assert fake.seen == ["A1", "B1", "B2"], "A2 waits behind A1; group B goes on"


def test_only_the_first_record_of_each_group_may_be_done_ahead() -> None:
    batch = [record("A1", group="A"), record("B1", group="B"), record("A2", group="A"), record("C1", group="C")]

    assert [r["messageId"] for r in group_heads(batch)] == ["A1", "B1", "C1"]
    assert [r["messageId"] for r in group_heads([batch[0], record("X"), batch[1]])] == ["A1"]


def test_orders_written_together_never_overtake_their_group(
    processor: Any, monkeypatch: pytest.MonkeyPatch, lab_text: str
) -> None:
    # Given a batch whose group A starts with a poison message, then orders of groups A, B and C, all in stock
    store = FakeStore({"PRD-1001": 10, "PRD-2002": 10})
    monkeypatch.setattr(processor, "_processor", OrderProcessor(store, FakeNotifier()))
    poison = record("A0", group="A", body="{not json")
    batch = [poison, *messages(lab_text, ("A2", "A"), ("B1", "B"), ("C1", "C"))]

    response = processor.handler({"Records": batch}, None)

    # Then B1 and C1 are written in one transaction, and A2 waits behind the poison message of its group
    assert response == {"batchItemFailures": [{"itemIdentifier": "A0"}, {"itemIdentifier": "A2"}]}
    assert [[d.order.order_id for d in w.decisions] for w in store.commit_attempts] == [["B1", "C1"]]
    assert sorted(store.orders) == ["B1", "C1"]
    assert store.stock == {"PRD-1001": 8, "PRD-2002": 6}


# ================================================================ heartbeat
class BeatCounter(FakeSqs):
    """Counts the heartbeats; `failing` makes every beat fail as SQS would."""

    def __init__(self, failing: bool = False) -> None:
        super().__init__()
        self.beats = threading.Semaphore(0)
        self.failing = failing

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.beats.release()
        if self.failing:
            raise ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"}}, "ChangeVisibility")
        return super().change_message_visibility_batch(QueueUrl, Entries)


def test_the_heartbeat_hides_the_batch_for_its_window_at_once_and_again_while_the_work_runs() -> None:
    sqs = BeatCounter()
    records = [{"messageId": f"m{n}", "receiptHandle": f"rh-{n}"} for n in range(12)]

    with Heartbeat(sqs, "url", window=1).beating(records):
        # the work outlives several beats: wait for two more after the first, two calls each (twelve handles, ten per
        # call); bounded, never a timed assertion
        assert all(sqs.beats.acquire(timeout=30) for _ in range(6))

    beaten = len(sqs.visibility)
    assert sqs.visibility[:12] == [(f"rh-{n}", 1) for n in range(12)], "every handle, in batches of ten"
    assert beaten >= 36 and beaten % 12 == 0
    time.sleep(0.5)  # longer than a beat interval (1/3 s): none may land after the block
    assert len(sqs.visibility) == beaten


def test_a_failing_heartbeat_is_logged_and_the_work_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    sqs = BeatCounter(failing=True)

    with Heartbeat(sqs, "url", window=20).beating([{"messageId": "m1", "receiptHandle": "rh-1"}]):
        done = True

    assert done
    assert "visibility heartbeat failed" in capsys.readouterr().out


def test_records_without_receipt_handles_get_no_heartbeat() -> None:
    sqs = BeatCounter()

    with Heartbeat(sqs, "url").beating([{"messageId": "m1"}]):
        pass

    assert sqs.visibility == []
