"""Bad data-lake files: every file ends in a report, and nothing is lost on the way (accepted + rejected ==
received, every accepted order reaches a final state, nothing of a refused file is stored)."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from typing import Any

import pytest
from e2e_support import eventually, make_order, to_wire, unique
from test_datalake import report_of, upload

from orders.files import MAX_FILE_BYTES

BOM = b"\xef\xbb\xbf"
FINAL = {"Novo Pedido", "Produto Pendente"}


def wire(value: Any) -> bytes:
    return to_wire(value).encode("utf-8")


def assert_nothing_lost(api, report: dict[str, Any]) -> None:
    assert report["accepted"] + report["rejected"] == report["received"], report
    assert len(report["accepted_order_ids"]) == report["accepted"]
    assert len(report["rejections"]) == report["rejected"]
    for order_id in report["accepted_order_ids"]:
        assert api.final_order(order_id, timeout=60)["order_status"] in FINAL


def assert_refused_whole(api, report: dict[str, Any], orders: list[dict[str, Any]]) -> str:
    """A file error, zero counts, and none of the file's orders recorded; returns the error."""
    assert report["file_error"], report
    assert (report["received"], report["accepted"], report["rejected"]) == (0, 0, 0)
    assert report["accepted_order_ids"] == [] and report["rejections"] == []
    for order in orders:
        assert api.get_order(order["order_id"]).status_code == 404
    error: str = report["file_error"]
    return error


def test_an_empty_file_is_refused_whole(aws, outputs, api):
    key = upload(aws, outputs, "empty.json", b"")
    assert assert_refused_whole(api, report_of(aws, outputs, key), []) == "arquivo vazio"


def test_a_file_with_only_whitespace_is_refused_whole(aws, outputs, api):
    key = upload(aws, outputs, "blank.jsonl", b" \n\r\n\t\n")
    assert assert_refused_whole(api, report_of(aws, outputs, key), []) == "arquivo vazio"


def test_a_utf8_bom_before_a_valid_array_is_accepted(aws, outputs, api, products):
    # Given two valid orders in an array that an editor saved with a byte-order mark
    (product,) = products(10)
    orders = [make_order([(product, 1)]), make_order([(product, 2)])]

    # When the file lands
    key = upload(aws, outputs, "bom.json", BOM + wire(orders))

    # Then both orders are accepted and processed, and the stock moved by their 3 units
    report = report_of(aws, outputs, key)
    assert report["file_error"] is None
    assert (report["received"], report["accepted"], report["rejected"]) == (2, 2, 0)
    assert report["accepted_order_ids"] == [o["order_id"] for o in orders]
    assert_nothing_lost(api, report)
    eventually(lambda: api.stock(product) == (7, 3), what="stock reserved")


def test_latin1_bytes_are_refused_as_not_utf8(aws, outputs, api, products):
    # Given a valid order saved in Latin-1 ("Avenida das Am\xe9ricas")
    (product,) = products(10)
    order = make_order([(product, 1)])
    data = to_wire([order]).encode("latin-1")
    assert b"Avenida das Am\xe9ricas" in data

    # When the file lands, then it is refused whole, saying it is not UTF-8
    key = upload(aws, outputs, "latin1.json", data)
    error = assert_refused_whole(api, report_of(aws, outputs, key), [order])
    assert "UTF-8" in error
    assert api.stock(product) == (10, 0)


