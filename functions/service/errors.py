"""What the store's callers are told, and the one place a DynamoDB `ClientError` is read to tell it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

CONDITION_FAILED = "ConditionalCheckFailedException"
CANCELLED = "TransactionCanceledException"
_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "InternalServerError",
}


class DuplicateOrder(Exception):
    """The order_id was already received; `source` says where from, `existing` is the record as it stands."""

    def __init__(self, order_id: str, source: str | None, existing: dict[str, Any] | None = None) -> None:
        super().__init__(f"order {order_id} already received")
        self.source = source
        self.existing = existing or {}


class AlreadyProcessed(Exception):
    """The order is already in a final state: a redelivery."""


class StockChanged(Exception):
    """Some product no longer has the stock the decision counted on: decide again."""


class StoreBusy(Exception):
    """Throttling or a transaction conflict: safe to retry the same write."""


class DuplicateRestock(Exception):
    """The restock_id (idempotency key) was already received; `existing` is what it was received with."""

    def __init__(self, restock_id: str, existing: dict[str, Any]) -> None:
        super().__init__(f"restock {restock_id} already received")
        self.existing = existing


class ItemGone(Exception):
    """The pending item is no longer pending: another release reserved it first."""


class OrderChanged(Exception):
    """The order changed between our read and our write (another of its items was released): read again."""


@dataclass(frozen=True)
class Refusal:
    """Why DynamoDB refused a call: its error code and, for a cancelled transaction, each write's reason in
    order ("None" for a write that was not the cause). Read from the error's fields, never from its message."""

    code: str
    reasons: list[str]

    @classmethod
    def of(cls, exc: ClientError) -> Refusal:
        response = exc.response
        reasons = [str(r.get("Code", "None")) for r in response.get("CancellationReasons", [])]
        return cls(str(response.get("Error", {}).get("Code", "")), reasons)

    @property
    def condition_failed(self) -> bool:
        """A single write's condition failed."""
        return self.code == CONDITION_FAILED

    @property
    def cancelled(self) -> bool:
        return self.code == CANCELLED

    @property
    def throttled(self) -> bool:
        return self.code in _THROTTLED

    def failed_at(self, n: int) -> bool:
        """Whether the transaction's write `n` failed its condition."""
        return len(self.reasons) > n and self.reasons[n] == "ConditionalCheckFailed"

    def conditions_failed(self, writes: int) -> set[int]:
        """The positions of a cancelled transaction of `writes` writes whose condition failed, when the store names
        each write's reason and nothing but conditions went wrong; empty otherwise (the caller then goes one write
        at a time, each on its own condition)."""
        if not self.cancelled or len(self.reasons) != writes:
            return set()
        if any(code not in {"None", "ConditionalCheckFailed"} for code in self.reasons):
            return set()
        return {n for n in range(writes) if self.failed_at(n)}

    def busy(self) -> StoreBusy:
        """The retryable error this refusal is, for a caller that has ruled out every condition."""
        return StoreBusy(f"transaction cancelled: {self.reasons}" if self.cancelled else self.code)


@contextmanager
def unless_condition_failed() -> Iterator[None]:
    """A conditional write whose condition failed is no error: the record was not ours to change."""
    try:
        yield
    except ClientError as exc:
        if not Refusal.of(exc).condition_failed:
            raise
