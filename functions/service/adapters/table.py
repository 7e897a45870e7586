"""What every repository of the single table shares: the client and the table, the record codec, and the one place
a DynamoDB `ClientError` is read and turned into what the callers are told."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from orders.lifecycle import stamp
from service.errors import StoreBusy
from service.logs import log

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

CONDITION_FAILED = "ConditionalCheckFailedException"
CANCELLED = "TransactionCanceledException"
_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "InternalServerError",
}


def now() -> str:
    return stamp(datetime.now(UTC))


def item(values: dict[str, Any]) -> dict[str, Any]:
    """A record as DynamoDB's low-level API takes it."""
    return {name: _serializer.serialize(value) for name, value in values.items()}


def plain(record: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in record.items()}


def value(data: Any) -> dict[str, Any]:
    return _serializer.serialize(data)  # type: ignore[no-any-return]


def token(writes: list[dict[str, Any]]) -> str:
    """A transaction's ClientRequestToken (at most 36 characters), from its writes: the same writes, the same token."""
    return hashlib.sha256(json.dumps(writes, sort_keys=True).encode()).hexdigest()[:36]


@dataclass
class Refusal:
    """Why DynamoDB refused a conditional write or a transaction: its error code and, for a cancelled transaction,
    each write's reason in order ("None" for a write that was not the cause). Empty when nothing was refused."""

    code: str = ""
    reasons: list[str] = field(default_factory=list)
    error: ClientError | None = None

    def __bool__(self) -> bool:
        return bool(self.code)

    def failed_at(self, n: int) -> bool:
        """Whether the transaction's write `n` failed its condition."""
        return len(self.reasons) > n and self.reasons[n] == "ConditionalCheckFailed"

    def conditions_failed(self, writes: int) -> set[int]:
        """The positions of a cancelled transaction of `writes` writes whose condition failed, when the store names
        each write's reason and nothing but conditions went wrong; empty otherwise (the caller then goes one write
        at a time, each on its own condition)."""
        if self.code != CANCELLED or len(self.reasons) != writes:
            return set()
        if any(code not in {"None", "ConditionalCheckFailed"} for code in self.reasons):
            return set()
        return {n for n in range(writes) if self.failed_at(n)}

    def busy(self) -> StoreBusy:
        """The retryable error this refusal is, for a caller that has ruled out every condition."""
        return StoreBusy(f"transaction cancelled: {self.reasons}")


@contextmanager
def refusal() -> Iterator[Refusal]:
    """The one reading of DynamoDB's errors, from their fields, never their message: a failed condition or a
    cancelled transaction is recorded in the Refusal yielded, for the caller to say what it means; throttling and
    conflicts become StoreBusy (safe to retry the same write); anything else goes up as it is."""
    refused = Refusal()
    try:
        yield refused
    except ClientError as exc:
        response = exc.response
        code = str(response.get("Error", {}).get("Code", ""))
        if code in _THROTTLED:
            raise StoreBusy(code) from exc
        if code not in {CONDITION_FAILED, CANCELLED}:
            raise
        refused.code, refused.error = code, exc
        refused.reasons = [str(r.get("Code", "None")) for r in response.get("CancellationReasons", [])]


@contextmanager
def best_effort(failure: str) -> Iterator[None]:
    """A write whose loss costs only a repeat (the sweeper's marks: a claim left unmarked is sent again by the next
    sweep, which the queues' deduplication and the consumers' conditions make harmless): a failed condition means it
    moved on already, and any other failure is logged as `failure`, not raised."""
    try:
        with refusal():
            yield
    except (BotoCoreError, ClientError, StoreBusy) as exc:
        log("WARNING", failure, error=repr(exc))


NEW = "attribute_not_exists(PK)"  # the condition of a record that must not exist yet


class Table:
    """A repository over the single table (service.keys has its layout)."""

    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    def _update(
        self,
        key: dict[str, Any],
        expression: str,
        condition: str = "",
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One Update of a transaction."""
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": condition,
        }
        update |= {"ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
        return {"Update": {name: part for name, part in update.items() if part}}

    def _apply(self, update: dict[str, Any]) -> None:
        """Send one Update of `_update` on its own. The table is named at the call, where tests/unit/test_security.py
        reads which resource each call addresses."""
        self._db.update_item(**{**update["Update"], "TableName": self._table})

    def _put(self, record: dict[str, Any], condition: str = "") -> dict[str, Any]:
        """One Put of a transaction."""
        put = {"TableName": self._table, "Item": item(record), "ConditionExpression": condition}
        return {"Put": {name: part for name, part in put.items() if part}}

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        """The record at `key`, read consistently, as plain values."""
        response = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return plain(response["Item"]) if "Item" in response else None

    def _create(self, record: dict[str, Any], key: dict[str, Any]) -> tuple[Refusal, dict[str, Any]]:
        """Put a record that must not exist yet; when it does, the refusal and the record as it stands."""
        with refusal() as refused:
            self._db.put_item(
                TableName=self._table,
                Item=item(record),
                ConditionExpression=NEW,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        if not refused or refused.error is None:
            return refused, {}
        old = refused.error.response.get("Item")
        return refused, (plain(old) if old else self._get(key)) or {}

    def _release_claim(self, key: dict[str, Any], status: str, received: str, source: str) -> None:
        """Undo a claim (an order's, a restock's) whose message never reached its queue: only while it is still
        `received` and the claim of `source`; otherwise it was not ours to undo."""
        with refusal():
            self._db.delete_item(
                TableName=self._table,
                Key=key,
                ConditionExpression=f"{status} = :received AND #source = :source",
                ExpressionAttributeNames={"#source": "source"},
                ExpressionAttributeValues={":received": {"S": received}, ":source": {"S": source}},
            )

    def unsent(self, partition: str, received_before: datetime, limit: int) -> list[dict[str, Any]]:
        """Claims of GSI1 `partition` (service.keys: CLAIMED_ORDERS, CLAIMED_FILE_ORDERS, CLAIMED_RESTOCKS) received
        before `received_before`, neither processed (applied) nor swept yet, oldest first, at most `limit` (the index
        may lag its table)."""
        pages = self._db.get_paginator("query").paginate(
            TableName=self._table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk AND GSI1SK < :before",
            ExpressionAttributeValues={":pk": {"S": partition}, ":before": {"S": stamp(received_before)}},
            PaginationConfig={"MaxItems": limit},
        )
        return [plain(record) for page in pages for record in page.get("Items", [])]

    def _partition(self, pk: str, sk_prefix: str = "", **query: Any) -> list[dict[str, Any]]:
        """Every record of a partition (whose sort key starts with `sk_prefix`), read consistently, every page (or as
        many as the `query`'s PaginationConfig says)."""
        condition, values = "PK = :pk", {":pk": {"S": pk}}
        if sk_prefix:
            condition, values[":sk"] = condition + " AND begins_with(SK, :sk)", {"S": sk_prefix}
        pages = self._db.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
            **query,
        )
        return [plain(record) for page in pages for record in page.get("Items", [])]
