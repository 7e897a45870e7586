"""Processing floor: one TransactWriteItems per order, reserving each item's stock and writing the order.

The least the processor can do with a FIFO batch on this emulator; `sandbox.bench` measures against it.
"""

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
    writes: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": _TABLE,
                "Key": {"PK": {"S": f"PRODUCT#{item['product_id']}"}, "SK": {"S": "STOCK"}},
                "UpdateExpression": "SET available = available - :q, reserved = reserved + :q",
                "ConditionExpression": "available >= :q",
                "ExpressionAttributeValues": {":q": {"N": str(int(item["quantity"]))}},
            }
        }
        for item in order["items"]
    ]
    writes.append(
        {
            "Put": {
                "TableName": _TABLE,
                "Item": {
                    "PK": {"S": f"ORDER#{order_id}"},
                    "SK": {"S": "ORDER"},
                    "order_id": {"S": order_id},
                    "order_status": {"S": "Novo Pedido"},
                    "processed_at": {"S": datetime.now(UTC).isoformat(timespec="milliseconds")},
                },
            }
        }
    )
    return writes


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
