"""Helpers for the e2e suite: the sandbox reached only through its public doors."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import boto3
import fastjsonschema
import pytest
import requests

from orders.report import report_key
from sandbox import gateway
from sandbox.load import order_with, to_wire
from sandbox.notifications import drain
from sandbox.poll import TimedOut, wait_until

ROOT = Path(__file__).resolve().parents[2]
ORDERS = ROOT / "seed" / "orders"
T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> T:
    """Call `check` until it returns a truthy value or stops raising AssertionError; fail after `timeout`."""
    try:
        return wait_until(check, timeout=timeout, interval=interval, what=what, retry_on=(AssertionError,))
    except TimedOut as exc:
        pytest.fail(str(exc))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


class Api:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.http = requests.Session()

    def post_order(self, order: Any, **kwargs: Any) -> requests.Response:
        if "data" not in kwargs:
            kwargs["data"] = to_wire(order)
        headers = kwargs.pop("headers", {"Content-Type": "application/json"})
        return requests.post(f"{self.base}/orders", headers=headers, timeout=30, **kwargs)

    def get_order(self, order_id: str) -> requests.Response:
        return self.http.get(f"{self.base}/orders/{order_id}", timeout=30)

    def get_product(self, product_id: str) -> requests.Response:
        return self.http.get(f"{self.base}/products/{product_id}", timeout=30)

    def post_restock(
        self, product_id: str, quantity: Any = None, key: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """POST /products/{id}/restock with {"quantity": quantity} (or `data=`), and an Idempotency-Key if given."""
        if "data" not in kwargs:
            kwargs["data"] = json.dumps({"quantity": quantity})
        headers = kwargs.pop("headers", {"Content-Type": "application/json"})
        if key is not None:
            headers = {**headers, "Idempotency-Key": key}
        return requests.post(f"{self.base}/products/{product_id}/restock", headers=headers, timeout=30, **kwargs)

    def final_order(self, order_id: str, timeout: float = 30.0) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            response = self.get_order(order_id)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body if body["order_status"] in {"Novo Pedido", "Produto Pendente"} else None

        return eventually(final, timeout=timeout, what=f"order {order_id} in a final state")

    def stock(self, product_id: str) -> tuple[int, int]:
        body = self.get_product(product_id).json()
        return body["available"], body["reserved"]


class Gateway:
    """What the API's gateway does with a `POST /orders` body before the Lambda sees it, read from the API itself.

    Whether it enforces its model depends on the target (sandbox.gateway): the suite asks, it is never told.
    """

    def __init__(self, aws: boto3.session.Session, api_id: str) -> None:
        apigateway = aws.client("apigateway")
        gate = gateway.inspect(apigateway, api_id)
        self.enforced = gate.enforced
        self.reason = gate.reason
        self.refusals = gateway.refusals(apigateway, api_id)
        self._model = fastjsonschema.compile(json.loads(gateway.order_model(apigateway, api_id, gate)))

    def refused(self, response: requests.Response) -> bool:
        """Did the gateway answer, refusing the body, rather than the Lambda?"""
        if response.status_code != 400:
            return False
        try:
            return response.json() in self.refusals
        except ValueError:
            return False

    def failed_before_our_code(self, response: requests.Response) -> bool:
        """Did an enforcing gateway fail on the body itself (LocalStack's 500), before the Lambda was called?"""
        return self.enforced and response.status_code >= 500 and response.text.startswith(gateway.BUILT_IN_FAILURE)

    def model_refuses(self, body: bytes) -> bool:
        """Does the gateway's own model refuse this body? A body that is not strict JSON counts as refused."""

        def no_constants(name: str) -> Any:
            raise ValueError(name)

        try:
            document = json.loads(body.decode("utf-8"), parse_constant=no_constants)
            self._model(document)
        except (ValueError, RecursionError, fastjsonschema.JsonSchemaException):
            return True
        return False

    def check_refusal(
        self, response: requests.Response, body: bytes, content_type: str | None = "application/json"
    ) -> bool:
        """True when the gateway refused the body, which it may only do when it enforces a model that refuses it.

        A body sent as another media type may reach the model changed (LocalStack re-encodes a form body), so for
        those only the enforcement is checked.
        """
        if not self.refused(response):
            return False
        assert self.enforced, f"the gateway refused a body but does not enforce its model ({self.reason})"
        if content_type is None or content_type.split(";")[0].strip() == "application/json":
            assert self.model_refuses(body), f"the gateway refused a body its own model accepts: {body[:200]!r}"
        return True


def put_file(aws: boto3.session.Session, outputs: dict[str, str], key: str, body: bytes) -> str:
    """Upload one data-lake file; return where its report will be (its key and eTag are the file's identity)."""
    etag = aws.client("s3").put_object(Bucket=outputs["DataLakeBucket"], Key=key, Body=body)["ETag"]
    return report_key(key, etag)


def read_report(
    aws: boto3.session.Session, outputs: dict[str, str], report_at: str, timeout: float = 60.0
) -> dict[str, Any]:
    """The report at `report_at`, once the file validator has written it."""
    s3 = aws.client("s3")

    def read() -> dict[str, Any] | None:
        try:
            body = s3.get_object(Bucket=outputs["DataLakeBucket"], Key=report_at)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        report: dict[str, Any] = json.loads(body)
        return report

    return eventually(read, timeout=timeout, interval=0.2, what=f"report {report_at}")


def make_order(lines: list[tuple[str, int]], order_id: str | None = None) -> dict[str, Any]:
    """The lab's example with its own order_id and the given (product_id, quantity) lines at R$ 10.50 each."""
    return order_with(order_id or unique("E2E-ORD"), [(p, q, Decimal("10.50")) for p, q in lines], description="e2e")


class Inbox:
    """Every SNS message of both topics, collected from an SQS queue subscribed for this test session."""

    def __init__(self, aws: boto3.session.Session, url: str) -> None:
        self._aws = aws
        self._url = url
        self._lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []

    def _collect(self) -> None:
        envelopes = drain(self._aws, self._url)
        with self._lock:
            for envelope in envelopes:
                self.messages.append(
                    {
                        "topic": envelope.get("TopicArn"),
                        "subject": envelope.get("Subject"),
                        "raw": envelope.get("Message", ""),
                        "body": json.loads(envelope.get("Message", "{}")),
                    }
                )

    def matching(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        self._collect()
        with self._lock:
            return [m for m in self.messages if predicate(m)]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        found = eventually(lambda: self.matching(predicate), timeout=timeout, what="notification")
        return found[0]
