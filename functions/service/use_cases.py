"""The use cases: take an order from the API, ingest a data-lake file, process an order, and take, apply and
release a restock."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from orders.codec import decode_order, fingerprint
from orders.files import MAX_FILE_BYTES, RESTOCK_PREFIX, Entry, FileRejected, read_entries
from orders.model import NEW_ORDER, PRODUCT_PENDING, RECEIVED, FieldError, Order, OrderRejected
from orders.report import FileReport, report_key
from orders.restock import (
    ID_RULE,
    MAX_RESTOCK_LINES,
    RESTOCK_RECEIVED,
    PendingItem,
    Restock,
    RestockRejected,
    is_valid_id,
    parse_restock_body,
    plan_release,
    validate_restock,
)
from orders.stock import PendingNotice, StockDecision, decide
from orders.validation import OrderValidator, parse_order_body
from service.errors import (
    AlreadyProcessed,
    DuplicateOrder,
    DuplicateRestock,
    ItemGone,
    OrderChanged,
    StockChanged,
    StoreBusy,
)
from service.keys import CLAIMED_FILE_ORDERS, CLAIMED_ORDERS, CLAIMED_RESTOCKS, FILE_SOURCE
from service.logs import bound, log
from service.ports import DataLake, Notifier, OrderQueue, Orders, RestockQueue, Restocks, Store

ENQUEUE_FAILED = "a fila de pedidos recusou o envio após várias tentativas; reenvie este pedido"
DUPLICATE = "pedido duplicado: order_id já recebido"
CHUNK = 100  # orders claimed in one transaction (DynamoDB's limit) and then sent
SEND_ATTEMPTS = 4  # sends of a file's chunk, each of what SQS refused before
# Seconds kept back at the end of an invocation: a file stops between chunks, a release between orders.
FILE_RESERVE_SECONDS, RELEASE_RESERVE_SECONDS = 10.0, 15.0
KEY_REUSED = "chave de idempotência já usada por outra reposição"


class RetryLater(Exception):
    """Processing could not finish now; the message goes back to the queue."""


class FileUnfinished(Exception):
    """The invocation ran short of time mid-file: the chunks done are kept, and a new message goes on from there."""


@contextmanager
def unclaimed_if_unsent(unclaim: Callable[[str, str], None], claim_id: str, source: str) -> Iterator[None]:
    """Around the send of what was just claimed: a failed send undoes the claim, so nothing is claimed but unsent."""
    try:
        yield
    except Exception as exc:
        unclaim(claim_id, source)
        log("ERROR", "message not enqueued; claim released", claim=claim_id, error=repr(exc))
        raise


@dataclass(frozen=True)
class OrderReceipt:
    order: Order
    replayed: bool  # the same order was received before: this retry created nothing new


@dataclass
class OrderIntake:
    """POST /orders: validate, claim the order_id, enqueue; undo the claim if the send fails.

    A retry of the same order (same document, whatever its whitespace or key order) is an idempotent replay: it is
    answered like the first and, while the order still waits to be processed, sent again (the FIFO queue's
    deduplication and the processor's "only from Recebido" keep that exactly once). Another order reusing the id
    is a DuplicateOrder (409)."""

    validator: OrderValidator
    store: Orders
    queue: OrderQueue

    def submit(self, body: str | bytes | None) -> OrderReceipt:
        order = self.validator.validate(parse_order_body(body))
        source = f"api:{uuid.uuid4()}"
        with bound(order_id=order.order_id):
            try:
                self.store.claim(order, source)
            except DuplicateOrder as exc:
                return self._replay(order, exc)
            with unclaimed_if_unsent(self.store.release, order.order_id, source):
                self.queue.send(order)
            log("INFO", "order accepted", source="api")
        return OrderReceipt(order, replayed=False)

    def _replay(self, order: Order, duplicate: DuplicateOrder) -> OrderReceipt:
        if duplicate.existing.get("body_hash") != fingerprint(order):
            raise duplicate
        if duplicate.existing.get("order_status") == RECEIVED:
            # The first attempt may have died between its claim and its send: send now (a no-op if it was sent).
            self.queue.send(order)
        log("INFO", "order replayed", order_status=duplicate.existing.get("order_status"))
        return OrderReceipt(order, replayed=True)


@dataclass
class FileIngestion:
    """One data-lake file: every order in it is accepted or rejected with reasons, and reported once."""

    validator: OrderValidator
    store: Store
    queue: OrderQueue
    files: DataLake
    notifier: Notifier
    restocks: RestockQueue
    sleep: Callable[[float], None] = time.sleep

    def ingest(
        self, bucket: str, key: str, event_tag: str, time_left: Callable[[], float] | None = None
    ) -> FileReport | None:
        """Return the report, or None when this very S3 event was already handled. Raises FileUnfinished when
        `time_left()` runs short: the chunks done are kept, and the same event handled again resumes after them."""
        file_id = f"{bucket}/{key}#{event_tag}"
        if self.store.file_done(file_id):
            log("INFO", "duplicate S3 event ignored", file_key=key)
            return None
        restock_file = key.startswith(RESTOCK_PREFIX)
        report = FileReport(bucket=bucket, key=key, kind="restocks" if restock_file else "orders")
        clock = time.perf_counter()
        try:
            entries = read_entries(key, self.files.read(bucket, key, MAX_FILE_BYTES))
        except FileRejected as exc:
            report.file_error = str(exc)
        else:
            report.timings["read_seconds"] = time.perf_counter() - clock
            if restock_file:
                self._accept_restocks(file_id, entries, report)
            else:
                self._accept_entries(file_id, entries, report, time_left)
        target = report_key(key, event_tag)
        self.files.write_report(bucket, target, report)
        if report.has_problems:
            self.notifier.file_report(report)
        self.store.mark_file_done(file_id, report, target)
        log(
            "INFO",
            "file ingested",
            file_key=key,
            received=report.received,
            accepted=len(report.accepted),
            rejected=len(report.rejections),
            file_error=report.file_error,
        )
        return report

    def _accept_entries(
        self, file_id: str, entries: list[Entry], report: FileReport, time_left: Callable[[], float] | None
    ) -> None:
        # Chunk by chunk, so the processor starts on the first orders while later ones are still read; each chunk's
        # outcome is kept, so a validator killed or out of time resumes after the last chunk it finished.
        done = self.store.file_parts(file_id)
        if done:
            log("INFO", "file resumed", chunks_done=len(done))
        for start in range(0, len(entries), CHUNK):
            if start in done:
                report.absorb(done[start])
                continue
            if time_left is not None and time_left() < FILE_RESERVE_SECONDS:
                raise FileUnfinished(f"{start} of {len(entries)} entries done")
            part = FileReport(bucket=report.bucket, key=report.key, kind=report.kind)
            self._accept_chunk(file_id, start, entries[start : start + CHUNK], part)
            outcome = part.part()
            self.store.save_file_part(file_id, start, outcome)
            report.absorb(outcome)
        report.rejections.sort(key=lambda rejection: rejection.index)

    def _accept_chunk(self, file_id: str, start: int, entries: list[Entry], report: FileReport) -> None:
        clock = time.perf_counter()
        claims: list[tuple[int, Order, str]] = []
        first_index: dict[str, int] = {}
        for index, entry in enumerate(entries, start=start):
            if entry.error is not None:
                report.reject(index, None, [entry.error])
                continue
            try:
                order = self.validator.validate(entry.document)
            except OrderRejected as exc:
                report.reject(index, exc.order_id, exc.errors)
                continue
            if order.order_id in first_index:  # twice in this chunk: only the first can be claimed
                report.reject(index, order.order_id, [FieldError("order_id", DUPLICATE)])
                continue
            first_index[order.order_id] = index
            # The source names the file, the event and the position, so a retry of this same
            # event recognises its own claims and resends them instead of calling them duplicates.
            claims.append((index, order, f"{FILE_SOURCE}{file_id}:{index}"))
        report.timings["validate_seconds"] += time.perf_counter() - clock

        clock = time.perf_counter()
        existing = self.store.claim_many([(order, source) for _, order, source in claims]) if claims else {}
        to_send = []
        for index, order, source in claims:
            if order.order_id in existing and existing[order.order_id] != source:
                report.reject(index, order.order_id, [FieldError("order_id", DUPLICATE)])
            else:
                to_send.append((index, order, source))
        report.timings["claim_seconds"] += time.perf_counter() - clock

        clock = time.perf_counter()
        refused = self._send([order for _, order, _ in to_send]) if to_send else set()
        for index, order, source in to_send:
            if order.order_id in refused:
                # Never left claimed but unsent: undo the claim and report the order as not taken.
                self.store.release(order.order_id, source)
                report.reject(index, order.order_id, [FieldError("(fila)", ENQUEUE_FAILED)])
            else:
                report.accepted.append(order.order_id)
        report.timings["enqueue_seconds"] += time.perf_counter() - clock

    def _accept_restocks(self, file_id: str, entries: list[Entry], report: FileReport) -> None:
        """Each line `{"product_id", "quantity"}` is one restock; its id comes from the file and the line, so the
        same S3 event handled twice applies each line once."""
        if len(entries) > MAX_RESTOCK_LINES:
            report.file_error = f"arquivo com mais de {MAX_RESTOCK_LINES} reposições: divida-o em arquivos menores"
            return
        stem = hashlib.sha256(file_id.encode("utf-8")).hexdigest()[:24]
        for index, entry in enumerate(entries):
            if entry.error is not None:
                report.reject(index, None, [entry.error])
                continue
            try:
                restock = validate_restock(entry.document, f"s3-{stem}-{index}")
            except RestockRejected as exc:
                product = entry.document.get("product_id") if isinstance(entry.document, dict) else None
                report.reject(index, product, exc.errors)
                continue
            source = f"{FILE_SOURCE}{file_id}:{index}"
            try:
                self.store.claim_restock(restock, source)
            except DuplicateRestock as exc:
                if exc.existing.get("source") != source:  # cannot happen unless two files share a hash prefix
                    report.reject(index, restock.product_id, [FieldError("(linha)", KEY_REUSED)])
                    continue
            try:
                with unclaimed_if_unsent(self.store.release_restock_claim, restock.restock_id, source):
                    self.restocks.send(restock)
            except Exception:
                report.reject(index, restock.product_id, [FieldError("(fila)", ENQUEUE_FAILED)])
                continue
            report.accepted.append(restock.restock_id)

    def _send(self, orders: list[Order]) -> set[str]:
        """Send with bounded retries of what SQS refused; return the order_ids it never took."""
        pending = orders
        for attempt in range(SEND_ATTEMPTS):
            refused = set(self.queue.send_batch(pending))
            if not refused:
                return set()
            pending = [order for order in pending if order.order_id in refused]
            log("WARNING", "orders not enqueued, retrying", count=len(pending), attempt=attempt + 1)
            if attempt + 1 < SEND_ATTEMPTS:
                self.sleep(0.1 * 2**attempt)
        return {order.order_id for order in pending}


@dataclass
class StockWork:
    """What the two use cases that hand out stock share, with the back-off of a write the store was too busy for."""

    store: Store
    notifier: Notifier
    sleep: Callable[[float], None] = time.sleep
    releases: RestockQueue | None = None

    def _back_off(self, attempt: int, busy: StoreBusy, **fields: Any) -> None:
        log("WARNING", "write retried", attempt=attempt + 1, reason=str(busy), **fields)
        self.sleep(min(0.02 * 2**attempt, 0.5))


def _count(decision: StockDecision, stock: dict[str, int], waiting: dict[str, int]) -> None:
    """What a decision written does to the stock figures: its reservations leave the stock, its items wait."""
    for item in decision.reserved:
        stock[item.product_id] = stock.get(item.product_id, 0) - item.quantity
    for item in decision.pending:
        waiting[item.product_id] = waiting.get(item.product_id, 0) + 1


def _transactions(decisions: list[StockDecision]) -> Iterator[list[StockDecision]]:
    """The decisions in runs that each fit one transaction: the orders plus their distinct products, at most 100."""
    run: list[StockDecision] = []
    products: set[str] = set()
    for decision in decisions:
        wanted = products | {item.product_id for item in decision.order.items}
        if run and len(run) + 1 + len(wanted) > 100:
            yield run
            run, wanted = [], {item.product_id for item in decision.order.items}
        run.append(decision)
        products = wanted
    if run:
        yield run


@dataclass
class OrderProcessor(StockWork):
    """Decide stock for the orders of a batch and write each order's decision in one transaction (several orders
    in one where they can); idempotent under redelivery."""

    max_attempts: int = 6
    figures_for: float = 1.0  # seconds a read of the stock also steers the batches after it (see prefetch)
    clock: Callable[[], float] = time.monotonic
    # The stock figures (prefetch): available, waiting, which products they cover, and when they were read.
    _stock: dict[str, int] = field(default_factory=dict, init=False)
    _waiting: dict[str, int] = field(default_factory=dict, init=False)
    _known: set[str] = field(default_factory=set, init=False)
    _written: set[str] = field(default_factory=set, init=False)  # orders of the batch already written together
    _read_at: float = field(default=float("-inf"), init=False)

    def prefetch(self, orders: list[Order]) -> None:
        """Read the stock of every product of a batch in one round trip, for the first decision of each order, unless
        an earlier batch of this container read all of them less than `figures_for` seconds ago (the figures follow
        this container's own writes since).

        The figures only steer decisions: every write is still conditional (a reservation on `available >= q` and
        nobody waiting, a wait on the state it was decided in), so a figure gone stale, by another consumer's write
        or a restock, costs a refused write and a re-read, never an oversell or a place out of turn.
        """
        wanted = {item.product_id for order in orders for item in order.items}
        self._written = set()
        if self._known.issuperset(wanted) and self.clock() - self._read_at < self.figures_for:
            return
        self._stock, self._waiting = self.store.stock_levels(wanted) if wanted else ({}, {})
        self._known, self._read_at = wanted, self.clock()

    def write_together(self, orders: list[Order]) -> None:
        """Write the orders that reserve every item on the batch's figures in as few transactions as the 100-action
        limit allows; `process` then only reports them. Each such transaction is all or nothing: refused, for
        whatever reason, it changes nothing and its orders are processed one at a time, each on its own conditions,
        so that no order's result depends on another's. The caller passes only orders that may be written ahead of
        the batch's sequence (the first of their message group)."""
        stock, waiting = dict(self._stock), dict(self._waiting)
        ready: list[StockDecision] = []
        for order in orders:
            decision = decide(order, stock, waiting)
            _count(decision, stock, waiting)  # one that waits: no later order of the batch takes its product's stock
            if not decision.pending:
                ready.append(decision)
        for run in _transactions(ready):
            if len(run) > 1 and self._committed_together(run):
                self._written.update(decision.order.order_id for decision in run)

    def _committed_together(self, decisions: list[StockDecision]) -> bool:
        try:
            self.store.commit(self.store.prepare_commit(*decisions))
        except Exception as exc:  # whatever it was, each order is written alone and meets its own fate
            log("WARNING", "orders not written together; one at a time", count=len(decisions), error=repr(exc))
            self._read_at = float("-inf")  # the next batch reads the stock again
            return False
        for decision in decisions:
            _count(decision, self._stock, self._waiting)
        return True

    def _stock_for(self, order: Order, fresh: bool) -> tuple[dict[str, int], dict[str, int]]:
        """(available, waiting) of the order's products: cached for the batch, or read again when `fresh`."""
        products = [item.product_id for item in order.items]
        if fresh or not self._known.issuperset(products):
            available, waiting = self.store.stock_levels(products)
            for pid in products:  # a product without a record has neither
                self._stock[pid], self._waiting[pid] = available.get(pid, 0), waiting.get(pid, 0)
            self._known.update(products)
        return self._stock, self._waiting  # the batch's figures: decide() reads only the order's own products

    def process(self, order: Order, queued_at: datetime | None = None) -> str:
        """`queued_at`: when the order entered the orders queue, its place in a product's queue if it waits."""
        if order.order_id in self._written:
            self._written.discard(order.order_id)  # a second message of the order is a redelivery
            log("INFO", "order processed", order_id=order.order_id, order_status=NEW_ORDER)
            return NEW_ORDER
        write = None
        fresh = False
        for attempt in range(self.max_attempts):
            if write is None:  # a first try, or stock changed under us: decide again on fresh stock
                decision = decide(order, *self._stock_for(order, fresh))
                write = self.store.prepare_commit(decision, queued_at=queued_at)
            try:
                self.store.commit(write)
            except AlreadyProcessed:
                return self._redelivered(order)
            except StockChanged:
                log("WARNING", "stock changed, deciding again", order_id=order.order_id, attempt=attempt + 1)
                write, fresh = None, True
                continue
            except StoreBusy as exc:
                self._back_off(attempt, exc, order_id=order.order_id)  # then the same write, with the same token
                continue
            _count(decision, self._stock, self._waiting)
            self._look_again(order.order_id, [item.product_id for item in decision.queued])
            if decision.pending:
                self._notify(PendingNotice.of(decision))
            log("INFO", "order processed", order_id=order.order_id, order_status=decision.status)
            return decision.status
        raise RetryLater(f"order {order.order_id}: stock kept changing after {self.max_attempts} attempts")

    def _redelivered(self, order: Order) -> str:
        record = self.store.get_order(order.order_id) or {}
        status = str(record.get("order_status"))
        if status == PRODUCT_PENDING:
            # The first delivery may have committed and then failed to ask for its queues to be looked at again,
            # or to publish: do both now (looking again is always safe; the notice goes out once).
            notice = PendingNotice.from_record(record)
            self._look_again(order.order_id, [pid for pid, _ in notice.items])
            if not record.get("pending_notified"):
                self._notify(notice)
        log("INFO", "redelivery ignored", order_id=order.order_id, order_status=status)
        return status

    def _notify(self, notice: PendingNotice) -> None:
        self.notifier.pending_stock(notice)
        self.store.mark_notified(notice.order_id)

    def _look_again(self, order_id: str, product_ids: list[str]) -> None:
        """An item that joined a queue while the stock would have covered it may be older than the queue's head,
        which does not fit: only a release of the product can tell, so ask the restocker for one."""
        if self.releases is None:
            return
        for product_id in product_ids:
            dedup = hashlib.sha256(f"{order_id}/{product_id}".encode()).hexdigest()
            self.releases.release(product_id, dedup_id=f"queue-{dedup}")


class RestockConflict(Exception):
    """The idempotency key was already used by a restock of another product or quantity."""


@dataclass(frozen=True)
class RestockReceipt:
    restock: Restock
    restock_status: str
    replayed: bool  # True when the key was seen before: nothing new was applied


@dataclass
class RestockIntake:
    """POST /products/{product_id}/restock: validate, claim the idempotency key, enqueue; undo the claim if the
    send fails. The same key sent again is answered with the first restock, never applied twice."""

    store: Restocks
    queue: RestockQueue

    def submit(self, product_id: str, body: str | bytes | None, key: str | None) -> RestockReceipt:
        key_errors = []
        if key is not None and not is_valid_id(key):
            key_errors.append(FieldError("Idempotency-Key", ID_RULE))
        try:
            restock = validate_restock(parse_restock_body(body), key or uuid.uuid4().hex, product_id)
        except RestockRejected as exc:
            raise RestockRejected(key_errors + exc.errors) from exc  # every error at once, the key's first
        if key_errors:
            raise RestockRejected(key_errors)
        source = f"api:{uuid.uuid4()}"
        with bound(restock_id=restock.restock_id, product_id=restock.product_id):
            try:
                self.store.claim_restock(restock, source)
            except DuplicateRestock as exc:
                return self._replay(restock, exc.existing)
            with unclaimed_if_unsent(self.store.release_restock_claim, restock.restock_id, source):
                self.queue.send(restock)
            log("INFO", "restock accepted", quantity=restock.quantity)
        return RestockReceipt(restock, RESTOCK_RECEIVED, replayed=False)

    def _replay(self, restock: Restock, existing: dict[str, Any]) -> RestockReceipt:
        if existing.get("product_id") != restock.product_id or int(existing.get("quantity", 0)) != restock.quantity:
            raise RestockConflict(restock.restock_id)
        status = str(existing.get("restock_status", RESTOCK_RECEIVED))
        if status == RESTOCK_RECEIVED:
            # The first send may have been lost with its response: sending again is safe, because the queue
            # drops a duplicate id and the restock's record lets it be applied only once.
            self.queue.send(restock)
        log("INFO", "restock replayed", restock_status=status)
        return RestockReceipt(restock, status, replayed=True)


@dataclass
class StockRelease(StockWork):
    """Apply a restock and serve the product's waiting items, strictly first come, first served.

    Runs in the restocks' FIFO message group of the product, so releases of one product never overlap on AWS;
    every reservation is still conditional, so nothing oversells if they did.
    """

    attempts: int = 5

    def apply(self, restock: Restock, time_left: Callable[[], float] | None = None) -> list[PendingItem]:
        """Raise the stock once per restock_id, then release; a redelivery only releases (always safe)."""
        if self.store.apply_restock(restock):
            log("INFO", "restock applied", quantity=restock.quantity)
        else:
            log("INFO", "restock already applied: releasing only")
        return self.release_only(restock.product_id, restock.restock_id, time_left)

    def release_only(
        self, product_id: str, restock_id: str | None = None, time_left: Callable[[], float] | None = None
    ) -> list[PendingItem]:
        """Serve the product's queue; mark the restock released when its release has run to the end."""
        try:
            served, finished = self.release(product_id, restock_id, time_left)
            if finished and restock_id is not None:
                self.store.mark_restock_released(restock_id)
        finally:
            # Whatever happened above, every order completed so far gets its message (from the outbox).
            self.publish_releases(product_id)
        return served

    def release(
        self, product_id: str, restock_id: str | None, time_left: Callable[[], float] | None = None
    ) -> tuple[list[PendingItem], bool]:
        """Reserve waiting items oldest first until one does not fit or none is left; return those served and
        whether the queue was settled (False: time ran short, and the rest was handed to a new message)."""
        served: list[PendingItem] = []
        idle = 0

        def short_of_time() -> bool:
            if time_left is None or self.releases is None or time_left() >= RELEASE_RESERVE_SECONDS:
                return False
            self.releases.release(product_id, dedup_id=f"more-{uuid.uuid4().hex}", restock_id=restock_id)
            log("WARNING", "release continues in a new message", served=len(served))
            return True

        while True:
            if short_of_time():
                return served, False
            product = self.store.get_product(product_id) or {}
            available, waiting = int(product.get("available", 0)), int(product.get("waiting", 0))
            if waiting <= 0:
                return served, True
            queue = self.store.pending_queue(product_id)
            # On AWS the index may still show an item reserved a moment ago: a head that does not fit is checked
            # against the table before it is allowed to stop the queue.
            while queue and queue[0].quantity > available and not self.store.still_pending(queue[0]):
                queue.pop(0)
            plan = plan_release(available, queue)
            if queue and not plan:
                return served, True  # the oldest waiting item does not fit: it keeps its place, and so do the rest
            progressed = False
            for item in plan:
                if served and short_of_time():
                    return served, False
                try:
                    self._reserve(item, restock_id)
                except StockChanged:
                    break  # read the stock again before going on
                except ItemGone:
                    continue
                served.append(item)
                progressed = True
            if progressed:
                # Told as the release goes, a round (at most 100 orders) at a time: left to the end, the messages of a
                # release of thousands would not fit the time kept back, and the function would time out.
                self.publish_releases(product_id)
            idle = 0 if progressed else idle + 1
            if idle >= self.attempts:
                # On AWS a GSI lags its table for a moment: `waiting` counts items the index does not show yet.
                raise RetryLater(f"product {product_id}: {waiting} waiting, none could be served now")
            if not progressed:
                self.sleep(0.1 * idle)

    def _reserve(self, item: PendingItem, restock_id: str | None) -> None:
        for attempt in range(self.attempts):
            order = self.store.get_order(item.order_id)
            if order is None:
                raise ItemGone(item.order_id)
            try:
                completed = self.store.reserve_pending(item, order, restock_id)
            except OrderChanged:
                continue  # another item of the same order was released meanwhile
            except StoreBusy as exc:
                self._back_off(attempt, exc, order_id=item.order_id)
                continue
            log("INFO", "pending item reserved", order_id=item.order_id, quantity=item.quantity, completed=completed)
            return
        raise RetryLater(f"order {item.order_id}: could not reserve {item.product_id}")

    def publish_releases(self, product_id: str) -> None:
        """Publish each order-released message recorded with its reservation, then forget it (at least once)."""
        for notice in self.store.release_notices(product_id):
            self.notifier.order_released(notice)
            self.store.clear_release_notice(product_id, str(notice["order_id"]))
            log("INFO", "order released", order_id=notice["order_id"])


@dataclass(frozen=True)
class SweepResult:
    orders: int  # claims sent again
    restocks: int


@dataclass
class Sweeper:
    """Sends again what was claimed and is still waiting `stuck_after` seconds after its claim: an order or a restock
    still in the unsent partition of GSI1. Claimants do not record their send (a round trip on the hot path): a claim
    leaves the partition when it is processed (applied), or here, once sent again. Run on a schedule.

    Sending again is always safe (docs/RELIABILITY.md): the FIFO queues drop a repeated deduplication id (the
    order_id, the restock_id) for five minutes after the first send, so a copy of a message that was sent is dropped
    and a claim whose claimant died before its send is delivered; a copy later than that meets a processor that
    writes an order only from `Recebido` and a restocker that applies a restock only from `Recebida`. A swept claim
    is marked, so the sweeper sends it once; if that message dead-letters, it waits in its DLQ (`make dlq`,
    `make redrive`).

    A data-lake file's claims wait `file_stuck_after` instead: their file's validator sends them right after claiming
    them, and if it dies first, the file's message comes back after its visibility timeout (60 s) and the file resumes
    at the chunk it had not finished, claims recognised as its own and sent. The sweeper is their last resort (a file
    whose message dead-letters after its receives), not a second sender racing a file's backlog in the queue: a
    10,000-order file keeps thousands of claims unprocessed for more than 20 s, all of them sent."""

    store: Store
    orders: OrderQueue
    restocks: RestockQueue
    stuck_after: float = 20.0  # seconds
    file_stuck_after: float = 300.0  # seconds: five receives of the files queue, one visibility timeout apart
    limit: int = 1000
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def sweep(self) -> SweepResult:
        now = self.clock()
        before, files_before = now - timedelta(seconds=self.stuck_after), now - timedelta(seconds=self.file_stuck_after)
        claims = self.store.unsent(CLAIMED_ORDERS, before, self.limit)
        claims += self.store.unsent(CLAIMED_FILE_ORDERS, files_before, self.limit)
        # The claim's document text; a claim written before the document moved to the claim kept it in `message`.
        texts = [c["document"] if isinstance(c.get("document"), str) else c.get("message") for c in claims]
        orders = [decode_order(str(text)) for text in texts if text]
        refused = set(self.orders.send_batch(orders)) if orders else set()
        resent = [order.order_id for order in orders if order.order_id not in refused]
        self.store.mark_sent(resent)
        restocks = 0
        for record in self.store.unsent(CLAIMED_RESTOCKS, before, self.limit):
            restock = Restock(str(record["restock_id"]), str(record["product_id"]), int(record["quantity"]))
            self.restocks.send(restock)
            self.store.mark_restock_sent(restock.restock_id)
            restocks += 1
        if resent or restocks:
            log(
                "WARNING",
                "claims left unsent were sent again",
                orders=len(resent),
                order_ids=resent[:20],
                restocks=restocks,
            )
        if refused:
            log("ERROR", "unsent orders refused by the queue; the next sweep tries again", count=len(refused))
        return SweepResult(orders=len(resent), restocks=restocks)
