"""Stock decisions, masks of personal data, data-lake files, file reports and the queue codec."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from orders import files
from orders.codec import decode_order, encode_order, to_json
from orders.files import FileRejected, read_entries
from orders.masking import mask_body, mask_body_text, mask_cpf, mask_document, mask_email, mask_text
from orders.model import NEW_ORDER, PENDING, PRODUCT_PENDING, RESERVED, FieldError, Order
from orders.report import FileReport, report_key
from orders.stock import PendingNotice, decide
from orders.validation import OrderValidator

validator = OrderValidator()


@pytest.fixture
def order(lab: dict[str, Any]) -> Order:
    """The lab's order: PRD-1001 x 1 and PRD-2002 x 2."""
    return validator.validate(lab)


# ---------------------------------------------------------------- stock
def test_all_items_in_stock_make_a_new_order(order: Order) -> None:
    decision = decide(order, {"PRD-1001": 10, "PRD-2002": 10})

    assert decision.status == NEW_ORDER
    assert [d.status for d in decision.items] == [RESERVED, RESERVED]
    assert [i.product_id for i in decision.reserved] == ["PRD-1001", "PRD-2002"]
    assert decision.pending == ()


def test_one_item_short_makes_the_order_pending_and_only_that_item(order: Order) -> None:
    decision = decide(order, {"PRD-1001": 10, "PRD-2002": 1})

    assert decision.status == PRODUCT_PENDING
    assert [(d.item.product_id, d.status) for d in decision.items] == [("PRD-1001", RESERVED), ("PRD-2002", PENDING)]
    assert [i.product_id for i in decision.reserved] == ["PRD-1001"]
    assert [i.product_id for i in decision.pending] == ["PRD-2002"]


def test_a_product_without_stock_record_is_pending(order: Order) -> None:
    decision = decide(order, {"PRD-1001": 10})

    assert decision.status == PRODUCT_PENDING
    assert [i.product_id for i in decision.pending] == ["PRD-2002"]


def test_nothing_in_stock_leaves_every_item_pending(order: Order) -> None:
    decision = decide(order, {"PRD-1001": 0, "PRD-2002": 0})

    assert decision.status == PRODUCT_PENDING
    assert decision.reserved == ()
    assert [i.product_id for i in decision.pending] == ["PRD-1001", "PRD-2002"]


def test_exactly_the_quantity_in_stock_is_reserved(order: Order) -> None:
    decision = decide(order, {"PRD-1001": 1, "PRD-2002": 2})

    assert decision.status == NEW_ORDER


def test_pending_notice_names_the_pending_items_and_the_customer(order: Order) -> None:
    notice = PendingNotice.of(decide(order, {"PRD-1001": 1, "PRD-2002": 1}))

    assert notice == PendingNotice("ORD-20231001-0001", "mariana.alves@example.com", (("PRD-2002", 2),))


def test_pending_notice_from_a_stored_record() -> None:
    record = {
        "order_id": "ORD-9",
        "document": {"customer": {"email": "c@example.com"}},
        "items": [
            {"product_id": "A", "quantity": Decimal(1), "item_status": RESERVED},
            {"product_id": "B", "quantity": Decimal(3), "item_status": PENDING},
        ],
    }

    assert PendingNotice.from_record(record) == PendingNotice("ORD-9", "c@example.com", (("B", 3),))


# ---------------------------------------------------------------- masking
@pytest.mark.parametrize(
    ("cpf", "masked"),
    [("123.456.789-00", "***.456.789-**"), ("12345678900", "***.456.789-**"), ("1234", "***"), ("", "***")],
)
def test_mask_cpf(cpf: str, masked: str) -> None:
    assert mask_cpf(cpf) == masked


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("mariana.alves@example.com", "m***@example.com"),
        ("m@example.com", "m***@example.com"),
        ("@example.com", "***"),
        ("sem-arroba", "***"),
    ],
)
def test_mask_email(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_mask_document_masks_every_cpf_and_email_deep_and_copies(lab: dict[str, Any]) -> None:
    value = {"orders": [lab], "contact": {"email": "x.y@example.org"}, "cpf": None}

    masked = mask_document(value)

    text = json.dumps(masked, default=str, ensure_ascii=False)
    assert "123.456.789-00" not in text and "mariana.alves" not in text and "x.y@" not in text
    assert masked["orders"][0]["customer"]["cpf"] == "***.456.789-**"
    assert masked["orders"][0]["customer"]["email"] == "m***@example.com"
    assert masked["contact"]["email"] == "x***@example.org"
    assert masked["cpf"] is None
    assert masked["orders"][0]["customer"]["first_name"] == "Mariana"
    assert masked["orders"][0]["payment"]["amount"] == Decimal("2800.00")
    assert lab["customer"]["cpf"] == "123.456.789-00", "the original must not be changed"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("zz.secret.person@example.org", "z***@example.org"),
        ("ana.souza/compras@example.org", "a***@example.org"),  # "/" is allowed in a local part, and by the schema
        ("987.654.321-00", "***.654.321-**"),
        ("98765432100", "***.654.321-**"),
        ("ORD-98765432100", "ORD-***.654.321-**"),
        ("11.222.333/0001-81", "**.222.333/****-**"),
        ("11222333000181", "**.222.333/****-**"),
        ("pedido de zz@example.org, CPF 987.654.321-00.", "pedido de z***@example.org, CPF ***.654.321-**."),
    ],
)
def test_mask_text_masks_personal_data_by_its_shape(text: str, masked: str) -> None:
    assert mask_text(text) == masked
    assert mask_text(masked) == masked, "masking twice changes nothing"


