"""The data-lake entry: S3 file -> notification -> SQS -> file validator -> FIFO, with a report per file."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from e2e_support import ORDERS, eventually, put_file, read_report, unique

from orders.report import report_key

SAMPLE_PRODUCTS = ["PRD-1001", "PRD-2002", "PRD-3003", "PRD-4004", "PRD-5005"]


def sample(name: str, products: list[str]) -> tuple[bytes, str]:
    """A seed/orders sample file with its own order ids (prefix returned) and the test's products."""
    prefix = unique("E2E")
    text = (ORDERS / name).read_text("utf-8").replace("ORD-2023", prefix)
    for original, mine in zip(SAMPLE_PRODUCTS, products, strict=False):
        text = text.replace(original, mine)
    return text.encode("utf-8"), prefix


def upload(aws, outputs, name: str, body: bytes) -> str:
    key = f"incoming/e2e/{uuid.uuid4().hex[:8]} {name}"
    put_file(aws, outputs, key, body)
    return key


def report_key_of(aws, outputs, key: str) -> str:
    """Where the file now under `key` gets its report: named by its key and eTag, as the validator names it."""
    return report_key(key, aws.client("s3").head_object(Bucket=outputs["DataLakeBucket"], Key=key)["ETag"])


def report_of(aws, outputs, key: str, timeout: float = 60.0) -> dict:
    """The report of the file now under `key`, once the file validator has written it."""
    return read_report(aws, outputs, report_key_of(aws, outputs, key), timeout)


def test_mixed_file_processes_valid_orders_and_reports_the_rest(aws, outputs, api, products, inbox):
    # Given a file with one valid order, one with wrong fields and one missing nearly everything
    stock = products(10, 10, 10, 10, 10)
    body, prefix = sample("datalake-mixed.json", stock)

    # When it lands in the data lake
    key = upload(aws, outputs, "mixed.json", body)

    # Then the report counts every order and says why each rejected one failed
    report = report_of(aws, outputs, key)
    assert (report["received"], report["accepted"], report["rejected"]) == (3, 1, 2)
    assert report["accepted"] + report["rejected"] == report["received"]
    rejected = {r["index"]: r for r in report["rejections"]}
    assert set(rejected) == {1, 2}
    assert {e["field"] for e in rejected[1]["errors"]} >= {"items[0].quantity", "customer.email"}
    assert rejected[2]["order_id"] == f"{prefix}1004-0003"
    assert any(e["field"] == "company" for e in rejected[2]["errors"])

    # And the valid order is processed, the stock reserved
    final = api.final_order(f"{prefix}1004-0001")
    assert final["order_status"] == "Novo Pedido"
    assert api.stock(stock[1]) == (9, 1)

    # And the error notification arrives, without raw personal data
    message = inbox.wait_for(lambda m: m["body"].get("key") == key)
    assert message["topic"] == outputs["ErrorTopicArn"]
    assert message["body"]["rejected"] == 2
    assert "mariana.alves@" not in message["raw"]
    assert "123.456.789-00" not in message["raw"]


def test_json_lines_file_with_a_broken_line(aws, outputs, api, products):
    stock = products(10, 10, 10, 10, 10)
    body, prefix = sample("datalake-orders.jsonl", stock)
    key = upload(aws, outputs, "orders.jsonl", body)

    report = report_of(aws, outputs, key)
    assert (report["received"], report["accepted"], report["rejected"]) == (4, 3, 1)
    assert report["rejections"][0]["errors"][0]["field"] == "(linha 4)"
    for n in (1, 2, 3):
        assert api.final_order(f"{prefix}1005-000{n}")["order_status"] == "Novo Pedido"
    assert api.stock(stock[3]) == (7, 3)


