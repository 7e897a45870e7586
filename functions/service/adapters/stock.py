"""The products' stock in the single table, the queue of items waiting for each, and the reservation of a waiting
item for a restock with its outbox message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orders.lifecycle import ItemRelease
from orders.model import NEW_ORDER, PENDING, PRODUCT_PENDING, RESERVED
from orders.restock import PendingItem
from service.adapters.orders import STOCK_NAMES
from service.adapters.table import Table, now, plain, refusal, value
from service.errors import ItemGone, OrderChanged, StockChanged
from service.keys import (
    notice_key,
    notices_pk,
    order_key,
    order_pk,
    pending,
    pending_key,
    product_key,
    product_pk,
    released_sk,
    restock_key,
    restock_pk,
    status_partition,
)


class DynamoStock(Table):
    def get_product(self, product_id: str) -> dict[str, Any] | None:
        return self._get(product_key(product_id))

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
                for record in response.get("Responses", {}).get(self._table, []):
                    product_id = record["PK"]["S"].removeprefix(product_pk(""))
                    available[product_id] = int(record.get("available", {}).get("N", "0"))
                    waiting[product_id] = int(record.get("waiting", {}).get("N", "0"))
                keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
        return available, waiting

    def pending_queue(self, product_id: str, limit: int = 100) -> list[PendingItem]:
        """The items waiting for a product, first queued first (GSI1: PENDING#<product>)."""
        response = self._db.query(
            TableName=self._table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": {"S": pending(product_id)}},
            ScanIndexForward=True,
            Limit=limit,
        )
        items = [plain(record) for record in response.get("Items", [])]
        return [PendingItem(r["order_id"], r["product_id"], int(r["quantity"]), r["GSI1SK"]) for r in items]

    def still_pending(self, waiting: PendingItem) -> bool:
        """Whether the item's pending record is still in the table (a consistent read, unlike the index)."""
        return self._get(pending_key(waiting.order_id, waiting.product_id)) is not None

    def reserve_pending(self, waiting: PendingItem, order: dict[str, Any], restock_id: str | None) -> bool:
        """Reserve one pending item for a restock in one transaction: the product's stock, the item's marker, the
        order, and the restock's count and record of the order it served. Return True when it was the order's last
        pending item (the order is then `Novo Pedido`).

        Raises StockChanged (not enough `available` any more), ItemGone (already reserved) or OrderChanged
        (the order moved since it was read: read it again)."""
        release = ItemRelease.of(order, waiting.product_id, restock_id)
        moment = now()
        names = {"#items": "items", "#status": "order_status", "#count": "pending_count"}
        values: dict[str, Any] = {
            ":reserved": {"S": RESERVED},
            ":pending": {"S": PENDING},
            ":pp": {"S": PRODUCT_PENDING},
            ":left": {"N": str(release.left - 1)},
        }
        assignments = [f"#items[{release.index}].item_status = :reserved", "#count = :left"]
        if release.completes:
            names["#history"] = "status_history"
            values.update(
                {
                    ":new": {"S": NEW_ORDER},
                    ":gsi": {"S": status_partition(NEW_ORDER)},
                    ":now": {"S": moment},
                    ":entry": value([release.history(moment)]),
                    ":none": {"L": []},
                }
            )
            assignments += [
                "#status = :new",
                "GSI1PK = :gsi",
                "released_at = :now",
                "#history = list_append(if_not_exists(#history, :none), :entry)",
            ]
        condition = f"#status = :pp AND #items[{release.index}].item_status = :pending AND "
        if release.counted:
            values[":count"] = {"N": str(release.left)}
            condition += "#count = :count"
        else:  # an order written before pending_count existed
            condition += "attribute_not_exists(#count)"
        writes = [
            self._update(
                product_key(waiting.product_id),
                "SET #available = #available - :q, #reserved = #reserved + :q ADD #waiting :minus",
                "#available >= :q",
                STOCK_NAMES,
                {":q": {"N": str(waiting.quantity)}, ":minus": {"N": "-1"}},
            ),
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": pending_key(waiting.order_id, waiting.product_id),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            self._update(order_key(waiting.order_id), "SET " + ", ".join(assignments), condition, names, values),
        ]
        if restock_id is not None:
            # Recorded with the reservation itself, so a restock interrupted and delivered again lists every order
            # it served, once. Each order is an item of its own in the restock's partition and the restock record
            # only counts them: a list in the record would grow with every order until DynamoDB's 400 KB item limit
            # refused the reservation, and every write of it would cost more than the one before.
            served = {
                "PK": restock_pk(restock_id),
                "SK": released_sk(waiting.queued_at),
                "entity": "released_order",
                "order_id": waiting.order_id,
                "quantity": waiting.quantity,
                "released_at": moment,
            }
            counted = self._update(restock_key(restock_id), "ADD released_count :one", values={":one": {"N": "1"}})
            writes += [counted, self._put(served)]
        if release.completes:
            # The outbox: the order-released message is published after the commit, from this record, so a
            # failed publish is retried by the next release of the product instead of being lost.
            notice = release.notice(order, moment)
            outbox = {
                "PK": notices_pk(waiting.product_id),
                "SK": order_pk(waiting.order_id),
                "entity": "release_notice",
            }
            writes.append(self._put(outbox | notice))
        with refusal() as refused:
            self._db.transact_write_items(TransactItems=writes)
        if refused.failed_at(0):
            raise StockChanged(waiting.product_id) from refused.error
        if refused.failed_at(1):
            raise ItemGone(waiting.order_id) from refused.error
        if refused.failed_at(2) or (refused and not refused.reasons):
            raise OrderChanged(waiting.order_id) from refused.error  # with no reasons the caller reads everything again
        if refused:
            raise refused.busy() from refused.error
        return release.completes

    def release_notices(self, product_id: str) -> list[dict[str, Any]]:
        """Orders completed by releases of this product whose message is not yet published (every page: a long
        release leaves thousands, more than the 1 MB one Query returns)."""
        return self._partition(notices_pk(product_id))

    def clear_release_notice(self, product_id: str, order_id: str) -> None:
        self._db.delete_item(TableName=self._table, Key=notice_key(product_id, order_id))
