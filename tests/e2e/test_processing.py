"""The processing stage: FIFO -> processor, idempotent under redelivery."""

from __future__ import annotations

import uuid

from e2e_support import make_order, to_wire, unique

from orders.codec import encode_order
from orders.validation import OrderValidator, parse_json


def message_body(order: dict) -> str:
    """The exact queue message the entries send for this order."""
    return encode_order(OrderValidator().validate(parse_json(to_wire(order))))


def test_a_redelivered_order_changes_nothing_and_notifies_once(aws, outputs, api, products, inbox):
    # Given a processed order with one reserved and one pending item
    in_stock, scarce = products(5, 0)
    order = make_order([(in_stock, 2), (scarce, 1)])
    assert api.post_order(order).status_code == 202
    first = api.final_order(order["order_id"])
    assert first["order_status"] == "Produto Pendente"
    inbox.wait_for(lambda m: m["body"].get("order_id") == order["order_id"])

    # When the very same message is delivered twice more (new deduplication ids), then a marker
    # order in the same message group, which FIFO processes only after them
    sqs = aws.client("sqs")
    for _ in range(2):
        sqs.send_message(
            QueueUrl=outputs["OrderQueueUrl"],
            MessageBody=message_body(order),
            MessageGroupId=order["order_id"],
            MessageDeduplicationId=uuid.uuid4().hex,
        )
    marker = make_order([(in_stock, 1)], order_id=unique("E2E-MARKER"))
    sqs.send_message(
        QueueUrl=outputs["OrderQueueUrl"],
        MessageBody=message_body(marker),
        MessageGroupId=order["order_id"],
        MessageDeduplicationId=uuid.uuid4().hex,
    )
    assert api.final_order(marker["order_id"])["order_status"] == "Novo Pedido"

    # Then stock moved once for the order (plus the marker's unit), the order is unchanged,
    # and the pending notification was published once
    assert api.stock(in_stock) == (2, 3)
    assert api.stock(scarce) == (0, 0)
    again = api.get_order(order["order_id"]).json()
    assert again == first
    assert len(inbox.matching(lambda m: m["body"].get("order_id") == order["order_id"])) == 1


def test_an_order_sent_straight_to_the_queue_is_recorded(aws, outputs, api, products):
    (product,) = products(3)
    order = make_order([(product, 1)])
    aws.client("sqs").send_message(
        QueueUrl=outputs["OrderQueueUrl"],
        MessageBody=message_body(order),
        MessageGroupId=order["order_id"],
        MessageDeduplicationId=order["order_id"],
    )
    assert api.final_order(order["order_id"])["order_status"] == "Novo Pedido"
    assert api.stock(product) == (2, 1)
