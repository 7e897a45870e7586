"""Adapters over DynamoDB, SQS, SNS and S3; AWS errors become the errors below."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from orders.codec import encode_order, to_json
from orders.masking import mask_email
from orders.model import PENDING, PRODUCT_PENDING, RECEIVED, Order
from orders.report import FileReport
from orders.stock import PendingNotice, StockDecision

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "InternalServerError",
}


class DuplicateOrder(Exception):
    """The order_id was already received; `source` says where from."""

    def __init__(self, order_id: str, source: str | None) -> None:
        super().__init__(f"order {order_id} already received")
        self.source = source


class AlreadyProcessed(Exception):
    """The order is already in a final state: a redelivery."""


class StockChanged(Exception):
    """Some product no longer has the stock the decision counted on: decide again."""


class StoreBusy(Exception):
    """Throttling or a transaction conflict: safe to retry the same write."""


@dataclass(frozen=True)
class PreparedWrite:
    order_id: str
    items: list[dict[str, Any]]
    token: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _order_key(order_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"ORDER#{order_id}"}, "SK": {"S": "ORDER"}}


def _product_key(product_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"PRODUCT#{product_id}"}, "SK": {"S": "STOCK"}}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class OrderStore:
    """The single table: orders, their pending items, product stock and processed files."""

    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    # -- orders -------------------------------------------------------------------------------
    @staticmethod
    def _claim_record(order: Order, source: str) -> dict[str, Any]:
        record = {
            "PK": f"ORDER#{order.order_id}",
            "SK": "ORDER",
            "entity": "order",
            "order_id": order.order_id,
            "order_status": RECEIVED,
            "order_date": order.order_date,
            "received_at": _now(),
            "source": source,
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
            "GSI1PK": f"STATUS#{RECEIVED}",
            "GSI1SK": f"{order.order_date}#{order.order_id}",
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
            if _code(exc) == "ConditionalCheckFailedException":
                old = exc.response.get("Item") or self._get(_order_key(order.order_id)) or {}
                source_attr = old.get("source", {})
                raise DuplicateOrder(order.order_id, source_attr.get("S")) from exc
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
                if _code(exc) != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
                failed = {n for n, code in enumerate(reasons) if code == "ConditionalCheckFailed"}
                if (
                    not failed
                    or len(reasons) != len(pending)
                    or any(c not in {"None", "ConditionalCheckFailed"} for c in reasons)
                ):
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
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=_order_key(order_id),
                ConditionExpression="order_status = :received AND #source = :source",
                ExpressionAttributeNames={"#source": "source"},
                ExpressionAttributeValues={":received": {"S": RECEIVED}, ":source": {"S": source}},
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        response = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        item = self._get(_order_key(order_id))
        return _plain(item) if item else None

    def get_product(self, product_id: str) -> dict[str, Any] | None:
        item = self._get(_product_key(product_id))
        return _plain(item) if item else None

    def available_stock(self, product_ids: Iterable[str]) -> dict[str, int]:
        """`available` of each product in one round trip; products without a record are absent."""
        keys = [_product_key(pid) for pid in dict.fromkeys(product_ids)]
        stock: dict[str, int] = {}
        while keys:
            request = {self._table: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "PK, available"}}
            response = self._db.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._table, []):
                stock[item["PK"]["S"].removeprefix("PRODUCT#")] = int(item["available"]["N"])
            keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
        return stock

    def prepare_commit(self, decision: StockDecision) -> PreparedWrite:
        """The one transaction that records a decided order and its reservations.

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
            "pending_notified": False,
            "GSI1PK": f"STATUS#{status}",
            "GSI1SK": f"{order.order_date}#{order.order_id}",
        }
        names = {f"#f{n}": name for n, name in enumerate(fields)}
        values = {f":f{n}": _serializer.serialize(value) for n, value in enumerate(fields.values())}
        assignments = [f"#f{n} = :f{n}" for n in range(len(fields))]
        # An order sent straight to the queue was never claimed: it gets its received_at now.
        names.update({"#received_at": "received_at", "#source": "source", "#status": "order_status"})
        values.update({":now": {"S": now}, ":queue": {"S": "queue"}, ":received": {"S": RECEIVED}})
        assignments += ["#received_at = if_not_exists(#received_at, :now)", "#source = if_not_exists(#source, :queue)"]
        writes: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _order_key(order.order_id),
                    "UpdateExpression": "SET " + ", ".join(assignments),
                    "ConditionExpression": "attribute_not_exists(PK) OR #status = :received",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        for item in decision.reserved:
            writes.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _product_key(item.product_id),
                        "UpdateExpression": "SET available = available - :q, reserved = reserved + :q",
                        "ConditionExpression": "attribute_exists(PK) AND available >= :q",
                        "ExpressionAttributeValues": {":q": {"N": str(item.quantity)}},
                    }
                }
            )
        for item in decision.pending:
            pending = {
                "PK": f"ORDER#{order.order_id}",
                "SK": f"PENDING#{item.product_id}",
                "entity": "pending_item",
                "order_id": order.order_id,
                "product_id": item.product_id,
                "quantity": item.quantity,
                "item_status": PENDING,
                "GSI1PK": f"PENDING#{item.product_id}",
                "GSI1SK": f"{order.order_date}#{order.order_id}",
            }
            writes.append({"Put": {"TableName": self._table, "Item": _item(pending)}})
        return PreparedWrite(order.order_id, writes, uuid.uuid4().hex)

    def commit(self, write: PreparedWrite) -> None:
        """Send a prepared write; translate a cancellation into what the caller must do next."""
        order_id = write.order_id
        try:
            self._db.transact_write_items(TransactItems=write.items, ClientRequestToken=write.token)
        except ClientError as exc:
            code = _code(exc)
            if code == "TransactionCanceledException":
                reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    raise AlreadyProcessed(order_id) from exc
                if "ConditionalCheckFailed" in reasons[1:]:
                    raise StockChanged(order_id) from exc
                if not reasons:
                    # Some emulators omit the reasons: find out which condition failed by reading.
                    current = self.get_order(order_id)
                    if current and current.get("order_status") != RECEIVED:
                        raise AlreadyProcessed(order_id) from exc
                    raise StockChanged(order_id) from exc
                raise StoreBusy(f"transaction cancelled: {reasons}") from exc
            if code in _THROTTLED:
                raise StoreBusy(code) from exc
            raise

    def mark_notified(self, order_id: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=_order_key(order_id),
            UpdateExpression="SET pending_notified = :true",
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )

    # -- files ----------------------------------------------------------------------------------
    def file_done(self, file_id: str) -> bool:
        return self._get({"PK": {"S": f"FILE#{file_id}"}, "SK": {"S": "FILE"}}) is not None

    def mark_file_done(self, file_id: str, report: FileReport, report_key: str) -> None:
        record = {
            "PK": f"FILE#{file_id}",
            "SK": "FILE",
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


class Notifier:
    """SNS messages; personal data is masked before it leaves."""

    def __init__(self, client: Any) -> None:
        self._sns = client

    def pending_stock(self, topic_arn: str, notice: PendingNotice) -> None:
        message = {
            "event": "order_pending",
            "order_id": notice.order_id,
            "order_status": PRODUCT_PENDING,
            "customer_email": mask_email(notice.customer_email),
            "pending_items": [{"product_id": pid, "quantity": qty} for pid, qty in notice.items],
        }
        self._sns.publish(
            TopicArn=topic_arn,
            Subject=f"Pedido {notice.order_id}: produto pendente"[:100],
            Message=to_json(message),
            MessageAttributes={"event": {"DataType": "String", "StringValue": "order_pending"}},
        )

    def dead_letter(self, topic_arn: str, notice: dict[str, Any]) -> None:
        self._sns.publish(
            TopicArn=topic_arn,
            Subject=f"Mensagem movida para a DLQ ({notice.get('queue')})"[:100],
            Message=to_json(notice),
            MessageAttributes={"event": {"DataType": "String", "StringValue": "message_dead_lettered"}},
        )

    def file_report(self, topic_arn: str, report: FileReport) -> None:
        self._sns.publish(
            TopicArn=topic_arn,
            Subject="Arquivo de pedidos com erros"[:100],
            Message=to_json(report.as_dict()),
            MessageAttributes={"event": {"DataType": "String", "StringValue": "file_report"}},
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
