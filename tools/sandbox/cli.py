"""The `sandbox` command: look at, feed and reset the running sandbox.

Exit codes: 0 ok, 1 the operation failed, 2 usage (a bad option, argument or file).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import requests
import typer
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Column, Table
from rich.text import Text

from orders.files import READ_SUFFIXES, is_read, lake_key
from orders.masking import mask_document as mask
from orders.masking import mask_text
from orders.model import FINAL_STATUSES, NEW_ORDER, PRODUCT_PENDING, RECEIVED, OrderRejected
from orders.validation import OrderValidator, parse_order_body
from sandbox import emulator, state, views
from sandbox import notifications as inbox
from sandbox.aws import OUTPUTS, default_environment
from sandbox.deploy.core import error_code, is_missing
from sandbox.poll import TimedOut, wait_until
from sandbox.records import Restock, RestockBody, SeedError, SeedFile, StackOutputs
from sandbox.seed import DEFAULT_FILE, seed
from sandbox.views import FUNCTIONS, LogCursor, Product, RecentAnswers, Sandbox, notice_of, quoted, since_ms, structured

Function = StrEnum("Function", {name.replace("-", "_"): name for name in FUNCTIONS})
# An order's statuses, and a restock's once released; any other state is one still moving.
STATUS_STYLES = {RECEIVED: "yellow", NEW_ORDER: "green", PRODUCT_PENDING: "magenta", "released": "green"}
ITEM_STYLES = {"Reservado": "green", "Pendente": "magenta"}
LAMBDA_LINES = ("START ", "END ", "REPORT ", "INIT_START ")
LEVEL_STYLES = {"DEBUG": "dim", "INFO": "green", "WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}
BIG_FILE = 1024 * 1024
PROGRESS_FROM = 50  # items: smaller jobs finish before a bar would show
RELEASED_SHOWN = 50  # released orders whose status `restock` looks up
NOT_FOUND = "not found: check the id (a 202 or the file report says it was accepted)"
_MISSING = {"ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NoSuchBucket"}
_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _Commands(typer.core.TyperGroup):
    """Every command's connection and AWS errors become a message saying what to do next, and exit 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (EndpointConnectionError, requests.ConnectionError):
            fail(_not_running())
        except ClientError as exc:
            code = error_code(exc) or "?"
            if code in _MISSING:
                fail(f"{code}: the stack in {OUTPUTS} is not on {emulator.endpoint()}: run `make up`")
            fail(f"{exc.operation_name} failed: {code}: {exc.response.get('Error', {}).get('Message', '')}")
        except BotoCoreError as exc:
            fail(f"AWS call failed: {exc}")
        except requests.RequestException as exc:
            fail(f"HTTP call failed: {exc}")


app = typer.Typer(
    cls=_Commands,
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
    # What the sandbox holds (ids, file names, messages) is printed as it is, never read as rich markup.
    return Console(stderr=stderr, width=width, highlight=False, markup=False, emoji=False)


@app.callback()
def _setup() -> None:
    global out, err
    out, err = _console(), _console(stderr=True)
    default_environment()


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(message, style="red")
    raise typer.Exit(code)


def _not_running() -> str:
    return f"nothing answers at {emulator.endpoint()}: the sandbox is not running: run `make up`"


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


def _progress(*columns: Any, total: int, threshold: int = PROGRESS_FROM) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        *(columns or (BarColumn(), MofNCompleteColumn())),
        console=out,
        transient=True,
        disable=total < threshold,
    )


def _opt(help: str, *names: str, **checks: Any) -> Any:
    return typer.Option(*names, help=help, **checks)


def _file(help: str) -> Any:
    return typer.Argument(exists=True, dir_okay=False, readable=True, metavar="FILE", help=help)


def _num(name: str) -> Column:
    return Column(name, justify="right")


def _whole(name: str) -> Column:
    return Column(name, no_wrap=True)


def _table(title: str, columns: Iterable[str | Column], rows: Iterable[Iterable[Any]]) -> Table:
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else str(cell) for cell in row))
    return table


def _styled(value: Any, styles: Mapping[str, str]) -> Text:
    return Text(str(value), style=styles.get(str(value), ""))


def _note(message: str) -> None:
    out.print(message, style="dim")


def _shown(limit: int, total: int, what: str, how: str = ": --limit N shows more") -> None:
    if total > limit:
        _note(f"{limit} of {total} {what} shown{how}")


