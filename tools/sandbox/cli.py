"""The `sandbox` command: look at, feed and reset the running sandbox.

Exit codes: 0 ok, 1 the operation failed, 2 usage (a bad option, argument or file).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar
from urllib.parse import quote

import boto3
import requests
import typer
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Column, Table
from rich.text import Text

from orders.files import READ_SUFFIXES, is_read
from orders.masking import mask_document as mask
from orders.masking import mask_text
from orders.model import OrderRejected
from orders.report import report_key
from orders.validation import OrderValidator, parse_order_body
from sandbox import emulator
from sandbox import notifications as inbox
from sandbox.aws import OUTPUTS, default_environment
from sandbox.poll import TimedOut, wait_until
from sandbox.records import Restock, RestockBody, SeedError, SeedFile, StackOutputs
from sandbox.seed import DEFAULT_FILE, seed
from sandbox.state import queue_depth
from service.keys import STOCK, product_pk, status_partition

P = ParamSpec("P")
R = TypeVar("R")

FINAL = ("Novo Pedido", "Produto Pendente")
STATUSES = ("Recebido", *FINAL)
QUEUES = {
    "orders": "OrderQueueUrl",
    "orders DLQ": "OrderDeadLetterQueueUrl",
    "files": "FileQueueUrl",
    "files DLQ": "FileDeadLetterQueueUrl",
    "restocks": "RestockQueueUrl",
    "restocks DLQ": "RestockDeadLetterQueueUrl",
}
STATUS_STYLES = {"Recebido": "yellow", "Novo Pedido": "green", "Produto Pendente": "magenta"}
ITEM_STYLES = {"Reservado": "green", "Pendente": "magenta"}
LEVEL_STYLES = {"DEBUG": "dim", "INFO": "green", "WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}
LAMBDA_LINES = ("START ", "END ", "REPORT ", "INIT_START ")
# The emulator answers a FilterLogEvents with at most this many events and no nextToken: ask again from there.
LOG_PAGE_CAP = 10_000
BIG_FILE = 1024 * 1024
PROGRESS_FROM = 50  # items: smaller jobs finish before a bar would show
RELEASED_SHOWN = 50  # released orders whose status `restock` looks up, one GET each

app = typer.Typer(
    help="Look at, feed and reset the order-pipeline sandbox (MiniStack or LocalStack).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
out = Console()
err = Console(stderr=True)


# --- set-up, errors ---------------------------------------------------------------------------------------------


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Piped output is not cut at 80 columns: ids in tables must stay whole for grep.
    width = None if stream.isatty() else int(os.environ.get("COLUMNS") or 200)
    return Console(stderr=stderr, width=width, highlight=False)


@app.callback()
def _setup() -> None:
    global out, err
    out, err = _console(), _console(stderr=True)
    default_environment()


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(Text(message, style="red"))
    raise typer.Exit(code)


def _not_running() -> str:
    return f"nothing answers at {emulator.endpoint()}: the sandbox is not running: run `make up`"


_MISSING = {"ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NoSuchBucket"}


def _aws_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn connection and AWS errors into a message that says what to do next, and exit code 1."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (EndpointConnectionError, requests.ConnectionError):
            fail(_not_running())
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "?"))
            if code in _MISSING:
                fail(f"{code}: the stack in {OUTPUTS} is not on {emulator.endpoint()}: run `make up`")
            fail(f"{exc.operation_name} failed: {code}: {error.get('Message', '')}")
        except BotoCoreError as exc:
            fail(f"AWS call failed: {exc}")
        except requests.RequestException as exc:
            fail(f"HTTP call failed: {exc}")

    return run


@dataclass
class Sandbox:
    outputs: StackOutputs
    session: boto3.session.Session = field(default_factory=boto3.session.Session)

    def client(self, name: str) -> Any:
        return self.session.client(name)  # type: ignore[call-overload]

    @property
    def api(self) -> str:
        return self.outputs.ApiBaseUrl.rstrip("/")


def connect() -> Sandbox:
    """The running, deployed sandbox, or an exit that says how to get one."""
    try:
        running = emulator.answering()
    except SystemExit as exc:  # a malformed AWS_ENDPOINT_URL
        fail(str(exc.code), code=2)
    if not running:
        fail(_not_running())
    try:
        return Sandbox(StackOutputs.read(OUTPUTS))
    except SystemExit as exc:
        fail(str(exc.code))


# --- helpers ----------------------------------------------------------------------------------------------------


def _progress(*columns: Any, disable: bool = False) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        *columns,
        console=out,
        transient=True,
        disable=disable,
    )


def _table(title: str, *columns: str | Column) -> Table:
    return Table(*columns, title=title, title_justify="left")


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _print_body(response: requests.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        out.print(Text(mask_text(response.text)))
        return
    out.print_json(data=mask(body))


def _seed(sandbox: Sandbox, products: list[dict[str, Any]], only_missing: bool) -> int:
    table = sandbox.outputs.OrdersTable
    written = 0
    with _progress(BarColumn(), MofNCompleteColumn(), disable=len(products) < PROGRESS_FROM) as progress:
        task = progress.add_task(f"seeding {table}", total=len(products))
        for start in range(0, len(products), 25):
            chunk = products[start : start + 25]
            written += seed(sandbox.session, table, chunk, only_missing=only_missing)
            progress.advance(task, len(chunk))
    return written


def _read_products(path: Path | None) -> list[dict[str, Any]]:
    try:
        return SeedFile.read(path or Path(os.environ.get("SEED_FILE") or DEFAULT_FILE)).rows()
    except SeedError as exc:
        fail(f"seed: {exc}", code=2)


# --- status -----------------------------------------------------------------------------------------------------


def _queue_table(sandbox: Sandbox) -> Table:
    sqs = sandbox.client("sqs")
    table = _table(
        "queues",
        "queue",
        Column("name", no_wrap=True),
        Column("visible", justify="right"),
        Column("in flight", justify="right"),
    )
    for label, key in QUEUES.items():
        url = sandbox.outputs[key]
        visible, in_flight = queue_depth(sqs, url)
        alarm = "DLQ" in label and visible + in_flight > 0
        table.add_row(
            label,
            Text(url.rsplit("/", 1)[-1]),
            Text(str(visible), style="bold red" if alarm else ""),
            str(in_flight),
        )
    return table


def _order_counts(sandbox: Sandbox) -> Table:
    paginator = sandbox.client("dynamodb").get_paginator("query")
    table = _table("orders by status", "order_status", Column("orders", justify="right"))
    for status in STATUSES:
        pages = paginator.paginate(
            TableName=sandbox.outputs.OrdersTable,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :status",
            ExpressionAttributeValues={":status": {"S": status_partition(status)}},
            Select="COUNT",
        )
        table.add_row(Text(status, style=STATUS_STYLES[status]), str(sum(page["Count"] for page in pages)))
    return table


def _products(sandbox: Sandbox, prefix: str) -> list[dict[str, Any]]:
    scan = sandbox.client("dynamodb").get_paginator("scan")
    pages = scan.paginate(
        TableName=sandbox.outputs.OrdersTable,
        FilterExpression="begins_with(PK, :prefix) AND SK = :stock",
        ExpressionAttributeValues={":prefix": {"S": product_pk(prefix)}, ":stock": {"S": STOCK}},
    )
    products = [
        {
            "product_id": item["PK"]["S"].removeprefix(product_pk("")),
            "description": item.get("description", {}).get("S", ""),
            "available": int(item.get("available", {}).get("N", "0")),
            "reserved": int(item.get("reserved", {}).get("N", "0")),
            "waiting_items": int(item.get("waiting", {}).get("N", "0")),
        }
        for page in pages
        for item in page.get("Items", [])
    ]
    return sorted(products, key=lambda product: product["product_id"])


def _stock_table(products: list[dict[str, Any]], limit: int) -> Table:
    table = _table(
        "stock",
        Column("product_id", no_wrap=True),
        "description",
        Column("available", justify="right"),
        Column("reserved", justify="right"),
        Column("waiting_items", justify="right"),
    )
    for product in products[:limit]:
        available, waiting = product["available"], product["waiting_items"]
        table.add_row(
            Text(product["product_id"]),
            Text(str(product.get("description") or "")),
            Text(str(available), style="red" if available == 0 else ""),
            str(product["reserved"]),
            Text(str(waiting), style="magenta" if waiting else ""),
        )
    return table


@app.command()
@_aws_errors
def status(
    limit: Annotated[int, typer.Option(min=0, help="show at most this many products")] = 20,
    product: Annotated[str, typer.Option(help="only products whose id starts with this")] = "",
) -> None:
    """Stack outputs, queue depths (DLQs included), orders by status and the stock (waiting items too)."""
    sandbox = connect()
    outputs = _table(f"stack outputs ({emulator.endpoint()})", "output", Column("value", no_wrap=True))
    for key, value in sorted(sandbox.outputs.as_dict().items()):
        outputs.add_row(key, Text(value))
    out.print(outputs)
    with out.status("reading the queues and the table"):
        queues = _queue_table(sandbox)
        counts = _order_counts(sandbox)
        products = _products(sandbox, product)
    out.print(queues)
    out.print(counts)
    out.print(_stock_table(products, limit))
    if len(products) > limit:
        out.print(Text(f"{limit} of {len(products)} products shown: --limit N, --product PREFIX", style="dim"))


# --- orders: send, watch ----------------------------------------------------------------------------------------


def _items_table(order: dict[str, Any]) -> Table:
    table = Table(title=f"order {order.get('order_id')}", title_justify="left")
    for column in ("product_id", "quantity", "unit_price", "item_status"):
        table.add_column(column, justify="right" if column in {"quantity", "unit_price"} else "left", no_wrap=True)
    for item in order.get("items", []):
        state = str(item.get("item_status", ""))
        table.add_row(
            Text(str(item.get("product_id", ""))),
            str(item.get("quantity", "")),
            str(item.get("unit_price", "")),
            Text(state, style=ITEM_STYLES.get(state, "")),
        )
    return table


def _history_table(order: dict[str, Any]) -> Table | None:
    history = order.get("status_history") or []
    if not history:
        return None
    table = _table("status history", Column("status", no_wrap=True), Column("at", no_wrap=True), "reason")
    for entry in history:
        state = str(entry.get("status", ""))
        table.add_row(
            Text(state, style=STATUS_STYLES.get(state, "")),
            Text(str(entry.get("at", ""))),
            Text(mask_text(str(entry.get("reason", "")))),
        )
    return table


def _follow_order(sandbox: Sandbox, order_id: str, timeout: float, interval: float = 0.5) -> dict[str, Any]:
    """Poll GET /orders/{id}, printing each status change, until the order is final."""
    http = requests.Session()
    url = f"{sandbox.api}/orders/{quote(order_id, safe='')}"
    states: list[str] = []

    def final() -> dict[str, Any] | None:
        response = http.get(url, timeout=30)
        if response.status_code == 404:
            fail(f"order {order_id} not found: check the id (a 202 or the file report says it was accepted)")
        if response.status_code != 200:
            fail(f"GET /orders/{order_id} answered {response.status_code}: {mask_text(response.text[:300])}")
        order: dict[str, Any] = response.json()
        state = str(order.get("order_status"))
        if not states or state != states[-1]:
            line = Text(f"{_now()}  ")
            line.append(order_id)
            line.append("  ")
            line.append(state, style=STATUS_STYLES.get(state, "bold"))
            out.print(line)
            states.append(state)
        return order if state in FINAL else None

    with out.status(f"following {order_id}"):
        try:
            order = wait_until(final, timeout=timeout, interval=interval, what=f"order {order_id}")
        except TimedOut:
            fail(
                f"order {order_id} still {states[-1]} after {timeout:.0f} s: check `sandbox status` (queues, DLQs) "
                "and `sandbox logs processor`"
            )
    out.print(_items_table(order))
    history = _history_table(order)
    if history is not None:
        out.print(history)
    return order


def _check_locally(body: bytes) -> None:
    strict = os.environ.get("STRICT_DOCUMENTS", "false").lower() == "true"
    try:
        errors = OrderValidator(strict_documents=strict).errors(parse_order_body(body))
    except OrderRejected as exc:
        errors = list(exc.errors)
    if not errors:
        out.print(Text("valid: the API would accept it (unless its order_id was already received)", style="green"))
        return
    table = _table("Pedido inválido.", Column("field", no_wrap=True), "message")
    for error in errors:
        table.add_row(Text(error.field), Text(error.message))
    out.print(table)
    raise typer.Exit(1)


@app.command()
@_aws_errors
def send(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, metavar="FILE", help="an order JSON file")
    ],
    watch: Annotated[bool, typer.Option("--watch", help="then follow the order to its final status")] = False,
    timeout: Annotated[float, typer.Option(min=0, help="seconds --watch waits for a final status")] = 60,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only validate, with the validator the API runs; send nothing")
    ] = False,
) -> None:
    """POST an order file to /orders; exit 1 on a 4xx/5xx answer."""
    body = file.read_bytes()
    if dry_run:
        _check_locally(body)
        return
    sandbox = connect()
    response = requests.post(
        f"{sandbox.api}/orders", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    ok = response.status_code < 400
    out.print(Text(f"{response.status_code} {response.reason}", style="green" if ok else "bold red"))
    _print_body(response)
    if not ok:
        raise typer.Exit(1)
    if watch:
        order_id = response.json().get("order_id")
        if not isinstance(order_id, str):
            fail("the answer carries no order_id to follow")
        _follow_order(sandbox, order_id, timeout)


@app.command()
@_aws_errors
def watch(
    order_id: Annotated[str, typer.Argument(metavar="ORDER_ID", help="the order to follow")],
    timeout: Annotated[float, typer.Option(min=0, help="seconds to wait for a final status")] = 60,
) -> None:
    """Follow GET /orders/{ORDER_ID} until Novo Pedido or Produto Pendente; print the items and the history."""
    _follow_order(connect(), order_id, timeout)


# --- stock: restock -------------------------------------------------------------------------------------------


def _follow_restock(http: requests.Session, api: str, restock_id: str, timeout: float) -> Restock:
    """Poll GET /restocks/{id}, printing each change, until its release has run (released_at is set)."""
    url = f"{api}/restocks/{quote(restock_id, safe='')}"
    states: list[str] = []

    def released() -> Restock | None:
        response = http.get(url, timeout=30)
        if response.status_code != 200:
            fail(f"GET /restocks/{restock_id} answered {response.status_code}: {response.text[:300]}")
        restock = Restock.model_validate_json(response.content)
        if not states or restock.state != states[-1]:
            line = Text(f"{_now()}  restock {restock_id}  ")
            line.append(restock.state, style="green" if restock.released_at else "yellow")
            out.print(line)
            states.append(restock.state)
        return restock if restock.released_at else None

    with out.status(f"following restock {restock_id}"):
        try:
            return wait_until(released, timeout=timeout, interval=0.3, what=f"restock {restock_id}")
        except TimedOut:
            fail(
                f"restock {restock_id} still {states[-1]} after {timeout:.0f} s: check `sandbox status` "
                "(restocks queue, DLQ) and `sandbox logs restocker`"
            )


def _released_table(http: requests.Session, api: str, order_ids: list[str], total: int) -> Table:
    """The orders whose pending item the restock reserved, and their status now (one may still wait for another
    product)."""
    table = _table(f"released orders ({total})", Column("order_id", no_wrap=True), "order_status")
    for order_id in order_ids[:RELEASED_SHOWN]:
        response = http.get(f"{api}/orders/{quote(order_id, safe='')}", timeout=30)
        state = str(response.json().get("order_status")) if response.status_code == 200 else "?"
        table.add_row(Text(order_id), Text(state, style=STATUS_STYLES.get(state, "")))
    return table


@app.command("restock")
@_aws_errors
def restock_command(
    product_id: Annotated[str, typer.Argument(metavar="PRODUCT", help="the product's id, e.g. PRD-1001")],
    quantity: Annotated[int, typer.Argument(metavar="N", help="units arriving (the API checks 1 to 1,000,000)")],
    key: Annotated[
        str | None,
        typer.Option(help="Idempotency-Key: the same key again answers with the first restock, applied once"),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="wait until the release has run, then print the stock")
    ] = True,
    timeout: Annotated[float, typer.Option(min=0, help="seconds to wait for the release")] = 60,
) -> None:
    """POST a restock of N units of PRODUCT; wait for its release; print the stock and the orders it released."""
    sandbox = connect()
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    http = requests.Session()
    response = http.post(
        f"{sandbox.api}/products/{quote(product_id, safe='')}/restock",
        data=RestockBody(quantity=quantity).model_dump_json(),
        headers=headers,
        timeout=30,
    )
    ok = response.status_code < 400
    out.print(Text(f"{response.status_code} {response.reason}", style="green" if ok else "bold red"))
    _print_body(response)
    if not ok:
        raise typer.Exit(1)
    if not wait:
        return
    restock_id = response.json().get("restock_id")
    if not isinstance(restock_id, str):
        fail("the answer carries no restock_id to follow")
    restock = _follow_restock(http, sandbox.api, restock_id, timeout)
    product = http.get(f"{sandbox.api}/products/{quote(product_id, safe='')}", timeout=30)
    if product.status_code != 200:
        fail(f"GET /products/{product_id} answered {product.status_code}: {product.text[:300]}")
    out.print(_stock_table([product.json()], limit=1))
    # The first page of the released orders is enough to show; released_count is how many there are in all.
    released = restock.released_orders
    total = restock.released_count if restock.released_count is not None else len(released)
    if not released:
        out.print(Text("released orders: none (nobody waiting, or the oldest waiting item needs more)", style="dim"))
        return
    out.print(_released_table(http, sandbox.api, released, total))
    if total > RELEASED_SHOWN:
        out.print(Text(f"{RELEASED_SHOWN} of {total} released orders shown", style="dim"))
    out.print(Text(f"follow one: sandbox watch {released[0]}", style="dim"))


# --- data lake: upload ------------------------------------------------------------------------------------------


def _etag(s3: Any, bucket: str, key: str) -> str | None:
    try:
        return str(s3.head_object(Bucket=bucket, Key=key)["ETag"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise


def _wait_for_report(s3: Any, bucket: str, key: str, timeout: float) -> dict[str, Any]:
    """The report at `key` once it exists (its name is the file's own: no earlier file's report is there)."""
    with out.status(f"waiting for s3://{bucket}/{key}"):
        try:
            wait_until(lambda: _etag(s3, bucket, key), timeout=timeout, interval=0.3, what=f"report {key}")
        except TimedOut:
            fail(
                f"no report at {key} after {timeout:.0f} s: check `sandbox status` (files queue, DLQ) "
                "and `sandbox logs file-validator`"
            )
    report: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return report


def _print_report(report: dict[str, Any], limit: int, api: str) -> None:
    """Counts and rejections of an order file or a restock file (`kind`), whose entries are named differently."""
    restocks = report.get("kind") == "restocks"
    name = "product_id" if restocks else "order_id"
    counts = Table(title=f"report of {report.get('key')}", title_justify="left")
    for column in ("received", "accepted", "rejected", "file_error"):
        counts.add_column(column, justify="left" if column == "file_error" else "right")
    file_error = report.get("file_error")
    counts.add_row(
        str(report.get("received")),
        Text(str(report.get("accepted")), style="green"),
        Text(str(report.get("rejected")), style="red" if report.get("rejected") else ""),
        Text(str(file_error) if file_error else "-", style="red" if file_error else ""),
    )
    out.print(counts)
    rejections = mask(report.get("rejections") or [])
    if rejections:
        table = _table("rejections", Column("index", justify="right"), Column(name, no_wrap=True), "errors")
        for rejection in rejections[:limit]:
            errors = "\n".join(f"{e.get('field')}: {e.get('message')}" for e in rejection.get("errors", []))
            entry = rejection.get(name)
            table.add_row(str(rejection.get("index")), Text("-" if entry is None else str(entry)), Text(errors))
        out.print(table)
        if len(rejections) > limit:
            out.print(Text(f"{limit} of {len(rejections)} rejections shown: --limit N shows more", style="dim"))
    if not restocks:
        accepted = report.get("accepted_order_ids") or []
        if accepted:
            out.print(Text(f"follow one: sandbox watch {accepted[0]}", style="dim"))
        return
    accepted = report.get("accepted_restock_ids") or []
    if accepted:
        table = _table("accepted restocks", Column("restock_id", no_wrap=True))
        for restock_id in accepted[:limit]:
            table.add_row(Text(str(restock_id)))
        out.print(table)
        if len(accepted) > limit:
            out.print(Text(f"{limit} of {len(accepted)} restocks shown: --limit N shows more", style="dim"))
        out.print(Text(f"see one: curl -s {api}/restocks/{quote(str(accepted[0]), safe='')}", style="dim"))


def _object_key(file: Path, key: str | None, restock: bool) -> str:
    prefix = "restock/" if restock else "incoming/"
    name = (key or file.name).lstrip("/")
    object_key = name if name.startswith(prefix) else f"{prefix}{name}"
    if not is_read(object_key):  # it would only get a report saying it was ignored
        fail(
            f"{object_key}: only {' and '.join(READ_SUFFIXES)} files (any case) under {prefix} are read; "
            "rename the file or pass --key NAME" + READ_SUFFIXES[0],
            code=2,
        )
    return object_key


@app.command()
@_aws_errors
def upload(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, metavar="FILE", help=".json or .jsonl (any case)"),
    ],
    key: Annotated[
        str | None,
        typer.Option(help="object key (put under incoming/, or restock/, if it is not); default: the file name"),
    ] = None,
    restock: Annotated[
        bool, typer.Option("--restock", help='a restock file ([{"product_id", "quantity"}]): put it under restock/')
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="exit 1 when the report has rejections or a file_error")
    ] = False,
    timeout: Annotated[float, typer.Option(min=0, help="seconds to wait for the report")] = 300,
    limit: Annotated[int, typer.Option(min=0, help="show at most this many rejections (and accepted restocks)")] = 50,
) -> None:
    """Put a file in the data lake under incoming/ (restock/ with --restock), wait for its report, print it."""
    object_key = _object_key(file, key, restock)
    sandbox = connect()
    s3, bucket = sandbox.client("s3"), sandbox.outputs.DataLakeBucket
    before = _etag(s3, bucket, object_key)
    size = file.stat().st_size
    with _progress(BarColumn(), DownloadColumn(), disable=size < BIG_FILE) as progress:
        task = progress.add_task(f"uploading {object_key}", total=size)
        s3.upload_file(
            str(file),
            bucket,
            object_key,
            Callback=lambda sent: progress.advance(task, sent),
            Config=TransferConfig(multipart_threshold=64 * 1024 * 1024),  # one PutObject: one S3 event
        )
    etag = _etag(s3, bucket, object_key)
    if etag is None:
        fail(f"s3://{bucket}/{object_key} is gone right after its upload: is another process deleting it?")
    report_at = report_key(object_key, etag)
    out.print(f"uploaded s3://{bucket}/{object_key} ({size} bytes); its report: {report_at}")
    if before == etag:
        out.print(
            Text(
                "the same content was already under this key: a file is handled once, so this is its earlier report "
                "(use --key NEW_NAME to resubmit)",
                style="yellow",
            )
        )
    report = _wait_for_report(s3, bucket, report_at, timeout)
    _print_report(report, limit, sandbox.api)
    if strict and (report.get("rejected") or report.get("file_error")):
        fail(f"--strict: the file had rejected {report.get('kind') or 'orders'} or a file error")


# --- notifications ----------------------------------------------------------------------------------------------


def _print_notification(envelope: dict[str, Any]) -> None:
    topic = str(envelope.get("TopicArn", "")).rsplit(":", 1)[-1]
    header = Text("--- ")
    header.append(str(envelope.get("Timestamp", "")), style="dim")
    header.append(f"  {topic}  ", style="cyan")
    header.append(mask_text(str(envelope.get("Subject") or "")), style="bold")
    out.print(header)
    message = str(envelope.get("Message", ""))
    try:
        document = json.loads(message)
    except ValueError:
        out.print(Text(mask_text(message)))
        return
    out.print_json(data=mask(document), ensure_ascii=False)


@app.command("notifications")
@_aws_errors
def notifications_command(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new messages until Ctrl-C")] = False,
    wait: Annotated[int, typer.Option(min=0, max=20, help="without --follow: seconds to wait for a first one")] = 0,
) -> None:
    """Print what reached both SNS topics since the last call (CPF and e-mail masked), then forget it."""
    sandbox = connect()
    url = inbox.ensure_inbox(sandbox.session, sandbox.outputs.as_dict())
    if not follow:
        envelopes = inbox.drain(sandbox.session, url, wait_seconds=wait)
        if not envelopes:
            out.print("no new notifications")
        for envelope in envelopes:
            _print_notification(envelope)
        return
    err.print(Text("following the notifications inbox (Ctrl-C to stop)", style="dim"))
    try:
        while True:
            for envelope in inbox.drain(sandbox.session, url, wait_seconds=20):
                _print_notification(envelope)
    except KeyboardInterrupt:
        return


# --- logs -------------------------------------------------------------------------------------------------------


FUNCTIONS = {
    "api": "ApiFunctionName",
    "file-validator": "FileValidatorFunctionName",
    "processor": "ProcessorFunctionName",
    "restocker": "RestockerFunctionName",
    "sweeper": "SweeperFunctionName",
}
Function = StrEnum("Function", {name.replace("-", "_"): name for name in FUNCTIONS})


@dataclass
class LogCursor:
    """Where reading a log group got to: events after `start`, or at `start` but not yet seen."""

    logs: Any
    name: str
    group: str
    pattern: str | None
    start: int | None = None
    seen: set[tuple[str, ...]] = field(default_factory=set)

    def fetch(self) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        while True:
            before = self.start
            returned, fresh = self._fetch_once()
            new += fresh
            if returned < LOG_PAGE_CAP or self.start == before:
                return new

    def _fetch_once(self) -> tuple[int, list[dict[str, Any]]]:
        """(events the backend returned, those not printed before); the cursor moves to the newest."""
        request: dict[str, Any] = {"logGroupName": self.group}
        if self.start is not None:
            request["startTime"] = self.start
        if self.pattern:
            request["filterPattern"] = self.pattern
        try:
            pages = self.logs.get_paginator("filter_log_events").paginate(**request)
            events: list[dict[str, Any]] = [event for page in pages for event in page.get("events", [])]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return 0, []  # no invocation yet
            raise
        start = self.start
        fresh = [
            event
            for event in events
            if start is None
            or event["timestamp"] > start
            or (event["timestamp"] == start and _event_key(event) not in self.seen)
        ]
        if fresh:
            latest = max(event["timestamp"] for event in fresh)
            if latest != start:
                self.start, self.seen = latest, set()
            self.seen |= {_event_key(event) for event in fresh if event["timestamp"] == latest}
        return len(events), fresh


def _event_key(event: dict[str, Any]) -> tuple[str, ...]:
    return (event.get("eventId") or "", event.get("logStreamName", ""), str(event["timestamp"]), event["message"])


def _log_line(message: str, prefix: str | None) -> Text | None:
    line = message.rstrip()
    if line.startswith(LAMBDA_LINES):
        return None
    text = Text()
    if prefix:
        text.append(f"{prefix:<15}", style="magenta")
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        text.append(mask_text(line))
        return text
    record = mask(record)
    level = str(record.pop("level", ""))
    text.append(str(record.pop("time", "")), style="dim")
    text.append(f" {level:<7} ", style=LEVEL_STYLES.get(level, "bold"))
    text.append(str(record.pop("message", "")), style="bold")
    for name, value in record.items():
        text.append(f" {name}", style="cyan")
        text.append("=")
        text.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), style="yellow")
    return text


_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _since(value: str | None) -> int | None:
    if value is None:
        return None
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise typer.BadParameter("a duration such as 30s, 10m, 2h or 1d", param_hint="--since")
    return int((time.time() - int(match[1]) * _SECONDS[match[2]]) * 1000)


def _print_events(cursors: list[LogCursor], grep: str | None, prefixed: bool) -> None:
    events = [(event, cursor.name) for cursor in cursors for event in cursor.fetch()]
    for event, name in sorted(events, key=lambda pair: pair[0]["timestamp"]):
        if grep and grep not in event["message"]:
            continue
        line = _log_line(event["message"], name if prefixed else None)
        if line is not None:
            out.print(line, soft_wrap=True)


@app.command("logs")
@_aws_errors
def logs_command(
    function: Annotated[
        Function | None,
        typer.Argument(metavar="FUNCTION", help="all of them when left out"),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines until Ctrl-C")] = False,
    since: Annotated[str | None, typer.Option(help="only lines newer than this: 30s, 10m, 2h, 1d")] = None,
    grep: Annotated[str | None, typer.Option(help="only lines containing this text (e.g. an order_id)")] = None,
) -> None:
    """The functions' structured logs, one line per entry: time, level, message, then the fields."""
    start = _since(since)
    sandbox = connect()
    logs = sandbox.client("logs")
    names = [function.value] if function else list(FUNCTIONS)
    # A quoted term is CloudWatch's plain substring filter; the text is checked here too, whatever the backend.
    pattern = f'"{grep}"' if grep and not set(grep) & set('"\\') else None
    cursors = [
        LogCursor(logs, name, f"/aws/lambda/{sandbox.outputs[FUNCTIONS[name]]}", pattern, start) for name in names
    ]
    _print_events(cursors, grep, prefixed=len(cursors) > 1)
    if not follow:
        return
    err.print(Text("following (Ctrl-C to stop)", style="dim"))
    for cursor in cursors:
        if cursor.start is None:
            cursor.start = int(time.time() * 1000)
    try:
        while True:
            time.sleep(1)
            _print_events(cursors, grep, prefixed=len(cursors) > 1)
    except KeyboardInterrupt:
        return


