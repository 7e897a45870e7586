"""Issue 11, point 7, the small defects: Portuguese parse errors, UTF-8 only bodies, no negative zero in money,
and data-lake files the pipeline does not read get a report saying so."""

from __future__ import annotations

import base64
import importlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from fakes import FakeFiles, FakeNotifier, FakeQueue, FakeRestockQueue, FakeStore

from orders.codec import encode_order
from orders.files import FileRejected, read_entries
from orders.model import OrderRejected
from orders.report import report_key
from orders.restock import RestockRejected, parse_restock_body
from orders.validation import OrderValidator, parse_order_body
from sandbox import cli as sandbox_cli
from service.use_cases import FileIngestion, OrderIntake, RestockIntake

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


# ================================================================ 1. UTF-8 only
class Api:
    """handlers.api wired with fakes: POST /orders and POST /products/{id}/restock as API Gateway sends them."""

    def __init__(self, module: Any, store: FakeStore, orders: FakeQueue, restocks: FakeRestockQueue) -> None:
        self.module, self.store, self.orders, self.restocks = module, store, orders, restocks

    def post(self, route: str, body: str | bytes, content_type: str | None = "application/json") -> dict[str, Any]:
        # A body the gateway passes as bytes arrives base64-encoded; text arrives as a str (already decoded).
        encoded = isinstance(body, bytes)
        event = {
            "httpMethod": "POST",
            "resource": "/orders" if route == "order" else "/products/{product_id}/restock",
            "pathParameters": None if route == "order" else {"product_id": "PRD-1001"},
            "headers": {"Content-Type": content_type} if content_type else {},
            "body": base64.b64encode(body).decode() if encoded else body,
            "isBase64Encoded": encoded,
        }
        response: dict[str, Any] = self.module.handler(event, None)
        return response

    def nothing_sent(self) -> bool:
        return self.orders.sent == [] and self.restocks.sent == [] and self.store.restocks == {}


@pytest.fixture
def api(lambda_env: None, monkeypatch: pytest.MonkeyPatch) -> Api:
    module = importlib.import_module("handlers.api")
    store, orders, restocks = FakeStore(stock={"PRD-1001": 5, "PRD-2002": 5}), FakeQueue(), FakeRestockQueue()
    monkeypatch.setattr(module, "_store", store)
    monkeypatch.setattr(module, "_intake", OrderIntake(OrderValidator(), store, orders))
    monkeypatch.setattr(module, "_restocks", RestockIntake(store, restocks))
    return Api(module, store, orders, restocks)


@pytest.fixture
def bodies(lab_text: str) -> dict[str, str]:
    return {"order": lab_text, "restock": '{"quantity": 5}'}


ROUTES = ["order", "restock"]
NOT_UTF8_415 = {"message": "Envie o corpo em UTF-8: Content-Type: application/json; charset=utf-8, ou sem charset."}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=ISO-8859-1",
        "application/json; charset=iso-8859-1",
        "application/json;charset=windows-1252",
        'application/json; charset="latin1"',
        "application/json; charset=utf-16",
        "application/json; charset=",
    ],
)
def test_a_charset_other_than_utf8_is_415(api: Api, bodies: dict[str, str], route: str, content_type: str) -> None:
    # Given a JSON body declared in another charset, when it is posted
    response = api.post(route, bodies[route], content_type)

    # Then it is refused as a media type the API does not take, in Portuguese, and nothing is taken
    assert response["statusCode"] == 415
    assert json.loads(response["body"]) == NOT_UTF8_415
    assert api.nothing_sent()


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        'application/json; charset="UTF-8"',
        "application/json;CHARSET=UTF-8",
        "application/json; charset=utf8",
    ],
)
def test_utf8_or_no_charset_is_taken(api: Api, bodies: dict[str, str], route: str, content_type: str | None) -> None:
    assert api.post(route, bodies[route], content_type)["statusCode"] == 202


