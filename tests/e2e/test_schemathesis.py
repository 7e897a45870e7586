"""docs/openapi.yaml against the running sandbox: schemathesis generates requests from the document (random
orders included) and every answer must be documented, match its schema, and never be a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
import schemathesis
from e2e_support import ROOT, unique
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.yaml")
# The examples and the fuzzing phase (bounded by max_examples); the coverage phase's boundary sweep is unbounded.
schema.config.phases.update(phases=["examples", "fuzzing"])
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CENT = Decimal("0.01")


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return "".join(c for c in value if c.isprintable()) or "x"
    if isinstance(value, dict):
        return {key: _printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_printable(item) for item in value]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@schema.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    """Make a generated order keep the rules a schema cannot say, so the fuzzing reaches 202 and not only 400.

    Printable strings, distinct products (unknown ones: no seeded stock moves), prices in cents, the payment
    equal to the items total, a real date, and an order_id of its own (hypothesis repeats its ids).
    """
    items, payment = (body.get("items"), body.get("payment")) if isinstance(body, dict) else (None, None)
    if not (isinstance(items, list) and all(isinstance(i, dict) for i in items) and isinstance(payment, dict)):
        return body  # not an order's shape: leave it as generated
    body = _printable(body)
    total = Decimal(0)
    for index, item in enumerate(body["items"]):
        if isinstance(item.get("product_id"), str):
            item["product_id"] = f"{item['product_id'][:60]}{index}"
        price, quantity = item.get("unit_price"), item.get("quantity")
        if _is_number(price) and isinstance(quantity, int):
            cents = min(Decimal(str(price)).quantize(CENT), Decimal(1000))
            item["unit_price"] = float(cents)  # the body is JSON; a 2-decimal float reads back as the same Decimal
            total += cents * quantity
    body["payment"]["amount"] = float(total)
    shipping = body.get("shipping")
    if isinstance(shipping, dict) and _is_number(shipping.get("cost")):
        shipping["cost"] = float(Decimal(str(shipping["cost"])).quantize(CENT))
    if not _is_iso_date(body.get("order_date")):
        body["order_date"] = "2024-01-01"
    if isinstance(body.get("order_id"), str):
        body["order_id"] = unique(body["order_id"][:40])
    return body


def _is_iso_date(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
def test_the_api_answers_as_documented(
    case: schemathesis.Case, outputs: dict[str, str], http: requests.Session
) -> None:
    case.call_and_validate(base_url=outputs["ApiBaseUrl"], session=http, checks=CHECKS, timeout=30)


@pytest.mark.parametrize(
    ("path", "parameters"),
    [
        # Ids longer than DynamoDB's 2048-byte key (with the ORDER#/PRODUCT# prefix) are valid path strings.
        ("/orders/{order_id}", {"order_id": "x" * 2043}),
        ("/products/{product_id}", {"product_id": "x" * 2041}),
    ],
    ids=["long order_id", "long product_id"],
)
def test_an_id_too_long_for_the_store_is_not_found(
    path: str, parameters: dict[str, Any], outputs: dict[str, str]
) -> None:
    case = schema[path]["GET"].Case(path_parameters=parameters)
    response = case.call_and_validate(base_url=outputs["ApiBaseUrl"], checks=CHECKS, timeout=30)
    assert response.status_code == 404