def _post(
    sandbox: Sandbox, path: str, body: str | bytes, follow: str | None, headers: Mapping[str, str] | None = None
) -> str | None:
    """POST JSON to the API; print its answer (masked); exit 1 on a 4xx/5xx; the id named `follow` in its body."""
    response = sandbox.post(path, body, headers)
    ok = response.status_code < 400
    out.print(f"{response.status_code} {response.reason}", style="green" if ok else "bold red")
    try:
        body = response.json()
    except ValueError:
        body = None
        out.print(mask_text(response.text))
    else:
        out.print_json(data=mask(body))
    if not ok:
        raise typer.Exit(1)
    if follow is None:
        return None
    ident = body.get(follow) if isinstance(body, dict) else None
    if not isinstance(ident, str):
        fail(f"the answer carries no {follow} to follow")
    return ident


def _get(sandbox: Sandbox, resource: str, ident: str) -> dict[str, Any]:
    """GET /{resource}/{ident}, or an exit that says why not."""
    response = sandbox.get(resource, ident)
    if response.status_code == 404:
        fail(f"{resource.removesuffix('s')} {ident} {NOT_FOUND}")
    if response.status_code != 200:
        fail(f"GET /{resource}/{ident} answered {response.status_code}: {mask_text(response.text[:300])}")
    body: dict[str, Any] = response.json()
    return body


def _follow(
    sandbox: Sandbox,
    resource: str,
    ident: str,
    state_of: Callable[[dict[str, Any]], str],
    final: Collection[str],
    timeout: float,
    hint: str,
) -> dict[str, Any]:
    """Poll GET /{resource}/{ident}, printing each new state, until it is one of `final`; its last answer."""
    what, states = f"{resource.removesuffix('s')} {ident}", [""]

    def answer() -> dict[str, Any] | None:
        body = _get(sandbox, resource, ident)
        if (state := state_of(body)) != states[-1]:
            out.print(Text(f"{datetime.now():%H:%M:%S}  {what}  ").append(state, STATUS_STYLES.get(state, "yellow")))
            states.append(state)
        return body if state in final else None

    with out.status(f"following {what}"):
        try:
            return wait_until(answer, timeout=timeout, interval=0.3, what=what)
        except TimedOut:
            fail(f"{what} still {states[-1]} after {timeout:.0f} s: check `sandbox status` {hint}")


def _products(path: Path) -> list[dict[str, Any]]:
    try:
        return SeedFile.read(path).rows()
    except SeedError as exc:
        fail(f"seed: {exc}", code=2)


def _seed(sandbox: Sandbox, path: Path, products: list[dict[str, Any]], only_missing: bool) -> None:
    table = sandbox.outputs.OrdersTable
    with _progress(total=len(products)) as progress:
        rows = progress.track(products, description=f"seeding {table}")
        written = seed(sandbox.session, table, rows, only_missing=only_missing)
    out.print(f"seed: {written} of {len(products)} products written from {path}")


# --- status -----------------------------------------------------------------------------------------------------


def _stock_table(products: list[Product]) -> Table:
    columns = [_whole("product_id"), "description", _num("available"), _num("reserved"), _num("waiting_items")]
    rows = (
        [
            p.product_id,
            p.description,
            Text(str(p.available), style="red" if p.available == 0 else ""),
            p.reserved,
            Text(str(p.waiting_items), style="magenta" if p.waiting_items else ""),
        ]
        for p in products
    )
    return _table("stock", columns, rows)


@app.command()
def status(
    limit: Annotated[int, _opt("show at most this many products", min=0)] = 20,
    product: Annotated[str, _opt("only products whose id starts with this")] = "",
) -> None:
    """Stack outputs, queue depths (DLQs included), orders by status, stock (waiting items too), the API's answers."""
    sandbox = connect()
    outputs = sorted(sandbox.outputs.as_dict().items())
    out.print(_table(f"stack outputs ({emulator.endpoint()})", ["output", _whole("value")], outputs))
    with out.status("reading the queues, the table and the API's log"):
        now = views.status(sandbox, RecentAnswers(sandbox), product)
    queues = (
        [q.label, q.name, Text(str(q.visible), style="bold red" if q.alarm else ""), q.in_flight] for q in now.queues
    )
    out.print(_table("queues", ["queue", _whole("name"), _num("visible"), _num("in flight")], queues))
    counts = ([_styled(state, STATUS_STYLES), count] for state, count in now.orders.items())
    out.print(_table("orders by status", ["order_status", _num("orders")], counts))
    out.print(_stock_table(now.products[:limit]))
    _shown(limit, len(now.products), "products", ": --limit N, --product PREFIX")
    answers = now.answers
    columns = [_num("accepted"), _num("rejected"), _num("duplicate (replayed)")]
    title = f"API answers, last {answers.window_seconds // 60} min"
    out.print(_table(title, columns, [[answers.accepted, answers.rejected, answers.duplicate]]))


