"""Unit tests run offline: any attempt to open a network connection fails the test."""

from __future__ import annotations

import copy
import json
import re
import socket
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cfn import resources, template  # noqa: F401 (shared fixtures)

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_EXAMPLE = REPO_ROOT / "seed" / "orders" / "lab-example.json"

_DECIMAL_MARK = re.compile(r'"@@decimal:([^"@]+)@@"')


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("unit tests must not open network connections")


# What every Lambda reads from its environment (see infra/template.yaml), with fake values.
LAMBDA_ENVIRONMENT = {
    "TABLE_NAME": "orders",
    "ORDER_QUEUE_URL": "https://sqs.example/orders.fifo",
    "FILE_QUEUE_URL": "https://sqs.example/files",
    "RESTOCK_QUEUE_URL": "https://sqs.example/restocks.fifo",
    "ERROR_TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:errors",
    "PENDING_TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:pending",
    "STRICT_DOCUMENTS": "false",
    "MAX_RECEIVE_COUNT": "5",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Dummy keys: boto3 resolves credentials when it builds a client, and would otherwise ask the network.
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the handler modules read when imported."""
    for name, value in LAMBDA_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)


@pytest.fixture(scope="session")
def lab_text() -> str:
    """The lab's example order, verbatim."""
    return LAB_EXAMPLE.read_text("utf-8")


@pytest.fixture(scope="session")
def lab_document(lab_text: str) -> dict[str, Any]:
    """The lab's example parsed as the system parses it (fractions as Decimal); never modify it."""
    from orders.validation import parse_json

    document: dict[str, Any] = parse_json(lab_text)
    return document


@pytest.fixture
def lab(lab_document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the lab's example for one test to change."""
    return copy.deepcopy(lab_document)


def _marked(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _marked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_marked(item) for item in value]
    if isinstance(value, Decimal):
        return f"@@decimal:{value}@@"
    return value


def dump_json(value: Any) -> str:
    """JSON text in which each Decimal is a number written exactly as it is (2500.00 stays 2500.00)."""
    return _DECIMAL_MARK.sub(r"\1", json.dumps(_marked(value), ensure_ascii=False))


@pytest.fixture
def to_json_text() -> Callable[[Any], str]:
    return dump_json
