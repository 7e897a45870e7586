"""Every data-lake file keeps its own report, and ids shaped like personal data leave the pipeline masked."""

from __future__ import annotations

import json
import random
import time
import uuid

from e2e_support import eventually, make_order, put_file, read_report, to_wire, unique
from test_privacy import log_text


def digits(n: int) -> str:
    return f"{random.randrange(10**n):0{n}d}"  # noqa: S311 (an id unique to the test, not a secret)


def cpf_shaped() -> str:
    """A formatted CPF unique to the test: masked whatever its check digits."""
    d = digits(11)
    return f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"


def cnpj_shaped() -> str:
    d = digits(14)
    return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"


def test_same_name_under_two_prefixes_and_a_re_upload_keep_their_own_reports(aws, outputs, products):
    name = uuid.uuid4().hex[:10]
    (product,) = products(5)
    restock_line = json.dumps([{"product_id": product, "quantity": 1}]).encode()
    first, second = make_order([(product, 1)]), make_order([(product, 1)])

    # Given a restock file and an orders file with the same name, under restock/ and incoming/restock/
    restock_report = put_file(aws, outputs, f"restock/e2e/{name}.json", restock_line)
    orders_report = put_file(aws, outputs, f"incoming/restock/e2e/{name}.json", to_wire(first).encode())

    # Then each has its own report, of its own kind
    assert restock_report != orders_report
    assert read_report(aws, outputs, restock_report)["kind"] == "restocks"
    assert read_report(aws, outputs, orders_report)["accepted_order_ids"] == [first["order_id"]]

    # When new content is uploaded under the orders file's key
    again = put_file(aws, outputs, f"incoming/restock/e2e/{name}.json", to_wire(second).encode())

    # Then the new version gets a new report, and the first one is still there, unchanged
    assert again != orders_report
    assert again.startswith(f"reports/incoming/restock/e2e/{name}.json.")
    assert read_report(aws, outputs, again)["accepted_order_ids"] == [second["order_id"]]
    assert read_report(aws, outputs, orders_report)["accepted_order_ids"] == [first["order_id"]]


def test_ids_shaped_like_personal_data_are_masked_in_reports_notifications_and_logs(aws, outputs, api, products, inbox):
    since_ms = int(time.time() * 1000) - 5_000
    tag = uuid.uuid4().hex[:10]
    (product,) = products(5)
    email_id, cpf_id, cnpj_id = f"zz.secret.person@{tag}.example.org", cpf_shaped(), cnpj_shaped()
    masked = {email_id: f"z***@{tag}.example.org", cpf_id: f"***.{cpf_id[4:7]}.{cpf_id[8:11]}-**"}
    raw = [email_id, cpf_id, cnpj_id, "zz.secret.person", "".join(c for c in cpf_id if c.isdigit())]

    # Given orders whose order_id is an e-mail, a CPF and a CNPJ, and one valid order, sent through the API
    for order_id in (email_id, cpf_id, cnpj_id):
        assert api.post_order(make_order([(product, 1)], order_id=order_id)).status_code == 400
    valid = make_order([(product, 1)], order_id=unique("ORD"))

    # And in a data-lake file
    entries = [make_order([(product, 1)], order_id=oid) for oid in (email_id, cpf_id, cnpj_id)] + [valid]
    key = f"incoming/e2e/{tag}-pii-ids.json"
    target = put_file(aws, outputs, key, to_wire(entries).encode())

    # Then the report names the rejected ids masked, and the valid id readable
    report = read_report(aws, outputs, target)
    assert report["accepted_order_ids"] == [valid["order_id"]]
    rejected_ids = [r["order_id"] for r in report["rejections"]]
    assert rejected_ids[:2] == [masked[email_id], masked[cpf_id]]
    assert rejected_ids[2].startswith("**.") and rejected_ids[2].endswith("/****-**")
    text = json.dumps(report, ensure_ascii=False)
    assert [s for s in raw if s in text] == []

    # And the e-mail on the errors topic holds them masked too
    notice = inbox.wait_for(lambda m: m["body"].get("key") == key)
    assert masked[email_id] in notice["raw"]
    assert [s for s in raw if s in f"{notice['subject']}\n{notice['raw']}"] == []

    # And the API's and the file validator's logs name the rejections masked, never raw
    api_group = f"/aws/lambda/{outputs['ApiFunctionName']}"
    files_group = f"/aws/lambda/{outputs['FileValidatorFunctionName']}"

    def logged() -> tuple[str, str]:
        api_text, files_text = log_text(aws, api_group, since_ms), log_text(aws, files_group, since_ms)
        assert masked[email_id] in api_text and masked[cpf_id] in api_text, "API rejections not logged yet"
        assert key in files_text, "file not logged yet"
        return api_text, files_text

    for text in eventually(logged, what="the rejections in the logs"):
        assert [s for s in raw if s in text] == []