# --- orders: send, watch, trace ---------------------------------------------------------------------------------


def _watch(sandbox: Sandbox, order_id: str, timeout: float) -> None:
    """Follow the order to its final status; print its items and its history."""
    hint = "(queues, DLQs) and `sandbox logs processor`"
    order = _follow(sandbox, "orders", order_id, lambda o: str(o.get("order_status")), FINAL_STATUSES, timeout, hint)
    fields = ("product_id", "quantity", "unit_price")
    items = [[*(i.get(f, "") for f in fields), _styled(i.get("item_status", ""), ITEM_STYLES)] for i in order["items"]]
    columns = [_whole("product_id"), _num("quantity"), _num("unit_price"), _whole("item_status")]
    out.print(_table(f"order {order.get('order_id')}", columns, items))
    history = [
        [_styled(e.get("status", ""), STATUS_STYLES), e.get("at", ""), mask_text(str(e.get("reason", "")))]
        for e in order.get("status_history") or []
    ]
    if history:
        out.print(_table("status history", [_whole("status"), _whole("at"), "reason"], history))


def _check_locally(body: bytes) -> None:
    strict = os.environ.get("STRICT_DOCUMENTS", "false").lower() == "true"
    try:
        errors = OrderValidator(strict_documents=strict).errors(parse_order_body(body))
    except OrderRejected as exc:
        errors = list(exc.errors)
    if not errors:
        out.print("valid: the API would accept it (unless its order_id was already received)", style="green")
        return
    out.print(_table("Pedido inválido.", [_whole("field"), "message"], ([e.field, e.message] for e in errors)))
    raise typer.Exit(1)


@app.command()
def send(
    file: Annotated[Path, _file("an order JSON file")],
    watch: Annotated[bool, _opt("then follow the order to its final status", "--watch")] = False,
    timeout: Annotated[float, _opt("seconds --watch waits for a final status", min=0)] = 60,
    dry_run: Annotated[bool, _opt("only validate, with the validator the API runs; send nothing", "--dry-run")] = False,
) -> None:
    """POST an order file to /orders; exit 1 on a 4xx/5xx answer."""
    body = file.read_bytes()
    if dry_run:
        _check_locally(body)
        return
    sandbox = connect()
    order_id = _post(sandbox, "orders", body, "order_id" if watch else None)
    if order_id is not None:
        _watch(sandbox, order_id, timeout)


@app.command()
def watch(
    order_id: Annotated[str, typer.Argument(metavar="ORDER_ID", help="the order to follow")],
    timeout: Annotated[float, _opt("seconds to wait for a final status", min=0)] = 60,
) -> None:
    """Follow GET /orders/{ORDER_ID} until Novo Pedido or Produto Pendente; print the items and the history."""
    _watch(connect(), order_id, timeout)


@app.command()
def trace(order_id: Annotated[str, typer.Argument(metavar="ORDER_ID", help="the order to trace")]) -> None:
    """The order's hops across the functions (their log lines naming it, its status_history), with the time between."""
    found = views.trace(connect(), order_id)
    if found is None:
        fail(f"order {order_id} {NOT_FOUND}")
    rows = (
        [
            hop.at.isoformat(timespec="milliseconds"),
            "" if hop.seconds is None else f"+{hop.seconds:.3f}s",
            Text(hop.where, style="magenta"),
            _styled(hop.what, STATUS_STYLES),
            hop.detail,
        ]
        for hop in found.hops
    )
    title = f"trace of {order_id} ({found.order_status}), from {found.source}"
    out.print(_table(title, [_whole("at"), _num("after"), _whole("where"), "what", "detail"], rows))


# --- stock: restock -------------------------------------------------------------------------------------------