# --- data: seed, reset ------------------------------------------------------------------------------------------


@app.command("seed")
@_aws_errors
def seed_command(
    file: Annotated[
        Path | None,
        typer.Argument(metavar="FILE", help='[{"product_id", "description", "available"}]; default $SEED_FILE'),
    ] = None,
    only_missing: Annotated[bool, typer.Option("--only-missing", help="leave products that exist untouched")] = False,
) -> None:
    """Set product stock from a file: `available` becomes the file's value, `reserved` is kept."""
    path = file or Path(os.environ.get("SEED_FILE") or DEFAULT_FILE)
    products = _read_products(path)
    written = _seed(connect(), products, only_missing)
    out.print(f"seed: {written} of {len(products)} products written from {path}")


def _all_keys(table: Any) -> list[dict[str, Any]]:
    # The resource's client reads and writes plain Python values, as the batch writer takes them.
    pages = table.meta.client.get_paginator("scan").paginate(TableName=table.name, ProjectionExpression="PK, SK")
    return [{"PK": item["PK"], "SK": item["SK"]} for page in pages for item in page.get("Items", [])]


def _delete(table: Any, keys: list[dict[str, Any]], progress: Progress, task: Any) -> None:
    """boto3's batch writer sends the deletes 25 at a time and sends again whatever DynamoDB left unprocessed."""
    with table.batch_writer() as batch:
        for key in keys:
            batch.delete_item(Key=key)
            progress.advance(task)


