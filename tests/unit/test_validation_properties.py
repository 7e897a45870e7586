"""Properties of the validator and the readers: arbitrary input never crashes them, and nothing that breaks a rule
is ever accepted (checked against an oracle written independently of the schema and the validator)."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders import validation
from orders.codec import encode_order
from orders.files import Entry, FileRejected, read_entries
from orders.model import FieldError, OrderRejected
from orders.validation import OrderValidator, parse_json, parse_order_body

LAB_TEXT = (Path(__file__).resolve().parents[2] / "seed" / "orders" / "lab-example.json").read_text("utf-8")
LAB: dict[str, Any] = parse_json(LAB_TEXT)
VALIDATOR = OrderValidator()
PROPERTIES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

UFS = frozenset("AC AL AP AM BA CE DF ES GO MA MT MS MG PA PB PR PE PI RJ RN RS RO RR SC SP SE TO".split())
ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
REQUIRED = {
    "": ["order_id", "company", "customer", "order_date", "items", "payment", "shipping"],
    "company": ["name", "cnpj"],
    "customer": ["first_name", "last_name", "cpf", "email", "address"],
    "customer.address": ["street", "number", "city", "state", "zip_code"],
    "payment": ["method", "amount"],
    "shipping": ["method", "cost", "address"],
    "shipping.address": ["street", "number", "city", "state", "zip_code"],
}
ITEM_REQUIRED = ["product_id", "quantity", "unit_price"]
# What Amazon SQS accepts in a message body: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
SQS_UNSAFE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# ---------------------------------------------------------------- strategies
def _finite_decimals() -> st.SearchStrategy[Decimal]:
    return st.decimals(allow_nan=False, allow_infinity=False) | st.decimals(
        min_value=-1000, max_value=100000, places=3, allow_nan=False, allow_infinity=False
    )


SCALARS = st.none() | st.booleans() | st.integers() | _finite_decimals() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=15,
)
# Values just inside and just outside the rules the oracle watches.
_D = Decimal
IDS = ["A", "A" * 64, "a-b_C9", "", "A" * 65, "ORD-1\n", "ORD\n1", "\nORD", "ORD#1", "ORD|1", "ORD/1", "ORD 1", "ORD:1"]
IDS += ["ORD.1", "ÖRD", "１２３", "ORD\x00", "\ud800", "ORD-1\r", "ORD\u2028", 1, None, ["A"]]
QUANTITIES = [0, 1, 2, 50, -1, 100000, 100001, True, False, _D("1.0"), _D("2"), _D("1E+1"), "1", None, [1]]
MONEY = [0, 1, 10**9, 10**9 + 1, -1, True, "150.00", None, _D("0"), _D("0.00"), _D("0.01"), _D("-0.01"), _D("150.00")]
MONEY += [_D("150.000"), _D("10.505"), _D("1E+2"), _D("1.5E+2"), _D("1E-2"), _D("1E-3"), _D("1000000000.01")]
AMOUNTS = [2800, 2850, _D("2800.00"), _D("2850.00"), _D("2.8E+3"), _D("2800.001"), _D("2799.99"), _D("2850.01"), *MONEY]
STATES = [*sorted(UFS), "", "rj", "XX", "BR", "RJ\n", " RJ", "R J", "RJ ", 1, None]
EDGE_VALUES = st.sampled_from([*IDS, *QUANTITIES, *AMOUNTS, *STATES]).map(copy.deepcopy) | st.text(
    alphabet="Az09_-#|/: \n\x00é", max_size=70
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value, containers included."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


LAB_PATHS = _paths(LAB)


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    target = document
    for step in path[:-1]:
        target = target[step]
    return target


def _changed_type(value: Any) -> Any:
    """The same content in another JSON type: "2" for 2, 2 for "2", [x] for x..."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return int(value) if value.isdigit() else [value]
    if isinstance(value, list):
        return dict(enumerate(value))
    if isinstance(value, dict):
        return list(value.values())
    return False


