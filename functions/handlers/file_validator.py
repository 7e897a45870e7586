"""SQS standard queue of S3 notifications -> file ingestion (orders under incoming/, restocks under restock/),
with partial batch responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from service.batch import time_left_of
from service.bootstrap import FileValidatorWiring
from service.logs import bound, log
from service.use_cases import FileUnfinished

_wired = FileValidatorWiring()
_ingestion = _wired.ingestion
_failures = _wired.failures
_heartbeat = _wired.heartbeat
_sqs = _wired.sqs


def _s3_records(body: str) -> list[dict[str, Any]]:
    message = json.loads(body)
    if message.get("Event") == "s3:TestEvent":
        return []
    records: list[dict[str, Any]] = message.get("Records", [])
    return [r for r in records if str(r.get("eventName", "")).startswith("ObjectCreated")]


def _ingest(message: dict[str, Any], time_left: Callable[[], float] | None) -> None:
    message_id = message.get("messageId")
    try:
        for record in _s3_records(message["body"]):
            bucket = record["s3"]["bucket"]["name"]
            obj = record["s3"]["object"]
            key = unquote_plus(obj["key"])
            # A file is its key and content: the same notification delivered again carries the same eTag.
            tag = obj.get("versionId") or obj.get("eTag") or message_id
            with bound(file_key=key, message_id=message_id):
                _ingestion.ingest(bucket, key, str(tag), time_left)
    except FileUnfinished as exc:
        # The same notification again, as a new message: it resumes after the chunks this invocation kept.
        _sqs.send_message(QueueUrl=_wired.file_queue_url, MessageBody=message["body"])
        log("WARNING", "file continues in a new message", message_id=message_id, progress=str(exc))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures: list[tuple[dict[str, Any], BaseException | None]] = []
    records = event.get("Records", [])
    with _heartbeat.beating(records):
        for message in records:
            try:
                _ingest(message, time_left_of(context))
            except Exception as exc:
                log("ERROR", "file message failed", message_id=message.get("messageId"), error=repr(exc))
                failures.append((message, exc))
    return _failures.respond(failures)
