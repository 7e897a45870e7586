"""Dead-letter queues: `list` shows what is in them (personal data masked), `redrive` moves it back.

Redrive once the cause is fixed: each message returns to its source queue (a FIFO message keeps its
message group, with a new deduplication id) and is deleted from the DLQ only after the send succeeded.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

import boto3

from orders.masking import mask_body_text
from sandbox.records import StackOutputs

PAIRS = {
    "orders": ("OrderDeadLetterQueueUrl", "OrderQueueUrl"),
    "files": ("FileDeadLetterQueueUrl", "FileQueueUrl"),
    "restocks": ("RestockDeadLetterQueueUrl", "RestockQueueUrl"),
}


def _receive(sqs: Any, url: str, visibility: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=visibility, AttributeNames=["All"]
    ).get("Messages", [])
    return messages


def peek(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message of the queue, left in place (made visible again at once)."""
    seen: dict[str, dict[str, Any]] = {}
    while batch := [m for m in _receive(sqs, url, visibility=30) if m["MessageId"] not in seen]:
        seen.update({m["MessageId"]: m for m in batch})
    for message in seen.values():
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return list(seen.values())


def _preview(body: str) -> str:
    return mask_body_text(body)[:300]


def redrive(sqs: Any, dlq_url: str, source_url: str) -> int:
    moved = 0
    while batch := _receive(sqs, dlq_url, visibility=60):
        for message in batch:
            request: dict[str, Any] = {"QueueUrl": source_url, "MessageBody": message["Body"]}
            if source_url.endswith(".fifo"):
                request["MessageGroupId"] = message["Attributes"].get("MessageGroupId", message["MessageId"])
                request["MessageDeduplicationId"] = uuid.uuid4().hex
            sqs.send_message(**request)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["list", "redrive"])
    parser.add_argument("--queue", choices=sorted(PAIRS), action="append", help="only this DLQ (repeatable)")
    args = parser.parse_args()
    outputs = StackOutputs.read().as_dict()
    sqs = boto3.client("sqs")
    for name in args.queue or sorted(PAIRS):
        dlq, source = (outputs[key] for key in PAIRS[name])
        if args.command == "redrive":
            print(f"{name}: {redrive(sqs, dlq, source)} message(s) moved back to {source}")
            continue
        messages = peek(sqs, dlq)
        print(f"{name} DLQ: {len(messages)} message(s)")
        for message in messages:
            attributes = message.get("Attributes", {})
            group = f"  group={attributes['MessageGroupId']}" if "MessageGroupId" in attributes else ""
            receives = attributes.get("ApproximateReceiveCount")
            print(f"  {message['MessageId']}  receives={receives}{group}  {_preview(message['Body'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
