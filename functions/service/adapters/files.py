"""The data-lake files: their objects and reports in S3, and in the single table what each file and chunk came to."""

from __future__ import annotations

import json
from typing import Any

from orders.codec import to_json
from orders.report import FileReport
from service.adapters.table import Table, item, now
from service.keys import FILE, PART, file_key, file_pk, part_sk


class DynamoFiles(Table):
    def file_done(self, file_id: str) -> bool:
        return self._get(file_key(file_id)) is not None

    def save_file_part(self, file_id: str, start: int, part: dict[str, Any]) -> None:
        """Keep what the chunk of a file starting at entry `start` came to, so that a validator killed or out of
        time resumes after it instead of from the top (one JSON string: a chunk is at most 100 entries)."""
        record = {"PK": file_pk(file_id), "SK": part_sk(start), "entity": "file_part", "part": to_json(part)}
        self._db.put_item(TableName=self._table, Item=item(record))

    def file_parts(self, file_id: str) -> dict[int, dict[str, Any]]:
        """The chunks of a file already done, by their first entry."""
        parts = self._partition(file_pk(file_id), PART)
        return {int(r["SK"].removeprefix(PART)): json.loads(r["part"]) for r in parts}

    def mark_file_done(self, file_id: str, report: FileReport, report_key: str) -> None:
        record = {
            "PK": file_pk(file_id),
            "SK": FILE,
            "entity": "file",
            "bucket": report.bucket,
            "key": report.key,
            "received": report.received,
            "accepted": len(report.accepted),
            "rejected": len(report.rejections),
            "report_key": report_key,
            "processed_at": now(),
        }
        self._db.put_item(TableName=self._table, Item=item(record))


class S3DataLake:
    """Data-lake objects and their reports."""

    def __init__(self, client: Any) -> None:
        self._s3 = client

    def read(self, bucket: str, key: str, max_bytes: int) -> bytes | None:
        """The object's bytes, or None when it is larger than max_bytes (it is then not read)."""
        head = self._s3.head_object(Bucket=bucket, Key=key)
        if int(head.get("ContentLength", 0)) > max_bytes:
            return None
        body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def write_report(self, bucket: str, key: str, report: FileReport) -> None:
        body = to_json(report.as_dict()).encode()
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
