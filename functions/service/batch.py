"""What happens to the SQS records a handler could not finish: hand them back, retry them soon, and say
so on the error topic when the next failure sends a record to its dead-letter queue."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from service.logs import log
from service.ports import Notifier

MAX_BACKOFF_SECONDS = 60


def time_left_of(context: Any) -> Callable[[], float] | None:
    """Seconds left before the Lambda's timeout, from its context (None where there is no context, as in tests)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return None if remaining is None else lambda: remaining() / 1000


def retry_delay(receive_count: int) -> int:
    """1, 2, 4, 8 ... seconds: a transient fault clears fast, a poison message reaches its DLQ in seconds."""
    return min(1 << max(receive_count - 1, 0), MAX_BACKOFF_SECONDS)


def _order_id(body: str) -> str | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    order_id = value.get("order_id") if isinstance(value, dict) else None
    return order_id if isinstance(order_id, str) else None


@dataclass
class BatchFailures:
    """Turns failed records into a partial batch response, with a back-off per record."""

    sqs: Any
    queue_url: str
    notifier: Notifier
    max_receive_count: int
    queue: str  # the queue's name in the dead-letter notice

    def respond(self, failures: Sequence[tuple[dict[str, Any], BaseException | None]]) -> dict[str, Any]:
        """`failures` holds (record, error); error is None for a record held back only to keep FIFO order."""
        if any(not record.get("messageId") for record, _ in failures):
            # An unnamed record cannot be handed back alone: fail the whole invocation instead.
            raise RuntimeError("a failed SQS record has no messageId")
        for record, error in failures:
            receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
            if error is None:
                delay = 0
            elif receives >= self.max_receive_count:
                delay = 0  # the next receive moves it to the dead-letter queue: let that happen now
                self._dead_lettered(record, error, receives)
            else:
                delay = retry_delay(receives)
            self._set_visibility(record, delay)
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record, _ in failures]}

    def _dead_lettered(self, record: dict[str, Any], error: BaseException, receives: int) -> None:
        notice = {
            "event": "message_dead_lettered",
            "queue": self.queue,
            "message_id": record["messageId"],
            "order_id": _order_id(record.get("body", "")),
            "receive_count": receives,
            "error": f"{type(error).__name__}: {error}"[:500],
        }
        log("ERROR", "message goes to the dead-letter queue", **notice)
        try:
            self.notifier.dead_letter(notice)
        except (BotoCoreError, ClientError) as exc:  # the message itself is safe in the DLQ either way
            log("ERROR", "dead-letter notice not published", message_id=record["messageId"], error=repr(exc))

    def _set_visibility(self, record: dict[str, Any], seconds: int) -> None:
        handle = record.get("receiptHandle")
        if not handle:
            return
        try:
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=seconds)
        except (BotoCoreError, ClientError) as exc:  # the queue's own visibility timeout applies instead
            log("WARNING", "retry delay not set", message_id=record.get("messageId"), error=repr(exc))


def run_in_group_order(
    records: Sequence[dict[str, Any]], work: Callable[[dict[str, Any]], None]
) -> list[tuple[dict[str, Any], BaseException | None]]:
    """Run `work` on each record of a FIFO batch; return the failures for `BatchFailures.respond`.

    FIFO order holds within a message group: after a failure, that group's later records are held back (error
    None); other groups go on. A record without group information counts as part of every group.
    """
    failures: list[tuple[dict[str, Any], BaseException | None]] = []
    blocked: set[str | None] = set()
    for record in records:
        group = record.get("attributes", {}).get("MessageGroupId")
        if blocked and (group in blocked or group is None or None in blocked):
            failures.append((record, None))
            continue
        try:
            work(record)
        except Exception as exc:
            log("ERROR", "message failed", message_id=record.get("messageId"), group=group, error=repr(exc))
            failures.append((record, exc))
            blocked.add(group)
    return failures


def group_heads(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of a FIFO batch that come first in their message group: the only ones whose work may be done
    ahead of the batch's sequence. None after a record without group information (it counts as every group)."""
    heads: list[dict[str, Any]] = []
    seen: set[str] = set()
    for record in records:
        group = record.get("attributes", {}).get("MessageGroupId")
        if group is None:
            break
        if group not in seen:
            heads.append(record)
            seen.add(group)
    return heads


@dataclass
class Heartbeat:
    """Keeps a batch's messages invisible in short steps while the handler works on them.

    On entry the messages' visibility drops to `window` seconds, and a background thread pushes it `window` seconds
    ahead every `window / 3` seconds until the work ends (`ChangeMessageVisibilityBatch`). The queue's own
    visibility timeout must be at least the function's timeout (AWS refuses the event-source mapping otherwise),
    but a function killed midway (SIGKILL, out of memory, a host lost) no longer hides its messages for that
    long: they come back `window` seconds after the last beat. A beat that fails is logged and skipped; the worst
    it costs is an early redelivery, which every consumer here absorbs (it is idempotent).
    """

    sqs: Any
    queue_url: str
    window: int = 20

    @contextmanager
    def beating(self, records: Sequence[dict[str, Any]]) -> Iterator[None]:
        handles = [r["receiptHandle"] for r in records if r.get("receiptHandle")]
        if not handles:
            yield
            return
        self._beat(handles)
        stop = threading.Event()
        thread = threading.Thread(target=self._keep_beating, args=(handles, stop), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()  # no beat may land after the caller sets its own retry delays

    def _keep_beating(self, handles: list[str], stop: threading.Event) -> None:
        while not stop.wait(self.window / 3):
            self._beat(handles)

    def _beat(self, handles: list[str]) -> None:
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": self.window}
                for n, handle in enumerate(handles[start : start + 10])
            ]
            try:
                self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            except (BotoCoreError, ClientError) as exc:
                log("WARNING", "visibility heartbeat failed", error=repr(exc))
