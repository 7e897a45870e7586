"""Bad days: a poison message, dead-letter queues, redrive."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from e2e_support import eventually, make_order, unique
from test_processing import message_body


def dlq_tool(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "sandbox.dlq", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_poison_message_lands_in_the_dlq_while_other_groups_flow(aws, outputs, api, products, inbox):
    # Given a message the processor can never handle, in its own message group
    sqs = aws.client("sqs")
    poison_group = unique("POISON")
    poison = sqs.send_message(
        QueueUrl=outputs["OrderQueueUrl"],
        MessageBody=json.dumps({"order_id": poison_group, "items": "not a list"}),
        MessageGroupId=poison_group,
        MessageDeduplicationId=uuid.uuid4().hex,
    )["MessageId"]

    # When ordinary orders arrive meanwhile, they are processed (other groups keep flowing)
    (product,) = products(10)
    orders = [make_order([(product, 1)]) for _ in range(3)]
    for order in orders:
        assert api.post_order(order).status_code == 202
    for order in orders:
        assert api.final_order(order["order_id"])["order_status"] == "Novo Pedido"

    # Then after the maximum receives the poison is in the FIFO DLQ, and the error topic says so
    notice = inbox.wait_for(lambda m: m["body"].get("message_id") == poison, timeout=90)
    assert notice["topic"] == outputs["ErrorTopicArn"]
    assert notice["body"]["event"] == "message_dead_lettered"
    assert notice["body"]["queue"] == "orders"
    assert notice["body"]["order_id"] == poison_group
    assert notice["body"]["receive_count"] == 5
    eventually(lambda: poison in dlq_tool("list", "--queue", "orders"), timeout=30, what="poison listed by make dlq")


def test_redrive_moves_dead_letters_back_to_their_queue(aws, outputs, api, products):
    # Given a valid order message that ended in the orders DLQ (say, while its table was throttled)
    (product,) = products(4)
    order = make_order([(product, 1)])
    aws.client("sqs").send_message(
        QueueUrl=outputs["OrderDeadLetterQueueUrl"],
        MessageBody=message_body(order),
        MessageGroupId=order["order_id"],
        MessageDeduplicationId=uuid.uuid4().hex,
    )
    assert api.get_order(order["order_id"]).status_code == 404

    # When the DLQ is redriven
    output = dlq_tool("redrive", "--queue", "orders")

    # Then the order is processed from its source queue, and the DLQ no longer holds it
    assert "moved back" in output
    assert api.final_order(order["order_id"])["order_status"] == "Novo Pedido"
    assert api.stock(product) == (3, 1)
    assert order["order_id"] not in dlq_tool("list", "--queue", "orders")
