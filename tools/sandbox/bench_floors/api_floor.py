"""API floor: claim the order_id with one conditional PutItem, send the order to the FIFO queue, answer 202."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

_TABLE, _QUEUE_URL = os.environ["TABLE_NAME"], os.environ["QUEUE_URL"]
_db, _sqs = boto3.client("dynamodb"), boto3.client("sqs")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = event.get("body") or ""
    order_id = str(json.loads(body)["order_id"])
    item = {"PK": f"ORDER#{order_id}", "SK": "ORDER", "order_id": order_id, "order_status": "Recebido"}
    try:
        _db.put_item(
            TableName=_TABLE,
            Item={k: {"S": v} for k, v in item.items()},
            ConditionExpression="attribute_not_exists(PK)",
        )
    except _db.exceptions.ConditionalCheckFailedException:
        status = 409
    else:
        _sqs.send_message(
            QueueUrl=_QUEUE_URL, MessageBody=body, MessageGroupId=order_id, MessageDeduplicationId=order_id
        )
        status = 202
        # One line per invocation: MiniStack waits ~50 ms for the output of a silent handler.
        print(json.dumps({"accepted": order_id}), flush=True)
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"order_id": order_id}),
    }
