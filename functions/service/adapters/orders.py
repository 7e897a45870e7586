"""The orders in the single table: claims, the one transaction that records a decided order, and the sweeper's
partition of claims not processed yet."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orders.codec import encode_order
from orders.lifecycle import decided, received
from orders.model import PENDING, RECEIVED, Order, history_entry
from orders.restock import queue_position
from orders.stock import StockDecision
from service.adapters.table import NEW, Table, best_effort, now, refusal, token, value
from service.errors import AlreadyProcessed, DuplicateOrder, StockChanged
from service.keys import (
    CLAIMED_FILE_ORDERS,
    CLAIMED_ORDERS,
    ORDER,
    claims_partition,
    order_key,
    order_pk,
    pending,
    product_key,
    status_partition,
)

# Attribute names of a product's stock, always through placeholders (some are DynamoDB reserved words).
STOCK_NAMES = {"#available": "available", "#reserved": "reserved", "#waiting": "waiting"}
# A claim the sweeper sent again moves from its GSI1 UNSENT# partition to `STATUS#Recebido` (mark_sent); `message` is
# where claims written before `document` kept their text.
_SENT = ("SET GSI1PK = :received REMOVE message", "GSI1PK IN (:unsent, :unsent_file)")
_UNSENT = {
    ":received": {"S": status_partition(RECEIVED)},
    ":unsent": {"S": CLAIMED_ORDERS},
    ":unsent_file": {"S": CLAIMED_FILE_ORDERS},
}


@dataclass(frozen=True)
class PreparedWrite:
    order_ids: tuple[str, ...]
    items: list[dict[str, Any]]
    token: str


class DynamoOrders(Table):
    def _claim_record(self, order: Order, source: str) -> dict[str, Any]:
        record = received(order, source, now())
        gsi = {"GSI1PK": claims_partition(source), "GSI1SK": f"{record['received_at']}#{order.order_id}"}
        return {"PK": order_pk(order.order_id), "SK": ORDER, **record, **gsi}

    def claim(self, order: Order, source: str) -> None:
        """Record the order as `Recebido`, once per order_id; raise DuplicateOrder otherwise."""
        refused, existing = self._create(self._claim_record(order, source), order_key(order.order_id))
        if refused:
            raise DuplicateOrder(order.order_id, existing) from refused.error

    def claim_many(self, claims: list[tuple[Order, str]]) -> dict[str, str | None]:
        """Claim up to 100 distinct orders in one transaction; return {order_id: existing source} of those
        already received (they are left as they were). Falls back to one claim at a time when the store does
        not say which condition failed."""
        pending = list(claims)
        taken: dict[str, str | None] = {}
        while pending:
            writes = [self._put(self._claim_record(order, source), NEW) for order, source in pending]
            with refusal() as refused:
                self._db.transact_write_items(TransactItems=writes)
            if not refused:
                return taken
            failed = refused.conditions_failed(len(pending))
            if not failed:
                break
            for n in sorted(failed):
                order_id = pending[n][0].order_id
                taken[order_id] = (self.get_order(order_id) or {}).get("source")
            pending = [claim for n, claim in enumerate(pending) if n not in failed]
        for order, source in pending:  # the slow, always-correct way
            try:
                self.claim(order, source)
            except DuplicateOrder as exc:
                taken[order.order_id] = exc.existing.get("source")
        return taken

    def release(self, order_id: str, source: str) -> None:
        """Undo a claim whose message never reached the queue (only if still ours and unprocessed)."""
        self._release_claim(order_key(order_id), "order_status", RECEIVED, source)

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return self._get(order_key(order_id))

    def prepare_commit(self, *decisions: StockDecision, queued_at: datetime | None = None) -> PreparedWrite:
        """The one transaction that records decided orders and their reservations, one update per product for the sum
        (a transaction may not touch an item twice); a pending item takes its place in its product's queue by
        `queued_at`, the instant the order entered the orders queue (now if unknown). Several orders are written
        together only when none waits, at most 100 actions: the orders plus their distinct products."""
        moment = now()
        wanted = Counter[str]()
        for decision in decisions:
            for item in decision.reserved:
                wanted[item.product_id] += item.quantity
        writes = [self._decided(decision, moment) for decision in decisions]
        writes += [self._reserve(product_id, quantity) for product_id, quantity in wanted.items()]
        arrived = queued_at or datetime.now(UTC)
        for decision in decisions:
            order, queued = decision.order, {item.product_id for item in decision.queued}
            for waiting in decision.pending:
                # The item joins its product's queue only in the state it was decided in: for want of stock, or behind
                # others while the stock would cover it (the caller then has the queue looked at again). Otherwise a
                # restock released in between would leave it waiting beside free stock: decide again.
                behind = waiting.product_id in queued
                quantities = {":pid": {"S": waiting.product_id}, ":q": {"N": str(waiting.quantity)}, ":one": {"N": "1"}}
                marker = {
                    "PK": order_pk(order.order_id),
                    "SK": pending(waiting.product_id),
                    "entity": "pending_item",
                    "order_id": order.order_id,
                    "product_id": waiting.product_id,
                    "quantity": waiting.quantity,
                    "item_status": PENDING,
                    "GSI1PK": pending(waiting.product_id),
                    "GSI1SK": queue_position(arrived, order.order_id),
                }
                writes += [
                    self._update(
                        product_key(waiting.product_id),
                        "SET product_id = if_not_exists(product_id, :pid) ADD #waiting :one",
                        "#waiting > :zero AND #available >= :q"
                        if behind
                        else "attribute_not_exists(#available) OR #available < :q",
                        {"#available": "available", "#waiting": "waiting"},
                        quantities | ({":zero": {"N": "0"}} if behind else {}),
                    ),
                    self._put(marker),
                ]
        return PreparedWrite(tuple(d.order.order_id for d in decisions), writes, token(writes))

    def _decided(self, decision: StockDecision, moment: str) -> dict[str, Any]:
        """The update that records a decided order, from `Recebido` or from nothing."""
        order, status = decision.order, decision.status
        fields = {
            **decided(decision, moment),
            "GSI1PK": status_partition(status),
            "GSI1SK": f"{order.order_date}#{order.order_id}",
        }
        names = {f"#f{n}": name for n, name in enumerate(fields)}
        values = {f":f{n}": value(v) for n, v in enumerate(fields.values())}
        assignments = [f"#f{n} = :f{n}" for n in range(len(fields))]
        # An order sent straight to the queue was never claimed: it gets its received_at now.
        names.update({"#received_at": "received_at", "#source": "source", "#status": "order_status"})
        names.update({"#history": "status_history", "#document": "document", "#message": "message"})
        values.update({":now": {"S": moment}, ":queue": {"S": "queue"}, ":received": {"S": RECEIVED}})
        values[":document"] = {"S": encode_order(order)}
        values.update({":entry": value([history_entry(status, moment, decision.reason)]), ":none": {"L": []}})
        assignments += [
            "#received_at = if_not_exists(#received_at, :now)",
            "#source = if_not_exists(#source, :queue)",
            "#history = list_append(if_not_exists(#history, :none), :entry)",
            # The claim stored the document; only an order that was never claimed gets it here.
            "#document = if_not_exists(#document, :document)",
        ]
        # `message` held the document's text in claims written before `document` did: one copy is enough.
        expression = "SET " + ", ".join(assignments) + " REMOVE #message"
        condition = "attribute_not_exists(PK) OR #status = :received"
        return self._update(order_key(order.order_id), expression, condition, names, values)

    def _reserve(self, product_id: str, quantity: int) -> dict[str, Any]:
        # Nobody may be waiting for the product: a new order never takes stock ahead of an older pending item.
        return self._update(
            product_key(product_id),
            "SET #available = #available - :q, #reserved = #reserved + :q",
            "attribute_exists(PK) AND #available >= :q AND (attribute_not_exists(#waiting) OR #waiting <= :zero)",
            STOCK_NAMES,
            {":q": {"N": str(quantity)}, ":zero": {"N": "0"}},
        )

    def commit(self, write: PreparedWrite) -> None:
        """Send a prepared write; a cancellation becomes what the caller must do next: AlreadyProcessed (the order
        is no longer `Recebido`), StockChanged (decide again) or StoreBusy (send the same write again). A write of
        several orders that is cancelled is StockChanged, whatever the reason: the caller writes each order alone.

        Its ClientRequestToken is derived from its contents: sending the same prepared write again (after
        throttling or a conflict) is idempotent on DynamoDB's side, and a new decision (a new instant) gets a new
        token."""
        with refusal() as refused:
            self._db.transact_write_items(TransactItems=write.items, ClientRequestToken=write.token)
        if not refused:
            return
        order_id, *together = write.order_ids
        if together or not refused.reasons:
            # Some emulators omit the reasons: find out which condition failed by reading.
            current = None if together else self.get_order(order_id)
            processed = current is not None and current.get("order_status") != RECEIVED
            raise (AlreadyProcessed if processed else StockChanged)(", ".join(write.order_ids)) from refused.error
        if refused.failed_at(0):
            raise AlreadyProcessed(order_id) from refused.error
        if "ConditionalCheckFailed" in refused.reasons[1:]:
            raise StockChanged(order_id) from refused.error
        raise refused.busy() from refused.error

    def mark_notified(self, order_id: str) -> None:
        self._apply(self._update(order_key(order_id), "SET pending_notified = :true", values={":true": {"BOOL": True}}))

    def mark_sent(self, order_ids: list[str]) -> None:
        """Record that the sweeper sent these claimed orders again: each leaves its partition for `STATUS#Recebido`,
        unless it moved on already (processed, or released). Up to 100 per transaction;
        best effort (table.best_effort): the messages are sent either way."""
        with best_effort("sent orders not marked; the sweeper will send them again"):
            pending = list(dict.fromkeys(order_ids))
            while pending:
                chunk, pending = pending[:100], pending[100:]
                writes = [self._update(order_key(order_id), *_SENT, values=_UNSENT) for order_id in chunk]
                with refusal() as refused:
                    self._db.transact_write_items(TransactItems=writes)
                failed = refused.conditions_failed(len(chunk))
                if failed:
                    pending = [o for n, o in enumerate(chunk) if n not in failed] + pending
                    continue
                for order_id in chunk if refused else []:  # the store did not say which: one at a time
                    with refusal():
                        self._apply(self._update(order_key(order_id), *_SENT, values=_UNSENT))
