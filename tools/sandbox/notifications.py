"""Observe the SNS topics through an SQS inbox subscribed to both (an emulator's e-mail is a stub).

`ensure_inbox` is called by the deploy hook in sandbox mode; `python -m sandbox.notifications` prints
and removes what arrived since the last call.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import boto3

from sandbox.aws import load_outputs


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


def ensure_inbox(session: Any, outputs: dict[str, str]) -> str:
    return subscribe_queue(
        session, f"{outputs['StackName']}-inbox", [outputs["ErrorTopicArn"], outputs["PendingTopicArn"]]
    )


def drain(session: Any, queue_url: str, wait_seconds: int = 0) -> list[dict[str, Any]]:
    """Receive and delete every message now in the queue; return the SNS envelopes."""
    sqs = session.client("sqs")
    received: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds)
        messages = batch.get("Messages", [])
        if not messages:
            return received
        for message in messages:
            received.append(json.loads(message["Body"]))
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )
        wait_seconds = 0


def main() -> int:
    outputs = load_outputs()
    session = boto3.session.Session()
    envelopes = drain(session, ensure_inbox(session, outputs))
    if not envelopes:
        print("no new notifications")
    for envelope in envelopes:
        topic = str(envelope.get("TopicArn", "")).rsplit(":", 1)[-1]
        print(f"--- {envelope.get('Timestamp', '')}  {topic}  {envelope.get('Subject', '')}")
        try:
            print(json.dumps(json.loads(envelope.get("Message", "")), indent=2, ensure_ascii=False))
        except ValueError:
            print(envelope.get("Message"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
