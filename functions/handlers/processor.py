"""SQS FIFO of orders -> stock decision and one transaction per order."""

from __future__ import annotations

from typing import Any

import boto3

from orders.codec import decode_order
from service.adapters import Notifier, OrderStore
from service.config import ProcessorSettings
from service.logs import log
from service.use_cases import OrderProcessor

_settings = ProcessorSettings.from_env()
_processor = OrderProcessor(
    OrderStore(boto3.client("dynamodb"), _settings.table_name),
    Notifier(boto3.client("sns")),
    _settings.pending_topic_arn,
)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records", [])
    for position, message in enumerate(records):
        try:
            _processor.process(decode_order(message["body"]))
        except Exception as exc:
            # FIFO rule: stop at the first failure and hand back it and everything after it.
            log("ERROR", "order message failed", message_id=message.get("messageId"), error=repr(exc))
            remaining = [m.get("messageId") for m in records[position:]]
            if not all(remaining):
                raise  # never report an empty id: MiniStack would then drop the whole batch
            return {"batchItemFailures": [{"itemIdentifier": mid} for mid in remaining]}
    return {"batchItemFailures": []}