def test_array_file_of_valid_orders(aws, outputs, api, products, inbox):
    stock = products(10, 10, 10, 10, 10)
    body, prefix = sample("datalake-valid.json", stock)
    key = upload(aws, outputs, "valid.json", body)

    report = report_of(aws, outputs, key)
    assert (report["received"], report["accepted"], report["rejected"]) == (2, 2, 0)
    assert api.final_order(f"{prefix}1003-0001")["order_status"] == "Novo Pedido"
    assert api.final_order(f"{prefix}1003-0002")["order_status"] == "Novo Pedido"
    assert inbox.matching(lambda m: m["body"].get("key") == key) == []


def test_malformed_file_is_rejected_whole_with_a_report(aws, outputs, products, inbox):
    body, _ = sample("datalake-malformed.json", products(1))
    key = upload(aws, outputs, "malformed.json", body)

    report = report_of(aws, outputs, key)
    assert report["file_error"].startswith("JSON inválido")
    assert (report["received"], report["accepted"], report["rejected"]) == (0, 0, 0)
    inbox.wait_for(lambda m: m["body"].get("key") == key)


def test_empty_and_binary_files_get_reports(aws, outputs):
    empty = upload(aws, outputs, "empty.json", b"")
    binary = upload(aws, outputs, "binary.json", bytes(range(256)))
    assert report_of(aws, outputs, empty)["file_error"] == "arquivo vazio"
    assert "UTF-8" in report_of(aws, outputs, binary)["file_error"]


def test_order_already_received_is_rejected_as_duplicate(aws, outputs, api, products):
    stock = products(10, 10, 10, 10, 10)
    body, prefix = sample("datalake-valid.json", stock)
    first = upload(aws, outputs, "first.json", body)
    assert report_of(aws, outputs, first)["accepted"] == 2

    second = upload(aws, outputs, "again.json", body)
    report = report_of(aws, outputs, second)
    assert (report["accepted"], report["rejected"]) == (0, 2)
    assert all(r["errors"][0]["field"] == "order_id" for r in report["rejections"])
    api.final_order(f"{prefix}1003-0001")
    assert api.stock(stock[1]) == (9, 1)


def test_the_same_s3_event_twice_enqueues_nothing_twice(aws, outputs, api, products, inbox):
    # Given a mixed file, ingested once
    stock = products(10, 10, 10, 10, 10)
    body, prefix = sample("datalake-mixed.json", stock)
    key = upload(aws, outputs, "twice.json", body)
    report_of(aws, outputs, key)
    api.final_order(f"{prefix}1004-0001")
    s3, sqs = aws.client("s3"), aws.client("sqs")
    report_key = report_key_of(aws, outputs, key)
    written = s3.head_object(Bucket=outputs["DataLakeBucket"], Key=report_key)["LastModified"]
    etag = s3.head_object(Bucket=outputs["DataLakeBucket"], Key=key)["ETag"].strip('"')
    event = json.loads((Path(__file__).parent / "events" / "s3-object-created.json").read_text())
    event["Records"][0]["s3"]["bucket"]["name"] = outputs["DataLakeBucket"]
    event["Records"][0]["s3"]["object"].update({"key": key.replace(" ", "+"), "eTag": etag})

    # When S3 delivers the same notification twice more
    for _ in range(2):
        sqs.send_message(QueueUrl=outputs["FileQueueUrl"], MessageBody=json.dumps(event))

    logs = aws.client("logs")
    group = f"/aws/lambda/{outputs['FileValidatorFunctionName']}"

    def ignored_twice() -> bool:
        events = logs.filter_log_events(logGroupName=group, filterPattern='"duplicate S3 event ignored"')["events"]
        lines = [e["message"] for e in events if e["message"].lstrip().startswith("{")]
        return sum(1 for line in lines if json.loads(line).get("file_key") == key) >= 2

    eventually(ignored_twice, timeout=60, what="both duplicate events handled")

    # Then nothing was enqueued again, the report was not rewritten, and one notification was sent
    assert api.stock(stock[1]) == (9, 1)
    assert s3.head_object(Bucket=outputs["DataLakeBucket"], Key=report_key)["LastModified"] == written
    assert len(inbox.matching(lambda m: m["body"].get("key") == key)) == 1