@app.command("restock")
def restock_command(
    product_id: Annotated[str, typer.Argument(metavar="PRODUCT", help="the product's id, e.g. PRD-1001")],
    quantity: Annotated[int, typer.Argument(metavar="N", help="units arriving (the API checks 1 to 1,000,000)")],
    key: Annotated[
        str | None, _opt("Idempotency-Key: the same key again answers with the first restock, applied once")
    ] = None,
    wait: Annotated[bool, _opt("wait until the release has run, then print the stock", "--wait/--no-wait")] = True,
    timeout: Annotated[float, _opt("seconds to wait for the release", min=0)] = 60,
) -> None:
    """POST a restock of N units of PRODUCT; wait for its release; print the stock and the orders it released."""
    sandbox = connect()
    path, body = f"products/{quote(product_id, safe='')}/restock", RestockBody(quantity=quantity).model_dump_json()
    headers = None if key is None else {"Idempotency-Key": key}
    restock_id = _post(sandbox, path, body, "restock_id" if wait else None, headers)
    if restock_id is None:
        return
    hint = "(restocks queue, DLQ) and `sandbox logs restocker`"
    answer = _follow(
        sandbox, "restocks", restock_id, lambda a: Restock.model_validate(a).state, ["released"], timeout, hint
    )
    restock = Restock.model_validate(answer)
    out.print(_stock_table([Product.model_validate(_get(sandbox, "products", product_id))]))
    # The first page of the released orders is enough to show; released_count is how many there are in all.
    released = restock.released_orders
    total = restock.released_count if restock.released_count is not None else len(released)
    if not released:
        _note("released orders: none (nobody waiting, or the oldest waiting item needs more)")
        return
    # Their status now: one may still wait for another product.
    now = state.orders(sandbox.session.client("dynamodb"), sandbox.outputs.OrdersTable, released[:RELEASED_SHOWN])
    statuses = {order["order_id"]["S"]: order["order_status"]["S"] for order in now}
    rows = ([order_id, _styled(statuses.get(order_id, "?"), STATUS_STYLES)] for order_id in released[:RELEASED_SHOWN])
    out.print(_table(f"released orders ({total})", [_whole("order_id"), "order_status"], rows))
    _shown(RELEASED_SHOWN, total, "released orders", "")
    _note(f"follow one: sandbox watch {released[0]}")


# --- data lake: upload ------------------------------------------------------------------------------------------


def _etag(s3: Any, bucket: str, key: str) -> str | None:
    try:
        return str(s3.head_object(Bucket=bucket, Key=key)["ETag"])
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise


def _print_report(report: dict[str, Any], limit: int, api: str) -> None:
    """Counts and rejections of an order file or a restock file (`kind`), whose entries are named differently."""
    restocks = report.get("kind") == "restocks"
    name = "product_id" if restocks else "order_id"
    rejected, file_error = report.get("rejected"), report.get("file_error")
    counts = [
        report.get("received"),
        Text(str(report.get("accepted")), style="green"),
        Text(str(rejected), style="red" if rejected else ""),
        Text(str(file_error or "-"), style="red" if file_error else ""),
    ]
    columns = [_num("received"), _num("accepted"), _num("rejected"), "file_error"]
    out.print(_table(f"report of {report.get('key')}", columns, [counts]))
    rejections = report.get("rejections") or []
    if rejections:
        rows = (
            [
                r.get("index"),
                "-" if r.get(name) is None else r.get(name),
                "\n".join(f"{e.get('field')}: {e.get('message')}" for e in r.get("errors", [])),
            ]
            for r in rejections[:limit]
        )
        out.print(_table("rejections", [_num("index"), _whole(name), "errors"], rows))
        _shown(limit, len(rejections), "rejections")
    accepted = report.get("accepted_restock_ids" if restocks else "accepted_order_ids") or []
    if accepted and not restocks:
        _note(f"follow one: sandbox watch {accepted[0]}")
    elif accepted:
        out.print(_table("accepted restocks", [_whole("restock_id")], ([r] for r in accepted[:limit])))
        _shown(limit, len(accepted), "restocks")
        _note(f"see one: curl -s {api}/restocks/{quote(str(accepted[0]), safe='')}")


def _object_key(file: Path, key: str | None, restock: bool) -> str:
    object_key = lake_key(key or file.name, restock)
    if not is_read(object_key):  # it would only get a report saying it was ignored
        fail(
            f"{object_key}: only {' and '.join(READ_SUFFIXES)} files (any case) under {lake_key('', restock)} are "
            "read; rename the file or pass --key NAME" + READ_SUFFIXES[0],
            code=2,
        )
    return object_key


