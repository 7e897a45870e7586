"""docs/openapi.yaml against the running sandbox: schemathesis generates requests from the document (random
orders and restocks included) and every answer must be documented, match its schema, and never be a 5xx."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
import requests
import schemathesis
from e2e_support import ROOT, eventually, unique
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
POSSIBLE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # ids and Idempotency-Keys the API accepts


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


def _cents(value: Any) -> Decimal | None:
    """A number rounded to cents; None for one too large to have cents (the negative phase sends 1e300 too)."""
    if not _is_number(value):
        return None
    try:
        return Decimal(str(value)).quantize(CENT)
    except InvalidOperation:
        return None


def _own_order(body: Any) -> Any:
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
        price, quantity = _cents(item.get("unit_price")), item.get("quantity")
        if price is not None and isinstance(quantity, int):
            cents = min(price, Decimal(1000))
            item["unit_price"] = float(cents)  # the body is JSON; a 2-decimal float reads back as the same Decimal
            total += cents * quantity
    body["payment"]["amount"] = float(total)
    shipping = body.get("shipping")
    cost = _cents(shipping.get("cost")) if isinstance(shipping, dict) else None
    if cost is not None:
        shipping["cost"] = float(cost)
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


def _own(value: Any) -> Any:
    """A possible id made unique (still a possible id); anything else, left as generated to be refused."""
    if isinstance(value, str) and POSSIBLE_ID.fullmatch(value):
        return unique(value[:50])
    return value


def _make_its_own(case: schemathesis.Case) -> None:
    """Give a case that writes its own ids, in every phase: map_* hooks would miss the examples phase, which sends
    the document's examples as they are (the lab's order; a restock of the seeded PRD-2002).

    An order: see _own_order. A restock: a product of its own, so the fuzzing never moves the stock of a seeded
    product or another test's; and an Idempotency-Key of its own (hypothesis repeats its values, and keys outlive a
    run), so the case is a new restock that reaches 202, not a 409; the replay is tested below.
    """
    if case.operation.label == "POST /orders":
        case.body = _own_order(case.body)
    elif case.operation.label == "POST /products/{product_id}/restock":
        if case.path_parameters and "product_id" in case.path_parameters:
            case.path_parameters = {**case.path_parameters, "product_id": _own(case.path_parameters["product_id"])}
        if case.headers and "Idempotency-Key" in case.headers:
            case.headers = {**case.headers, "Idempotency-Key": _own(case.headers["Idempotency-Key"])}


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
def test_the_api_answers_as_documented(
    case: schemathesis.Case, outputs: dict[str, str], http: requests.Session
) -> None:
    _make_its_own(case)
    case.call_and_validate(base_url=outputs["ApiBaseUrl"], session=http, checks=CHECKS, timeout=30)


@pytest.mark.parametrize(
    ("path", "parameters"),
    [
        # Ids longer than DynamoDB's 2048-byte key (with the ORDER#/PRODUCT#/RESTOCK# prefix) are valid path strings.
        ("/orders/{order_id}", {"order_id": "x" * 2043}),
        ("/products/{product_id}", {"product_id": "x" * 2041}),
        ("/restocks/{restock_id}", {"restock_id": "x" * 2041}),
    ],
    ids=["long order_id", "long product_id", "long restock_id"],
)
def test_an_id_too_long_for_the_store_is_not_found(
    path: str, parameters: dict[str, Any], outputs: dict[str, str]
) -> None:
    case = schema[path]["GET"].Case(path_parameters=parameters)
    response = case.call_and_validate(base_url=outputs["ApiBaseUrl"], checks=CHECKS, timeout=30)
    assert response.status_code == 404


def _post_restock(outputs: dict[str, str], http: requests.Session, **parts: Any) -> requests.Response:
    case = schema["/products/{product_id}/restock"]["POST"].Case(**parts)
    response: requests.Response = case.call_and_validate(
        base_url=outputs["ApiBaseUrl"], session=http, checks=CHECKS, timeout=30
    )
    return response


def _get(outputs: dict[str, str], http: requests.Session, path: str, **path_parameters: str) -> requests.Response:
    case = schema[path]["GET"].Case(path_parameters=path_parameters)
    response: requests.Response = case.call_and_validate(
        base_url=outputs["ApiBaseUrl"], session=http, checks=CHECKS, timeout=30
    )
    return response


def test_a_replayed_restock_and_a_reused_key_answer_as_documented(
    outputs: dict[str, str], http: requests.Session
) -> None:
    # The answers the fuzzing does not reach (its keys are unique): the replay, the 409, and a restock applied.
    product, key = unique("ST-PRD"), unique("ST-KEY")

    def post(quantity: int) -> requests.Response:
        return _post_restock(
            outputs,
            http,
            path_parameters={"product_id": product},
            headers={"Idempotency-Key": key},
            body={"quantity": quantity},
            media_type="application/json",
        )

    first, again, other = post(3), post(3), post(4)
    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 409)
    assert (first.json()["replayed"], again.json()["replayed"], again.json()["restock_id"]) == (False, True, key)

    def released() -> dict[str, Any] | None:
        body: dict[str, Any] = _get(outputs, http, "/restocks/{restock_id}", restock_id=key).json()
        return body if body["released_at"] else None

    shown = eventually(released, timeout=30, what=f"restock {key} released")
    assert (shown["restock_status"], shown["quantity"], shown["released_orders"]) == ("Aplicada", 3, [])
    # A product first stocked by a restock has no description: null, as documented.
    stock = _get(outputs, http, "/products/{product_id}", product_id=product).json()
    assert (stock["description"], stock["available"], stock["waiting_items"]) == (None, 3, 0)


@pytest.mark.parametrize(
    ("parts", "status"),
    [
        ({"path_parameters": {"product_id": "x" * 2041}, "body": {"quantity": 1}}, 400),
        ({"headers": {"Idempotency-Key": "bad key!"}, "body": {"quantity": 1}}, 400),
        ({"body": {"quantity": 1, "note": "x" * 5000}}, 400),
        ({"media_type": "text/plain", "body": "quantity=1"}, 415),
    ],
    ids=["long product_id", "bad Idempotency-Key", "body over the limit", "not JSON"],
)
def test_a_refused_restock_answers_as_documented(
    parts: dict[str, Any], status: int, outputs: dict[str, str], http: requests.Session
) -> None:
    parts = {"media_type": "application/json", **parts}
    parts["path_parameters"] = parts.get("path_parameters", {"product_id": unique("ST-PRD")})
    assert _post_restock(outputs, http, **parts).status_code == status