@pytest.mark.parametrize("route", ROUTES)
def test_bytes_that_are_not_utf8_are_400_naming_the_byte(api: Api, bodies: dict[str, str], route: str) -> None:
    # Given a body saved in Latin-1 ("Avenida das Am\xe9ricas"), passed by the gateway as bytes
    body = bodies[route].replace("5}", '5, "nota": "reposi\u00e7\u00e3o"}').encode("latin-1")
    position = body.index(b"\xe7") if route == "restock" else body.index(b"\xe9")

    # When it is posted
    response = api.post(route, body)

    # Then it is a 400 with one body error naming the first invalid byte, and nothing is taken
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["errors"] == [
        {"field": "(corpo)", "message": f"corpo não está em UTF-8 (byte inválido na posição {position})"}
    ]
    assert api.nothing_sent()


@pytest.mark.parametrize("route", ROUTES)
def test_text_the_gateway_decoded_with_replacement_characters_is_400(
    api: Api, bodies: dict[str, str], route: str
) -> None:
    # Given a body whose invalid bytes the gateway replaced with U+FFFD before our code (MiniStack does)
    body = bodies[route].replace("{", '{"nota": "Am\ufffdricas", ', 1)

    # When it is posted, then it is a 400 saying the body was not UTF-8, and nothing is taken
    response = api.post(route, body)
    assert response["statusCode"] == 400
    [error] = json.loads(response["body"])["errors"]
    assert error["field"] == "(corpo)"
    assert error["message"].startswith("corpo não está em UTF-8 (U+FFFD")
    assert api.nothing_sent()


def test_the_replacement_character_written_as_an_escape_is_taken(api: Api, lab_text: str) -> None:
    # A client that means U+FFFD writes it as the JSON escape: the raw text then has no trace of bad bytes
    body = lab_text.replace('"notes": "', '"notes": "\\ufffd ', 1)
    assert body != lab_text

    assert api.post("order", body)["statusCode"] == 202
    assert api.orders.sent[0].document["notes"].startswith("\ufffd ")


@pytest.mark.parametrize("route", ROUTES)
def test_utf16_bytes_are_not_utf8(api: Api, bodies: dict[str, str], route: str) -> None:
    response = api.post(route, bodies[route].encode("utf-16"))
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["errors"][0]["message"].startswith("corpo não está em UTF-8")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "text"])
def test_a_utf8_bom_before_the_body_is_tolerated_as_in_files(
    api: Api, bodies: dict[str, str], route: str, as_bytes: bool
) -> None:
    body = "\ufeff" + bodies[route]
    assert api.post(route, body.encode() if as_bytes else body)["statusCode"] == 202


def test_a_file_that_is_not_utf8_says_so_as_the_api_does() -> None:
    with pytest.raises(FileRejected) as caught:
        read_entries("incoming/latin1.json", '{"a": "Am\u00e9ricas"}'.encode("latin-1"))
    assert str(caught.value) == "arquivo não está em UTF-8 (byte inválido na posição 9)"


def test_the_documented_415_is_the_handlers_own_words(api: Api) -> None:
    # docs/openapi.yaml lists this answer among the 415s of both POST routes
    assert api.module.NOT_UTF8 == NOT_UTF8_415["message"]


# ================================================================ 3. no negative zero in money
def free_order(lab: dict[str, Any], zero: str) -> dict[str, Any]:
    """The lab's order with one item given away: its price, the amount and the shipping are the zero written `zero`."""
    order = dict(lab, items=[dict(lab["items"][0], unit_price=Decimal(zero))])
    order["payment"] = dict(lab["payment"], amount=Decimal(zero))
    order["shipping"] = dict(lab["shipping"], cost=Decimal(zero))
    return order


@pytest.mark.parametrize("zero", ["-0", "-0.0", "-0.00", "-0E+2"])
def test_a_negative_zero_price_is_kept_as_zero(lab: dict[str, Any], zero: str) -> None:
    # Given an order whose price, amount and shipping are a negative zero (valid: not below the minimum of 0)
    order = OrderValidator().validate(free_order(lab, zero))

    # Then no money the order carries, stores or sends is signed
    money = [order.items[0].unit_price, order.items_total]
    money += [order.document["items"][0]["unit_price"], order.document["payment"]["amount"]]
    money += [order.document["shipping"]["cost"]]
    assert all(value == 0 and not value.is_signed() for value in money), money
    sent = json.loads(encode_order(order))  # the queue message
    assert not any(str(v).startswith("-") for v in (sent["items"][0]["unit_price"], sent["payment"]["amount"]))


