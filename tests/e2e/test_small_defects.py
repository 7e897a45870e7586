"""Issue 11, point 7, the small defects, through the sandbox's public doors: bodies that are not UTF-8, parse errors
in Portuguese, no negative zero in money, and files the pipeline does not read get a report saying so."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal

import pytest
from e2e_support import eventually, make_order, put_file, read_report, to_wire

NOT_UTF8_415 = {"message": "Envie o corpo em UTF-8: Content-Type: application/json; charset=utf-8, ou sem charset."}


# ---------------------------------------------------------------- 1. UTF-8 only
def test_an_order_in_latin1_is_400_and_leaves_nothing_behind(api, products, gateway):
    # Given a valid order saved in Latin-1 ("Avenida das Am\xe9ricas"), declared as JSON
    (product,) = products(10)
    order = make_order([(product, 1)])
    body = to_wire(order).encode("latin-1")
    assert b"Am\xe9ricas" in body

    # When it is posted
    response = api.post_order(None, data=body)

    # Then it is refused as not UTF-8, by field, and nothing is recorded or reserved
    if not gateway.check_refusal(response, body):
        assert response.status_code == 400, response.text
        [error] = response.json()["errors"]
        assert error["field"] == "(corpo)"
        assert error["message"].startswith("corpo não está em UTF-8"), error
    assert api.get_order(order["order_id"]).status_code == 404
    assert api.stock(product) == (10, 0)


@pytest.mark.parametrize("charset", ["ISO-8859-1", "iso-8859-1", '"windows-1252"'])
def test_an_order_declared_in_another_charset_is_415(api, products, charset):
    (product,) = products(10)
    order = make_order([(product, 1)])

    response = api.post_order(order, headers={"Content-Type": f"application/json; charset={charset}"})

    assert (response.status_code, response.json()) == (415, NOT_UTF8_415)
    assert api.get_order(order["order_id"]).status_code == 404


@pytest.mark.parametrize("charset", ["utf-8", '"UTF-8"'])
def test_an_order_declared_in_utf8_is_taken(api, products, charset):
    (product,) = products(10)
    order = make_order([(product, 1)])

    response = api.post_order(order, headers={"Content-Type": f"application/json; charset={charset}"})

    assert response.status_code == 202, response.text


def test_a_restock_not_in_utf8_is_refused(api, products):
    # Given a product, and restock bodies in Latin-1 and declared in Latin-1
    (product,) = products(0)
    latin1 = '{"quantity": 3, "nota": "reposição"}'.encode("latin-1")

    # When they are posted
    bad_bytes = api.post_restock(product, data=latin1)
    bad_charset = api.post_restock(product, 3, headers={"Content-Type": "application/json; charset=ISO-8859-1"})

    # Then one is a 400 naming the body, the other a 415, and the stock did not move
    assert bad_bytes.status_code == 400, bad_bytes.text
    assert bad_bytes.json()["errors"][0]["message"].startswith("corpo não está em UTF-8")
    assert (bad_charset.status_code, bad_charset.json()) == (415, NOT_UTF8_415)
    assert api.stock(product) == (0, 0)


# ---------------------------------------------------------------- 3. no negative zero in money
def test_a_negative_zero_price_is_stored_and_shown_as_zero(api, aws, outputs, products):
    # Given an order giving one item away at a price of -0.0 (valid: not below 0), paid -0.00
    (product,) = products(10)
    order = make_order([(product, 1)])
    order["items"][0]["unit_price"] = Decimal("-0.0")
    order["payment"]["amount"] = Decimal("-0.00")

    # When it is posted and processed
    assert api.post_order(order).status_code == 202
    final = api.final_order(order["order_id"], timeout=60)

    # Then the API shows 0.00, and the table holds no negative number
    assert (final["items_total"], final["items"][0]["unit_price"]) == ("0.00", "0.00")
    item = aws.client("dynamodb").get_item(
        TableName=outputs["OrdersTable"], Key={"PK": {"S": f"ORDER#{order['order_id']}"}, "SK": {"S": "ORDER"}}
    )["Item"]
    numbers = re.findall(r"'N': '([^']*)'", repr(item))
    assert numbers and not [n for n in numbers if n.startswith("-")], numbers


# ---------------------------------------------------------------- 4. every file under the two prefixes is answered
IGNORED = "arquivo ignorado: só são lidos arquivos terminados em .json ou .jsonl (em maiúsculas ou minúsculas)"


def test_an_upper_case_json_file_is_read(aws, outputs, api, products):
    # Given a valid order in a file named .JSON
    (product,) = products(10)
    order = make_order([(product, 2)])

    # When it lands under incoming/
    report_at = put_file(aws, outputs, f"incoming/e2e/{uuid.uuid4().hex[:8]}-PEDIDOS.JSON", to_wire(order).encode())

    # Then it is read like any .json: reported, accepted, and processed
    report = read_report(aws, outputs, report_at)
    assert (report["file_error"], report["accepted_order_ids"]) == (None, [order["order_id"]])
    assert api.final_order(order["order_id"], timeout=60)["order_status"] == "Novo Pedido"


def test_a_json_lines_restock_file_is_read(aws, outputs, api, products):
    # Given a product without stock, and a restock of 3 units written as JSON Lines
    (product,) = products(0)
    line = json.dumps({"product_id": product, "quantity": 3})

    # When the file lands under restock/
    report_at = put_file(aws, outputs, f"restock/e2e-{uuid.uuid4().hex[:8]}.jsonl", f"{line}\n".encode())

    # Then it is reported as one accepted restock, and the stock rises by 3
    report = read_report(aws, outputs, report_at)
    assert (report["kind"], report["file_error"], report["accepted"]) == ("restocks", None, 1)
    eventually(lambda: api.stock(product) == (3, 0), what="restock applied")


@pytest.mark.parametrize("key", ["incoming/e2e/{}-notas.txt", "restock/e2e-{}.csv", "incoming/e2e/{}.json.gz"])
def test_a_file_the_pipeline_does_not_read_gets_a_report_saying_so(aws, outputs, products, key):
    # Given an order's worth of JSON under a watched prefix, in a file whose suffix the pipeline does not read
    (product,) = products(10)
    body = to_wire(make_order([(product, 1)])).encode()

    # When it lands
    report_at = put_file(aws, outputs, key.format(uuid.uuid4().hex[:8]), body)

    # Then its report says it was ignored and why, and nothing was taken
    report = read_report(aws, outputs, report_at)
    assert (report["file_error"], report["received"], report["accepted"]) == (IGNORED, 0, 0)


# 5. MiniStack's temporary folders live in .sandbox/: tests/e2e/test_sandbox_lifecycle.py, with the worker it starts.
