"""API floor: claim the order_id with one conditional PutItem, send the order to the FIFO queue, answer 202.

The least a POST /orders can do on this emulator; `sandbox.bench` measures the pipeline against it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
from botocore.exceptions import ClientError

_TABLE = os.environ["TABLE_NAME"]
_QUEUE_URL = os.environ["QUEUE_URL"]
_db = boto3.client("dynamodb")
_sqs = boto3.client("sqs")


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = event.get("body") or ""
    order_id = str(json.loads(body)["order_id"])
    try:
        _db.put_item(
            TableName=_TABLE,
            Item={
                "PK": {"S": f"ORDER#{order_id}"},
                "SK": {"S": "ORDER"},
                "order_id": {"S": order_id},
                "order_status": {"S": "Recebido"},
            },
            ConditionExpression="attribute_not_exists(PK)",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return _response(409, {"order_id": order_id})
        raise
    _sqs.send_message(QueueUrl=_QUEUE_URL, MessageBody=body, MessageGroupId=order_id, MessageDeduplicationId=order_id)
    # One line per invocation: MiniStack waits ~50 ms for the output of a silent handler.
    print(json.dumps({"accepted": order_id}), flush=True)
    return _response(202, {"order_id": order_id})
