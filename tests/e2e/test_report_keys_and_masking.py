"""Every data-lake file keeps its own report, and ids shaped like personal data leave the pipeline masked."""

from __future__ import annotations

import json
import uuid
from typing import Any

from e2e_support import eventually, make_order, to_wire

from orders.report import report_key


def put(aws, outputs, key: str, body: bytes) -> str:
    """Upload one file; return where its report will be (the key and eTag are the file's identity)."""
    etag = aws.client("s3").put_object(Bucket=outputs["DataLakeBucket"], Key=key, Body=body)["ETag"]
    return report_key(key, etag)


def report_at(aws, outputs, target: str) -> dict[str, Any]:
    s3 = aws.client("s3")

    def read() -> dict[str, Any] | None:
        try:
            return json.loads(s3.get_object(Bucket=outputs["DataLakeBucket"], Key=target)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    return eventually(read, timeout=60, interval=0.5, what=f"report {target}")


def test_same_name_under_two_prefixes_and_a_re_upload_keep_their_own_reports(aws, outputs, products):
    name = uuid.uuid4().hex[:10]
    (product,) = products(5)
    restock_line = json.dumps([{"product_id": product, "quantity": 1}]).encode()
    first, second = make_order([(product, 1)]), make_order([(product, 1)])

    # Given a restock file and an orders file with the same name, under restock/ and incoming/restock/
    restock_report = put(aws, outputs, f"restock/e2e/{name}.json", restock_line)
    orders_report = put(aws, outputs, f"incoming/restock/e2e/{name}.json", to_wire(first).encode())

    # Then each has its own report, of its own kind
    assert restock_report != orders_report
    assert report_at(aws, outputs, restock_report)["kind"] == "restocks"
    assert report_at(aws, outputs, orders_report)["accepted_order_ids"] == [first["order_id"]]

    # When new content is uploaded under the orders file's key
    again = put(aws, outputs, f"incoming/restock/e2e/{name}.json", to_wire(second).encode())

    # Then the new version gets a new report, and the first one is still there, unchanged
    assert again != orders_report
    assert again.startswith(f"reports/incoming/restock/e2e/{name}.json.")
    assert report_at(aws, outputs, again)["accepted_order_ids"] == [second["order_id"]]
    assert report_at(aws, outputs, orders_report)["accepted_order_ids"] == [first["order_id"]]
