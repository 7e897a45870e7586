"""Processing floor: one TransactWriteItems per order, reserving each item's stock and writing the order."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import boto3

_TABLE = os.environ["TABLE_NAME"]
_db = boto3.client("dynamodb")


def _writes(order: dict[str, Any]) -> list[dict[str, Any]]:
    order_id = str(order["order_id"])
    reserve = "SET available = available - :q, reserved = reserved + :q"
    writes: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": _TABLE,
                "Key": {"PK": {"S": f"PRODUCT#{item['product_id']}"}, "SK": {"S": "STOCK"}},
                "UpdateExpression": reserve,
                "ConditionExpression": "available >= :q",
                "ExpressionAttributeValues": {":q": {"N": str(int(item["quantity"]))}},
            }
        }
        for item in order["items"]
    ]
    item = {"PK": f"ORDER#{order_id}", "SK": "ORDER", "order_id": order_id, "order_status": "Novo Pedido"}
    item["processed_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    return [*writes, {"Put": {"TableName": _TABLE, "Item": {k: {"S": v} for k, v in item.items()}}}]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event.get("Records", []):
        try:
            _db.transact_write_items(TransactItems=_writes(json.loads(record["body"])))
        except Exception as exc:
            print(json.dumps({"failed": record.get("messageId"), "error": repr(exc)}), flush=True)
            failures.append({"itemIdentifier": record["messageId"]})
    # One line per invocation: MiniStack waits ~50 ms for the output of a silent handler.
    print(json.dumps({"records": len(event.get("Records", [])), "failed": len(failures)}), flush=True)
    return {"batchItemFailures": failures}
