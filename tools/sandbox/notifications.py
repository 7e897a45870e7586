"""Observe the SNS topics through an SQS inbox subscribed to both (an emulator's e-mail is a stub).

`ensure_inbox` is called by the deploy hook in sandbox mode; `sandbox notifications` (the CLI) prints and removes
what arrived since the last call.
"""

from __future__ import annotations

import json
from typing import Any


def subscribe_queue(session: Any, queue_name: str, topic_arns: list[str]) -> str:
    """Create (or find) an SQS queue subscribed to every topic; return its URL. Idempotent."""
    sqs, sns = session.client("sqs"), session.client("sns")
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arns}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    for topic in topic_arns:
        existing = sns.list_subscriptions_by_topic(TopicArn=topic).get("Subscriptions", [])
        if not any(s.get("Endpoint") == arn for s in existing):
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return str(url)


def ensure_inbox(session: Any, outputs: dict[str, str], suffix: str = "inbox") -> str:
    """The inbox `sandbox notifications` reads; the console reads one of its own (another `suffix`)."""
    return subscribe_queue(
        session, f"{outputs['StackName']}-{suffix}", [outputs["ErrorTopicArn"], outputs["PendingTopicArn"]]
    )


def drain(session: Any, queue_url: str, wait_seconds: int = 0) -> list[dict[str, Any]]:
    """Receive and delete every message now in the queue; return the SNS envelopes."""
    sqs = session.client("sqs")
    received: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds)
        if not (messages := answer.get("Messages")):
            return received
        received += [json.loads(message["Body"]) for message in messages]
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        wait_seconds = 0