def test_truncated_json_is_refused_whole(aws, outputs, api, products):
    (product,) = products(10)
    orders = [make_order([(product, 1)]), make_order([(product, 1)])]
    data = wire(orders)
    key = upload(aws, outputs, "truncated.json", data[: len(data) * 3 // 4])
    assert assert_refused_whole(api, report_of(aws, outputs, key), orders).startswith("JSON inválido")
    assert api.stock(product) == (10, 0)


@pytest.mark.parametrize("content", [b"[]", b'{"orders": []}'], ids=["empty-array", "empty-orders-list"])
def test_a_file_without_orders_is_refused_whole(aws, outputs, api, content):
    key = upload(aws, outputs, "none.json", content)
    assert assert_refused_whole(api, report_of(aws, outputs, key), []) == "arquivo sem pedidos"


def test_nested_arrays_reject_the_inner_list_as_not_an_order(aws, outputs, api, products, inbox):
    # Given a file [[order]]: one entry, which is a list
    (product,) = products(10)
    order = make_order([(product, 1)])

    # When it lands
    key = upload(aws, outputs, "nested.json", wire([[order]]))

    # Then the one entry is rejected at index 0 as not an object, and nothing is recorded
    report = report_of(aws, outputs, key)
    assert report["file_error"] is None
    assert (report["received"], report["accepted"], report["rejected"]) == (1, 0, 1)
    assert report["rejections"] == [
        {"index": 0, "order_id": None, "errors": [{"field": "(pedido)", "message": "deve ser um objeto"}]}
    ]
    assert_nothing_lost(api, report)
    assert api.get_order(order["order_id"]).status_code == 404
    assert api.stock(product) == (10, 0)
    inbox.wait_for(lambda m: m["body"].get("key") == key)


def test_a_binary_file_is_refused_as_not_utf8(aws, outputs, api, products):
    # Given a gzip-compressed orders file uploaded under a .json name
    (product,) = products(10)
    order = make_order([(product, 1)])
    key = upload(aws, outputs, "orders.json", gzip.compress(wire([order]), mtime=0))

    # Then it is refused whole as not UTF-8, and its order is not recorded
    assert "UTF-8" in assert_refused_whole(api, report_of(aws, outputs, key), [order])
    assert api.stock(product) == (10, 0)


def test_characters_the_queue_cannot_carry_reject_only_their_order(aws, outputs, api, products):
    # Given a valid order, one with a noncharacter in its notes and one with a lone surrogate in its order_id
    (product,) = products(10)
    good, noncharacter, surrogate = (make_order([(product, 1)]) for _ in range(3))
    noncharacter["notes"] = "fim\uffff"
    surrogate["order_id"] += "\ud800"
    data = json.dumps(json.loads(to_wire([good, noncharacter, surrogate])), ensure_ascii=True).encode("ascii")

    # When the file lands
    key = upload(aws, outputs, "unicode.json", data)

    # Then the file is reported, only the good order is accepted, and the others are named by field
    report = report_of(aws, outputs, key)
    assert (report["received"], report["accepted"], report["rejected"]) == (3, 1, 2)
    assert report["accepted_order_ids"] == [good["order_id"]]
    assert [(r["index"], r["errors"][0]["field"]) for r in report["rejections"]] == [(1, "notes"), (2, "order_id")]
    assert_nothing_lost(api, report)
    assert api.get_order(noncharacter["order_id"]).status_code == 404
    eventually(lambda: api.stock(product) == (9, 1), what="stock reserved for the good order only")


def _padded(orders: list[dict[str, Any]], size: int) -> bytes:
    """A valid array of orders, padded with trailing whitespace to exactly `size` bytes."""
    data = wire(orders)
    return data + b" " * (size - len(data))


def test_a_file_one_byte_over_the_limit_is_refused_whole(aws, outputs, api, products):
    # Given a valid order padded to 25 MiB + 1 bytes
    (product,) = products(10)
    order = make_order([(product, 1)])
    data = _padded([order], MAX_FILE_BYTES + 1)
    assert MAX_FILE_BYTES == 25 * 1024 * 1024 and len(data) == MAX_FILE_BYTES + 1

    # When it lands, then it is refused whole for its size, and its order is not recorded
    key = upload(aws, outputs, "too-big.json", data)
    error = assert_refused_whole(api, report_of(aws, outputs, key, timeout=120), [order])
    assert "limite" in error and str(MAX_FILE_BYTES) in error
    assert api.stock(product) == (10, 0)


def test_a_file_of_exactly_the_limit_is_read(aws, outputs, api, products):
    (product,) = products(10)
    order = make_order([(product, 1)])
    key = upload(aws, outputs, "just-fits.json", _padded([order], MAX_FILE_BYTES))
    report = report_of(aws, outputs, key, timeout=120)
    assert (report["file_error"], report["accepted"]) == (None, 1)
    assert_nothing_lost(api, report)
    eventually(lambda: api.stock(product) == (9, 1), what="stock reserved")


@pytest.mark.heavy
def test_ten_thousand_orders_in_one_file_all_reach_a_final_state(aws, outputs, api, products):
    # Given 5 products with plenty of stock and 10,000 valid orders of 1 to 3 lines over them
    stock = products(*[100_000] * 5)
    draw = random.Random(20231001)  # a fixed seed: the same file every run, fresh ids
    prefix = unique("E2E-HVY")
    orders = [
        make_order(
            [(product, draw.randint(1, 3)) for product in draw.sample(stock, draw.randint(1, 3))],
            order_id=f"{prefix}-{n:05d}",
        )
        for n in range(10_000)
    ]
    ordered: Counter[str] = Counter()
    for order in orders:
        for item in order["items"]:
            ordered[item["product_id"]] += item["quantity"]

    # When they land in one file
    key = upload(aws, outputs, "ten-thousand.json", wire(orders))

    # Then the report accepts all of them
    report = report_of(aws, outputs, key, timeout=600)
    assert report["file_error"] is None
    assert (report["received"], report["accepted"], report["rejected"]) == (10_000, 10_000, 0)
    assert sorted(report["accepted_order_ids"]) == [o["order_id"] for o in orders]

    # And the stock moved by exactly the ordered units: every order was reserved, none twice
    def settled() -> bool:
        now = {product: api.stock(product) for product in stock}
        assert now == {p: (100_000 - ordered[p], ordered[p]) for p in stock}, now
        return True

    eventually(settled, timeout=600, interval=5, what="stock of 10,000 orders reserved")

    # And a sample of the orders is in its final state with every item reserved
    for order in draw.sample(orders, 50):
        final = api.final_order(order["order_id"])
        assert final["order_status"] == "Novo Pedido"
        assert [(i["product_id"], i["quantity"], i["item_status"]) for i in final["items"]] == [
            (i["product_id"], i["quantity"], "Reservado") for i in order["items"]
        ]
