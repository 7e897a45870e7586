"""Adapters over DynamoDB, SQS, SNS and S3; AWS errors become the errors below."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from orders.codec import encode_order, fingerprint, to_json
from orders.masking import mask_document, mask_text
from orders.model import NEW_ORDER, PENDING, PRODUCT_PENDING, RECEIVED, RESERVED, Order, history_entry
from orders.report import FileReport
from orders.restock import (
    RELEASED_PAGE,
    RESTOCK_APPLIED,
    RESTOCK_RECEIVED,
    PendingItem,
    Restock,
    queue_position,
    release_reason,
)
from orders.stock import PendingNotice, StockDecision
from service.errors import (
    AlreadyProcessed,
    DuplicateOrder,
    DuplicateRestock,
    ItemGone,
    OrderChanged,
    Refusal,
    StockChanged,
    StoreBusy,
    unless_condition_failed,
)
from service.keys import (
    CLAIMED_ORDERS,
    CLAIMED_RESTOCKS,
    FILE,
    PART,
    RELEASED,
    file_key,
    file_pk,
    notice_key,
    notices_pk,
    order_key,
    order_pk,
    part_sk,
    pending_key,
    pending_sk,
    product_key,
    queue_partition,
    released_key,
    restock_key,
    restock_pk,
    status_partition,
)
from service.logs import log

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

__all__ = [
    "CLAIMED_ORDERS",
    "CLAIMED_RESTOCKS",
    "AlreadyProcessed",
    "DuplicateOrder",
    "DuplicateRestock",
    "ItemGone",
    "OrderChanged",
    "StockChanged",
    "StoreBusy",
]


@dataclass(frozen=True)
class PreparedWrite:
    order_id: str
    items: list[dict[str, Any]]
    token: str


def stamp(moment: datetime) -> str:
    """How the table writes an instant (received_at, processed_at ...): ISO 8601 in UTC, milliseconds, so that
    instants compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _now() -> str:
    return stamp(datetime.now(UTC))


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


# Attribute names of a product's stock, always through placeholders (some are DynamoDB reserved words).
_STOCK_NAMES = {"#available": "available", "#reserved": "reserved", "#waiting": "waiting"}


# Once its message is sent, an order moves from its GSI1 UNSENT# partition to `STATUS#Recebido` and a restock leaves
# the index (mark_sent), so the sweeper never sends a backlog of sent messages again.
_SENT = "SET GSI1PK = :received REMOVE message"  # an order's message is in the queue: out of the sweeper's sight
_UNSENT = "GSI1PK = :unsent"


def _received_reason(source: str) -> str:
    return "pedido recebido pela API" if source.startswith("api:") else "pedido recebido em arquivo do data lake"


