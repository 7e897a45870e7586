"""Fakes of the ports (service.ports: Store, OrderQueue, RestockQueue, Notifier, DataLake) that record state, with the
conditions the real writes enforce. tests/e2e/test_contract.py runs the same scenarios against FakeStore and the real
DynamoStore, so the two cannot drift apart."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from orders.codec import encode_order
from orders.lifecycle import ItemRelease, decided, received, stamp
from orders.model import NEW_ORDER, PENDING, PRODUCT_PENDING, RECEIVED, RESERVED, Order, history_entry
from orders.report import FileReport
from orders.restock import RELEASED_PAGE, RESTOCK_APPLIED, RESTOCK_RECEIVED, PendingItem, Restock, queue_position
from orders.stock import PendingNotice, StockDecision
from orders.validation import OrderValidator
from service import errors
from service.keys import CLAIMED_RESTOCKS, claims_partition
from service.use_cases import FileIngestion

_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
MAX_ITEM_BYTES = 400 * 1024  # DynamoDB refuses to write a bigger item (ValidationException)


def item_size(value: Any) -> int:
    """The size DynamoDB counts for a record or value (names and values in UTF-8; a number about a byte per two
    digits; 3 bytes and 1 per element for a list or map), near enough to tell when a record outgrows 400 KB."""
    if isinstance(value, dict):
        return 3 + sum(len(str(name).encode()) + 1 + item_size(v) for name, v in value.items())
    if isinstance(value, list | tuple):
        return 3 + sum(1 + item_size(v) for v in value)
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | Decimal):
        return 1 + (len(str(value)) + 1) // 2
    return len(str(value).encode())


@dataclass(frozen=True)
class FakeWrite:
    decisions: tuple[StockDecision, ...]
    token: int
    queued_at: datetime | None = None

    @property
    def decision(self) -> StockDecision:
        [decision] = self.decisions
        return decision


class FakeStore:
    """The single table in dicts, with the conditions the real transactions enforce.

    A product exists once it is in `stock` (its `available`), `reserved` or `waiting`; `pending` holds the pending
    item markers (what GSI1 `PENDING#<product>` shows), `restocks` the restock markers, `released` the orders each
    restock served (an item each, by queue position) and `notices` the outbox of order-released messages. Like the
    table, it refuses a restock record over 400 KB. Numbers in the records are Decimal, as DynamoDB returns them.
    """

    def __init__(self, stock: dict[str, int] | None = None, calls: list[str] | None = None) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.stock: dict[str, int] = dict(stock or {})
        self.reserved: dict[str, int] = {}
        self.waiting: dict[str, int] = {}
        self.pending: dict[tuple[str, str], PendingItem] = {}  # (order_id, product_id) -> the waiting item
        self.restocks: dict[str, dict[str, Any]] = {}
        self.released: dict[str, dict[str, str]] = {}  # restock_id -> {queue position: order_id}
        self.notices: dict[tuple[str, str], dict[str, Any]] = {}  # (product_id, order_id) -> the outbox record
        self.files: dict[str, tuple[FileReport, str]] = {}
        self.parts: dict[str, dict[int, dict[str, Any]]] = {}  # file_id -> the chunks kept, by their first entry
        self.calls = calls if calls is not None else []
        self.commit_failures: list[Exception] = []
        self.before_commit: list[Callable[[], None]] = []
        self.commit_attempts: list[FakeWrite] = []
        self.stock_reads = 0
        self.product_reads = 0
        self.queue_reads = 0
        self.lagging: set[str] = set()  # products whose waiting items the index does not show yet
        self.apply_failures: list[Exception] = []
        self.reserve_failures: list[Exception] = []
        self.before_reserve: list[Callable[[], None]] = []  # runs after the order was read, before the write
        self.reserve_attempts: list[tuple[str, str]] = []
        self._clock = itertools.count(1)

    def now(self) -> str:
        """A clock that moves one second per call, so the order of events shows in their timestamps."""
        return stamp(_EPOCH + timedelta(seconds=next(self._clock)))

    # -- orders -----------------------------------------------------------------------------------
    def claim(self, order: Order, source: str) -> None:
        self.calls.append(f"claim {order.order_id}")
        if order.order_id in self.orders:
            existing = copy.deepcopy(self.orders[order.order_id])
            raise errors.DuplicateOrder(order.order_id, existing)
        record = received(order, source, self.now())
        # In its GSI1 UNSENT# partition (claims_partition) until processed, or swept (mark_sent).
        self.orders[order.order_id] = {"PK": f"ORDER#{order.order_id}", "SK": "ORDER", **record, "unsent": True}

    def claim_many(self, claims: list[tuple[Order, str]]) -> dict[str, str | None]:
        taken = {o.order_id: self.orders[o.order_id].get("source") for o, _ in claims if o.order_id in self.orders}
        for order, source in claims:
            if order.order_id not in taken:
                self.claim(order, source)
        return taken

    def release(self, order_id: str, source: str) -> None:
        self.calls.append(f"release {order_id}")
        record = self.orders.get(order_id)
        if record and record["order_status"] == RECEIVED and record["source"] == source:
            del self.orders[order_id]

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.orders.get(order_id))

    def _product_exists(self, product_id: str) -> bool:
        return product_id in self.stock or product_id in self.reserved or product_id in self.waiting

    def get_product(self, product_id: str) -> dict[str, Any] | None:
        self.product_reads += 1
        if not self._product_exists(product_id):
            return None
        record: dict[str, Any] = {"product_id": product_id}
        for name, values in (("available", self.stock), ("reserved", self.reserved), ("waiting", self.waiting)):
            if product_id in values:
                record[name] = Decimal(values[product_id])
        return record

    def stock_levels(self, product_ids: Iterable[str]) -> tuple[dict[str, int], dict[str, int]]:
        """(`available`, `waiting`) of each product; products without a record are absent from both."""
        self.stock_reads += 1
        known = [pid for pid in dict.fromkeys(product_ids) if self._product_exists(pid)]
        return {pid: self.stock.get(pid, 0) for pid in known}, {pid: self.waiting.get(pid, 0) for pid in known}

    def prepare_commit(self, *decisions: StockDecision, queued_at: datetime | None = None) -> FakeWrite:
        assert len(decisions) == 1 or not any(d.pending for d in decisions), "only orders that wait for nothing"
        return FakeWrite(decisions, token=len(self.commit_attempts), queued_at=queued_at)

    def commit(self, write: FakeWrite) -> None:
        self.commit_attempts.append(write)
        if self.before_commit:
            self.before_commit.pop(0)()
        if self.commit_failures:
            raise self.commit_failures.pop(0)
        if len(write.decisions) == 1:
            return self._commit(write.decision, write.queued_at)
        ids = [d.order.order_id for d in write.decisions]
        if len(set(ids)) < len(ids):
            raise ValueError("a transaction may not write one item twice")  # DynamoDB's ValidationException
        before = copy.deepcopy((self.orders, self.stock, self.reserved))
        try:
            for decision in write.decisions:  # all or nothing
                self._commit(decision, None)
        except (errors.AlreadyProcessed, errors.StockChanged) as exc:
            self.orders, self.stock, self.reserved = before
            raise errors.StockChanged(", ".join(ids)) from exc

    def _commit(self, decision: StockDecision, queued_at: datetime | None) -> None:
        order = decision.order
        current = self.orders.get(order.order_id)
        if current and current["order_status"] != RECEIVED:
            raise errors.AlreadyProcessed(order.order_id)
        for item in decision.reserved:  # the stock is there, and nobody waits for it
            if self.stock.get(item.product_id, -1) < item.quantity or self.waiting.get(item.product_id, 0) > 0:
                raise errors.StockChanged(order.order_id)
        queued = {item.product_id for item in decision.queued}
        for item in decision.pending:  # an item joins the queue only in the state it was decided in
            pid = item.product_id
            fits = pid in self.stock and self.stock[pid] >= item.quantity
            behind_others = fits and self.waiting.get(pid, 0) > 0
            if (pid in queued and not behind_others) or (pid not in queued and fits):
                raise errors.StockChanged(order.order_id)
        for item in decision.reserved:
            self.stock[item.product_id] -= item.quantity
            self.reserved[item.product_id] = self.reserved.get(item.product_id, 0) + item.quantity
        for item in decision.pending:
            self.waiting[item.product_id] = self.waiting.get(item.product_id, 0) + 1
            moment = queued_at or datetime.fromisoformat(self.now())
            position = queue_position(moment, order.order_id)
            self.pending[(order.order_id, item.product_id)] = PendingItem(
                order.order_id, item.product_id, item.quantity, position
            )
        now = self.now()
        history = [
            *(current.get("status_history", []) if current else []),
            history_entry(decision.status, now, decision.reason),
        ]
        self.orders[order.order_id] = {
            **(current or {}),
            **copy.deepcopy(decided(decision, now)),
            "source": current["source"] if current else "queue",
            "received_at": current.get("received_at", now) if current else now,
            "status_history": history,
        }
        self.orders[order.order_id].setdefault("document", encode_order(order))  # never claimed: written here
        self.orders[order.order_id].pop("unsent", None)

    def mark_notified(self, order_id: str) -> None:
        self.orders[order_id]["pending_notified"] = True

    # -- files ------------------------------------------------------------------------------------
    def save_file_part(self, file_id: str, start: int, part: dict[str, Any]) -> None:
        self.calls.append(f"save_file_part {start}")
        self.parts.setdefault(file_id, {})[start] = copy.deepcopy(part)

    def file_parts(self, file_id: str) -> dict[int, dict[str, Any]]:
        return copy.deepcopy(self.parts.get(file_id, {}))

    # -- claims left behind -----------------------------------------------------------------------
    @staticmethod
    def _unsent(records: Iterable[dict[str, Any]], received_before: datetime, limit: int) -> list[dict[str, Any]]:
        before = stamp(received_before)
        found = [r for r in records if r.get("unsent") and r["received_at"] < before]
        return copy.deepcopy(sorted(found, key=lambda r: r["received_at"])[:limit])

    def unsent(self, partition: str, received_before: datetime, limit: int) -> list[dict[str, Any]]:
        self.calls.append(f"unsent {partition}")
        if partition == CLAIMED_RESTOCKS:
            return self._unsent(self.restocks.values(), received_before, limit)
        # An order processed (or its status set by a test) has left the partition, whatever its flag says.
        claimed = self.orders.values()
        claimed = [r for r in claimed if r["order_status"] == RECEIVED and claims_partition(r["source"]) == partition]
        return self._unsent(claimed, received_before, limit)

    def mark_sent(self, order_ids: list[str]) -> None:
        self.calls.append(f"mark_sent {','.join(order_ids)}")
        for order_id in order_ids:
            record = self.orders.get(order_id)
            if record is not None and record.get("unsent"):
                del record["unsent"]

    def mark_restock_sent(self, restock_id: str) -> None:
        self.calls.append(f"mark_restock_sent {restock_id}")
        self.restocks.get(restock_id, {}).pop("unsent", None)

    # -- restocks ---------------------------------------------------------------------------------
    def claim_restock(self, restock: Restock, source: str) -> None:
        self.calls.append(f"claim_restock {restock.restock_id}")
        existing = self.restocks.get(restock.restock_id)
        if existing is not None:
            raise errors.DuplicateRestock(restock.restock_id, copy.deepcopy(existing))
        self.restocks[restock.restock_id] = {
            "PK": f"RESTOCK#{restock.restock_id}",
            "SK": "RESTOCK",
            "entity": "restock",
            "restock_id": restock.restock_id,
            "product_id": restock.product_id,
            "quantity": Decimal(restock.quantity),
            "restock_status": RESTOCK_RECEIVED,
            "source": source,
            "received_at": self.now(),
            "unsent": True,
        }

    def release_restock_claim(self, restock_id: str, source: str) -> None:
        self.calls.append(f"release_restock_claim {restock_id}")
        record = self.restocks.get(restock_id)
        if record and record.get("restock_status") == RESTOCK_RECEIVED and record.get("source") == source:
            del self.restocks[restock_id]

    def apply_restock(self, restock: Restock) -> bool:
        """Mark the restock applied and add its units, together; False when it was applied before."""
        self.calls.append(f"apply_restock {restock.restock_id}")
        if self.apply_failures:
            raise self.apply_failures.pop(0)
        marker = self.restocks.get(restock.restock_id)
        if marker is not None and marker.get("restock_status") != RESTOCK_RECEIVED:
            return False
        now = self.now()
        self.restocks.setdefault(restock.restock_id, {}).pop("unsent", None)  # applied: out of the sweeper's sight
        self.restocks[restock.restock_id].update(
            restock_status=RESTOCK_APPLIED,
            applied_at=now,
            product_id=restock.product_id,
            quantity=Decimal(restock.quantity),
            entity="restock",
        )
        self.stock[restock.product_id] = self.stock.get(restock.product_id, 0) + restock.quantity
        self.reserved.setdefault(restock.product_id, 0)
        return True

    def get_restock(self, restock_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.restocks.get(restock_id))

    def released_orders(
        self, restock_id: str, after: str | None = None, limit: int = RELEASED_PAGE
    ) -> tuple[list[str], str | None]:
        served = sorted((self.released.get(restock_id) or {}).items())
        rest = [(position, order_id) for position, order_id in served if after is None or position > after]
        page = rest[:limit]
        return [order_id for _, order_id in page], page[-1][0] if len(rest) > limit else None

    def released_by(self, restock_id: str) -> list[str]:
        """Every order the restock served, in queue order."""
        return [order_id for _, order_id in sorted((self.released.get(restock_id) or {}).items())]

    def mark_restock_released(self, restock_id: str) -> None:
        # An update: it sets released_at, creating the record if need be.
        self.restocks.setdefault(restock_id, {}).update(released_at=self.now())

    def pending_queue(self, product_id: str, limit: int = 100) -> list[PendingItem]:
        self.queue_reads += 1
        if product_id in self.lagging:
            return []
        waiting = [item for item in self.pending.values() if item.product_id == product_id]
        return sorted(waiting, key=lambda item: item.queued_at)[:limit]

    def still_pending(self, waiting: PendingItem) -> bool:
        return (waiting.order_id, waiting.product_id) in self.pending

    def reserve_pending(self, waiting: PendingItem, order: dict[str, Any], restock_id: str | None) -> bool:
        """One transaction over the product, the waiting's marker and the order (as read by the caller)."""
        self.reserve_attempts.append((waiting.order_id, waiting.product_id))
        if self.before_reserve:
            self.before_reserve.pop(0)()
        if self.reserve_failures:
            raise self.reserve_failures.pop(0)
        release = ItemRelease.of(order, waiting.product_id, restock_id)
        index, left, count = release.index, release.left, order.get("pending_count")
        pid = waiting.product_id
        if self.stock.get(pid, -1) < waiting.quantity:
            raise errors.StockChanged(pid)
        if (waiting.order_id, pid) not in self.pending:
            raise errors.ItemGone(waiting.order_id)
        current = self.orders.get(waiting.order_id)
        if (
            current is None
            or current.get("order_status") != PRODUCT_PENDING
            or index >= len(current.get("items", []))
            or current["items"][index].get("item_status") != PENDING
            or (
                "pending_count" in current
                if count is None
                else current.get("pending_count") is None or int(current["pending_count"]) != left
            )
        ):
            raise errors.OrderChanged(waiting.order_id)
        if restock_id is not None:
            restock = {**self.restocks.get(restock_id, {})}
            restock["released_count"] = Decimal(restock.get("released_count", 0)) + 1
            if item_size(restock) > MAX_ITEM_BYTES:  # the whole transaction is cancelled with ValidationError
                raise errors.StoreBusy("transaction cancelled: ['None', 'None', 'None', 'ValidationError']")
            self.restocks[restock_id] = restock
            self.released.setdefault(restock_id, {})[waiting.queued_at] = waiting.order_id
        self.stock[pid] -= waiting.quantity
        self.reserved[pid] = self.reserved.get(pid, 0) + waiting.quantity
        self.waiting[pid] = self.waiting.get(pid, 0) - 1
        del self.pending[(waiting.order_id, pid)]
        current["items"][index]["item_status"] = RESERVED
        current["pending_count"] = Decimal(left - 1)
        if release.completes:
            now = self.now()
            current.update(order_status=NEW_ORDER, released_at=now)
            current["status_history"] = [*current.get("status_history", []), release.history(now)]
            self.notices[(pid, waiting.order_id)] = release.notice(order, now)
        return release.completes

    def release_notices(self, product_id: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(notice) for (pid, _), notice in sorted(self.notices.items()) if pid == product_id]

    def clear_release_notice(self, product_id: str, order_id: str) -> None:
        self.notices.pop((product_id, order_id), None)

    # -- files ------------------------------------------------------------------------------------
    def file_done(self, file_id: str) -> bool:
        return file_id in self.files

    def mark_file_done(self, file_id: str, report: FileReport, report_key: str) -> None:
        self.files[file_id] = (report, report_key)


