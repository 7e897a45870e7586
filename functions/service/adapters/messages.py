"""The queues and the topics: SQS messages of orders and restocks, SNS notifications (masked before they leave)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orders.codec import encode_order, to_json
from orders.masking import mask_document, mask_text
from orders.model import NEW_ORDER, PRODUCT_PENDING, Order
from orders.report import FileReport
from orders.restock import Restock
from orders.stock import PendingNotice


class FifoQueue:
    def __init__(self, client: Any, url: str) -> None:
        self._sqs = client
        self._url = url

    def _send(self, message: dict[str, Any], group: str, dedup_id: str) -> None:
        self._sqs.send_message(
            QueueUrl=self._url, MessageBody=to_json(message), MessageGroupId=group, MessageDeduplicationId=dedup_id
        )


class SqsOrderQueue(FifoQueue):
    """The FIFO queue of validated orders; one message group per order."""

    @staticmethod
    def _entry(order: Order) -> dict[str, Any]:
        # The group is the order: on AWS, FIFO throughput grows with distinct groups, and stock
        # consistency comes from DynamoDB conditions, not from ordering between orders.
        return {
            "MessageBody": encode_order(order),
            "MessageGroupId": order.order_id,
            "MessageDeduplicationId": order.order_id,
        }

    def send(self, order: Order) -> None:
        self._sqs.send_message(QueueUrl=self._url, **self._entry(order))

    def send_batch(self, orders: list[Order]) -> list[str]:
        """Send in batches of ten, in order; return the order_ids SQS did not take (a failed call refuses its batch).

        One call at a time on purpose: a file's lines enter the queue in the file's order, which is their place in a
        product's queue if they wait (FCFS). Concurrent calls were tried and measured faster in `make bench`, but they
        let a later chunk in first (tests/e2e/test_restock_big_release.py caught it)."""
        return [
            failed for start in range(0, len(orders), 10) for failed in self._send_chunk(orders[start : start + 10])
        ]

    def _send_chunk(self, chunk: list[Order]) -> list[str]:
        entries = [{"Id": str(n), **self._entry(order)} for n, order in enumerate(chunk)]
        try:
            response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
        except (BotoCoreError, ClientError):
            return [order.order_id for order in chunk]
        return [chunk[int(f["Id"])].order_id for f in response.get("Failed", [])]


class SqsRestockQueue(FifoQueue):
    """The FIFO queue of restocks; one message group per product, so releases of a product never overlap."""

    def send(self, restock: Restock) -> None:
        self._send(restock.as_message(), restock.product_id, restock.restock_id)

    def release(self, product_id: str, dedup_id: str, restock_id: str | None = None) -> None:
        """Ask for the product's queue to be looked at again, in its restocks' message group: after an item joined
        it behind others while stock was there, or to go on with a release that ran out of time."""
        message: dict[str, Any] = {"release": product_id}
        if restock_id is not None:
            message["restock_id"] = restock_id
        self._send(message, product_id, dedup_id)


class SnsNotifier:
    """SNS messages, each on its topic; personal data is masked before it leaves (orders.masking: by field name and
    by shape). A function that publishes nothing on the pending topic (the file validator) is given none."""

    def __init__(self, client: Any, error_topic_arn: str, pending_topic_arn: str | None = None) -> None:
        self._sns = client
        self._errors = error_topic_arn
        self._pending = pending_topic_arn

    def pending_stock(self, notice: PendingNotice) -> None:
        message = {
            "event": "order_pending",
            "order_id": notice.order_id,
            "order_status": PRODUCT_PENDING,
            "customer_email": notice.customer_email,
            "pending_items": [{"product_id": pid, "quantity": qty} for pid, qty in notice.items],
        }
        self._publish(self._pending, f"Pedido {notice.order_id}: produto pendente", message)

    def order_released(self, notice: dict[str, Any]) -> None:
        """On the pending topic, with event `order_released`: the pending order is now `Novo Pedido`."""
        message = {
            "event": "order_released",
            "order_id": notice["order_id"],
            "order_status": NEW_ORDER,
            "customer_email": str(notice.get("customer_email", "")),
            "reason": notice.get("reason"),
            "released_at": notice.get("released_at"),
            "items": [
                {"product_id": str(i["product_id"]), "quantity": int(i["quantity"])} for i in notice.get("items", [])
            ],
        }
        self._publish(self._pending, f"Pedido {notice['order_id']}: liberado", message)

    def dead_letter(self, notice: dict[str, Any]) -> None:
        subject = f"Mensagem movida para a DLQ ({notice.get('queue')})"
        self._publish(self._errors, subject, notice, "message_dead_lettered")

    def file_report(self, report: FileReport) -> None:
        subject = "Arquivo de reposição com erros" if report.kind == "restocks" else "Arquivo de pedidos com erros"
        self._publish(self._errors, subject, report.as_dict())

    def _publish(self, topic_arn: str | None, subject: str, message: dict[str, Any], event: str | None = None) -> None:
        self._sns.publish(
            TopicArn=topic_arn,
            Subject=mask_text(subject)[:100],
            Message=to_json(mask_document(message)),
            MessageAttributes={"event": {"DataType": "String", "StringValue": event or str(message["event"])}},
        )
