"""No raw personal data leaves the pipeline: not in the functions' logs, the notifications or the file reports."""

from __future__ import annotations

import json
import time
import uuid

from e2e_support import eventually, make_order, to_wire, unique
from test_datalake import report_key_of, upload


def cpf_with_check_digits() -> str:
    """A fresh CPF with valid check digits, so the order passes even with StrictDocuments=true."""
    digits = [int(d) for d in f"{uuid.uuid4().int % 10**9:09d}"]
    for length in (9, 10):
        total = sum(d * (length + 1 - i) for i, d in enumerate(digits))
        digits.append(total * 10 % 11 % 10)
    text = "".join(map(str, digits))
    return f"{text[:3]}.{text[3:6]}.{text[6:9]}-{text[9:]}"


def person(order: dict, cpf: str, email: str) -> list[str]:
    """Give the order this customer; return every raw spelling that must not leak."""
    order["customer"]["cpf"] = cpf
    order["customer"]["email"] = email
    digits = "".join(c for c in cpf if c.isdigit())
    return [cpf, digits, email, email.partition("@")[0]]


def report_text(aws, outputs, key: str) -> str:
    s3 = aws.client("s3")
    report_key = report_key_of(aws, outputs, key)

    def read() -> str | None:
        try:
            body = s3.get_object(Bucket=outputs["DataLakeBucket"], Key=report_key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        return body.decode("utf-8")

    return eventually(read, what=f"report {report_key}")


def log_text(aws, group: str, since_ms: int) -> str:
    logs = aws.client("logs")
    lines: list[str] = []
    kwargs = {"logGroupName": group, "startTime": since_ms}
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            lines += [event["message"] for event in page.get("events", [])]
            if not page.get("nextToken"):
                return "\n".join(lines)
            kwargs["nextToken"] = page["nextToken"]
    except logs.exceptions.ResourceNotFoundException:
        return ""


def test_personal_data_never_reaches_logs_notifications_or_reports(aws, outputs, api, products, inbox):
    since_ms = int(time.time() * 1000) - 5_000
    tag = uuid.uuid4().hex[:10]
    (missing,) = products(0)

    # Given an order through the API that will end pending (so a notification is published)
    order = make_order([(missing, 1)])
    secrets = person(order, cpf_with_check_digits(), f"privacidade.api.{tag}@example.com")

    # And a data-lake file with two invalid orders: one with well-formed personal data, one whose CPF and
    # e-mail are themselves the invalid fields (an error message must not echo them)
    wrong_quantity = make_order([(missing, 1)])
    wrong_quantity["items"][0]["quantity"] = 0
    secrets += person(wrong_quantity, cpf_with_check_digits(), f"privacidade.arquivo.{tag}@example.com")
    malformed = make_order([(missing, 1)], order_id=unique("E2E-PII"))
    secrets += person(malformed, f"{uuid.uuid4().int % 10**12:012d}", f"sem-arroba.{tag}.example.com")

    # When both enter the pipeline
    assert api.post_order(order).status_code == 202
    body = to_wire({"orders": [wrong_quantity, malformed]}).encode("utf-8")
    key = upload(aws, outputs, "privacy.json", body)

    # Then the order ends pending and its notification masks the e-mail
    assert api.final_order(order["order_id"])["order_status"] == "Produto Pendente"
    pending = inbox.wait_for(lambda m: m["body"].get("order_id") == order["order_id"])
    assert pending["topic"] == outputs["PendingTopicArn"]
    assert pending["body"]["customer_email"] == "p***@example.com"

    # And the file's report names the fields and says why, but holds none of the values
    report = report_text(aws, outputs, key)
    rejections = json.loads(report)["rejections"]
    assert [r["order_id"] for r in rejections] == [wrong_quantity["order_id"], malformed["order_id"]]
    assert {"customer.cpf", "customer.email"} <= {e["field"] for e in rejections[1]["errors"]}
    assert [s for s in secrets if s in report] == []
    inbox.wait_for(lambda m: m["body"].get("key") == key)

    # And no notification of this session carries them
    notifications = "\n".join(f"{m['subject']}\n{m['raw']}" for m in inbox.matching(lambda m: True))
    assert [s for s in secrets if s in notifications] == []

    # And the three functions logged their work on these inputs, without them
    groups = {
        name: f"/aws/lambda/{outputs[name]}"
        for name in ("ApiFunctionName", "FileValidatorFunctionName", "ProcessorFunctionName")
    }
    expected_in_log = {
        "ApiFunctionName": order["order_id"],
        "ProcessorFunctionName": order["order_id"],
        "FileValidatorFunctionName": key,
    }

    def logged() -> dict[str, str]:
        texts = {name: log_text(aws, group, since_ms) for name, group in groups.items()}
        missing_marks = [name for name, mark in expected_in_log.items() if mark not in texts[name]]
        assert missing_marks == [], f"not logged yet: {missing_marks}"
        return texts

    for name, text in eventually(logged, what="the functions' log lines").items():
        assert [s for s in secrets if s in text] == [], f"raw personal data in {groups[name]}"