@st.composite
def mutated_lab(draw: st.DrawFn) -> Any:
    """The lab's example after one to three mutations at random paths."""
    document: Any = copy.deepcopy(LAB)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(document)
        action = draw(st.sampled_from(["drop", "replace", "edge", "retype", "wrap", "items", "wrap-all"]))
        if action == "wrap-all" or not paths:
            document = [document]
            continue
        if action == "items" and isinstance(document, dict) and isinstance(document.get("items"), list):
            count = draw(st.sampled_from([0, 1, 2, 49, 50, 51]))
            template = draw(st.sampled_from(document["items"] or [{}]))
            lines = []
            for index in range(count):
                line = copy.deepcopy(template) if isinstance(template, dict) else template
                if isinstance(line, dict) and draw(st.booleans()):
                    line["product_id"] = f"PRD-{index}"
                lines.append(line)
            document["items"] = lines
            continue
        path = draw(st.sampled_from(paths))
        parent = _parent(document, path)
        key = path[-1]
        if action == "drop":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(JSON_VALUES)
        elif action == "edge":
            parent[key] = draw(EDGE_VALUES)
        elif action == "retype":
            parent[key] = _changed_type(parent[key])
        else:
            parent[key] = [parent[key]]
    if isinstance(document, dict) and draw(st.booleans()):
        _rebalance(document)
    return document


def _rebalance(document: dict[str, Any]) -> None:
    """Make payment.amount agree with the items when it can, so that other rules are the ones under test."""
    try:
        total = sum((Decimal(i["unit_price"]) * i["quantity"] for i in document["items"]), Decimal(0))
        document["payment"]["amount"] = total
    except (TypeError, KeyError, ArithmeticError, ValueError, IndexError):
        pass


# Each family moves one thing to values just inside and just outside its rule (and sometimes fixes the amount).
NEAR_MISSES: dict[str, tuple[tuple[Any, ...], list[Any]]] = {
    "order_id": (("order_id",), IDS),
    "product_id": (("items", 1, "product_id"), [*IDS, "PRD-1001"]),
    "quantity": (("items", 0, "quantity"), QUANTITIES),
    "unit_price": (("items", 1, "unit_price"), MONEY),
    "amount": (("payment", "amount"), AMOUNTS),
    "cost": (("shipping", "cost"), MONEY),
    "customer_state": (("customer", "address", "state"), STATES),
    "shipping_state": (("shipping", "address", "state"), STATES),
}

FAMILIES = [*NEAR_MISSES, "drop", "null", "items"]
REQUIRED_PATHS = [
    tuple(filter(None, (*parent.split("."), name))) for parent, names in REQUIRED.items() for name in names
] + [("items", index, name) for index in (0, 1) for name in ITEM_REQUIRED]


def _lines(count: int, repeat_last: bool) -> list[dict[str, Any]]:
    lines = [{"product_id": f"PRD-{n}", "quantity": 1, "unit_price": Decimal("10.00")} for n in range(count)]
    if repeat_last and count > 1:
        lines[-1]["product_id"] = lines[0]["product_id"]
    return lines


@st.composite
def nearly_valid(draw: st.DrawFn, family: str | None = None) -> dict[str, Any]:
    """The lab's example one step from valid: a watched field at a near-miss value, a field dropped or nulled,
    or a number of items; many are still accepted, which gives the oracle something to judge."""
    family = family or draw(st.sampled_from(FAMILIES))
    document = copy.deepcopy(LAB)
    if family in ("drop", "null"):
        path = draw(st.sampled_from(REQUIRED_PATHS))
        if family == "drop":
            del _parent(document, path)[path[-1]]
        else:
            _parent(document, path)[path[-1]] = None
    elif family == "items":
        document["items"] = _lines(draw(st.sampled_from([0, 1, 2, 49, 50, 51, 52])), draw(st.booleans()))
    else:
        path, values = NEAR_MISSES[family]
        _parent(document, path)[path[-1]] = copy.deepcopy(draw(st.sampled_from(values)))
    if family != "amount" and draw(st.integers(min_value=0, max_value=3)):
        _rebalance(document)
    return document


# Arbitrary values and heavy mutations test robustness; near misses give the oracle accepted orders to judge.
ANY_DOCUMENT = st.one_of(JSON_VALUES, mutated_lab(), nearly_valid())