class OrderStore:
    """The single table: orders, their pending items, product stock and processed files."""

    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    # -- orders -------------------------------------------------------------------------------
    @staticmethod
    def _claim_record(order: Order, source: str) -> dict[str, Any]:
        received_at = _now()
        record = {
            "PK": order_pk(order.order_id),
            "SK": "ORDER",
            "entity": "order",
            "order_id": order.order_id,
            "order_status": RECEIVED,
            "order_date": order.order_date,
            "received_at": received_at,
            "source": source,
            # What the sweeper sends again if the claimant dies before its send, and what tells a client's retry
            # of the same body (answered 202 again) from another order reusing the id (409).
            "message": encode_order(order),
            "body_hash": fingerprint(order),
            "status_history": [history_entry(RECEIVED, _now(), _received_reason(source))],
            "items": [
                {
                    "product_id": i.product_id,
                    "quantity": i.quantity,
                    "unit_price": i.unit_price,
                    "item_status": RECEIVED,
                }
                for i in order.items
            ],
            "items_total": order.items_total,
            "GSI1PK": CLAIMED_ORDERS,
            "GSI1SK": f"{received_at}#{order.order_id}",
        }
        return _item(record)

    def claim(self, order: Order, source: str) -> None:
        """Record the order as `Recebido`, once per order_id; raise DuplicateOrder otherwise."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._claim_record(order, source),
                ConditionExpression="attribute_not_exists(PK)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if Refusal.of(exc).condition_failed:
                old = _plain(exc.response.get("Item") or self._get(order_key(order.order_id)) or {})
                raise DuplicateOrder(order.order_id, old.get("source"), old) from exc
            raise

    def claim_many(self, claims: list[tuple[Order, str]]) -> dict[str, str | None]:
        """Claim up to 100 distinct orders in one transaction; return {order_id: existing source} of those
        already received (they are left as they were). Falls back to one claim at a time when the store does
        not say which condition failed."""
        pending = list(claims)
        taken: dict[str, str | None] = {}
        while pending:
            writes = [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._claim_record(order, source),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
                for order, source in pending
            ]
            try:
                self._db.transact_write_items(TransactItems=writes)
                return taken
            except ClientError as exc:
                refusal = Refusal.of(exc)
                if not refusal.cancelled:
                    raise
                failed = refusal.conditions_failed(len(pending))
                if not failed:
                    break
                for n in sorted(failed):
                    order_id = pending[n][0].order_id
                    existing = self.get_order(order_id) or {}
                    taken[order_id] = existing.get("source")
                pending = [claim for n, claim in enumerate(pending) if n not in failed]
        for order, source in pending:  # the slow, always-correct way
            try:
                self.claim(order, source)
            except DuplicateOrder as exc:
                taken[order.order_id] = exc.source
        return taken

    def release(self, order_id: str, source: str) -> None:
        """Undo a claim whose message never reached the queue (only if still ours and unprocessed)."""
        self._release_claim(order_key(order_id), "order_status", RECEIVED, source)

    def _release_claim(self, key: dict[str, Any], status: str, received: str, source: str) -> None:
        """Delete a claim (an order's, a restock's) only while it is still `received` and the claim of `source`."""
        with unless_condition_failed():
            self._db.delete_item(
                TableName=self._table,
                Key=key,
                ConditionExpression=f"{status} = :received AND #source = :source",
                ExpressionAttributeNames={"#source": "source"},
                ExpressionAttributeValues={":received": {"S": received}, ":source": {"S": source}},
            )

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        response = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        item = self._get(order_key(order_id))
        return _plain(item) if item else None

    def get_product(self, product_id: str) -> dict[str, Any] | None:
        item = self._get(product_key(product_id))
        return _plain(item) if item else None

    def stock_levels(self, product_ids: Iterable[str]) -> tuple[dict[str, int], dict[str, int]]:
        """`available` and `waiting` (items queued for it) of each product, read consistently in rounds of up to
        100 keys (BatchGetItem's limit). Products without a record are absent from both."""
        wanted = [product_key(pid) for pid in dict.fromkeys(product_ids)]
        available: dict[str, int] = {}
        waiting: dict[str, int] = {}
        for start in range(0, len(wanted), 100):
            keys = wanted[start : start + 100]
            while keys:
                request = {
                    self._table: {
                        "Keys": keys,
                        "ConsistentRead": True,
                        "ProjectionExpression": "PK, #available, #waiting",
                        "ExpressionAttributeNames": {"#available": "available", "#waiting": "waiting"},
                    }
                }
                response = self._db.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    product_id = item["PK"]["S"].removeprefix("PRODUCT#")
                    available[product_id] = int(item.get("available", {}).get("N", "0"))
                    waiting[product_id] = int(item.get("waiting", {}).get("N", "0"))
                keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
        return available, waiting

    def prepare_commit(self, decision: StockDecision, queued_at: datetime | None = None) -> PreparedWrite:
        """The one transaction that records a decided order and its reservations; a pending item takes its place
        in its product's queue by `queued_at`, the instant the order entered the orders queue (now if unknown).

        It carries its own ClientRequestToken: sending the same prepared write again (after throttling
        or a conflict) is idempotent on DynamoDB's side; a new decision gets a new token.
        """
        order = decision.order
        status = decision.status
        now = _now()
        statuses = {d.item.product_id: d.status for d in decision.items}
        fields = {
            "entity": "order",
            "order_id": order.order_id,
            "order_status": status,
            "order_date": order.order_date,
            "processed_at": now,
            "document": order.document,
            "items": [
                {
                    "product_id": i.product_id,
                    "quantity": i.quantity,
                    "unit_price": i.unit_price,
                    "item_status": statuses[i.product_id],
                }
                for i in order.items
            ],
            "items_total": order.items_total,
            "pending_count": len(decision.pending),
            "pending_notified": False,
            "GSI1PK": status_partition(status),
            "GSI1SK": f"{order.order_date}#{order.order_id}",
        }
        names = {f"#f{n}": name for n, name in enumerate(fields)}
        values = {f":f{n}": _serializer.serialize(value) for n, value in enumerate(fields.values())}
        assignments = [f"#f{n} = :f{n}" for n in range(len(fields))]
        # An order sent straight to the queue was never claimed: it gets its received_at now.
        names.update({"#received_at": "received_at", "#source": "source", "#status": "order_status"})
        values.update({":now": {"S": now}, ":queue": {"S": "queue"}, ":received": {"S": RECEIVED}})
        assignments += ["#received_at = if_not_exists(#received_at, :now)", "#source = if_not_exists(#source, :queue)"]
        names["#history"] = "status_history"
        values.update(
            {":entry": _serializer.serialize([history_entry(status, now, decision.reason)]), ":none": {"L": []}}
        )
        assignments.append("#history = list_append(if_not_exists(#history, :none), :entry)")
        names["#message"] = "message"  # the claim's copy for the sweeper: the order is no longer waiting to be sent
        writes: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": order_key(order.order_id),
                    "UpdateExpression": "SET " + ", ".join(assignments) + " REMOVE #message",
                    "ConditionExpression": "attribute_not_exists(PK) OR #status = :received",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        for item in decision.reserved:
            # Nobody may be waiting for the product: a new order never takes stock ahead of an older pending item.
            writes.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": product_key(item.product_id),
                        "UpdateExpression": "SET #available = #available - :q, #reserved = #reserved + :q",
                        "ConditionExpression": (
                            "attribute_exists(PK) AND #available >= :q"
                            " AND (attribute_not_exists(#waiting) OR #waiting <= :zero)"
                        ),
                        "ExpressionAttributeNames": _STOCK_NAMES,
                        "ExpressionAttributeValues": {":q": {"N": str(item.quantity)}, ":zero": {"N": "0"}},
                    }
                }
            )
        queue = queue_position(queued_at or datetime.now(UTC), order.order_id) if decision.pending else ""
        queued = {item.product_id for item in decision.queued}
        for item in decision.pending:
            # The item joins its product's queue only in the state it was decided in: for want of stock, or behind
            # others while the stock would cover it (the caller then has the queue looked at again). Otherwise a
            # restock released in between would leave it waiting beside free stock: decide again.
            if item.product_id in queued:
                condition = "#waiting > :zero AND #available >= :q"
            else:
                condition = "attribute_not_exists(#available) OR #available < :q"
            writes.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": product_key(item.product_id),
                        "UpdateExpression": "SET product_id = if_not_exists(product_id, :pid) ADD #waiting :one",
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#available": "available", "#waiting": "waiting"},
                        "ExpressionAttributeValues": {
                            ":pid": {"S": item.product_id},
                            ":q": {"N": str(item.quantity)},
                            ":one": {"N": "1"},
                            **({":zero": {"N": "0"}} if item.product_id in queued else {}),
                        },
                    }
                }
            )
            pending = {
                "PK": order_pk(order.order_id),
                "SK": pending_sk(item.product_id),
                "entity": "pending_item",
                "order_id": order.order_id,
                "product_id": item.product_id,
                "quantity": item.quantity,
                "item_status": PENDING,
                "GSI1PK": queue_partition(item.product_id),
                "GSI1SK": queue,
            }
            writes.append({"Put": {"TableName": self._table, "Item": _item(pending)}})
        return PreparedWrite(order.order_id, writes, uuid.uuid4().hex)

    def commit(self, write: PreparedWrite) -> None:
        """Send a prepared write; translate a cancellation into what the caller must do next."""
        order_id = write.order_id
        try:
            self._db.transact_write_items(TransactItems=write.items, ClientRequestToken=write.token)
        except ClientError as exc:
            refusal = Refusal.of(exc)
            if refusal.cancelled:
                reasons = refusal.reasons
                if refusal.failed_at(0):
                    raise AlreadyProcessed(order_id) from exc
                if "ConditionalCheckFailed" in reasons[1:]:
                    raise StockChanged(order_id) from exc
                if not reasons:
                    # Some emulators omit the reasons: find out which condition failed by reading.
                    current = self.get_order(order_id)
                    if current and current.get("order_status") != RECEIVED:
                        raise AlreadyProcessed(order_id) from exc
                    raise StockChanged(order_id) from exc
                raise refusal.busy() from exc
            if refusal.throttled:
                raise refusal.busy() from exc
            raise

    def mark_notified(self, order_id: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=order_key(order_id),
            UpdateExpression="SET pending_notified = :true",
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )

    # -- claims left behind ----------------------------------------------------------------------
    def stuck_claims(self, partition: str, received_before: str, limit: int) -> list[dict[str, Any]]:
        """Claims of `partition` (CLAIMED_ORDERS or CLAIMED_RESTOCKS) received before `received_before` whose
        message is not known to be sent, oldest first, at most `limit` (from GSI1, which may lag its table)."""
        pages = self._db.get_paginator("query").paginate(
            TableName=self._table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk AND GSI1SK < :before",
            ExpressionAttributeValues={":pk": {"S": partition}, ":before": {"S": received_before}},
            PaginationConfig={"MaxItems": limit},
        )
        return [_plain(item) for page in pages for item in page.get("Items", [])]

    def mark_sent(self, order_ids: list[str]) -> None:
        """Record that these claimed orders' messages are in the queue: each leaves the sweeper's partition for
        `STATUS#Recebido`, unless it moved on already (processed, or released). Up to 100 per transaction.

        Best effort: the messages are sent either way, and a claim left unmarked is only sent again by the sweeper,
        which the queue's deduplication and the processor's conditions make harmless."""
        try:
            self._mark_sent(order_ids)
        except (BotoCoreError, ClientError) as exc:
            log("WARNING", "sent orders not marked; the sweeper will send them again", error=repr(exc))

    def _mark_sent(self, order_ids: list[str]) -> None:
        values = {":received": {"S": status_partition(RECEIVED)}, ":unsent": {"S": CLAIMED_ORDERS}}
        pending = list(dict.fromkeys(order_ids))
        while pending:
            chunk, pending = pending[:100], pending[100:]
            writes = [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": order_key(order_id),
                        "UpdateExpression": _SENT,
                        "ConditionExpression": _UNSENT,
                        "ExpressionAttributeValues": values,
                    }
                }
                for order_id in chunk
            ]
            try:
                self._db.transact_write_items(TransactItems=writes)
            except ClientError as exc:
                refusal = Refusal.of(exc)
                if not refusal.cancelled:
                    raise
                failed = refusal.conditions_failed(len(chunk))
                if failed:
                    pending = [o for n, o in enumerate(chunk) if n not in failed] + pending
                    continue
                for order_id in chunk:  # the store did not say which: one at a time, each on its own condition
                    with unless_condition_failed():
                        self._db.update_item(
                            TableName=self._table,
                            Key=order_key(order_id),
                            UpdateExpression=_SENT,
                            ConditionExpression=_UNSENT,
                            ExpressionAttributeValues=values,
                        )

    def mark_restock_sent(self, restock_id: str) -> None:
        """Record that the restock's message is in the queue: it leaves the sweeper's partition (best effort, as
        mark_sent)."""
        try:
            with unless_condition_failed():
                self._db.update_item(
                    TableName=self._table,
                    Key=restock_key(restock_id),
                    UpdateExpression="REMOVE GSI1PK, GSI1SK",
                    ConditionExpression="GSI1PK = :unsent",
                    ExpressionAttributeValues={":unsent": {"S": CLAIMED_RESTOCKS}},
                )
        except (BotoCoreError, ClientError) as exc:
            log("WARNING", "sent restock not marked; the sweeper will send it again", error=repr(exc))

    # -- restocks -------------------------------------------------------------------------------
    def claim_restock(self, restock: Restock, source: str) -> None:
        """Record the restock as received, once per restock_id; raise DuplicateRestock otherwise."""
        received_at = _now()
        record = {
            "PK": restock_pk(restock.restock_id),
            "SK": "RESTOCK",
            "entity": "restock",
            "restock_status": RESTOCK_RECEIVED,
            "source": source,
            "received_at": received_at,
            "GSI1PK": CLAIMED_RESTOCKS,
            "GSI1SK": f"{received_at}#{restock.restock_id}",
            **restock.as_message(),
        }
        try:
            self._db.put_item(
                TableName=self._table,
                Item=_item(record),
                ConditionExpression="attribute_not_exists(PK)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if Refusal.of(exc).condition_failed:
                old = exc.response.get("Item") or self._get(restock_key(restock.restock_id)) or {}
                raise DuplicateRestock(restock.restock_id, _plain(old)) from exc
            raise

    def release_restock_claim(self, restock_id: str, source: str) -> None:
        """Undo a restock claim whose message never reached the queue (only if still ours and not applied)."""
        self._release_claim(restock_key(restock_id), "restock_status", RESTOCK_RECEIVED, source)

    def apply_restock(self, restock: Restock) -> bool:
        """Raise the product's `available` by the restock, in the same transaction that marks the restock
        applied; return False when it was applied before (a second delivery changes nothing)."""
        now = _now()
        writes = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": restock_key(restock.restock_id),
                    "UpdateExpression": (
                        "SET restock_status = :applied, applied_at = :now, product_id = :pid, quantity = :q,"
                        " entity = :entity REMOVE GSI1PK, GSI1SK"
                    ),
                    # A restock sent straight to the queue was never claimed: it is applied all the same.
                    "ConditionExpression": "attribute_not_exists(PK) OR restock_status = :received",
                    "ExpressionAttributeValues": {
                        ":applied": {"S": RESTOCK_APPLIED},
                        ":received": {"S": RESTOCK_RECEIVED},
                        ":now": {"S": now},
                        ":pid": {"S": restock.product_id},
                        ":q": {"N": str(restock.quantity)},
                        ":entity": {"S": "restock"},
                    },
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": product_key(restock.product_id),
                    # A product nobody stocked before gets its record here: orders may already wait for it.
                    "UpdateExpression": (
                        "SET product_id = if_not_exists(product_id, :pid), restocked_at = :now,"
                        " #reserved = if_not_exists(#reserved, :zero) ADD #available :q"
                    ),
                    "ExpressionAttributeNames": {"#available": "available", "#reserved": "reserved"},
                    "ExpressionAttributeValues": {
                        ":pid": {"S": restock.product_id},
                        ":now": {"S": now},
                        ":zero": {"N": "0"},
                        ":q": {"N": str(restock.quantity)},
                    },
                }
            },
        ]
        try:
            # No token of ours (botocore adds a fresh one per call): the marker's condition is the idempotency,
            # across any time span.
            self._db.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            refusal = Refusal.of(exc)
            if refusal.cancelled:
                if refusal.failed_at(0):
                    return False
                if not refusal.reasons:
                    current = self._get(restock_key(restock.restock_id)) or {}
                    if current.get("restock_status", {}).get("S") == RESTOCK_APPLIED:
                        return False
                raise refusal.busy() from exc
            if refusal.throttled:
                raise refusal.busy() from exc
            raise
        return True

    def get_restock(self, restock_id: str) -> dict[str, Any] | None:
        """The restock record: its status and `released_count`, not the orders it served (see released_orders)."""
        item = self._get(restock_key(restock_id))
        return _plain(item) if item else None

    def released_orders(
        self, restock_id: str, after: str | None = None, limit: int = RELEASED_PAGE
    ) -> tuple[list[str], str | None]:
        """One page of the orders a restock served, in queue order, starting after the queue position `after`;
        and the position the next page starts after (None on the last page)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :released)",
            "ExpressionAttributeValues": {":pk": {"S": restock_pk(restock_id)}, ":released": {"S": RELEASED}},
            "ProjectionExpression": "SK, order_id",
            "ConsistentRead": True,
            "Limit": limit + 1,  # one more than the page: whether a next page exists, without an empty last one
        }
        if after is not None:
            request["ExclusiveStartKey"] = released_key(restock_id, after)
        found: list[dict[str, Any]] = []
        while len(found) <= limit:
            response = self._db.query(**request)
            found += response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
            request["Limit"] = limit + 1 - len(found)
        page = found[:limit]
        more = len(found) > limit
        return [item["order_id"]["S"] for item in page], page[-1]["SK"]["S"].removeprefix(RELEASED) if more else None

    def mark_restock_released(self, restock_id: str) -> None:
        """Record that the restock's release ran to its end (the orders it served are recorded as it goes)."""
        self._db.update_item(
            TableName=self._table,
            Key=restock_key(restock_id),
            UpdateExpression="SET released_at = :now",
            ExpressionAttributeValues={":now": {"S": _now()}},
        )

    def pending_queue(self, product_id: str, limit: int = 100) -> list[PendingItem]:
        """The items waiting for a product, first queued first (GSI1: PENDING#<product>)."""
        response = self._db.query(
            TableName=self._table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": {"S": queue_partition(product_id)}},
            ScanIndexForward=True,
            Limit=limit,
        )
        return [
            PendingItem(
                order_id=str(record["order_id"]),
                product_id=str(record["product_id"]),
                quantity=int(record["quantity"]),
                queued_at=str(record["GSI1SK"]),
            )
            for record in map(_plain, response.get("Items", []))
        ]

    def still_pending(self, item: PendingItem) -> bool:
        """Whether the item's pending record is still in the table (a consistent read, unlike the index)."""
        return self._get(pending_key(item.order_id, item.product_id)) is not None

    def reserve_pending(self, item: PendingItem, order: dict[str, Any], restock_id: str | None) -> bool:
        """Reserve one pending item for a restock in one transaction: the product's stock, the item's marker, the
        order, and the restock's count and record of the order it served. Return True when it was the order's last
        pending item (the order is then `Novo Pedido`).

        Raises StockChanged (not enough `available` any more), ItemGone (already reserved) or OrderChanged
        (the order moved since it was read: read it again)."""
        items = order.get("items", [])
        index = next(n for n, i in enumerate(items) if i["product_id"] == item.product_id)
        count = order.get("pending_count")
        left = int(count) if count is not None else sum(1 for i in items if i.get("item_status") == PENDING)
        last = left <= 1
        now = _now()
        reason = release_reason(restock_id)
        names = {"#items": "items", "#status": "order_status", "#count": "pending_count"}
        values: dict[str, Any] = {
            ":reserved": {"S": RESERVED},
            ":pending": {"S": PENDING},
            ":pp": {"S": PRODUCT_PENDING},
            ":left": {"N": str(left - 1)},
        }
        assignments = [f"#items[{index}].item_status = :reserved", "#count = :left"]
        if last:
            names["#history"] = "status_history"
            values.update(
                {
                    ":new": {"S": NEW_ORDER},
                    ":gsi": {"S": status_partition(NEW_ORDER)},
                    ":now": {"S": now},
                    ":entry": _serializer.serialize([history_entry(NEW_ORDER, now, reason)]),
                    ":none": {"L": []},
                }
            )
            assignments += [
                "#status = :new",
                "GSI1PK = :gsi",
                "released_at = :now",
                "#history = list_append(if_not_exists(#history, :none), :entry)",
            ]
        condition = f"#status = :pp AND #items[{index}].item_status = :pending AND "
        if count is not None:
            values[":count"] = {"N": str(left)}
            condition += "#count = :count"
        else:  # an order written before pending_count existed
            condition += "attribute_not_exists(#count)"
        writes: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": product_key(item.product_id),
                    "UpdateExpression": (
                        "SET #available = #available - :q, #reserved = #reserved + :q ADD #waiting :minus"
                    ),
                    "ConditionExpression": "#available >= :q",
                    "ExpressionAttributeNames": _STOCK_NAMES,
                    "ExpressionAttributeValues": {":q": {"N": str(item.quantity)}, ":minus": {"N": "-1"}},
                }
            },
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": pending_key(item.order_id, item.product_id),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": order_key(item.order_id),
                    "UpdateExpression": "SET " + ", ".join(assignments),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            },
        ]
        if restock_id is not None:
            # Recorded with the reservation itself, so a restock interrupted and delivered again lists every order
            # it served, once. Each order is an item of its own in the restock's partition and the restock record
            # only counts them: a list in the record would grow with every order until DynamoDB's 400 KB item limit
            # refused the reservation, and every write of it would cost more than the one before.
            released = {
                "PK": restock_pk(restock_id),
                "SK": f"{RELEASED}{item.queued_at}",
                "entity": "released_order",
                "order_id": item.order_id,
                "quantity": item.quantity,
                "released_at": now,
            }
            writes += [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": restock_key(restock_id),
                        "UpdateExpression": "ADD released_count :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Put": {"TableName": self._table, "Item": _item(released)}},
            ]
        if last:
            # The outbox: the order-released message is published after the commit, from this record, so a
            # failed publish is retried by the next release of the product instead of being lost.
            email = order.get("document", {}).get("customer", {}).get("email", "")
            outbox = {
                "PK": notices_pk(item.product_id),
                "SK": order_pk(item.order_id),
                "entity": "release_notice",
                "order_id": item.order_id,
                "customer_email": email,
                "reason": reason,
                "released_at": now,
                "items": [{"product_id": i["product_id"], "quantity": i["quantity"]} for i in items],
            }
            writes.append({"Put": {"TableName": self._table, "Item": _item(outbox)}})
        try:
            self._db.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            refusal = Refusal.of(exc)
            if not refusal.cancelled:
                if refusal.throttled:
                    raise refusal.busy() from exc
                raise
            if refusal.failed_at(0):
                raise StockChanged(item.product_id) from exc
            if refusal.failed_at(1):
                raise ItemGone(item.order_id) from exc
            if refusal.failed_at(2) or not refusal.reasons:
                raise OrderChanged(item.order_id) from exc  # with no reasons the caller reads everything again
            raise refusal.busy() from exc
        return last

    def release_notices(self, product_id: str) -> list[dict[str, Any]]:
        """Orders completed by releases of this product whose message is not yet published (every page: a long
        release leaves thousands, more than the 1 MB one Query returns)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": notices_pk(product_id)}},
            "ConsistentRead": True,
        }
        notices: list[dict[str, Any]] = []
        while True:
            response = self._db.query(**request)
            notices += [_plain(item) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return notices
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def clear_release_notice(self, product_id: str, order_id: str) -> None:
        self._db.delete_item(TableName=self._table, Key=notice_key(product_id, order_id))

    # -- files ----------------------------------------------------------------------------------
    def file_done(self, file_id: str) -> bool:
        return self._get(file_key(file_id)) is not None

    def save_file_part(self, file_id: str, start: int, part: dict[str, Any]) -> None:
        """Keep what the chunk of a file starting at entry `start` came to, so that a validator killed or out of
        time resumes after it instead of from the top (one JSON string: a chunk is at most 100 entries)."""
        item = {"PK": file_pk(file_id), "SK": part_sk(start), "entity": "file_part", "part": to_json(part)}
        self._db.put_item(TableName=self._table, Item=_item(item))

    def file_parts(self, file_id: str) -> dict[int, dict[str, Any]]:
        """The chunks of a file already done, by their first entry."""
        pages = self._db.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :part)",
            ExpressionAttributeValues={":pk": {"S": file_pk(file_id)}, ":part": {"S": PART}},
            ConsistentRead=True,
        )
        parts = {}
        for page in pages:
            for item in page.get("Items", []):
                parts[int(item["SK"]["S"].removeprefix(PART))] = json.loads(item["part"]["S"])
        return parts

    def mark_file_done(self, file_id: str, report: FileReport, report_key: str) -> None:
        record = {
            "PK": file_pk(file_id),
            "SK": FILE,
            "entity": "file",
            "bucket": report.bucket,
            "key": report.key,
            "received": report.received,
            "accepted": len(report.accepted),
            "rejected": len(report.rejections),
            "report_key": report_key,
            "processed_at": _now(),
        }
        self._db.put_item(TableName=self._table, Item=_item(record))


class OrderQueue:
    """The FIFO queue of validated orders; one message group per order."""

    def __init__(self, client: Any, url: str) -> None:
        self._sqs = client
        self._url = url

    @staticmethod
    def _entry(order: Order) -> dict[str, Any]:
        # The group is the order: on AWS, FIFO throughput grows with distinct groups, and stock
        # consistency comes from DynamoDB conditions, not from ordering between orders.
        return {
            "MessageBody": encode_order(order),
            "MessageGroupId": order.order_id,
            "MessageDeduplicationId": order.order_id,
        }

    def send(self, order: Order) -> None:
        self._sqs.send_message(QueueUrl=self._url, **self._entry(order))

    def send_batch(self, orders: list[Order]) -> list[str]:
        """Send in batches of ten; return the order_ids SQS did not take (a failed call refuses its batch)."""
        failed: list[str] = []
        for start in range(0, len(orders), 10):
            chunk = orders[start : start + 10]
            entries = [{"Id": str(n), **self._entry(order)} for n, order in enumerate(chunk)]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            except (BotoCoreError, ClientError):
                failed += [order.order_id for order in chunk]
                continue
            failed += [chunk[int(f["Id"])].order_id for f in response.get("Failed", [])]
        return failed


class RestockQueue:
    """The FIFO queue of restocks; one message group per product, so releases of a product never overlap."""

    def __init__(self, client: Any, url: str) -> None:
        self._sqs = client
        self._url = url

    def send(self, restock: Restock) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=to_json(restock.as_message()),
            MessageGroupId=restock.product_id,
            MessageDeduplicationId=restock.restock_id,
        )

    def release(self, product_id: str, dedup_id: str, restock_id: str | None = None) -> None:
        """Ask for the product's queue to be looked at again, in its restocks' message group: after an item joined
        it behind others while stock was there, or to go on with a release that ran out of time."""
        message: dict[str, Any] = {"release": product_id}
        if restock_id is not None:
            message["restock_id"] = restock_id
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=to_json(message),
            MessageGroupId=product_id,
            MessageDeduplicationId=dedup_id,
        )


class Notifier:
    """SNS messages; personal data is masked before it leaves (orders.masking: by field name and by shape)."""

    def __init__(self, client: Any) -> None:
        self._sns = client

    def pending_stock(self, topic_arn: str, notice: PendingNotice) -> None:
        message = {
            "event": "order_pending",
            "order_id": notice.order_id,
            "order_status": PRODUCT_PENDING,
            "customer_email": notice.customer_email,
            "pending_items": [{"product_id": pid, "quantity": qty} for pid, qty in notice.items],
        }
        self._publish(topic_arn, f"Pedido {notice.order_id}: produto pendente", message)

    def order_released(self, topic_arn: str, notice: dict[str, Any]) -> None:
        """On the pending topic, with event `order_released`: the pending order is now `Novo Pedido`."""
        message = {
            "event": "order_released",
            "order_id": notice["order_id"],
            "order_status": NEW_ORDER,
            "customer_email": str(notice.get("customer_email", "")),
            "reason": notice.get("reason"),
            "released_at": notice.get("released_at"),
            "items": [
                {"product_id": str(i["product_id"]), "quantity": int(i["quantity"])} for i in notice.get("items", [])
            ],
        }
        self._publish(topic_arn, f"Pedido {notice['order_id']}: liberado", message)

    def dead_letter(self, topic_arn: str, notice: dict[str, Any]) -> None:
        self._publish(topic_arn, f"Mensagem movida para a DLQ ({notice.get('queue')})", notice, "message_dead_lettered")

    def file_report(self, topic_arn: str, report: FileReport) -> None:
        subject = "Arquivo de reposição com erros" if report.kind == "restocks" else "Arquivo de pedidos com erros"
        self._publish(topic_arn, subject, report.as_dict())

    def _publish(self, topic_arn: str, subject: str, message: dict[str, Any], event: str | None = None) -> None:
        self._sns.publish(
            TopicArn=topic_arn,
            Subject=mask_text(subject)[:100],
            Message=to_json(mask_document(message)),
            MessageAttributes={"event": {"DataType": "String", "StringValue": event or str(message["event"])}},
        )


class FileStore:
    """Data-lake objects and their reports."""

    def __init__(self, client: Any) -> None:
        self._s3 = client

    def read(self, bucket: str, key: str, max_bytes: int) -> bytes | None:
        """The object's bytes, or None when it is larger than max_bytes (it is then not read)."""
        head = self._s3.head_object(Bucket=bucket, Key=key)
        if int(head.get("ContentLength", 0)) > max_bytes:
            return None
        body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def write_report(self, bucket: str, key: str, report: FileReport) -> None:
        self._s3.put_object(
            Bucket=bucket, Key=key, Body=to_json(report.as_dict()).encode(), ContentType="application/json"
        )