class _FakeSender:
    """What both fake queues share: the calls, what was sent, and the ways a send fails."""

    def __init__(self, calls: list[str] | None = None) -> None:
        self.calls = calls if calls is not None else []
        self.send_error: Exception | None = None
        self.refuse: set[str] = set()
        self.crash: BaseException | None = None  # the Lambda dies mid-way (timeout, out of memory)

    def _sending(self, what: str) -> None:
        self.calls.append(f"send {what}")
        if self.crash is not None:
            raise self.crash
        if self.send_error is not None:
            raise self.send_error


class FakeQueue(_FakeSender):
    def __init__(self, calls: list[str] | None = None) -> None:
        super().__init__(calls)
        self.sent: list[Order] = []
        self.refuse_times: int | None = None  # refuse only this many calls, then take everything

    def send(self, order: Order) -> None:
        self._sending(order.order_id)
        self.sent.append(order)

    def send_batch(self, orders: list[Order]) -> list[str]:
        if self.crash is not None:
            raise self.crash
        if self.refuse_times is not None:
            if self.refuse_times == 0:
                self.refuse = set()
            self.refuse_times -= 1
        taken = [o for o in orders if o.order_id not in self.refuse]
        self.sent += taken
        return [o.order_id for o in orders if o.order_id in self.refuse]

    @property
    def sent_ids(self) -> list[str]:
        return [o.order_id for o in self.sent]