# ---------------------------------------------------------------- the oracle
def _number(value: Any) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool) and Decimal(value).is_finite()


def _money(value: Any) -> bool:
    if not _number(value) or value < 0:
        return False
    with localcontext() as context:
        context.prec = 200
        return Decimal(value) * 100 == (Decimal(value) * 100).to_integral_value()


def _get(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for name in filter(None, dotted.split(".")):
        value = value.get(name) if isinstance(value, dict) else None
    return value


def broken_rules(document: Any) -> list[str]:
    """The key rules of the README, checked without the schema or the validator."""
    if not isinstance(document, dict):
        return ["the order is not an object"]
    broken = []
    for parent, names in REQUIRED.items():
        container = _get(document, parent)
        for name in names:
            if not isinstance(container, dict) or container.get(name) is None:
                broken.append(f"{parent}.{name} missing")
    order_id = document.get("order_id")
    if not (isinstance(order_id, str) and ID.fullmatch(order_id)):
        broken.append(f"order_id {order_id!r}")
    items = document.get("items")
    if not (isinstance(items, list) and 1 <= len(items) <= 49):
        return [*broken, "items is not a list of 1 to 49"]
    total = Decimal(0)
    seen = set()
    for item in items:
        if not isinstance(item, dict) or any(item.get(name) is None for name in ITEM_REQUIRED):
            broken.append(f"item {item!r} incomplete")
            continue
        product_id, quantity, price = item["product_id"], item["quantity"], item["unit_price"]
        if not (isinstance(product_id, str) and ID.fullmatch(product_id)):
            broken.append(f"product_id {product_id!r}")
        if isinstance(product_id, str):
            if product_id in seen:
                broken.append(f"product_id {product_id!r} repeated")
            seen.add(product_id)
        if type(quantity) is not int or quantity < 1:
            broken.append(f"quantity {quantity!r}")
        if not _money(price):
            broken.append(f"unit_price {price!r}")
        if type(quantity) is int and _number(price):
            with localcontext() as context:
                context.prec = 200
                total += Decimal(price) * quantity
    amount, cost = _get(document, "payment.amount"), _get(document, "shipping.cost")
    for name, value in (("payment.amount", amount), ("shipping.cost", cost)):
        if not _money(value):
            broken.append(f"{name} {value!r}")
    if _number(amount) and _number(cost):
        with localcontext() as context:
            context.prec = 200
            if amount not in (total, total + cost):
                broken.append(f"amount {amount} is neither {total} nor {total + cost}")
    for address in ("customer.address", "shipping.address"):
        state = _get(document, f"{address}.state")
        if not (isinstance(state, str) and state in UFS):
            broken.append(f"{address}.state {state!r}")
    return broken


def test_the_oracle_accepts_the_lab_example_and_catches_a_broken_rule() -> None:
    assert broken_rules(LAB) == []
    bad = copy.deepcopy(LAB)
    bad["items"][0]["quantity"] = True
    assert "quantity True" in broken_rules(bad)
    bad = copy.deepcopy(LAB)
    bad["order_id"] += "\n"
    assert broken_rules(bad) == ["order_id 'ORD-20231001-0001\\n'"]


# ---------------------------------------------------------------- properties of the validator
def _assert_well_formed(errors: Any) -> None:
    assert isinstance(errors, list)
    for error in errors:
        assert isinstance(error, FieldError)
        assert isinstance(error.field, str) and error.field
        assert isinstance(error.message, str) and error.message


@PROPERTIES
@given(ANY_DOCUMENT)
def test_errors_never_raise_and_are_well_formed(document: Any) -> None:
    _assert_well_formed(VALIDATOR.errors(document))


@PROPERTIES
@given(ANY_DOCUMENT)
def test_validate_raises_only_order_rejected_and_accepts_nothing_that_breaks_a_rule(document: Any) -> None:
    _check_validate(document)


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_near_misses_are_accepted_only_when_every_rule_holds(family: str, data: st.DataObject) -> None:
    _check_validate(data.draw(nearly_valid(family)))


def _check_validate(document: Any) -> None:
    errors = VALIDATOR.errors(document)
    try:
        order = VALIDATOR.validate(document)
    except OrderRejected as exc:
        assert exc.errors, "a rejection names at least one error"
        _assert_well_formed(exc.errors)
        assert errors, "validate() refused what errors() found no fault in"
        return
    assert errors == [], "validate() accepted what errors() refused"
    assert broken_rules(document) == [], "the validator accepted an order that breaks a rule"
    assert order.order_id == document["order_id"]
    assert [(i.product_id, i.quantity) for i in order.items] == [
        (i["product_id"], i["quantity"]) for i in document["items"]
    ]
    assert not _holds_null(order.document) and "order_status" not in order.document, "kept what it must drop"


def _holds_null(value: Any) -> bool:
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return value is None or any(_holds_null(child) for child in children)


@pytest.mark.parametrize(
    ("part", "path", "value"),
    [
        ("_schema_validate", ("customer", "address", "state"), "XX"),
        ("_schema_validate", ("items", 0, "product_id"), "PRD 1001"),
        ("rule_errors", ("items", 1, "product_id"), "PRD-1001"),
        ("rule_errors", ("payment", "amount"), Decimal("2799.99")),
    ],
)
def test_the_property_fails_for_a_validator_missing_a_part(
    monkeypatch: pytest.MonkeyPatch, part: str, path: tuple[Any, ...], value: Any
) -> None:
    # The oracle does not lean on the schema or the rules: without either, the property catches what slips through.
    monkeypatch.setattr(validation, part, (lambda document: None) if part == "_schema_validate" else (lambda *_: []))
    document = copy.deepcopy(LAB)
    _parent(document, path)[path[-1]] = value

    with pytest.raises(AssertionError, match="breaks a rule"):
        _check_validate(document)


FREE_TEXT = st.text(min_size=1, max_size=5) | st.sampled_from(["\ud800", "a\udfff", "\ufffe", "\uffff", "\x00", "\x1f"])


@PROPERTIES
@given(FREE_TEXT, st.sampled_from([("notes",), ("customer", "first_name"), ("items", 0, "description")]))
def test_every_accepted_order_can_travel_on_the_queue(text: str, path: tuple[Any, ...]) -> None:
    """An order the validator accepts must fit in an SQS message: no character outside SQS's allowed set."""
    document = copy.deepcopy(LAB)
    _parent(document, path)[path[-1]] = text
    try:
        order = VALIDATOR.validate(document)
    except OrderRejected:
        return
    message = encode_order(order)
    assert not SQS_UNSAFE.search(message), f"accepted order cannot be sent to SQS: {message[:200]!r}"
    message.encode("utf-8")


# ---------------------------------------------------------------- properties of the readers
def _json_text(value: Any) -> str:
    return json.dumps(value, default=str)


RAW_BODIES = (
    st.binary(max_size=300)
    | JSON_VALUES.map(_json_text).map(str.encode)
    | st.integers(min_value=1, max_value=30000).map(lambda depth: b"[" * depth + b"]" * depth)
    | st.integers(min_value=1, max_value=30000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth)
    | st.sampled_from([b"NaN", b'{"x": Infinity}', b"-Infinity", b"\xef\xbb\xbf{}", b"\x00", b'"\\ud800"', b"1e999999"])
)


@PROPERTIES
@given(RAW_BODIES | st.text(max_size=100) | st.none())
def test_parse_order_body_raises_only_order_rejected(body: Any) -> None:
    try:
        parse_order_body(body)
    except OrderRejected as exc:
        _assert_well_formed(exc.errors)
        assert exc.errors


@PROPERTIES
@given(
    st.sampled_from(["incoming/a.json", "incoming/a.jsonl", "incoming/A.JSONL"]),
    RAW_BODIES | RAW_BODIES.map(lambda body: b"\xef\xbb\xbf" + body) | st.lists(RAW_BODIES, max_size=5).map(b"\n".join),
)
def test_read_entries_returns_entries_or_raises_file_rejected(key: str, data: bytes) -> None:
    try:
        entries = read_entries(key, data)
    except FileRejected as exc:
        assert str(exc)
        return
    assert isinstance(entries, list) and entries
    for entry in entries:
        assert isinstance(entry, Entry)
        if entry.error is not None:
            _assert_well_formed([entry.error])
