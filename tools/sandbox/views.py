"""The one read model of the running sandbox: what `sandbox status`, `watch`, `trace` and `logs` print and what the
console (`sandbox ui`) shows. Each figure is read here once, from the stack's own doors (DynamoDB by the functions'
key layout, SQS attributes, S3, the functions' structured logs, the API's GETs); the CLI and the console only render.
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, cached_property
from itertools import pairwise
from typing import IO, Annotated, Any
from urllib.parse import quote

import boto3
import requests
from pydantic import AliasChoices, BaseModel, BeforeValidator, Field

from orders.codec import stored_document
from orders.masking import mask_body, mask_document, mask_text
from orders.model import FINAL_STATUSES, NEW_ORDER, RECEIVED
from orders.report import report_key
from sandbox import notifications as inbox
from sandbox.deploy.core import wait
from sandbox.dlq import PAIRS
from sandbox.records import StackOutputs
from sandbox.state import queue_depth
from service.keys import FILE_SOURCE, ORDER, STOCK, order_key, product_pk, status_partitions

STATUSES = (RECEIVED, *FINAL_STATUSES)
QUEUES = {label: key for name, (dlq, queue) in PAIRS.items() for label, key in ((name, queue), (f"{name} DLQ", dlq))}
# The output naming each function: file-validator is FileValidatorFunctionName.
FUNCTIONS = {
    name: name.title().replace("-", "") + "FunctionName"
    for name in ("api", "file-validator", "processor", "restocker", "sweeper")
}
# The emulator answers a FilterLogEvents with at most this many events and no nextToken: ask again from there.
LOG_PAGE_CAP = 10_000
WINDOW_SECONDS = 300  # the API's recent answers
# The API function's log lines, by the answer each one stands for.
ANSWERS = {"order accepted": "accepted", "request rejected": "rejected", "order replayed": "duplicate"}
# A structured log line, as a hop of an order's trace (Portuguese, as the page and the API speak).
HOPS = {
    "order accepted": "API aceitou; pedido na fila de pedidos",
    "order replayed": "API: reenvio idêntico (replayed)",
    "request rejected": "API recusou o pedido (400)",
    "file ingested": "arquivo validado; pedidos aceitos na fila",
    "claims left unsent were sent again": "varredor reenviou o pedido à fila",
    "stock changed, deciding again": "processador: o estoque mudou; decide de novo",
    "write retried": "processador: gravação repetida",
    "order processed": "processador: transação gravada",
    "redelivery ignored": "processador: reentrega ignorada",
    "pending item reserved": "reposição reservou o item pendente",
    "order released": "aviso SNS order_released publicado",
    "message goes to the dead-letter queue": "mensagem movida para a DLQ",
}
PENDING_NOTICE = "; aviso SNS de produto pendente publicado"


@dataclass(eq=False)  # hashed by identity: `_report` keeps what it read of each sandbox
class Sandbox:
    """The deployed stack and the clients that read it, built once (the console reads from several threads)."""

    outputs: StackOutputs
    session: boto3.session.Session = field(default_factory=boto3.session.Session)
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def api(self) -> str:
        return self.outputs.ApiBaseUrl.rstrip("/")

    def get(self, resource: str, ident: str) -> requests.Response:
        return self.http.get(f"{self.api}/{resource}/{quote(ident, safe='')}", timeout=30)

    def post(self, path: str, body: str | bytes, headers: Mapping[str, str] | None = None) -> requests.Response:
        """A JSON body to the API, as the CLI and the console send it."""
        headers = {"Content-Type": "application/json", **(headers or {})}
        return self.http.post(f"{self.api}/{path}", data=body, headers=headers, timeout=30)

    @cached_property
    def sqs(self) -> Any:
        return self.session.client("sqs")

    @cached_property
    def s3(self) -> Any:
        return self.session.client("s3")

    @cached_property
    def logs(self) -> Any:
        return self.session.client("logs")

    @cached_property
    def db(self) -> Any:
        """The resource's client: plain Python values in and out."""
        return self.session.resource("dynamodb").meta.client

    def pages(self, operation: str, **request: Any) -> Iterable[dict[str, Any]]:
        """Every page of a query or scan of the orders table."""
        pages: Iterable[dict[str, Any]] = self.db.get_paginator(operation).paginate(
            TableName=self.outputs.OrdersTable, **request
        )
        return pages

    def log_group(self, function: str) -> str:
        return f"/aws/lambda/{self.outputs[FUNCTIONS[function]]}"


# --- the models the CLI and the console render ------------------------------------------------------------------


