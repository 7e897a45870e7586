"""SQS FIFO of restocks (one message group per product) -> apply the restock, release waiting items."""

from __future__ import annotations

import json
from typing import Any

import boto3

from orders.restock import validate_restock
from service.adapters import Notifier, OrderStore, RestockQueue
from service.batch import BatchFailures, Heartbeat, run_in_group_order, time_left_of
from service.config import RestockSettings
from service.logs import bound
from service.use_cases import StockRelease

_settings = RestockSettings.from_env()
_notifier = Notifier(boto3.client("sns"))
_sqs = boto3.client("sqs")
_release = StockRelease(
    OrderStore(boto3.client("dynamodb"), _settings.table_name),
    _notifier,
    _settings.pending_topic_arn,
    releases=RestockQueue(_sqs, _settings.restock_queue_url),
)
_failures = BatchFailures(
    _sqs,
    _settings.restock_queue_url,
    _notifier,
    _settings.error_topic_arn,
    _settings.max_receive_count,
    queue="restocks",
)
_heartbeat = Heartbeat(_sqs, _settings.restock_queue_url)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time_left = time_left_of(context)

    def apply(record: dict[str, Any]) -> None:
        message = json.loads(record["body"])
        if "release" in message:  # look at the product's queue again (no stock arrives with it)
            product_id, restock_id = str(message["release"]), message.get("restock_id")
            with bound(product_id=product_id, restock_id=restock_id, message_id=record.get("messageId")):
                _release.release_only(product_id, restock_id, time_left)
            return
        restock = validate_restock(message, str(message["restock_id"]))
        with bound(restock_id=restock.restock_id, product_id=restock.product_id, message_id=record.get("messageId")):
            _release.apply(restock, time_left)

    records = event.get("Records", [])
    with _heartbeat.beating(records):
        failures = run_in_group_order(records, apply)
    return _failures.respond(failures)
