"""Issue 11, point 7, the small defects: Portuguese parse errors, UTF-8 only bodies, no negative zero in money,
and data-lake files the pipeline does not read get a report saying so."""

from __future__ import annotations

from typing import Any

import pytest

from orders.files import FileRejected, read_entries
from orders.model import OrderRejected
from orders.restock import RestockRejected, parse_restock_body
from orders.validation import parse_order_body

# Words of Python's own error texts that must never reach a user.
ENGLISH = ("Expecting", "line", "column", "char", "recursion", "Exceeds", "digits", "delimiter", "codec", "Extra data")


def body_errors(parse: Any, body: str | bytes) -> list[tuple[str, str]]:
    with pytest.raises((OrderRejected, RestockRejected)) as caught:
        parse(body)
    return [(e.field, e.message) for e in caught.value.errors]


def assert_portuguese(message: str) -> None:
    assert message.startswith("JSON inválido: "), message
    assert not any(word in message for word in ENGLISH), message


# ================================================================ 2. parse errors in Portuguese
NOT_JSON = {
    "empty-value": ("{}x", "conteúdo depois do fim do JSON"),
    "nothing": ("   x", "esperado um valor"),
    "missing-value": ('{"order_id": }', "esperado um valor"),
    "unquoted-name": ("{order_id: 1}", "esperado o nome de um campo entre aspas duplas"),
    "missing-colon": ('{"order_id" 1}', "esperado ':'"),
    "missing-comma": ('{"a": 1 "b": 2}', "esperado ','"),
    "unterminated-string": ('{"a": "b', "texto sem aspas de fechamento"),
    "control-character": ('{"a": "\x01"}', "caractere de controle"),
    "bad-escape": ('{"a": "\\x"}', "escape inválido"),
    "deep": ("[" * 3000, "aninhamento profundo demais"),
    "huge-integer": ('{"quantity": ' + "9" * 5000 + "}", "número inteiro com mais de"),
    "nan": ('{"quantity": NaN}', "NaN não é um número JSON válido"),
}


# A restock body is at most 4 KiB: too small for an integer of more than 4,300 digits.
BOTH = [
    pytest.param(parse, body, expected, id=f"{kind}-{name}")
    for kind, parse in (("order", parse_order_body), ("restock", parse_restock_body))
    for name, (body, expected) in NOT_JSON.items()
    if not (kind == "restock" and name == "huge-integer")
]


@pytest.mark.parametrize(("parse", "body", "expected"), BOTH)
def test_a_body_that_is_not_json_is_explained_in_portuguese(parse: Any, body: str, expected: str) -> None:
    # Given a body that is not JSON, when it is parsed, then the one body error says why, in Portuguese
    [(field, message)] = body_errors(parse, body)
    assert field == "(corpo)"
    assert_portuguese(message)
    assert expected in message


def test_a_syntax_error_names_its_line_and_column_in_portuguese() -> None:
    [(_, message)] = body_errors(parse_order_body, '{\n  "a": 1,\n  "b": }')
    assert message == "JSON inválido: esperado um valor (linha 3, coluna 8)"


def test_a_one_line_body_names_only_the_column() -> None:
    [(_, message)] = body_errors(parse_order_body, '{"a": }')
    assert message == "JSON inválido: esperado um valor (coluna 7)"


@pytest.mark.parametrize(("body", "expected"), NOT_JSON.values(), ids=NOT_JSON.keys())
def test_a_file_that_is_not_json_is_reported_in_portuguese(body: str, expected: str) -> None:
    with pytest.raises(FileRejected) as caught:
        read_entries("incoming/bad.json", body.encode())
    assert_portuguese(str(caught.value))
    assert expected in str(caught.value)


@pytest.mark.parametrize(("body", "expected"), NOT_JSON.values(), ids=NOT_JSON.keys())
def test_a_json_lines_line_that_is_not_json_is_reported_in_portuguese(body: str, expected: str) -> None:
    entries = read_entries("incoming/bad.jsonl", b'{"order_id": "A"}\n' + body.encode())

    [error] = [entry.error for entry in entries if entry.error is not None]
    assert error.field == "(linha 2)"
    assert_portuguese(error.message)
    assert expected in error.message
