"""SQS FIFO of orders -> stock decisions, written together where they can be, else one transaction per order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orders.codec import decode_order
from orders.model import Order
from service.batch import group_heads, run_in_group_order
from service.bootstrap import ProcessorWiring
from service.logs import bound

_wired = ProcessorWiring()
_processor = _wired.processor
_failures = _wired.failures


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
    heads = (orders[id(record)] for record in group_heads(records))
    _processor.write_together([order for order in heads if isinstance(order, Order)])

    def process(record: dict[str, Any]) -> None:
        order = orders[id(record)]
        if isinstance(order, Exception):
            raise order
        with bound(order_id=order.order_id, message_id=record.get("messageId")):
            _processor.process(order, _queued_at(record))

    return _failures.respond(run_in_group_order(records, process))