def test_the_caller_s_document_is_left_as_it_was(lab: dict[str, Any]) -> None:
    document = free_order(lab, "-0.0")

    OrderValidator().validate(document)

    assert document["items"][0]["unit_price"].is_signed()


def test_a_negative_zero_stored_before_is_shown_as_zero(api: Api, lab: dict[str, Any], lab_text: str) -> None:
    # Given an order recorded with negative zeros (as one taken before this rule would be)
    assert api.post("order", lab_text)["statusCode"] == 202
    record = api.store.orders[lab["order_id"]]
    record["items_total"] = Decimal("-0.0")
    record["items"] = [{"product_id": "PRD-1001", "quantity": 1, "unit_price": Decimal("-0.00"), "item_status": "X"}]

    # When it is read through the API
    answer = json.loads(
        api.module.handler(
            {"httpMethod": "GET", "resource": "/orders/{order_id}", "pathParameters": {"order_id": lab["order_id"]}},
            None,
        )["body"]
    )

    # Then its money shows as 0.00, never -0.00
    assert answer["items_total"] == "0.00"
    assert answer["items"][0]["unit_price"] == "0.00"


# ================================================================ 4. files the pipeline does not read
IGNORED = "arquivo ignorado: só são lidos arquivos terminados em .json ou .jsonl (em maiúsculas ou minúsculas)"


@pytest.mark.parametrize("key", ["incoming/a.JSON", "incoming/a.Json", "incoming/a.JSONL", "restock/a.jsonl"])
def test_json_and_json_lines_are_read_whatever_the_case_of_the_suffix(key: str, lab_text: str) -> None:
    entries = read_entries(key, lab_text.replace("\n", " ").encode())
    assert [entry.document["order_id"] for entry in entries] == ["ORD-20231001-0001"]


@pytest.mark.parametrize(
    "key", ["incoming/a.txt", "incoming/a.json.gz", "incoming/a.csv", "incoming/json", "restock/a", "incoming/d/"]
)
def test_a_file_with_another_suffix_is_ignored_with_the_reason(key: str, lab_text: str) -> None:
    with pytest.raises(FileRejected) as caught:
        read_entries(key, lab_text.encode())
    assert str(caught.value) == IGNORED


@pytest.mark.parametrize(("key", "kind"), [("incoming/notes.txt", "orders"), ("restock/notes.csv", "restocks")])
def test_an_ignored_file_gets_a_report_and_a_notice(lab_text: str, key: str, kind: str) -> None:
    # Given a file under a watched prefix whose suffix the pipeline does not read
    store, queue, files, notifier = FakeStore(), FakeQueue(), FakeFiles(), FakeNotifier()
    ingestion = FileIngestion(OrderValidator(), store, queue, files, notifier, restocks=FakeRestockQueue())
    files.objects[("lake", key)] = lab_text.encode()

    # When its notification is handled
    report = ingestion.ingest("lake", key, "etag-1")

    # Then nothing is taken, and its report, under the one report key, says it was ignored and why
    assert report is not None and report.kind == kind
    assert (report.received, report.file_error) == (0, IGNORED)
    assert [target for _, target, _ in files.reports] == [report_key(key, "etag-1")]
    assert queue.sent == [] and len(notifier.reports) == 1


@pytest.mark.parametrize(
    ("name", "restock", "expected"),
    [("a.JSON", False, "incoming/a.JSON"), ("b.jsonl", True, "restock/b.jsonl"), ("c.Jsonl", True, "restock/c.Jsonl")],
)
def test_sandbox_upload_takes_every_suffix_the_validator_reads(name: str, restock: bool, expected: str) -> None:
    assert sandbox_cli._object_key(Path(name), None, restock) == expected


def test_sandbox_upload_still_refuses_a_suffix_the_validator_ignores() -> None:
    with pytest.raises(typer.Exit):
        sandbox_cli._object_key(Path("notes.txt"), None, False)