@app.command()
def upload(
    file: Annotated[Path, _file(".json or .jsonl (any case)")],
    key: Annotated[
        str | None, _opt("object key (put under incoming/, or restock/, if it is not); default: the file name")
    ] = None,
    restock: Annotated[
        bool, _opt('a restock file ([{"product_id", "quantity"}]): put it under restock/', "--restock")
    ] = False,
    strict: Annotated[bool, _opt("exit 1 when the report has rejections or a file_error", "--strict")] = False,
    timeout: Annotated[float, _opt("seconds to wait for the report", min=0)] = 300,
    limit: Annotated[int, _opt("show at most this many rejections (and accepted restocks)", min=0)] = 50,
) -> None:
    """Put a file in the data lake under incoming/ (restock/ with --restock), wait for its report, print it."""
    object_key = _object_key(file, key, restock)
    sandbox = connect()
    bucket = sandbox.outputs.DataLakeBucket
    before = _etag(sandbox.s3, bucket, object_key)
    size = file.stat().st_size
    with _progress(BarColumn(), DownloadColumn(), total=size, threshold=BIG_FILE).open(
        file, "rb", description=f"uploading {object_key}"
    ) as body:
        etag, report_at = views.upload(sandbox, object_key, body)
    out.print(f"uploaded s3://{bucket}/{object_key} ({size} bytes); its report: {report_at}")
    if before == etag:
        message = "the same content was already under this key: a file is handled once, so this is its earlier report"
        out.print(f"{message} (use --key NEW_NAME to resubmit)", style="yellow")
    # The report's name is the file's own: no earlier file's report is there.
    with out.status(f"waiting for s3://{bucket}/{report_at}"):
        report = views.wait_for_report(sandbox, report_at, timeout)
    if report is None:
        fail(
            f"no report at {report_at} after {timeout:.0f} s: check `sandbox status` (files queue, DLQ) "
            "and `sandbox logs file-validator`"
        )
    _print_report(report, limit, sandbox.api)
    if strict and (report.get("rejected") or report.get("file_error")):
        fail(f"--strict: the file had rejected {report.get('kind') or 'orders'} or a file error")


# --- notifications, logs: read once, or follow until Ctrl-C -----------------------------------------------------


def _until_interrupted(what: str, step: Callable[[], object], pause: float = 0) -> None:
    err.print(f"following {what}(Ctrl-C to stop)", style="dim")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(pause)
            step()


def _print_notifications(envelopes: list[dict[str, Any]]) -> None:
    for notice in map(notice_of, envelopes):
        header = Text("--- ").append(notice["at"], style="dim").append(f"  {notice['topic']}  ", style="cyan")
        out.print(header.append(notice["subject"], style="bold"))
        if isinstance(notice["message"], str):
            out.print(notice["message"])
        else:
            out.print_json(data=notice["message"], ensure_ascii=False)


@app.command("notifications")
def notifications_command(
    follow: Annotated[bool, _opt("keep printing new messages until Ctrl-C", "--follow", "-f")] = False,
    wait: Annotated[int, _opt("without --follow: seconds to wait for a first one", min=0, max=20)] = 0,
) -> None:
    """Print what reached both SNS topics since the last call (CPF and e-mail masked), then forget it."""
    sandbox = connect()
    url = inbox.ensure_inbox(sandbox.session, sandbox.outputs.as_dict())
    if follow:
        _until_interrupted(
            "the notifications inbox ", lambda: _print_notifications(inbox.drain(sandbox.session, url, 20))
        )
        return
    envelopes = inbox.drain(sandbox.session, url, wait_seconds=wait)
    if not envelopes:
        out.print("no new notifications")
    _print_notifications(envelopes)


def _log_line(message: str, prefix: str | None) -> Text | None:
    line = message.rstrip()
    if line.startswith(LAMBDA_LINES):
        return None
    text = Text(f"{prefix:<15}", style="magenta") if prefix else Text()
    record = structured(line)
    if record is None:
        return text.append(mask_text(line))
    level = str(record.pop("level", ""))
    text.append(str(record.pop("time", "")), style="dim")
    text.append(f" {level:<7} ", style=LEVEL_STYLES.get(level, "bold"))
    text.append(str(record.pop("message", "")), style="bold")
    for name, value in record.items():
        text.append(f" {name}", style="cyan").append("=")
        text.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), style="yellow")
    return text


