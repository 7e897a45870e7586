"""The restocks in the single table: claims, the transaction that applies one, and the orders each served."""

from __future__ import annotations

from typing import Any

from orders.restock import RELEASED_PAGE, RESTOCK_APPLIED, RESTOCK_RECEIVED, Restock
from service.adapters.table import Table, best_effort, now, refusal
from service.errors import DuplicateRestock
from service.keys import CLAIMED_RESTOCKS, RELEASED, RESTOCK, key, product_key, released_sk, restock_key, restock_pk


class DynamoRestocks(Table):
    def claim_restock(self, restock: Restock, source: str) -> None:
        """Record the restock as received, once per restock_id; raise DuplicateRestock otherwise."""
        received_at = now()
        record = {
            "PK": restock_pk(restock.restock_id),
            "SK": RESTOCK,
            "entity": "restock",
            "restock_status": RESTOCK_RECEIVED,
            "source": source,
            "received_at": received_at,
            "GSI1PK": CLAIMED_RESTOCKS,
            "GSI1SK": f"{received_at}#{restock.restock_id}",
            **restock.as_message(),
        }
        refused, existing = self._create(record, restock_key(restock.restock_id))
        if refused:
            raise DuplicateRestock(restock.restock_id, existing) from refused.error

    def release_restock_claim(self, restock_id: str, source: str) -> None:
        """Undo a restock claim whose message never reached the queue (only if still ours and not applied)."""
        self._release_claim(restock_key(restock_id), "restock_status", RESTOCK_RECEIVED, source)

    def mark_restock_sent(self, restock_id: str) -> None:
        """The sweeper sent the restock again: it leaves the sweeper's partition (best effort, as mark_sent)."""
        unsent = {":unsent": {"S": CLAIMED_RESTOCKS}}
        with best_effort("sent restock not marked; the sweeper will send it again"):
            self._apply(
                self._update(restock_key(restock_id), "REMOVE GSI1PK, GSI1SK", "GSI1PK = :unsent", values=unsent)
            )

    def apply_restock(self, restock: Restock) -> bool:
        """Raise the product's `available` by the restock, in the same transaction that marks the restock
        applied; return False when it was applied before (a second delivery changes nothing)."""
        moment = now()
        marked = self._update(
            restock_key(restock.restock_id),
            "SET restock_status = :applied, applied_at = :now, product_id = :pid, quantity = :q, entity = :entity"
            " REMOVE GSI1PK, GSI1SK",
            # A restock sent straight to the queue was never claimed: it is applied all the same.
            "attribute_not_exists(PK) OR restock_status = :received",
            values={
                ":applied": {"S": RESTOCK_APPLIED},
                ":received": {"S": RESTOCK_RECEIVED},
                ":now": {"S": moment},
                ":pid": {"S": restock.product_id},
                ":q": {"N": str(restock.quantity)},
                ":entity": {"S": "restock"},
            },
        )
        raised = self._update(
            product_key(restock.product_id),
            # A product nobody stocked before gets its record here: orders may already wait for it.
            "SET product_id = if_not_exists(product_id, :pid), restocked_at = :now,"
            " #reserved = if_not_exists(#reserved, :zero) ADD #available :q",
            names={"#available": "available", "#reserved": "reserved"},
            values={
                ":pid": {"S": restock.product_id},
                ":now": {"S": moment},
                ":zero": {"N": "0"},
                ":q": {"N": str(restock.quantity)},
            },
        )
        writes = [marked, raised]
        # No token of ours (botocore adds a fresh one per call): the marker's condition is the idempotency, across
        # any time span.
        with refusal() as refused:
            self._db.transact_write_items(TransactItems=writes)
        if not refused:
            return True
        if refused.failed_at(0):
            return False
        if (
            not refused.reasons
            and (self.get_restock(restock.restock_id) or {}).get("restock_status") == RESTOCK_APPLIED
        ):
            return False
        raise refused.busy() from refused.error

    def get_restock(self, restock_id: str) -> dict[str, Any] | None:
        """The restock record: its status and `released_count`, not the orders it served (see released_orders)."""
        return self._get(restock_key(restock_id))

    def released_orders(
        self, restock_id: str, after: str | None = None, limit: int = RELEASED_PAGE
    ) -> tuple[list[str], str | None]:
        """One page of the orders a restock served, in queue order, starting after the queue position `after`;
        and the position the next page starts after (None on the last page)."""
        start = {} if after is None else {"ExclusiveStartKey": key(restock_pk(restock_id), released_sk(after))}
        found = self._partition(
            restock_pk(restock_id),
            RELEASED,
            ProjectionExpression="SK, order_id",
            # One more than the page: whether a next page exists, without an empty last one.
            PaginationConfig={"MaxItems": limit + 1, "PageSize": limit + 1},
            **start,
        )
        page = found[:limit]
        more = len(found) > limit
        return [r["order_id"] for r in page], page[-1]["SK"].removeprefix(RELEASED) if more else None

    def mark_restock_released(self, restock_id: str) -> None:
        """Record that the restock's release ran to its end (the orders it served are recorded as it goes)."""
        self._apply(self._update(restock_key(restock_id), "SET released_at = :now", values={":now": {"S": now()}}))
