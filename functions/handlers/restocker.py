"""SQS FIFO of restocks (one message group per product) -> apply the restock, release waiting items."""

from __future__ import annotations

import json
from typing import Any

import boto3

from orders.restock import validate_restock
from service.adapters import Notifier, OrderStore
from service.batch import BatchFailures, run_in_group_order
from service.config import RestockSettings
from service.logs import bound
from service.use_cases import StockRelease

_settings = RestockSettings.from_env()
_notifier = Notifier(boto3.client("sns"))
_release = StockRelease(
    OrderStore(boto3.client("dynamodb"), _settings.table_name), _notifier, _settings.pending_topic_arn
)
_failures = BatchFailures(
    boto3.client("sqs"),
    _settings.restock_queue_url,
    _notifier,
    _settings.error_topic_arn,
    _settings.max_receive_count,
    queue="restocks",
)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    def apply(record: dict[str, Any]) -> None:
        message = json.loads(record["body"])
        restock = validate_restock(message, str(message["restock_id"]))
        with bound(restock_id=restock.restock_id, product_id=restock.product_id, message_id=record.get("messageId")):
            _release.apply(restock)

    return _failures.respond(run_in_group_order(event.get("Records", []), apply))