def _since(value: str) -> int:
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise typer.BadParameter("a duration such as 30s, 10m, 2h or 1d")
    return since_ms(int(match[1]) * _SECONDS[match[2]])


def _print_events(cursors: list[LogCursor], grep: str | None) -> None:
    events = [(event, cursor.name) for cursor in cursors for event in cursor.fetch()]
    for event, name in sorted(events, key=lambda pair: pair[0]["timestamp"]):
        if grep and grep not in event["message"]:
            continue
        if line := _log_line(event["message"], name if len(cursors) > 1 else None):
            out.print(line, soft_wrap=True)


@app.command("logs")
def logs_command(
    function: Annotated[Function | None, typer.Argument(metavar="FUNCTION", help="all of them when left out")] = None,
    follow: Annotated[bool, _opt("keep printing new lines until Ctrl-C", "--follow", "-f")] = False,
    since: Annotated[
        int | None, _opt("only lines newer than this: 30s, 10m, 2h, 1d", parser=_since, metavar="DURATION")
    ] = None,
    grep: Annotated[str | None, _opt("only lines containing this text (e.g. an order_id)")] = None,
) -> None:
    """The functions' structured logs, one line per entry: time, level, message, then the fields."""
    sandbox = connect()
    names = [function.value] if function else list(FUNCTIONS)
    # A quoted term is CloudWatch's plain substring filter; the text is checked here too, whatever the backend.
    pattern = quoted(grep) if grep else None
    cursors = [LogCursor(sandbox.logs, name, sandbox.log_group(name), pattern, since) for name in names]
    _print_events(cursors, grep)
    if follow:
        _until_interrupted("", lambda: _print_events(cursors, grep), pause=1)


# --- data: seed, reset ------------------------------------------------------------------------------------------


@app.command("seed")
def seed_command(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", envvar="SEED_FILE", help='[{"product_id", "description", "available"}]')
    ] = DEFAULT_FILE,
    only_missing: Annotated[bool, _opt("leave products that exist untouched", "--only-missing")] = False,
) -> None:
    """Set product stock from a file: `available` becomes the file's value, `reserved` is kept."""
    products = _products(file)
    _seed(connect(), file, products, only_missing)


@app.command()
def reset(
    yes: Annotated[bool, _opt("do not ask for confirmation", "--yes", "-y")] = False,
    no_seed: Annotated[bool, _opt("leave the table empty", "--no-seed")] = False,
    seed_file: Annotated[Path, _opt("products to seed after", envvar="SEED_FILE")] = DEFAULT_FILE,
) -> None:
    """Delete every order, pending item, product, restock and file marker; keep the stack; then seed again."""
    sandbox = connect()
    products = [] if no_seed else _products(seed_file)
    table = sandbox.outputs.OrdersTable
    question = f"Delete every item of {table} at {emulator.endpoint()} (orders, stock, restocks, file markers)?"
    try:
        confirmed = yes or typer.confirm(question)
    except typer.Abort:
        confirmed = False
    if not confirmed:
        fail("reset cancelled: nothing deleted")
    items, deleted = sandbox.session.resource("dynamodb").Table(table), 0
    for _ in range(3):  # again if orders were written meanwhile
        with out.status(f"scanning {table}"):
            keys = [key for page in sandbox.pages("scan", ProjectionExpression="PK, SK") for key in page["Items"]]
        if not keys:
            break
        # boto3's batch writer sends the deletes 25 at a time, and again whatever DynamoDB left unprocessed.
        with _progress(total=len(keys)) as progress, items.batch_writer() as batch:
            for key in progress.track(keys, description=f"deleting from {table}"):
                batch.delete_item(Key=key)
        deleted += len(keys)
    out.print(f"reset: {deleted} items deleted from {table}")
    if products:
        _seed(sandbox, seed_file, products, only_missing=False)


@app.command()
def ui(port: Annotated[int, _opt("the local port to serve on", min=1, max=65535)] = 8765) -> None:
    """Serve the console: the live architecture, orders and their traces, files, actions (127.0.0.1 only)."""
    from sandbox import console  # the web stack loads only for this command

    sandbox = connect()
    out.print(f"console: http://localhost:{port}  (Ctrl-C to stop)")
    console.serve(sandbox, port)


def main() -> None:
    # Orders may carry lone surrogates (legal JSON escapes, not UTF-8): print them escaped, never crash.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    app()