class Queue(BaseModel):
    label: str
    name: str
    visible: int
    in_flight: int

    @property
    def alarm(self) -> bool:
        """A dead-letter queue holding anything."""
        return "DLQ" in self.label and self.visible + self.in_flight > 0


class Product(BaseModel):
    """A product's stock, as GET /products/{id} answers it or as the table holds it (`waiting`)."""

    product_id: str
    description: Annotated[str, BeforeValidator(lambda text: text or "")] = ""  # the API's null: not described
    available: int = 0
    reserved: int = 0
    waiting_items: int = Field(0, validation_alias=AliasChoices("waiting_items", "waiting"))


class Answers(BaseModel):
    """The API's answers in the recent window, counted from its structured log lines."""

    window_seconds: int = WINDOW_SECONDS
    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0


class Status(BaseModel):
    queues: list[Queue]
    orders: dict[str, int]
    products: list[Product]
    answers: Answers
    notifications: dict[str, int] = {}


class OrderRow(BaseModel):
    order_id: str
    order_status: str
    at: str  # received_at, when the order was received (ISO 8601, UTC)


class Hop(BaseModel):
    at: datetime
    where: str  # the function whose log line it is, or "tabela" for the order's status_history
    what: str
    detail: str = ""
    seconds: float | None = None  # since the hop before


class Trace(BaseModel):
    order_id: str
    order_status: str
    source: str  # "API" or the data-lake file's key
    hops: list[Hop]


@dataclass
class Notices:
    """What reached the SNS topics (pending stock, errors) since `read` was first called, through an inbox of the
    console's own: `sandbox notifications` and the e2e suite still get every message in theirs."""

    sandbox: Sandbox
    per_topic: Counter[str] = field(default_factory=Counter)
    by_file: dict[str, dict[str, Any]] = field(default_factory=dict)  # a file report's notice, by the file's key
    _url: str = ""

    def read(self) -> dict[str, int]:
        if not self._url:
            self._url = inbox.ensure_inbox(self.sandbox.session, self.sandbox.outputs.as_dict(), "console-inbox")
        for envelope in inbox.drain(self.sandbox.session, self._url):
            self.per_topic[str(envelope.get("TopicArn"))] += 1
            notice = notice_of(envelope)
            if isinstance(notice["message"], dict) and notice["message"].get("event") == "file_report":
                self.by_file[str(notice["message"].get("key"))] = notice
        outputs = self.sandbox.outputs
        return {"pending": self.per_topic[outputs.PendingTopicArn], "errors": self.per_topic[outputs.ErrorTopicArn]}


def notice_of(envelope: dict[str, Any]) -> dict[str, Any]:
    """An SNS envelope as `sandbox notifications` prints it: time, topic, subject and message, masked."""
    return {
        "at": str(envelope.get("Timestamp", "")),
        "topic": str(envelope.get("TopicArn", "")).rsplit(":", 1)[-1],
        "subject": mask_text(str(envelope.get("Subject") or "")),
        "message": mask_body(str(envelope.get("Message", ""))),
    }


class Report(BaseModel):
    """A data-lake file's report (masked, as written) and the SNS notice it sent, when the console received it."""

    report_key: str
    at: datetime
    body: dict[str, Any]
    notice: dict[str, Any] | None = None


# --- reads --------------------------------------------------------------------------------------------------------


def queues(sandbox: Sandbox) -> list[Queue]:
    rows = []
    for label, key in QUEUES.items():
        url = sandbox.outputs[key]
        visible, in_flight = queue_depth(sandbox.sqs, url)
        rows.append(Queue(label=label, name=url.rsplit("/", 1)[-1], visible=visible, in_flight=in_flight))
    return rows


def _in_status(sandbox: Sandbox, state: str, values: dict[str, str] | None = None, **request: Any) -> Iterable[Any]:
    """The pages of GSI1's query of each partition of the orders in `state`, one paginator each."""
    for partition in status_partitions(state):
        key = {"IndexName": "GSI1", "KeyConditionExpression": "GSI1PK = :s"}
        yield from sandbox.pages(
            "query", **key, ExpressionAttributeValues={":s": partition, **(values or {})}, **request
        )


def products(sandbox: Sandbox, prefix: str = "") -> list[Product]:
    stock = {":prefix": product_pk(prefix), ":stock": STOCK}
    pages = sandbox.pages(
        "scan", FilterExpression="begins_with(PK, :prefix) AND SK = :stock", ExpressionAttributeValues=stock
    )
    items = sorted((item for page in pages for item in page.get("Items", [])), key=lambda item: item["PK"])
    return [Product.model_validate({**item, "product_id": item["PK"].removeprefix(product_pk(""))}) for item in items]