@pytest.mark.parametrize(
    "text",
    [
        "ORD-20231001-0001",
        "E2E-3F2A9C1B7D",
        "s3-0123456789abcdef01234567-4",
        "ORD-20231001123456",  # 14 digits that are not a CNPJ: a timestamp-like id stays readable
        "arn:aws:sns:us-east-1:000000000000:errors",
        "reports/incoming/x.json.3f2a9c1b7d4e.report.json",
        "2023-10-01T12:34:56Z",
        "deve ser menor ou igual a 1000000",
    ],
)
def test_mask_text_keeps_ids_and_other_numbers_readable(text: str) -> None:
    assert mask_text(text) == text


def test_mask_document_masks_by_shape_whatever_the_field_is_named() -> None:
    value = {
        "order_id": "zz.secret.person@example.org",
        "rejections": [{"order_id": "987.654.321-00", "errors": [{"field": "x", "message": "11.222.333/0001-81"}]}],
        "accepted_order_ids": ["ORD-20231001-0001"],
        "seller": {"cnpj": "11.222.333/0001-81", "customer_email": "a.b@example.com", "cpf": "123"},
    }

    masked = mask_document(value)

    assert masked == {
        "order_id": "z***@example.org",
        "rejections": [{"order_id": "***.654.321-**", "errors": [{"field": "x", "message": "**.222.333/****-**"}]}],
        "accepted_order_ids": ["ORD-20231001-0001"],
        "seller": {"cnpj": "**.222.333/****-**", "customer_email": "a***@example.com", "cpf": "***"},
    }
    assert mask_document(masked) == masked


@pytest.mark.parametrize(
    "name, restock, key",
    [
        ("orders.json", False, "incoming/orders.json"),
        ("/incoming/a/b.jsonl", False, "incoming/a/b.jsonl"),
        ("nf.json", True, "restock/nf.json"),
        ("restock/nf.json", True, "restock/nf.json"),
        ("restock/nf.json", False, "incoming/restock/nf.json"),
    ],
)
def test_lake_key_puts_a_file_where_the_bucket_notifies(name: str, restock: bool, key: str) -> None:
    assert files.lake_key(name, restock) == key


def test_mask_body_masks_a_json_body_as_a_document_and_any_other_as_text() -> None:
    assert mask_body('{"cpf": "malformed", "note": "ana@example.com"}') == {"cpf": "***", "note": "a***@example.com"}
    assert mask_body("not json: 123.456.789-00") == "not json: ***.456.789-**"
    assert mask_body_text('"ana@example.com"') == '"a***@example.com"'  # a JSON string keeps its quotes
    assert mask_body_text('{"note": "é ana@example.com"}', indent=None) == '{"note": "é a***@example.com"}'


def test_a_report_masks_rejected_ids_shaped_like_personal_data() -> None:
    report = FileReport(bucket="lake", key="incoming/a.json")
    report.accepted.append("ORD-20231001-0001")
    report.reject(0, "zz.secret.person@example.org", [FieldError("order_id", "formato inválido")])
    report.reject(1, "987.654.321-00", [FieldError("order_id", "formato inválido")])

    body = report.as_dict()

    assert [r["order_id"] for r in body["rejections"]] == ["z***@example.org", "***.654.321-**"]
    assert body["accepted_order_ids"] == ["ORD-20231001-0001"]


# ---------------------------------------------------------------- reading files
@pytest.fixture
def two_orders(lab: dict[str, Any]) -> list[dict[str, Any]]:
    second = json.loads(json.dumps(lab, default=str))
    second["order_id"] = "ORD-2"
    return [lab, second]


def _ids(entries: list[files.Entry]) -> list[Any]:
    return [e.document.get("order_id") if e.error is None else e.error.field for e in entries]