class FakeRestockQueue(_FakeSender):
    """The restock FIFO queue; every message sent is kept, duplicates included (the restocker must cope). `refuse`
    holds the product_ids whose restocks it refuses."""

    def __init__(self, calls: list[str] | None = None) -> None:
        super().__init__(calls)
        self.sent: list[Restock] = []
        self.releases: list[tuple[str, str, str | None]] = []  # requests to look at a product's queue again

    def send(self, restock: Restock) -> None:
        self._sending(restock.restock_id)
        if restock.product_id in self.refuse:
            raise ConnectionError(f"SQS refused {restock.restock_id}")
        self.sent.append(restock)

    def release(self, product_id: str, dedup_id: str, restock_id: str | None = None) -> None:
        self.calls.append(f"release {product_id}")
        self.releases.append((product_id, dedup_id, restock_id))

    @property
    def sent_ids(self) -> list[str]:
        return [r.restock_id for r in self.sent]


class FakeNotifier:
    def __init__(self) -> None:
        self.pending: list[PendingNotice] = []
        self.released: list[dict[str, Any]] = []
        self.reports: list[dict[str, Any]] = []
        self.dead: list[dict[str, Any]] = []
        self.failures: list[Exception] = []
        self.released_failures: list[Exception] = []

    def pending_stock(self, notice: PendingNotice) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.pending.append(notice)

    def order_released(self, notice: dict[str, Any]) -> None:
        if self.released_failures:
            raise self.released_failures.pop(0)
        self.released.append(copy.deepcopy(notice))

    def dead_letter(self, notice: dict[str, Any]) -> None:
        self.dead.append(notice)

    def file_report(self, report: FileReport) -> None:
        self.reports.append(report.as_dict())