def status(sandbox: Sandbox, answers: RecentAnswers, prefix: str = "") -> Status:
    return Status(
        queues=queues(sandbox),
        orders={state: sum(page["Count"] for page in _in_status(sandbox, state, Select="COUNT")) for state in STATUSES},
        products=products(sandbox, prefix),
        answers=answers.read(),
    )


def orders(sandbox: Sandbox, search: str = "", limit: int = 50) -> list[OrderRow]:
    """The newest orders of each status (by order date), whose id contains `search`; newest received first."""
    only: dict[str, Any] = {"FilterExpression": "contains(order_id, :q)", "values": {":q": search}} if search else {}
    rows = [
        OrderRow(order_id=item["order_id"], order_status=state, at=item.get("received_at", ""))
        for state in STATUSES
        for page in _in_status(
            sandbox,
            state,
            ProjectionExpression="order_id, received_at",
            ScanIndexForward=False,
            PaginationConfig={"MaxItems": limit},  # of each partition
            **only,
        )
        for item in page.get("Items", [])
    ]
    return sorted(rows, key=lambda row: row.at, reverse=True)[:limit]


def order_record(sandbox: Sandbox, order_id: str) -> dict[str, Any] | None:
    """The order as the table holds it (with its source and status_history), personal data masked."""
    keys = {name: value["S"] for name, value in order_key(order_id).items()}
    item = sandbox.db.get_item(TableName=sandbox.outputs.OrdersTable, Key=keys, ConsistentRead=True).get("Item")
    if item and "document" in item:
        item["document"] = stored_document(item)  # the JSON text, as a map: masked by field name as well as by shape
    masked: dict[str, Any] | None = mask_document(item) if item and item.get("SK") == ORDER else None
    return masked


# --- logs: the functions' structured lines ----------------------------------------------------------------------


@dataclass
class LogCursor:
    """Where reading a log group got to: events after `start`, or at `start` but not yet seen."""

    logs: Any
    name: str
    group: str
    pattern: str | None = None
    start: int | None = None
    seen: set[tuple[str, ...]] = field(default_factory=set)

    def fetch(self) -> list[dict[str, Any]]:
        """The events not given before; the cursor moves to the newest."""
        new: list[dict[str, Any]] = []
        while True:
            request = {"logGroupName": self.group, "startTime": self.start, "filterPattern": self.pattern}
            pages = self.logs.get_paginator("filter_log_events").paginate(
                **{name: value for name, value in request.items() if value}
            )
            try:
                events: list[dict[str, Any]] = [event for page in pages for event in page.get("events", [])]
            except self.logs.exceptions.ResourceNotFoundException:
                return new  # no invocation yet
            start = self.start
            # `seen` holds only events at `start` (the key has the timestamp)
            fresh = [e for e in events if e["timestamp"] >= (start or 0) and _event_key(e) not in self.seen]
            if fresh:
                latest = max(event["timestamp"] for event in fresh)
                if latest != start:
                    self.start, self.seen = latest, set()
                self.seen |= {_event_key(event) for event in fresh if event["timestamp"] == latest}
            new += fresh
            if len(events) < LOG_PAGE_CAP or self.start == start:
                return new


def _event_key(event: dict[str, Any]) -> tuple[str, ...]:
    return (event.get("eventId") or "", event.get("logStreamName", ""), str(event["timestamp"]), event["message"])


def structured(message: str) -> dict[str, Any] | None:
    """A function's JSON log line, masked; None for the runtime's own lines and plain text."""
    try:
        record = json.loads(message)
    except ValueError:
        return None
    return mask_document(record) if isinstance(record, dict) else None


def quoted(text: str) -> str | None:
    """CloudWatch's plain substring filter for `text`; None when it cannot be quoted (then filter locally)."""
    return None if set(text) & set('"\\') else f'"{text}"'


def since_ms(seconds: float) -> int:
    return int((time.time() - seconds) * 1000)


@dataclass
class RecentAnswers:
    """The API's answers of the last WINDOW_SECONDS, read on from where the previous read stopped."""

    sandbox: Sandbox
    _cursor: LogCursor | None = None
    _seen: deque[tuple[int, str]] = field(default_factory=deque)

    def read(self) -> Answers:
        oldest = since_ms(WINDOW_SECONDS)
        if self._cursor is None:
            self._cursor = LogCursor(self.sandbox.logs, "api", self.sandbox.log_group("api"), start=oldest)
        for event in self._cursor.fetch():
            if answer := ANSWERS.get(str((structured(event["message"]) or {}).get("message"))):
                self._seen.append((event["timestamp"], answer))
        while self._seen and self._seen[0][0] < oldest:
            self._seen.popleft()
        return Answers(**Counter(answer for _, answer in self._seen))