def test_a_single_order_object(lab: dict[str, Any], to_json_text: Callable[[Any], str]) -> None:
    entries = read_entries("incoming/one.json", to_json_text(lab).encode())

    assert _ids(entries) == ["ORD-20231001-0001"]
    assert entries[0].document["payment"]["amount"] == Decimal("2800.00")
    assert isinstance(entries[0].document["payment"]["amount"], Decimal)


def test_a_list_of_orders(two_orders: list[dict[str, Any]], to_json_text: Callable[[Any], str]) -> None:
    entries = read_entries("incoming/list.json", to_json_text(two_orders).encode())

    assert _ids(entries) == ["ORD-20231001-0001", "ORD-2"]


def test_an_orders_envelope(two_orders: list[dict[str, Any]], to_json_text: Callable[[Any], str]) -> None:
    entries = read_entries("incoming/envelope.json", to_json_text({"orders": two_orders}).encode())

    assert _ids(entries) == ["ORD-20231001-0001", "ORD-2"]


@pytest.mark.parametrize("key", ["incoming/a.jsonl", "incoming/A.JSONL"])
def test_json_lines(two_orders: list[dict[str, Any]], to_json_text: Callable[[Any], str], key: str) -> None:
    data = "\n".join(to_json_text(o) for o in two_orders) + "\n"

    assert _ids(read_entries(key, data.encode())) == ["ORD-20231001-0001", "ORD-2"]


def test_json_lines_with_a_broken_line_keep_the_others(
    two_orders: list[dict[str, Any]], to_json_text: Callable[[Any], str]
) -> None:
    lines = [to_json_text(two_orders[0]), "", '{"order_id": "ORD-X", ', "\r", to_json_text(two_orders[1])]

    entries = read_entries("incoming/mixed.jsonl", "\r\n".join(lines).encode())

    assert _ids(entries) == ["ORD-20231001-0001", "(linha 3)", "ORD-2"]
    assert entries[1].document is None
    assert entries[1].error is not None and "JSON" in entries[1].error.message


def test_json_lines_split_on_line_ends_only(lab: dict[str, Any], to_json_text: Callable[[Any], str]) -> None:
    # U+2028, U+2029 and U+0085 may appear raw inside a JSON string; JSON Lines separates on \n only.
    lab["notes"] = "Entregar\u2028no período\u0085da tarde\u2029."
    data = (to_json_text(lab) + "\n").encode()

    entries = read_entries("incoming/notes.jsonl", data)

    assert [e.error for e in entries] == [None]
    assert entries[0].document["notes"] == lab["notes"]


def test_byte_order_mark_is_ignored(lab: dict[str, Any], to_json_text: Callable[[Any], str]) -> None:
    data = b"\xef\xbb\xbf" + to_json_text(lab).encode()

    assert _ids(read_entries("incoming/bom.json", data)) == ["ORD-20231001-0001"]
    assert _ids(read_entries("incoming/bom.jsonl", data)) == ["ORD-20231001-0001"]


def test_latin1_bytes_are_rejected(lab: dict[str, Any], to_json_text: Callable[[Any], str]) -> None:
    data = to_json_text(lab).encode("latin-1")

    with pytest.raises(FileRejected, match="UTF-8"):
        read_entries("incoming/latin1.json", data)


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n"])
@pytest.mark.parametrize("key", ["incoming/empty.json", "incoming/empty.jsonl"])
def test_empty_files_are_rejected(key: str, data: bytes) -> None:
    with pytest.raises(FileRejected, match="vazio"):
        read_entries(key, data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"order_id": "ORD-1", "items": [', "JSON"),
        (b"[{}, ", "JSON"),
        (b'{"amount": NaN}', "JSON"),
        (b"[]", "sem pedidos"),
        (b'{"orders": []}', "sem pedidos"),
        (b"42", "pedido"),
        (b'"pedido"', "pedido"),
        (b"null", "pedido"),
    ],
)
def test_unreadable_files_are_rejected_whole(data: bytes, reason: str) -> None:
    with pytest.raises(FileRejected) as caught:
        read_entries("incoming/bad.json", data)

    assert reason in str(caught.value)


def test_elements_of_a_list_are_entries_even_if_not_orders() -> None:
    # Each is judged later by the validator and reported at its index.
    entries = read_entries("incoming/odd.json", b'[1, "x", null, {}]')

    assert [e.document for e in entries] == [1, "x", None, {}]
    assert all(e.error is None for e in entries)


def test_a_file_over_the_size_limit_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 10)

    assert len(read_entries("incoming/limit.json", b"[{},{},{}]")) == 3  # exactly 10 bytes
    with pytest.raises(FileRejected, match="10 bytes"):
        read_entries("incoming/over.json", b"[{},{}, {}]")