@app.command()
@_aws_errors
def reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    no_seed: Annotated[bool, typer.Option("--no-seed", help="leave the table empty")] = False,
    seed_file: Annotated[Path | None, typer.Option(help="products to seed after; default $SEED_FILE")] = None,
) -> None:
    """Delete every order, pending item, product, restock and file marker; keep the stack; then seed again."""
    sandbox = connect()
    products = [] if no_seed else _read_products(seed_file)
    table = sandbox.outputs.OrdersTable
    if not yes:
        try:
            confirmed = typer.confirm(
                f"Delete every item of {table} at {emulator.endpoint()} (orders, stock, restocks, file markers)?"
            )
        except typer.Abort:
            confirmed = False
        if not confirmed:
            fail("reset cancelled: nothing deleted")
    items = sandbox.session.resource("dynamodb").Table(table)
    deleted = 0
    for _ in range(3):  # again if orders were written meanwhile
        with out.status(f"scanning {table}"):
            keys = _all_keys(items)
        if not keys:
            break
        with _progress(BarColumn(), MofNCompleteColumn(), disable=len(keys) < PROGRESS_FROM) as progress:
            _delete(items, keys, progress, progress.add_task(f"deleting from {table}", total=len(keys)))
        deleted += len(keys)
    out.print(f"reset: {deleted} items deleted from {table}")
    if products:
        written = _seed(sandbox, products, only_missing=False)
        out.print(f"seed: {written} of {len(products)} products written")


def main() -> None:
    # Orders may carry lone surrogates (legal JSON escapes, not UTF-8): print them escaped, never crash.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    app()
