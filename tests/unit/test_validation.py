"""The one validator of both entries: schema rules and business rules, every error at once, in Portuguese."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.model import FieldError, Order, OrderRejected
from orders.schema_errors import UNKNOWN
from orders.validation import _MESSAGES, BODY, MAX_ORDER_BYTES, OrderValidator, _two_places, parse_order_body

VALID_CPF = "529.982.247-25"
VALID_CNPJ = "11.222.333/0001-81"
_ENGLISH = re.compile(r"\b(must|should|required|invalid|expected|is not|not valid|too (long|short))\b", re.I)

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"

validator = OrderValidator()
strict_validator = OrderValidator(strict_documents=True)


# ---------------------------------------------------------------- helpers
def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in path.split("."):
        name, *indexes = re.split(r"\[(\d+)\]", part)
        if name:
            steps.append(name)
        steps += [int(i) for i in indexes if i]
    return steps


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = _steps(path)
    target: Any = doc
    for step in parents:
        target = target[step]
    target[last] = value


def delete_path(doc: dict[str, Any], path: str) -> None:
    *parents, last = _steps(path)
    target: Any = doc
    for step in parents:
        target = target[step]
    del target[last]


def rebalance(doc: dict[str, Any]) -> None:
    """Make payment.amount equal the items total again, so only the rule under test can fail."""
    doc["payment"]["amount"] = sum((Decimal(i["unit_price"]) * i["quantity"] for i in doc["items"]), Decimal("0.00"))


def error_fields(errors: list[FieldError]) -> set[str]:
    return {e.field for e in errors}


def assert_portuguese(errors: list[FieldError]) -> None:
    for error in errors:
        assert isinstance(error.message, str) and error.message.strip(), error
        assert not _ENGLISH.search(error.message), f"message is not in Portuguese: {error}"


def assert_only(errors: list[FieldError], *fields: str) -> None:
    """Exactly the given fields are wrong (each may carry more than one message), and each says why."""
    assert error_fields(errors) == set(fields), errors
    assert_portuguese(errors)


def rejected(doc: Any, strict: bool = False) -> list[FieldError]:
    chosen = strict_validator if strict else validator
    with pytest.raises(OrderRejected) as caught:
        chosen.validate(doc)
    assert caught.value.errors == chosen.errors(doc)
    return caught.value.errors


def walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in walk(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in walk(item)]
    return [value]


# ---------------------------------------------------------------- the lab's example
def test_lab_example_is_accepted_in_default_mode(lab: dict[str, Any]) -> None:
    order = validator.validate(lab)

    assert order.order_id == "ORD-20231001-0001"
    assert order.order_date == "2023-10-01T10:30:00Z"
    assert [(i.product_id, i.quantity, i.unit_price) for i in order.items] == [
        ("PRD-1001", 1, Decimal("2500.00")),
        ("PRD-2002", 2, Decimal("150.00")),
    ]
    assert order.items_total == Decimal("2800.00")


def test_lab_example_is_rejected_in_strict_mode_only_for_check_digits(lab: dict[str, Any]) -> None:
    errors = rejected(lab, strict=True)

    assert_only(errors, "customer.cpf", "company.cnpj")


def test_lab_example_through_the_body_parser(lab_text: str) -> None:
    order = validator.validate(parse_order_body(lab_text))

    assert order.order_id == "ORD-20231001-0001"


def test_rejection_carries_the_order_id(lab: dict[str, Any]) -> None:
    lab["customer"]["email"] = "sem-arroba"

    with pytest.raises(OrderRejected) as caught:
        validator.validate(lab)

    assert caught.value.order_id == "ORD-20231001-0001"
    assert "customer.email" in str(caught.value)


# ---------------------------------------------------------------- all errors at once
def test_every_error_is_reported_at_once(lab: dict[str, Any]) -> None:
    lab["order_id"] = "ORD#1"
    lab["customer"]["email"] = "mariana"
    lab["items"][1]["quantity"] = "2"
    lab["shipping"]["address"]["state"] = "XX"
    lab["customer"]["address"]["zip_code"] = "2264-0102"
    del lab["company"]

    errors = rejected(lab)

    assert_only(
        errors,
        "order_id",
        "customer.email",
        "items[1].quantity",
        "shipping.address.state",
        "customer.address.zip_code",
        "company",
    )


@pytest.mark.parametrize(
    "path",
    [
        "order_id",
        "company",
        "company.name",
        "company.cnpj",
        "customer",
        "customer.first_name",
        "customer.last_name",
        "customer.cpf",
        "customer.email",
        "customer.address",
        "customer.address.street",
        "customer.address.number",
        "customer.address.city",
        "customer.address.state",
        "customer.address.zip_code",
        "order_date",
        "items[0].product_id",
        "items[0].quantity",
        "items[0].unit_price",
        "payment",
        "payment.method",
        "payment.amount",
        "shipping",
        "shipping.method",
        "shipping.cost",
        "shipping.address",
        "shipping.address.zip_code",
    ],
)
def test_a_missing_required_field_is_named(lab: dict[str, Any], path: str) -> None:
    delete_path(lab, path)

    assert_only(rejected(lab), path)


@pytest.mark.parametrize("path", ["customer.cpf", "payment.amount", "items[1].product_id", "shipping.address"])
def test_null_counts_as_missing(lab: dict[str, Any], path: str) -> None:
    set_path(lab, path, None)

    assert_only(rejected(lab), path)


@pytest.mark.parametrize("path", ["customer.phone", "notes", "shipping.expected_delivery_date", "items[0].description"])
def test_optional_fields_may_be_left_out(lab: dict[str, Any], path: str) -> None:
    delete_path(lab, path)

    validator.validate(lab)


# ---------------------------------------------------------------- types are exact
@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("items[1].quantity", "2"),
        ("items[1].quantity", True),
        ("items[0].unit_price", "2500.00"),
        ("payment.amount", "2800.00"),
        ("shipping.cost", "50"),
        ("order_id", 20231001),
        ("customer.address.number", 5000),
        ("customer", "Mariana Alves"),
        ("items[0]", "PRD-1001"),
        ("customer.cpf", 12345678900),
    ],
)
def test_types_are_exact(lab: dict[str, Any], path: str, value: Any) -> None:
    set_path(lab, path, value)

    assert_only(rejected(lab), path)


def test_a_float_from_a_lenient_parser_is_not_money(lab: dict[str, Any]) -> None:
    # Money must arrive as Decimal (parse_json); a float would already have lost exactness.
    lab["payment"]["amount"] = 2800.0

    assert_only(rejected(lab), "payment.amount")


# ---------------------------------------------------------------- items
@pytest.mark.parametrize("quantity", [0, -1, Decimal("1.5"), Decimal("2.0"), 100001])
def test_bad_quantity(lab: dict[str, Any], quantity: Any) -> None:
    lab["items"][1]["quantity"] = quantity
    if isinstance(quantity, int):
        rebalance(lab)

    assert_only(rejected(lab), "items[1].quantity")


def test_largest_quantity_is_accepted(lab: dict[str, Any]) -> None:
    lab["items"][1]["quantity"] = 100000
    rebalance(lab)

    assert validator.validate(lab).items[1].quantity == 100000


def _items(count: int) -> list[dict[str, Any]]:
    return [{"product_id": f"PRD-{n:04d}", "quantity": 1, "unit_price": Decimal("1.00")} for n in range(count)]


@pytest.mark.parametrize(("count", "accepted"), [(0, False), (1, True), (49, True), (50, False)])
def test_number_of_items(lab: dict[str, Any], count: int, accepted: bool) -> None:
    lab["items"] = _items(count)
    rebalance(lab)

    if accepted:
        assert len(validator.validate(lab).items) == count
    else:
        assert_only(rejected(lab), "items")


@pytest.mark.parametrize("items", [None, "missing", {"product_id": "PRD-1001"}, "PRD-1001"])
def test_missing_or_malformed_items_are_one_error_not_also_a_payment_error(lab: dict[str, Any], items: Any) -> None:
    # With no readable items there is no total to compare: payment.amount is not what is wrong.
    if items == "missing":
        del lab["items"]
    else:
        lab["items"] = items

    assert_only(rejected(lab), "items")


def test_repeated_product_is_rejected_on_the_repeat(lab: dict[str, Any]) -> None:
    lab["items"][1]["product_id"] = "PRD-1001"

    errors = rejected(lab)

    assert_only(errors, "items[1].product_id")
    assert "items[0]" in errors[0].message


@pytest.mark.parametrize("product_id", ["PRD 1001", "PRD#1001", "", "P" * 65, "PRD-1001\n"])
def test_bad_product_id(lab: dict[str, Any], product_id: str) -> None:
    lab["items"][0]["product_id"] = product_id

    assert_only(rejected(lab), "items[0].product_id")


# ---------------------------------------------------------------- money
@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("items[0].unit_price", Decimal("2500.000")),
        ("payment.amount", Decimal("2800.000")),
        ("shipping.cost", Decimal("50.001")),
    ],
)
def test_money_has_at_most_two_decimals(lab: dict[str, Any], path: str, value: Decimal) -> None:
    set_path(lab, path, value)

    assert_only(rejected(lab), path)


def test_three_decimal_price_is_rejected_even_when_the_totals_agree(lab: dict[str, Any]) -> None:
    lab["items"][0]["unit_price"] = Decimal("2500.005")
    lab["payment"]["amount"] = Decimal("2800.005")

    assert_only(rejected(lab), "items[0].unit_price", "payment.amount")


@pytest.mark.parametrize("price", [Decimal("2500"), Decimal("2500.0"), Decimal("2500.00"), 2500])
def test_money_with_up_to_two_decimals_is_accepted(lab: dict[str, Any], price: Any) -> None:
    lab["items"][0]["unit_price"] = price

    assert validator.validate(lab).items[0].unit_price == Decimal(2500)


@pytest.mark.parametrize("path", ["items[0].unit_price", "payment.amount", "shipping.cost"])
def test_money_is_not_negative(lab: dict[str, Any], path: str) -> None:
    set_path(lab, path, Decimal("-1.00"))
    if path.startswith("items"):
        rebalance(lab)

    assert_only(rejected(lab), path)


@pytest.mark.parametrize("amount", [Decimal("2800.00"), Decimal("2850.00"), 2850, Decimal("2800.0"), Decimal("2.8E+3")])
def test_amount_is_the_items_total_or_the_total_with_shipping(lab: dict[str, Any], amount: Any) -> None:
    lab["payment"]["amount"] = amount

    validator.validate(lab)


@pytest.mark.parametrize("amount", [Decimal("2799.99"), Decimal("2850.01"), Decimal("50.00"), Decimal("0"), 2900])
def test_any_other_amount_is_rejected(lab: dict[str, Any], amount: Any) -> None:
    lab["payment"]["amount"] = amount

    assert_only(rejected(lab), "payment.amount")


def test_free_shipping_amount(lab: dict[str, Any]) -> None:
    lab["shipping"]["cost"] = 0

    validator.validate(lab)


# ---------------------------------------------------------------- order_id
@pytest.mark.parametrize(
    "order_id", ["ORD#1", "ORD 1", "O" * 65, "", "ORD-1\n", "ORD-1\r\n", " ORD-1", "pedido/1", "ORDÉ"]
)
def test_bad_order_id(lab: dict[str, Any], order_id: str) -> None:
    lab["order_id"] = order_id

    assert_only(rejected(lab), "order_id")


@pytest.mark.parametrize("order_id", ["O" * 64, "a", "ORD_2023-10-01", "0"])
def test_good_order_id(lab: dict[str, Any], order_id: str) -> None:
    lab["order_id"] = order_id

    assert validator.validate(lab).order_id == order_id


# ---------------------------------------------------------------- CPF and CNPJ
@pytest.mark.parametrize("cpf", ["123.456.789-00", "12345678900"])
@pytest.mark.parametrize("cnpj", ["12.345.678/0001-99", "12345678000199"])
def test_document_formats_accepted(lab: dict[str, Any], cpf: str, cnpj: str) -> None:
    lab["customer"]["cpf"] = cpf
    lab["company"]["cnpj"] = cnpj

    validator.validate(lab)


@pytest.mark.parametrize(
    "cpf", ["123456789-00", "123.456.78900", "1234567890", "123456789000", "123.456.789-0a", "123.456.789-00 ", ""]
)
def test_cpf_other_formats_rejected(lab: dict[str, Any], cpf: str) -> None:
    lab["customer"]["cpf"] = cpf

    assert_only(rejected(lab), "customer.cpf")


@pytest.mark.parametrize(
    "cnpj", ["12345678/0001-99", "12.345.678.0001-99", "1234567800019", "12.345.678/0001-9", "12.345.678/0001-99\n"]
)
def test_cnpj_other_formats_rejected(lab: dict[str, Any], cnpj: str) -> None:
    lab["company"]["cnpj"] = cnpj

    assert_only(rejected(lab), "company.cnpj")


@pytest.mark.parametrize(("cpf", "cnpj"), [(VALID_CPF, VALID_CNPJ), ("52998224725", "11222333000181")])
def test_strict_mode_accepts_valid_check_digits(lab: dict[str, Any], cpf: str, cnpj: str) -> None:
    lab["customer"]["cpf"] = cpf
    lab["company"]["cnpj"] = cnpj

    strict_validator.validate(lab)
    validator.validate(lab)


@pytest.mark.parametrize("cpf", ["529.982.247-24", "111.111.111-11", "000.000.000-00"])
def test_strict_mode_rejects_cpf_check_digits(lab: dict[str, Any], cpf: str) -> None:
    lab["customer"]["cpf"] = cpf
    lab["company"]["cnpj"] = VALID_CNPJ

    assert_only(rejected(lab, strict=True), "customer.cpf")
    validator.validate(lab)


@pytest.mark.parametrize("cnpj", ["11.222.333/0001-80", "11.111.111/1111-11"])
def test_strict_mode_rejects_cnpj_check_digits(lab: dict[str, Any], cnpj: str) -> None:
    lab["customer"]["cpf"] = VALID_CPF
    lab["company"]["cnpj"] = cnpj

    assert_only(rejected(lab, strict=True), "company.cnpj")
    validator.validate(lab)


# ---------------------------------------------------------------- customer and addresses
@pytest.mark.parametrize(
    "email",
    [
        "mariana",
        "mariana@",
        "@example.com",
        "mariana@example",
        "mari ana@example.com",
        "mariana@@example.com",
        "mariana@example.com\n",
        "mariana@-example.com",
        "m" * 250 + "@example.com",
    ],
)
def test_bad_email(lab: dict[str, Any], email: str) -> None:
    lab["customer"]["email"] = email

    assert_only(rejected(lab), "customer.email")


@pytest.mark.parametrize("email", ["m@example.com", "mariana.alves+pedidos@mail.example.com.br"])
def test_good_email(lab: dict[str, Any], email: str) -> None:
    lab["customer"]["email"] = email

    validator.validate(lab)


@pytest.mark.parametrize("state", ["XX", "rj", "Rio", ""])
@pytest.mark.parametrize("address", ["customer.address", "shipping.address"])
def test_bad_state(lab: dict[str, Any], address: str, state: str) -> None:
    set_path(lab, f"{address}.state", state)

    assert_only(rejected(lab), f"{address}.state")


@pytest.mark.parametrize("zip_code", ["22640-102", "22640102"])
def test_good_zip_code(lab: dict[str, Any], zip_code: str) -> None:
    lab["shipping"]["address"]["zip_code"] = zip_code

    validator.validate(lab)


@pytest.mark.parametrize("zip_code", ["22640 102", "2264-0102", "22640-10", "ABCDE-FGH", "22640-1020", "2264010", ""])
def test_bad_zip_code(lab: dict[str, Any], zip_code: str) -> None:
    lab["shipping"]["address"]["zip_code"] = zip_code

    assert_only(rejected(lab), "shipping.address.zip_code")


# ---------------------------------------------------------------- order_date
@pytest.mark.parametrize(
    "order_date",
    ["2023-10-01", "2023-10-01T10:30:00Z", "2023-10-01T10:30:00-03:00", "2023-10-01 10:30", "2023-10-01T10:30:00.123Z"],
)
def test_good_order_date(lab: dict[str, Any], order_date: str) -> None:
    lab["order_date"] = order_date

    assert validator.validate(lab).order_date == order_date


@pytest.mark.parametrize(
    "order_date",
    ["2023-13-01", "ontem", "2023-02-30", "2023-10-01T25:00:00Z", "01/10/2023", "2023-10-01T10:30:00Z\n", "20231001"],
)
def test_bad_order_date(lab: dict[str, Any], order_date: str) -> None:
    lab["order_date"] = order_date

    assert_only(rejected(lab), "order_date")


# ---------------------------------------------------------------- the HTTP body
def _body_error(body: Any) -> FieldError:
    with pytest.raises(OrderRejected) as caught:
        parse_order_body(body)
    errors = caught.value.errors
    assert [e.field for e in errors] == [BODY]
    # The parser's own detail may follow a colon; what we say before it is ours, in Portuguese.
    assert_portuguese([FieldError(e.field, e.message.split(":")[0]) for e in errors])
    return errors[0]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(lab_text: str, constant: str) -> None:
    body = lab_text.replace('"amount": 2800.00', f'"amount": {constant}')
    assert body != lab_text

    _body_error(body)


@pytest.mark.parametrize("body", ["{", "pedido", "{'order_id': 'x'}", '{"order_id": "x",}'])
def test_not_json(body: str | bytes) -> None:
    assert "JSON" in _body_error(body).message


def test_not_utf8() -> None:
    assert _body_error(b"\xff{}").message == "corpo não está em UTF-8 (byte inválido na posição 0)"


@pytest.mark.parametrize("body", [None, "", "   ", "\n", b"", b" \r\n"])
def test_empty_body(body: Any) -> None:
    assert "vazio" in _body_error(body).message


def test_body_over_the_limit_is_refused(lab_text: str) -> None:
    body = lab_text + " " * (MAX_ORDER_BYTES + 1 - len(lab_text.encode("utf-8")))
    assert len(body.encode("utf-8")) == MAX_ORDER_BYTES + 1

    assert str(MAX_ORDER_BYTES) in _body_error(body).message
    _body_error(body.encode("utf-8"))


def test_body_at_the_limit_is_read(lab_text: str) -> None:
    body = lab_text + " " * (MAX_ORDER_BYTES - len(lab_text.encode("utf-8")))
    assert len(body.encode("utf-8")) == MAX_ORDER_BYTES

    validator.validate(parse_order_body(body))


def test_the_limit_counts_bytes_not_characters(lab_text: str) -> None:
    # "é" is two bytes in UTF-8: a body under the limit in characters may be over it in bytes.
    padding = MAX_ORDER_BYTES // 2 + 1
    body = lab_text.replace('"notes": "', '"x": "' + "é" * padding + '", "notes": "')
    assert len(body) < MAX_ORDER_BYTES < len(body.encode("utf-8"))

    _body_error(body)


def test_byte_order_mark_is_ignored(lab_text: str) -> None:
    assert validator.validate(parse_order_body("\ufeff" + lab_text)).order_id == "ORD-20231001-0001"


def test_utf8_bytes_body(lab_text: str) -> None:
    order = validator.validate(parse_order_body(lab_text.encode("utf-8")))

    assert order.document["customer"]["address"]["street"] == "Avenida das Américas"


def test_deep_nesting_is_a_body_error() -> None:
    _body_error("[" * 100000 + "]" * 100000)


@pytest.mark.parametrize("body", ["[]", '"pedido"', "42", "null", "true"])
def test_top_level_must_be_an_object(body: str) -> None:
    errors = rejected(parse_order_body(body))

    assert_only(errors, "(pedido)")


def test_a_list_of_orders_is_not_one_order(lab_text: str) -> None:
    assert_only(rejected(parse_order_body(f"[{lab_text}]")), "(pedido)")


# ---------------------------------------------------------------- what is kept
def test_unknown_fields_are_accepted_but_not_kept(lab: dict[str, Any]) -> None:
    lab["coupon"] = "DESCONTO10"
    lab["company"]["ie"] = "123"
    lab["customer"]["nickname"] = "Mari"
    lab["customer"]["address"]["geo"] = {"lat": Decimal("-22.99")}
    lab["items"][0]["color"] = "preto"
    lab["payment"]["installments"] = 3
    lab["shipping"]["address"]["reference"] = "portaria"

    document = validator.validate(lab).document

    assert "coupon" not in document
    assert "ie" not in document["company"]
    assert "nickname" not in document["customer"]
    assert "geo" not in document["customer"]["address"]
    assert "color" not in document["items"][0]
    assert "installments" not in document["payment"]
    assert "reference" not in document["shipping"]["address"]
    assert "coupon" in lab, "the caller's document must not be changed"


def test_known_fields_are_kept_as_sent(lab: dict[str, Any], lab_document: dict[str, Any]) -> None:
    document = validator.validate(lab).document

    expected = {key: value for key, value in lab_document.items() if key != "order_status"}
    assert document == expected


def test_incoming_order_status_is_dropped(lab: dict[str, Any]) -> None:
    assert lab["order_status"] == "Pendente"

    document = validator.validate(lab).document

    assert "order_status" not in document
    assert document["notes"] == "Entregar no período da tarde."


def test_money_is_decimal_exactly_as_sent_and_never_float(lab_text: str) -> None:
    order: Order = validator.validate(parse_order_body(lab_text))
    document = order.document

    assert not [leaf for leaf in walk(document) if isinstance(leaf, float)]
    money = [document["items"][0]["unit_price"], document["items"][1]["unit_price"]]
    money += [document["payment"]["amount"], document["shipping"]["cost"]]
    assert [type(m) for m in money] == [Decimal] * 4
    assert [str(m) for m in money] == ["2500.00", "150.00", "2800.00", "50.00"]
    assert [str(i.unit_price) for i in order.items] == ["2500.00", "150.00"]
    assert str(order.items_total) == "2800.00"


def test_cents_add_up_exactly(lab: dict[str, Any]) -> None:
    # 0.1 + 0.2 is 0.30000000000000004 in float; in Decimal it is 0.30.
    lab["items"] = [
        {"product_id": "A", "quantity": 1, "unit_price": Decimal("0.10")},
        {"product_id": "B", "quantity": 1, "unit_price": Decimal("0.20")},
    ]
    lab["payment"]["amount"] = Decimal("0.30")

    assert validator.validate(lab).items_total == Decimal("0.30")


@pytest.mark.parametrize("make", [lambda doc: doc, lambda doc: {**doc, "extra": [1, {"a": None}]}])
def test_errors_is_empty_for_valid_documents(lab: dict[str, Any], make: Callable[[dict[str, Any]], Any]) -> None:
    assert validator.errors(make(lab)) == []


def test_null_optional_fields_are_left_out_of_the_copy(lab: dict[str, Any]) -> None:
    lab["customer"]["phone"] = None
    lab["items"][0]["description"] = None

    document = validator.validate(lab).document

    assert "phone" not in document["customer"] and "description" not in document["items"][0]
    assert lab["customer"]["phone"] is None, "the caller's document must not be changed"


def test_a_field_gets_one_error_the_first_of_type_characters_then_form(lab: dict[str, Any]) -> None:
    lab["order_id"] = "ORD#\x00"
    lab["customer"]["email"] = 42

    errors = rejected(lab)

    assert [(e.field, e.message) for e in errors] == [
        ("order_id", "contém caracteres não permitidos (de controle ou substitutos UTF-16 isolados)"),
        ("customer.email", "deve ser texto"),
    ]


def test_a_list_too_long_is_one_error_whatever_its_items(lab: dict[str, Any]) -> None:
    lab["items"] = _items(50)
    lab["items"][3]["quantity"] = "1"

    assert [e.field for e in rejected(lab)] == ["items"]


@given(st.decimals(allow_nan=True, allow_infinity=True) | st.decimals(places=3) | st.sampled_from(["1E+2", "-0.00"]))
def test_two_places_reads_the_exponent_as_written(value: Decimal | str) -> None:
    value = Decimal(value)
    exponent = value.as_tuple().exponent

    assert _two_places(value) == (isinstance(exponent, int) and exponent >= -2)


def test_every_rule_of_the_generated_code_has_a_portuguese_message() -> None:
    rules = set(re.findall(r"rule='(\w+)'", (FUNCTIONS / "orders" / "order_schema.py").read_text("utf-8")))

    assert rules - {"required", UNKNOWN} <= set(_MESSAGES), rules


def test_the_validator_runs_without_fastjsonschema() -> None:
    # The Lambda zip is functions/ alone: the generated code must not import the library that generated it.
    blocked = "import sys; sys.modules['fastjsonschema'] = None; import orders.validation"
    result = subprocess.run([sys.executable, "-c", blocked], cwd=FUNCTIONS, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
