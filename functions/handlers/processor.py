"""SQS FIFO of orders -> stock decision and one transaction per order."""

from __future__ import annotations

from typing import Any

import boto3

from orders.codec import decode_order
from orders.model import Order
from service.adapters import Notifier, OrderStore
from service.batch import BatchFailures
from service.config import ProcessorSettings
from service.logs import bound, log
from service.use_cases import OrderProcessor

_settings = ProcessorSettings.from_env()
_notifier = Notifier(boto3.client("sns"))
_processor = OrderProcessor(
    OrderStore(boto3.client("dynamodb"), _settings.table_name), _notifier, _settings.pending_topic_arn
)
_failures = BatchFailures(
    boto3.client("sqs"),
    _settings.order_queue_url,
    _notifier,
    _settings.error_topic_arn,
    _settings.max_receive_count,
    queue="orders",
)


def _decoded(records: list[dict[str, Any]]) -> list[Order | Exception]:
    decoded: list[Order | Exception] = []
    for record in records:
        try:
            decoded.append(decode_order(record["body"]))
        except Exception as exc:  # a poison body: handled as that record's failure below
            decoded.append(exc)
    return decoded


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records", [])
    orders = _decoded(records)
    _processor.prefetch([order for order in orders if isinstance(order, Order)])
    failures: list[tuple[dict[str, Any], BaseException | None]] = []
    blocked: set[str | None] = set()
    for record, order in zip(records, orders, strict=True):
        group = record.get("attributes", {}).get("MessageGroupId")
        # FIFO order holds within a group: after a failure, that group's later records wait; other groups go
        # on. A record without group information counts as part of every group.
        if blocked and (group in blocked or group is None or None in blocked):
            failures.append((record, None))
            continue
        order_id = order.order_id if isinstance(order, Order) else None
        try:
            with bound(order_id=order_id, message_id=record.get("messageId")):
                if isinstance(order, Exception):
                    raise order
                _processor.process(order)
        except Exception as exc:
            log("ERROR", "order message failed", order_id=order_id, message_id=record.get("messageId"), error=repr(exc))
            failures.append((record, exc))
            blocked.add(group)
    return _failures.respond(failures)
