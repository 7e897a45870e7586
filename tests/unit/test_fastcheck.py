"""The compiled yes/no of the schema against the collecting checker (the reference)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orders.fastcheck import compile_schema
from orders.schema_check import SchemaChecker
from orders.validation import load_schema

SCHEMA = load_schema()
FAST = compile_schema(SCHEMA)
CHECKER = SchemaChecker(SCHEMA)


def verdict(document: Any) -> int:
    return FAST(document, [])


def test_the_lab_example_is_a_plain_yes(lab: dict[str, Any]) -> None:
    strings: list[str] = []
    assert FAST(lab, strings) == 1
    assert "ORD-20231001-0001" in strings and "RJ" in strings


def test_unknown_fields_are_a_yes_that_says_so(lab: dict[str, Any]) -> None:
    lab["customer"]["loyalty_tier"] = "gold"
    assert verdict(lab) == 2


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("order_id",), "A#1"),
        (("items", 0, "quantity"), "2"),
        (("items", 0, "quantity"), True),
        (("items", 0, "unit_price"), -1),
        (("customer", "address", "state"), "XX"),
        (("company", "cnpj"), "123"),
        (("shipping", "address"), None),
        (("items",), []),
        (("payment",), "card"),
    ],
)
def test_every_schema_error_is_a_no(lab: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    document = copy.deepcopy(lab)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert CHECKER.errors(document), "the reference finds an error"
    assert verdict(document) == 0


@pytest.mark.parametrize("value", [None, [], "x", 1, {"order_id": "A"}])
def test_non_orders_are_a_no(value: Any) -> None:
    assert verdict(value) == 0
