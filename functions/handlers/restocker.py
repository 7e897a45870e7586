"""SQS FIFO of restocks (one message group per product) -> apply the restock, release waiting items."""

from __future__ import annotations

import json
from typing import Any

from orders.restock import validate_restock
from service.batch import run_in_group_order, time_left_of
from service.bootstrap import RestockerWiring
from service.logs import bound

_wired = RestockerWiring()
_release = _wired.release
_failures = _wired.failures
_heartbeat = _wired.heartbeat


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