def _lines(sandbox: Sandbox, function: str, text: str, start: int) -> list[dict[str, Any]]:
    events = LogCursor(sandbox.logs, function, sandbox.log_group(function), quoted(text), start).fetch()
    return [line for e in events if text in e["message"] and (line := structured(e["message"]))]


def trace(sandbox: Sandbox, order_id: str) -> Trace | None:
    """The order's hops across the functions, by their log lines naming it, and its status_history; None if unknown.

    A file's order has no line of its own before the processor: its file's `file ingested` line stands for it."""
    record = order_record(sandbox, order_id)
    if record is None:
        return None
    source = str(record.get("source", ""))
    file_key = (
        source.removeprefix(FILE_SOURCE).split("/", 1)[-1].rsplit("#", 1)[0] if source.startswith(FILE_SOURCE) else ""
    )
    start = int(datetime.fromisoformat(str(record.get("received_at"))).timestamp() * 1000) - 60_000
    hops = [
        Hop(at=entry["at"], where="tabela", what=entry["status"], detail=mask_text(str(entry.get("reason", ""))))
        for entry in record.get("status_history") or []
    ]
    for function in FUNCTIONS:
        for line in _lines(sandbox, function, order_id, start):
            if order_id in (line.get("order_id"), *(line.get("order_ids") or [])):
                hops.append(_hop(function, line))
    if file_key:
        lines = _lines(sandbox, "file-validator", file_key, start)
        hops += [_hop("file-validator", line) for line in lines if line.get("file_key") == file_key]
    hops = [hop for hop in hops if hop.what]
    hops.sort(key=lambda hop: hop.at)
    for before, hop in pairwise(hops):
        hop.seconds = (hop.at - before.at).total_seconds()
    return Trace(order_id=order_id, order_status=str(record.get("order_status")), source=file_key or "API", hops=hops)


def _hop(function: str, line: dict[str, Any]) -> Hop:
    message = str(line.get("message", ""))
    what = HOPS.get(message, "" if function == "file-validator" else message)
    if message == "order processed" and line.get("order_status") != NEW_ORDER:
        what += PENDING_NOTICE
    shown = ("order_status", "file_key", "restock_id", "accepted", "rejected", "quantity", "completed", "error")
    detail = " ".join(f"{name}={line[name]}" for name in shown if line.get(name) not in (None, ""))
    return Hop(at=line["time"], where=function, what=what, detail=detail)


# --- the data lake's reports ------------------------------------------------------------------------------------


def read_report(sandbox: Sandbox, key: str) -> dict[str, Any]:
    """A data-lake report, personal data masked (again: the file validator masks what it writes)."""
    body: dict[str, Any] = mask_document(
        json.loads(sandbox.s3.get_object(Bucket=sandbox.outputs.DataLakeBucket, Key=key)["Body"].read())
    )
    return body


def upload(sandbox: Sandbox, key: str, body: bytes | IO[bytes]) -> tuple[str, str]:
    """One PutObject (one S3 event): the ETag it answers, and the key of the report that ETag names."""
    etag = str(sandbox.s3.put_object(Bucket=sandbox.outputs.DataLakeBucket, Key=key, Body=body)["ETag"])
    return etag, report_key(key, etag)


def wait_for_report(sandbox: Sandbox, key: str, timeout: float) -> dict[str, Any] | None:
    """The report at `key` once the file validator wrote it (S3's `object_exists` waiter); None after `timeout`."""
    if wait(sandbox.s3, "object_exists", delay=0.3, timeout=timeout, Bucket=sandbox.outputs.DataLakeBucket, Key=key):
        return None
    return read_report(sandbox, key)


def reports(sandbox: Sandbox, notices: dict[str, dict[str, Any]], limit: int = 20) -> list[Report]:
    """The newest reports under reports/, each with the SNS notice of its file (by key) when one was received."""
    pages = sandbox.s3.get_paginator("list_objects_v2").paginate(
        Bucket=sandbox.outputs.DataLakeBucket, Prefix="reports/"
    )
    found = sorted((item for page in pages for item in page.get("Contents", [])), key=lambda item: item["LastModified"])
    shown = [_report(sandbox, item["Key"], item["LastModified"]) for item in reversed(found[-limit:])]
    # A copy with its notice: the cached report is shared by every reader
    return [report.model_copy(update={"notice": notices.get(str(report.body.get("key")))}) for report in shown]


@cache  # a report never changes: each is read once
def _report(sandbox: Sandbox, key: str, at: datetime) -> Report:
    return Report(report_key=key, at=at, body=read_report(sandbox, key))