class FakeFiles:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.reports: list[tuple[str, str, dict[str, Any]]] = []

    def read(self, bucket: str, key: str, max_bytes: int) -> bytes | None:
        data = self.objects[(bucket, key)]
        return None if len(data) > max_bytes else data

    def write_report(self, bucket: str, key: str, report: FileReport) -> None:
        self.reports.append((bucket, key, report.as_dict()))


BUCKET = "lake"
ERROR_TOPIC = "arn:aws:sns:us-east-1:000000000000:errors"


class Lake:
    """A FileIngestion wired with these fakes, and what they recorded."""

    def __init__(self) -> None:
        self.store, self.queue, self.restocks = FakeStore(), FakeQueue(), FakeRestockQueue()
        self.files, self.notifier = FakeFiles(), FakeNotifier()
        self.ingestion = FileIngestion(
            OrderValidator(),
            self.store,
            self.queue,
            self.files,
            self.notifier,
            self.restocks,
            sleep=lambda seconds: None,
        )

    def put(self, key: str, data: bytes) -> None:
        self.files.objects[(BUCKET, key)] = data

    def ingest(self, key: str, tag: str = "seq-1", time_left: Callable[[], float] | None = None) -> FileReport | None:
        return self.ingestion.ingest(BUCKET, key, tag, time_left)


class FakeSqs:
    """The SQS client as BatchFailures uses it: the visibility set for each receipt handle."""

    def __init__(self) -> None:
        self.visibility: list[tuple[str, int]] = []

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:  # noqa: N803
        self.visibility.append((ReceiptHandle, VisibilityTimeout))

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        """What the Heartbeat sends: each entry's visibility, as if set one by one."""
        for entry in Entries:
            self.visibility.append((entry["ReceiptHandle"], entry["VisibilityTimeout"]))
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}