# ---------------------------------------------------------------- reports
ETAG = "3f2a9c1b7d4e5f60718293a4b5c6d7e8"


@pytest.mark.parametrize(
    ("key", "tag", "expected"),
    [
        ("incoming/orders.json", ETAG, "reports/incoming/orders.json.3f2a9c1b7d4e.report.json"),
        ("incoming/orders.json", f'"{ETAG}"', "reports/incoming/orders.json.3f2a9c1b7d4e.report.json"),
        ("incoming/2024/10/lote.jsonl", ETAG, "reports/incoming/2024/10/lote.jsonl.3f2a9c1b7d4e.report.json"),
        ("restock/x.json", f"{ETAG}-3", "reports/restock/x.json.3f2a9c1b7d4e.report.json"),
    ],
)
def test_report_key_keeps_the_whole_key_and_the_etag_start(key: str, tag: str, expected: str) -> None:
    # The eTag S3 events carry is bare, the one PutObject answers is quoted: the same file, the same report
    assert report_key(key, tag) == expected


def test_report_keys_of_two_files_never_meet() -> None:
    # Given files that used to share a report: the same name under two prefixes, and two versions of one key
    keys = [
        report_key("restock/x.json", ETAG),
        report_key("incoming/restock/x.json", ETAG),
        report_key("incoming/x.json", ETAG),
        report_key("incoming/x.json", "9" * 32),
        report_key("incoming/x.json", "version-id.with/odd_chars"),
        report_key("incoming/x.json", "message-id-1"),
    ]

    # Then each file has its own report, under reports/ and ending as a report
    assert len(set(keys)) == len(keys)
    assert all(k.startswith("reports/") and k.endswith(".report.json") and "//" not in k for k in keys)


def test_report_counts_and_shape() -> None:
    report = FileReport(bucket="lake", key="incoming/a.json")
    report.accepted += ["ORD-1", "ORD-3"]
    report.reject(1, "ORD-2", [FieldError("customer.email", "e-mail inválido")])
    report.reject(3, 42, (FieldError("order_id", "deve ser texto"),))

    body = report.as_dict()

    assert report.received == len(report.accepted) + len(report.rejections) == 4
    assert report.has_problems
    assert (body["received"], body["accepted"], body["rejected"]) == (4, 2, 2)
    assert body["accepted_order_ids"] == ["ORD-1", "ORD-3"]
    assert body["rejections"] == [
        {"index": 1, "order_id": "ORD-2", "errors": [{"field": "customer.email", "message": "e-mail inválido"}]},
        {"index": 3, "order_id": None, "errors": [{"field": "order_id", "message": "deve ser texto"}]},
    ]
    assert json.loads(to_json(body)) == body


def test_a_clean_report_has_no_problems_and_a_file_error_has() -> None:
    report = FileReport(bucket="lake", key="incoming/a.json", accepted=["ORD-1"])
    assert not report.has_problems

    report.file_error = "arquivo vazio"
    assert report.has_problems
    assert report.received == 1


# ---------------------------------------------------------------- codec
def _exact(value: Any) -> Any:
    """A comparable form that tells Decimal('2500.00') from Decimal('2500') and from '2500.00'."""
    if isinstance(value, dict):
        return {key: _exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_exact(item) for item in value]
    return (type(value).__name__, str(value))


def test_codec_round_trip_keeps_decimals_exactly(lab: dict[str, Any]) -> None:
    lab["items"][0]["unit_price"] = Decimal("2499.99")
    lab["items"][1]["unit_price"] = Decimal("150.0")
    lab["payment"]["amount"] = Decimal("2849.99")
    lab["shipping"]["cost"] = 50
    order = validator.validate(lab)

    decoded = decode_order(encode_order(order))

    assert decoded == order
    # An integer amount of money comes back as the Decimal of the same value.
    expected = {**order.document, "shipping": {**order.document["shipping"], "cost": Decimal(50)}}
    assert _exact(decoded.document) == _exact(expected)
    assert [(type(i.unit_price), str(i.unit_price)) for i in decoded.items] == [
        (Decimal, "2499.99"),
        (Decimal, "150.0"),
    ]
    assert decoded.items_total == order.items_total == Decimal("2799.99")


def test_encoded_order_writes_money_as_exact_text(order: Order) -> None:
    message = json.loads(encode_order(order))

    assert message["items"][0]["unit_price"] == "2500.00"
    assert message["payment"]["amount"] == "2800.00"
    assert "order_status" not in message


def test_to_json_refuses_what_it_cannot_write_exactly() -> None:
    with pytest.raises(TypeError):
        to_json({"when": object()})
