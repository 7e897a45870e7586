"""Fakes of the adapters (same methods as OrderStore, OrderQueue, Notifier, FileStore) that record state."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from orders.model import RECEIVED, Order
from orders.report import FileReport
from orders.stock import PendingNotice, StockDecision
from service.adapters import AlreadyProcessed, DuplicateOrder, StockChanged


@dataclass(frozen=True)
class FakeWrite:
    decision: StockDecision
    token: int


class FakeStore:
    """The single table in dicts, with the conditions the real transaction enforces."""

    def __init__(self, stock: dict[str, int] | None = None, calls: list[str] | None = None) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.stock: dict[str, int] = dict(stock or {})
        self.files: dict[str, tuple[FileReport, str]] = {}
        self.calls = calls if calls is not None else []
        self.commit_failures: list[Exception] = []
        self.before_commit: list[Callable[[], None]] = []
        self.commit_attempts: list[FakeWrite] = []
        self.stock_reads = 0

    def claim(self, order: Order, source: str) -> None:
        self.calls.append(f"claim {order.order_id}")
        if order.order_id in self.orders:
            raise DuplicateOrder(order.order_id, self.orders[order.order_id].get("source"))
        self.orders[order.order_id] = {"order_id": order.order_id, "order_status": RECEIVED, "source": source}

    def claim_many(self, claims: list[tuple[Order, str]]) -> dict[str, str | None]:
        taken: dict[str, str | None] = {}
        for order, source in claims:
            try:
                self.claim(order, source)
            except DuplicateOrder as exc:
                taken[order.order_id] = exc.source
        return taken

    def release(self, order_id: str, source: str) -> None:
        self.calls.append(f"release {order_id}")
        record = self.orders.get(order_id)
        if record and record["order_status"] == RECEIVED and record["source"] == source:
            del self.orders[order_id]

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.orders.get(order_id))

    def available_stock(self, product_ids: Iterable[str]) -> dict[str, int]:
        self.stock_reads += 1
        return {pid: self.stock[pid] for pid in product_ids if pid in self.stock}

    def prepare_commit(self, decision: StockDecision) -> FakeWrite:
        return FakeWrite(decision, token=len(self.commit_attempts))

    def commit(self, write: FakeWrite) -> None:
        self.commit_attempts.append(write)
        decision = write.decision
        if self.before_commit:
            self.before_commit.pop(0)()
        if self.commit_failures:
            raise self.commit_failures.pop(0)
        order = decision.order
        current = self.orders.get(order.order_id)
        if current and current["order_status"] != RECEIVED:
            raise AlreadyProcessed(order.order_id)
        if any(self.stock.get(i.product_id, -1) < i.quantity for i in decision.reserved):
            raise StockChanged(order.order_id)
        for item in decision.reserved:
            self.stock[item.product_id] -= item.quantity
        self.orders[order.order_id] = {
            "order_id": order.order_id,
            "order_status": decision.status,
            "source": current["source"] if current else "queue",
            "document": copy.deepcopy(order.document),
            "items": [
                {"product_id": d.item.product_id, "quantity": Decimal(d.item.quantity), "item_status": d.status}
                for d in decision.items
            ],
            "pending_notified": False,
        }

    def mark_notified(self, order_id: str) -> None:
        self.orders[order_id]["pending_notified"] = True

    def file_done(self, file_id: str) -> bool:
        return file_id in self.files

    def mark_file_done(self, file_id: str, report: FileReport, report_key: str) -> None:
        self.files[file_id] = (report, report_key)


class FakeQueue:
    def __init__(self, calls: list[str] | None = None) -> None:
        self.sent: list[Order] = []
        self.calls = calls if calls is not None else []
        self.send_error: Exception | None = None
        self.refuse: set[str] = set()
        self.refuse_times: int | None = None  # refuse only this many calls, then take everything
        self.crash: BaseException | None = None  # the Lambda dies mid-way (timeout, out of memory)

    def send(self, order: Order) -> None:
        self.calls.append(f"send {order.order_id}")
        if self.send_error is not None:
            raise self.send_error
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


class FakeNotifier:
    def __init__(self) -> None:
        self.pending: list[tuple[str, PendingNotice]] = []
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.failures: list[Exception] = []

    def pending_stock(self, topic_arn: str, notice: PendingNotice) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.pending.append((topic_arn, notice))

    def file_report(self, topic_arn: str, report: FileReport) -> None:
        self.reports.append((topic_arn, report.as_dict()))


class FakeFiles:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.reports: list[tuple[str, str, dict[str, Any]]] = []

    def read(self, bucket: str, key: str, max_bytes: int) -> bytes | None:
        data = self.objects[(bucket, key)]
        return None if len(data) > max_bytes else data

    def write_report(self, bucket: str, key: str, report: FileReport) -> None:
        self.reports.append((bucket, key, report.as_dict()))
