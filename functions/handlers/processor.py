"""SQS FIFO of orders -> stock decision and one transaction per order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3

from orders.codec import decode_order
from orders.model import Order
from service.adapters import Notifier, OrderStore, RestockQueue
from service.batch import BatchFailures, run_in_group_order
from service.config import ProcessorSettings
from service.logs import bound
from service.use_cases import OrderProcessor

_settings = ProcessorSettings.from_env()
_notifier = Notifier(boto3.client("sns"))
_sqs = boto3.client("sqs")
_processor = OrderProcessor(
    OrderStore(boto3.client("dynamodb"), _settings.table_name),
    _notifier,
    _settings.pending_topic_arn,
    releases=RestockQueue(_sqs, _settings.restock_queue_url),
)
_failures = BatchFailures(
    _sqs,
    _settings.order_queue_url,
    _notifier,
    _settings.error_topic_arn,
    _settings.max_receive_count,
    queue="orders",
)


def _decoded(record: dict[str, Any]) -> Order | Exception:
    try:
        return decode_order(record["body"])
    except Exception as exc:  # a poison body: handled as that record's failure
        return exc


def _queued_at(record: dict[str, Any]) -> datetime | None:
    """When SQS took the message (SentTimestamp, milliseconds): the system's clock, which a client cannot set."""
    sent = record.get("attributes", {}).get("SentTimestamp")
    return datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records", [])
    orders = {id(record): _decoded(record) for record in records}
    _processor.prefetch([order for order in orders.values() if isinstance(order, Order)])

    def process(record: dict[str, Any]) -> None:
        order = orders[id(record)]
        if isinstance(order, Exception):
            raise order
        with bound(order_id=order.order_id, message_id=record.get("messageId")):
            _processor.process(order, _queued_at(record))

    return _failures.respond(run_in_group_order(records, process))
