"""Benchmark the running sandbox against minimal reference pipelines ("floors") on the same emulator.

`make bench` (N=2000 C=16 FILE_N=10000). One run measures:
  1. the API path: N orders posted by C concurrent clients; accept throughput and latency, and the time
     until each order is final (polled in DynamoDB, cross-checked with the record's processed_at);
  2. the data-lake path: one file of FILE_N orders; time from upload to every order final, by stage;
  3. the floors: a minimal API -> Lambda -> DynamoDB + FIFO -> Lambda -> TransactWriteItems pipeline that
     the bench creates with boto3 and deletes again, under the same load; and the floor consumer's rate
     over a pre-filled queue of FILE_N orders;
  4. in process: the order validator against json.loads on the same payloads.
It prints tables and writes bench/results/<time>-<run>.json and bench/results/latest.json.
It is a measurement, not a test: it fails only when it cannot measure (an order never final, a floor
not created). docs/PERFORMANCE.md explains every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import requests
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orders.report import report_key
from orders.validation import OrderValidator, parse_json
from sandbox.aws import OUTPUTS, ROOT, default_environment
from sandbox.deploy.core import api_base_url, build_zip
from sandbox.deploy.core import wait as wait_for
from sandbox.load import lab_example, order_with, to_wire
from sandbox.poll import TimedOut, wait_until
from sandbox.records import BenchOptions, BenchResult, InProcess, Machine, MakeUp, Ratio, StackOutputs
from sandbox.seed import seed
from sandbox.state import orders as read_orders
from sandbox.state import queue_depth

RESULTS = ROOT / "bench" / "results"
FLOOR_CODE = Path(__file__).with_name("bench_floors")
FINAL = frozenset({"Novo Pedido", "Produto Pendente"})
FLOOR_FINAL = frozenset({"Novo Pedido"})
FLOOR_ROLE = "arn:aws:iam::000000000000:role/bench-floor"  # any ARN string works on the emulator
POLL_INTERVAL = 0.1
RETRYABLE_HTTP = {429, 502, 503, 504}
UFS = "AC AL AP AM BA CE DF ES GO MA MT MS MG PA PB PR PE PI RJ RN RS RO RR SC SP SE TO".split()
TARGETS = {
    "api_e2e_throughput": (">=", 0.80, "API end-to-end throughput, pipeline / floor"),
    "api_accept_p99": ("<=", 1.25, "API accept p99 latency, pipeline / floor"),
    "datalake_vs_processing_floor": (">=", 0.70, "data-lake orders/s / processing floor orders/s"),
    "validator_vs_json_loads": (">=", 0.50, "validate orders/s / json.loads orders/s"),
    "parse_validate_vs_json_loads": (None, None, "parse_json + validate orders/s / json.loads orders/s"),
}


class BenchError(Exception):
    """The bench could not measure something (an order never final, a floor not created)."""


@dataclass(frozen=True)
class Options:
    n: int
    clients: int
    file_n: int
    skip_floors: bool
    skip_datalake: bool
    quick: bool
    timeout: float
    in_process_n: int
    results_dir: Path


# ------------------------------------------------------------------------------------------ orders
@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int
    unit_price: Decimal


def draw_lines(rng: random.Random, products: list[str], max_lines: int) -> list[Line]:
    prices = [Decimal(p) for p in ("0.99", "12.50", "99.90", "150.00", "2500.00", "37.45")]
    chosen = rng.sample(products, rng.randint(1, min(max_lines, len(products))))
    return [Line(p, rng.randint(1, 3), rng.choice(prices)) for p in chosen]


def make_order(template: dict[str, Any], order_id: str, lines: list[Line], rng: random.Random) -> dict[str, Any]:
    """A valid order shaped like the lab's example, with varied optional fields, formats and amounts."""
    order = order_with(order_id, [(line.product_id, line.quantity, line.unit_price) for line in lines], template)
    order["order_date"] = rng.choice(["2024-03-05", "2024-03-05T10:30:00Z", "2024-03-05T10:30:00.250-03:00"])
    customer, shipping = order["customer"], order["shipping"]
    customer["first_name"] = rng.choice(["Mariana", "João", "Ana Luísa", "Pedro", "Zoë"])
    customer["cpf"] = rng.choice(["123.456.789-00", "12345678900"])
    customer["email"] = f"cliente.{rng.randint(1, 99999)}@example.com"
    order["company"]["cnpj"] = rng.choice(["12.345.678/0001-99", "12345678000199"])
    for address in (customer["address"], shipping["address"]):
        address["state"] = rng.choice(UFS)
        address["zip_code"] = rng.choice(["22640-102", "01310100"])
        if rng.random() < 0.3:
            address.pop("complement", None)
            address.pop("neighborhood", None)
    for optional in (("notes",), ("customer", "phone"), ("payment", "transaction_id")):
        if rng.random() < 0.3:
            holder = order
            for key in optional[:-1]:
                holder = holder[key]
            holder.pop(optional[-1], None)
    total = order["payment"]["amount"]
    shipping["cost"] = rng.choice([Decimal("0.00"), Decimal("50.00"), Decimal("19.90")])
    order["payment"]["amount"] = total + shipping["cost"] if rng.random() < 0.5 else total
    return order


# ------------------------------------------------------------------------------------------ numbers
def percentile(values: list[float], p: int) -> float:
    """The p-th percentile (1 to 99), interpolated between closest ranks: statistics' 'inclusive' method."""
    if len(values) < 2:  # statistics.quantiles needs two points before Python 3.13
        return float(values[0]) if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def distribution(values: list[float], scale: float = 1.0, digits: int = 3) -> dict[str, float | int]:
    scaled = [v * scale for v in values]
    return {
        "count": len(scaled),
        "p50": round(percentile(scaled, 50), digits),
        "p95": round(percentile(scaled, 95), digits),
        "p99": round(percentile(scaled, 99), digits),
        "max": round(max(scaled, default=0.0), digits),
        "mean": round(sum(scaled) / len(scaled), digits) if scaled else 0.0,
    }


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else 0.0


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


# ------------------------------------------------------------------------------------------ HTTP load
@dataclass
class Posted:
    """One order's POST: the first attempt's start (wall and monotonic) and the accepted attempt."""

    order_id: str
    first_wall: float
    first_mono: float
    start_mono: float = 0.0
    end_mono: float = 0.0
    attempts: int = 0
    retried_statuses: list[int] = field(default_factory=list)


def post_orders(
    url: str,
    bodies: list[tuple[str, str]],
    clients: int,
    deadline: float,
    on_accept: Callable[[Posted], None],
    advance: Callable[[], None],
) -> list[Posted]:
    """POST every body with `clients` threads; retry 429/5xx with back-off (a throttled order is not taken)."""
    local = threading.local()
    stop = threading.Event()

    def post(order_id: str, body: str) -> Posted:
        if not hasattr(local, "http"):
            local.http = requests.Session()
        posted = Posted(order_id, time.time(), time.monotonic())
        delay = 0.05
        while True:
            if stop.is_set():
                raise BenchError("stopped")
            if time.monotonic() > deadline:
                raise BenchError(f"order {order_id} not accepted before the deadline; last: {posted.retried_statuses}")
            posted.attempts += 1
            posted.start_mono = time.monotonic()
            try:
                response = local.http.post(
                    url, data=body.encode(), headers={"Content-Type": "application/json"}, timeout=30
                )
            except requests.RequestException as exc:
                posted.retried_statuses.append(0)
                if posted.attempts > 5:
                    raise BenchError(f"POST {order_id}: {exc!r}") from exc
            else:
                posted.end_mono = time.monotonic()
                status = response.status_code
                # 409 after a failed attempt: that attempt reached the function and took the order.
                if status == 202 or (status == 409 and posted.retried_statuses):
                    on_accept(posted)
                    advance()
                    return posted
                if status not in RETRYABLE_HTTP:
                    raise BenchError(f"POST {order_id}: HTTP {status} {response.text[:300]}")
                posted.retried_statuses.append(status)
            stop.wait(delay * (0.5 + random.random()))  # noqa: S311 (jitter, not a secret)
            delay = min(delay * 2, 1.0)

    pool = ThreadPoolExecutor(max_workers=clients, thread_name_prefix="bench-post")
    futures = [pool.submit(post, order_id, body) for order_id, body in bodies]
    results: list[Posted] = []
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                results.append(future.result())  # re-raises a worker's BenchError
    except BaseException:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


# ------------------------------------------------------------------------------------------ final states
class FinalWatcher(threading.Thread):
    """Polls order records (BatchGetItem, ~every 100 ms) and timestamps when each is first seen final.

    `window` bounds the keys read per round to the oldest pending ones (a file's orders are processed
    roughly in order), so watching 10,000 orders does not flood the emulator with reads.
    """

    def __init__(self, db: Any, table: str, final: frozenset[str], window: int | None = None) -> None:
        super().__init__(daemon=True, name="bench-watcher")
        self._db = db
        self._table = table
        self._final = final
        self._window = window
        self._lock = threading.Lock()
        self._pending: dict[str, None] = {}  # insertion-ordered
        self._halt = threading.Event()
        self.seen: dict[str, tuple[float, str, str | None]] = {}  # id -> (monotonic, status, processed_at)
        self.error: BaseException | None = None
        self.rounds = 0

    def add(self, order_ids: Iterable[str]) -> None:
        with self._lock:
            for order_id in order_ids:
                self._pending[order_id] = None

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                started = time.monotonic()
                with self._lock:
                    ids = list(self._pending)
                if self._window is not None:
                    ids = ids[: self._window]
                self._read(ids)
                self.rounds += 1
                self._halt.wait(max(0.0, POLL_INTERVAL - (time.monotonic() - started)))
        except BaseException as exc:  # reported by wait_final in the main thread
            self.error = exc

    def _read(self, ids: list[str]) -> None:
        names = {"#i": "order_id", "#s": "order_status", "#p": "processed_at"}
        items = read_orders(
            self._db, self._table, ids, ProjectionExpression="#i, #s, #p", ExpressionAttributeNames=names
        )
        now = time.monotonic()
        with self._lock:
            for item in items:
                status = item.get("order_status", {}).get("S")
                order_id = item["order_id"]["S"]
                if status in self._final and order_id not in self.seen:
                    self.seen[order_id] = (now, status, item.get("processed_at", {}).get("S"))
                    self._pending.pop(order_id, None)

    def wait_final(self, expected: int, deadline: float, advance: Callable[[int], None], what: str) -> None:
        shown = 0

        def all_final() -> bool:
            nonlocal shown
            if self.error is not None:
                raise BenchError(f"{what}: reading the table failed: {self.error!r}") from self.error
            count = len(self.seen)
            if count > shown:
                advance(count - shown)
                shown = count
            return count >= expected

        try:
            wait_until(all_final, timeout=deadline - time.monotonic(), interval=0.05, what=what)
        except TimedOut:
            with self._lock:
                missing = list(self._pending)[:5]
            raise BenchError(
                f"{what}: only {len(self.seen)} of {expected} orders final before the deadline; "
                f"still waiting for e.g. {missing}; is the consumer's event-source mapping enabled?"
            ) from None


# ------------------------------------------------------------------------------------------ runs
@dataclass(frozen=True)
class Upload:
    """One data-lake file: when it was uploaded and its report first seen (monotonic), and its watcher."""

    orders: int
    file_bytes: int
    started: float
    uploaded: float
    report_seen: float
    report_modified: str | None
    report: dict[str, Any]
    watcher: FinalWatcher


class Bench:
    def __init__(self, options: Options, session: boto3.session.Session, progress: Progress) -> None:
        self.options = options
        self.session = session
        self.progress = progress
        self.run_id = uuid.uuid4().hex[:8].upper()
        self.template = lab_example()
        self.products = [f"BENCH-{self.run_id}-P{k}" for k in range(10)]
        self.notes: list[str] = []

    def deadline(self) -> float:
        return time.monotonic() + self.options.timeout

    def say(self, text: str) -> None:
        self.progress.console.print(text)

    def orders(self, tag: str, count: int, shapes_of: str) -> list[tuple[str, str, list[Line]]]:
        """(order_id, wire body, lines): fresh ids; the same `shapes_of` gives a floor the pipeline's orders."""
        shapes = random.Random(f"{shapes_of}-{count}")  # noqa: S311 (reproducible shapes, not secrets)
        result = []
        for k in range(count):
            lines = draw_lines(shapes, self.products, 3)
            order_id = f"BENCH-{self.run_id}-{tag}-{k:06d}"
            result.append((order_id, to_wire(make_order(self.template, order_id, lines, shapes)), lines))
        return result

    def seed_products(self, table: str) -> None:
        stock = [{"product_id": p, "description": "bench", "available": 1_000_000_000} for p in self.products]
        seed(self.session, table, stock)

    def post_until_final(
        self, label: str, url: str, table: str, final: frozenset[str], bodies: list[tuple[str, str]]
    ) -> tuple[list[Posted], FinalWatcher]:
        """POST the bodies with C clients while a watcher timestamps each accepted order's final state."""
        watcher = FinalWatcher(self.session.client("dynamodb"), table, final)
        posting = self.progress.add_task(f"{label}: POST /orders", total=len(bodies))
        finals = self.progress.add_task(f"{label}: final", total=len(bodies))
        watcher.start()
        try:
            posted = post_orders(
                url,
                bodies,
                self.options.clients,
                self.deadline(),
                on_accept=lambda p: watcher.add([p.order_id]),
                advance=lambda: self.progress.advance(posting),
            )
            watcher.wait_final(len(bodies), self.deadline(), lambda k: self.progress.advance(finals, k), label)
        finally:
            watcher.stop()
        return posted, watcher

    def api_load(self, label: str, url: str, table: str, final: frozenset[str], tag: str) -> dict[str, Any]:
        """N orders by C clients to `url`; accept figures per POST, end-to-end figures per order.

        A warm-up of 2 x C orders first starts C execution environments of each function, so neither the
        pipeline nor the floor pays its cold starts inside the measurement.
        """
        options = self.options
        warmup = [(order_id, body) for order_id, body, _ in self.orders(f"{tag}W", 2 * options.clients, "warm")]
        self.post_until_final(f"{label} warm-up", url, table, final, warmup)
        bodies = [(order_id, body) for order_id, body, _ in self.orders(tag, options.n, "api")]
        posted, watcher = self.post_until_final(label, url, table, final, bodies)
        first = min(p.first_mono for p in posted)
        last_accept = max(p.end_mono for p in posted)
        last_final = max(seen[0] for seen in watcher.seen.values())
        by_id = {p.order_id: p for p in posted}
        processed = [
            (epoch(at) - by_id[i].first_wall, epoch(at)) for i, (_, _, at) in watcher.seen.items() if at is not None
        ]
        retries = [s for p in posted for s in p.retried_statuses]
        statuses: dict[str, int] = {}
        for _, status, _ in watcher.seen.values():
            statuses[status] = statuses.get(status, 0) + 1
        return {
            "orders": options.n,
            "clients": options.clients,
            "warmup_orders": len(warmup),
            "accept": {
                "window_seconds": round(last_accept - first, 3),
                "throughput": rate(len(posted), last_accept - first),
                "latency_ms": distribution([p.end_mono - p.start_mono for p in posted], 1000, 1),
                "latency_with_retries_ms": distribution([p.end_mono - p.first_mono for p in posted], 1000, 1),
                "retried_requests": {str(s): retries.count(s) for s in sorted(set(retries))},
            },
            "e2e": {
                "seconds": round(last_final - first, 3),
                "throughput": rate(options.n, last_final - first),
                "latency_s": distribution([seen[0] - by_id[i].first_mono for i, seen in watcher.seen.items()]),
                "latency_processed_at_s": distribution([latency for latency, _ in processed]),
                "throughput_processed_at": rate(
                    len(processed), max((at for _, at in processed), default=0) - min(p.first_wall for p in posted)
                ),
                "final_statuses": statuses,
                "poll_rounds": watcher.rounds,
            },
        }

    # -------------------------------------------------------------------- 1. API path
    def api_path(self, outputs: dict[str, str]) -> dict[str, Any]:
        self.seed_products(outputs["OrdersTable"])
        result = self.api_load("pipeline API", f"{outputs['ApiBaseUrl']}/orders", outputs["OrdersTable"], FINAL, "API")
        result["stage_throttling"] = self.stage_throttling(outputs)
        if result["e2e"]["final_statuses"].get("Produto Pendente"):
            self.notes.append("some pipeline orders ended Produto Pendente: the bench's stock was not ample")
        if result["accept"]["retried_requests"].get("429"):
            self.notes.append(
                f"the pipeline's API stage throttled {result['accept']['retried_requests']['429']} requests (429, "
                f"retried): its limits {result['stage_throttling']} cap the API figures; the floor has none"
            )
        return result

    def stage_throttling(self, outputs: dict[str, str]) -> dict[str, Any] | None:
        try:
            stage = self.session.client("apigateway").get_stage(
                restApiId=outputs["ApiId"], stageName=outputs["ApiStage"]
            )
        except (BotoCoreError, ClientError, KeyError):
            return None
        settings = stage.get("methodSettings", {}).get("*/*", {})
        burst, limit = settings.get("throttlingBurstLimit"), settings.get("throttlingRateLimit")
        return None if burst is None and limit is None else {"burst_limit": burst, "rate_limit": limit}

    # -------------------------------------------------------------------- 2. data-lake path
    def datalake_path(self, outputs: dict[str, str]) -> dict[str, Any]:
        """One file of FILE_N orders, after a 2-order warm-up file that starts the file validator's worker."""
        self.seed_products(outputs["OrdersTable"])
        self.upload_until_final(outputs, "FILEW", self.orders("FILEW", 2, "warm"), "data lake warm-up")
        orders = self.orders("FILE", self.options.file_n, "file")
        return self._datalake_figures(self.upload_until_final(outputs, "FILE", orders, "data lake"))

    def upload_until_final(
        self, outputs: dict[str, str], tag: str, orders: list[tuple[str, str, list[Line]]], label: str
    ) -> Upload:
        s3, bucket = self.session.client("s3"), outputs["DataLakeBucket"]
        body = ("[" + ",\n".join(text for _, text, _ in orders) + "]").encode("utf-8")
        key = f"incoming/bench/{self.run_id}-{tag}.json"
        watcher = FinalWatcher(self.session.client("dynamodb"), outputs["OrdersTable"], FINAL, window=200)
        watcher.add(order_id for order_id, _, _ in orders)
        task = self.progress.add_task(f"{label}: final", total=len(orders))
        upload_started = time.monotonic()
        etag = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")["ETag"]
        uploaded = time.monotonic()
        report_at = report_key(key, etag)
        watcher.start()
        try:
            report_seen, report_modified = self._wait_report(s3, bucket, report_at)
            report: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=report_at)["Body"].read())
            if report.get("accepted") != len(orders):
                raise BenchError(
                    f"the report of {key} accepted {report.get('accepted')} of {len(orders)}: "
                    f"{report.get('file_error') or report.get('rejections', [])[:2]}"
                )
            watcher.wait_final(len(orders), self.deadline(), lambda k: self.progress.advance(task, k), label)
        finally:
            watcher.stop()
        return Upload(len(orders), len(body), upload_started, uploaded, report_seen, report_modified, report, watcher)

    def _datalake_figures(self, upload: Upload) -> dict[str, Any]:
        watcher, report, report_seen, uploaded_mono = upload.watcher, upload.report, upload.report_seen, upload.uploaded
        # processed_at is wall-clock time: map the monotonic upload instant onto it.
        uploaded_wall = time.time() - (time.monotonic() - uploaded_mono)
        last_final = max(seen[0] for seen in watcher.seen.values())
        processed_at = [epoch(at) for _, _, at in watcher.seen.values() if at is not None]
        until_report = report_seen - uploaded_mono
        stages: dict[str, Any] = {
            "read_and_validate_plus_enqueue_seconds": round(until_report, 3),
            "processing_after_report_seconds": round(last_final - report_seen, 3),
            "report_last_modified": upload.report_modified,
        }
        timings = report.get("timings")
        if isinstance(timings, dict):
            parts = {k: float(v) for k, v in timings.items() if isinstance(v, int | float)}
            stages["validator_timings"] = parts
            stages["read_and_validate_seconds"] = round(
                parts.get("read_seconds", 0.0) + parts.get("validate_seconds", 0.0), 3
            )
            stages["enqueue_seconds"] = round(parts.get("claim_seconds", 0.0) + parts.get("enqueue_seconds", 0.0), 3)
            stages["outside_validator_seconds"] = round(until_report - sum(parts.values()), 3)
        else:
            stages["validator_timings"] = None
            self.notes.append(
                "the file report has no `timings`: stages (a) read+validate and (b) enqueue are reported together"
            )
        return {
            "orders": upload.orders,
            "file_bytes": upload.file_bytes,
            "key": report["key"],
            "upload_seconds": round(uploaded_mono - upload.started, 3),
            "seconds": round(last_final - uploaded_mono, 3),
            "rate": rate(upload.orders, last_final - uploaded_mono),
            "seconds_processed_at": round(max(processed_at, default=uploaded_wall) - uploaded_wall, 3),
            "stages": stages,
        }

    def _wait_report(self, s3: Any, bucket: str, key: str) -> tuple[float, str | None]:
        """When the report was first seen (monotonic), and its LastModified (S3 keeps whole seconds only)."""

        def head() -> dict[str, Any] | None:
            try:
                found: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
                    raise
                return None
            return found

        try:
            modified = wait_until(head, timeout=self.options.timeout, interval=POLL_INTERVAL, what=key).get(
                "LastModified"
            )
        except TimedOut:
            raise BenchError(f"no file report at s3://{bucket}/{key} before the deadline") from None
        return time.monotonic(), modified.isoformat() if modified else None


# ------------------------------------------------------------------------------------------ floors
class Floors:
    """The reference pipeline, created with boto3 for this run and always deleted (see docs/PERFORMANCE.md)."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.session = bench.session
        self.name = f"bench-floor-{bench.run_id.lower()}"
        self.table = self.name
        self.queue_url: str | None = None
        self.functions: list[str] = []
        self.mapping: str | None = None
        self.api_id: str | None = None
        self.url = ""
        self.setup_seconds = 0.0

    def __enter__(self) -> Floors:
        started = time.monotonic()
        try:
            self._create()
        except BaseException:
            self.delete()
            raise
        self.setup_seconds = time.monotonic() - started
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()

    def _create(self) -> None:
        db, sqs, lam = (self.session.client(s) for s in ("dynamodb", "sqs", "lambda"))
        agw = self.session.client("apigateway")
        db.create_table(
            TableName=self.table,
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        self._ready(db, "table_exists", "table", TableName=self.table)
        self.queue_url = sqs.create_queue(
            QueueName=f"{self.name}.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "60"}
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        code = build_zip(FLOOR_CODE)
        arns = {}
        for role, handler in (("api", "api_floor.handler"), ("processor", "processor_floor.handler")):
            name = f"{self.name}-{role}"
            arns[role] = lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=FLOOR_ROLE,
                Handler=handler,
                Code={"ZipFile": code},
                Timeout=30,
                MemorySize=256,
                Environment={"Variables": {"TABLE_NAME": self.table, "QUEUE_URL": self.queue_url}},
            )["FunctionArn"]
            self.functions.append(name)
            self._ready(lam, "function_active_v2", name, FunctionName=name)
        self.mapping = lam.create_event_source_mapping(
            EventSourceArn=queue_arn,
            FunctionName=f"{self.name}-processor",
            BatchSize=10,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            Enabled=True,
        )["UUID"]
        self.api_id = agw.create_rest_api(name=self.name, endpointConfiguration={"types": ["REGIONAL"]})["id"]
        root = next(r["id"] for r in agw.get_resources(restApiId=self.api_id)["items"] if r["path"] == "/")
        resource = agw.create_resource(restApiId=self.api_id, parentId=root, pathPart="orders")["id"]
        agw.put_method(restApiId=self.api_id, resourceId=resource, httpMethod="POST", authorizationType="NONE")
        region = self.session.region_name or "us-east-1"
        agw.put_integration(
            restApiId=self.api_id,
            resourceId=resource,
            httpMethod="POST",
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arns['api']}/invocations",
        )
        lam.add_permission(
            FunctionName=f"{self.name}-api",
            StatementId="bench-floor-api",
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
        )
        agw.create_deployment(restApiId=self.api_id, stageName="bench")
        self.url = api_base_url({"ApiId": self.api_id, "ApiStage": "bench"}, os.environ["AWS_ENDPOINT_URL"]) + "/orders"
        self.bench.seed_products(self.table)

    @staticmethod
    def _ready(client: Any, waiter: str, what: str, **request: Any) -> None:
        """boto3's waiter for a floor resource; a BenchError naming it when it does not come."""
        stopped = wait_for(client, waiter, delay=0.1, timeout=60, **request)
        if stopped is not None:
            raise BenchError(f"floor {what} not ready: {stopped}")

    def _until(self, check: Callable[[], bool], what: str, timeout: float = 60) -> None:
        try:
            wait_until(check, timeout=timeout, interval=0.1, what=what)
        except TimedOut:
            raise BenchError(f"floor {what} not ready within {timeout:.0f} s") from None

    def delete(self) -> None:
        """Delete whatever was created; each step on its own, so one failure does not leave the rest."""
        lam = self.session.client("lambda")
        steps: list[tuple[str, Callable[[], Any]]] = []
        if self.mapping:
            steps.append(("mapping", lambda: lam.delete_event_source_mapping(UUID=self.mapping)))
        if self.api_id:
            steps.append(("REST API", lambda: self.session.client("apigateway").delete_rest_api(restApiId=self.api_id)))
        for name in self.functions:
            steps.append((name, partial(lam.delete_function, FunctionName=name)))
        if self.queue_url:
            steps.append(("queue", lambda: self.session.client("sqs").delete_queue(QueueUrl=self.queue_url)))
        steps.append(("table", lambda: self.session.client("dynamodb").delete_table(TableName=self.table)))
        for what, step in steps:
            try:
                step()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in {"ResourceNotFoundException", "NotFoundException"}:
                    print(f"bench: could not delete floor {what}: {exc}", file=sys.stderr)
            except BotoCoreError as exc:
                print(f"bench: could not delete floor {what}: {exc}", file=sys.stderr)
        self.mapping, self.api_id, self.functions, self.queue_url = None, None, [], None

    def api(self) -> dict[str, Any]:
        result = self.bench.api_load("floor API", self.url, self.table, FLOOR_FINAL, "FAPI")
        result["setup_seconds"] = round(self.setup_seconds, 3)
        return result

    def processing(self, count: int) -> dict[str, Any]:
        """The consumer's rate alone: FILE_N orders queued first (mapping disabled), then drained."""
        lam, sqs = self.session.client("lambda"), self.session.client("sqs")
        lam.update_event_source_mapping(UUID=self.mapping, Enabled=False)
        self._until(lambda: not any(queue_depth(sqs, self.queue_url)), "queue drained", self.bench.options.timeout)
        orders = self.bench.orders("FPROC", count, "file")
        task = self.bench.progress.add_task("processing floor: queue", total=count)

        def send(chunk: list[tuple[str, str, list[Line]]]) -> None:
            entries = [
                {"Id": str(k), "MessageBody": body, "MessageGroupId": order_id, "MessageDeduplicationId": order_id}
                for k, (order_id, body, _) in enumerate(chunk)
            ]
            failed = sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed", [])
            if failed:
                raise BenchError(f"floor queue refused {len(failed)} messages: {failed[0]}")
            self.bench.progress.advance(task, len(chunk))

        filling = time.monotonic()
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="bench-fill") as pool:
            list(pool.map(send, [orders[k : k + 10] for k in range(0, count, 10)]))
        filled = time.monotonic() - filling
        watcher = FinalWatcher(self.session.client("dynamodb"), self.table, FLOOR_FINAL, window=200)
        watcher.add(order_id for order_id, _, _ in orders)
        finals = self.bench.progress.add_task("processing floor: written", total=count)
        started_mono, started_wall = time.monotonic(), time.time()
        lam.update_event_source_mapping(UUID=self.mapping, Enabled=True)
        watcher.start()
        try:
            watcher.wait_final(
                count, self.bench.deadline(), lambda k: self.bench.progress.advance(finals, k), "processing floor"
            )
        finally:
            watcher.stop()
        last = max(seen[0] for seen in watcher.seen.values())
        processed_at = [epoch(at) for _, _, at in watcher.seen.values() if at is not None]
        return {
            "orders": count,
            "queue_fill_seconds": round(filled, 3),
            "seconds": round(last - started_mono, 3),
            "rate": rate(count, last - started_mono),
            "rate_processed_at": rate(len(processed_at), max(processed_at, default=started_wall) - started_wall),
        }


# ------------------------------------------------------------------------------------------ in process
def in_process(count: int, repeats: int) -> InProcess:
    """The validator against json.loads on the same payloads, best of `repeats` passes each."""
    rng = random.Random(42)  # noqa: S311 (reproducible payloads, not secrets)
    template = lab_example()
    products = [f"PRD-{k:04d}" for k in range(40)]
    texts = [to_wire(make_order(template, f"INPROC-{k:06d}", draw_lines(rng, products, 8), rng)) for k in range(count)]
    validator = OrderValidator()
    documents = [parse_json(text) for text in texts]
    for document in documents:
        validator.validate(document)  # every payload valid, or OrderRejected says why

    def best(run: Callable[[], object]) -> float:
        fastest = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            fastest = min(fastest, time.perf_counter() - started)
        return rate(count, fastest)

    loads = best(lambda: [json.loads(t) for t in texts])
    validate = best(lambda: [validator.validate(d) for d in documents])
    parse_validate = best(lambda: [validator.validate(parse_json(t)) for t in texts])
    return InProcess(
        orders=count,
        mean_payload_bytes=round(sum(len(t.encode()) for t in texts) / count),
        repeats=repeats,
        json_loads_per_s=loads,
        validate_per_s=validate,
        parse_json_validate_per_s=parse_validate,
        validate_vs_json_loads=round(validate / loads, 3),
        parse_validate_vs_json_loads=round(parse_validate / loads, 3),
    )


# ------------------------------------------------------------------------------------------ machine, sandbox
def machine() -> Machine:
    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        ministack: str | None = metadata.version("ministack")
    except metadata.PackageNotFoundError:
        ministack = None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return Machine(
        nproc=usable,
        cpu_count=os.cpu_count(),
        cpu_model=cpu,
        python=platform.python_version(),
        platform=platform.platform(),
        ministack=ministack,
        endpoint=os.environ["AWS_ENDPOINT_URL"],
    )


def ensure_sandbox(console: Console) -> MakeUp:
    """Use the running sandbox, or run `make up` (timed) when no emulator answers or it is not deployed."""
    status = subprocess.run(
        [sys.executable, "-m", "sandbox.emulator", "status"], capture_output=True, text=True, check=False
    )
    answering = status.returncode == 0
    if answering and OUTPUTS.exists():
        return MakeUp(measured=False, note="the sandbox was already running; `make down` first to time `make up`")
    make = shutil.which("make")
    if make is None:
        raise BenchError("no emulator answers and `make` is not installed: run `make up` first")
    console.print(f"[bold]no {'deployed stack' if answering else 'emulator'}: running `make up`[/bold]")
    started = time.monotonic()
    if subprocess.run([make, "up"], cwd=ROOT, check=False).returncode != 0:
        raise BenchError("`make up` failed")
    seconds = round(time.monotonic() - started, 2)
    what = "start, deploy and seed" if not answering else "deploy and seed (the emulator was already running)"
    return MakeUp(measured=True, seconds=seconds, cold_start=not answering, note=f"make up: {what}")


# ------------------------------------------------------------------------------------------ report
def ratios(result: BenchResult) -> dict[str, Ratio]:
    document = result.model_dump()

    def at(*path: str) -> float | None:
        value: Any = document
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return float(value) if isinstance(value, int | float) else None

    def divide(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    values = {
        "api_e2e_throughput": divide(at("api", "e2e", "throughput"), at("floors", "api", "e2e", "throughput")),
        "api_accept_p99": divide(
            at("api", "accept", "latency_ms", "p99"), at("floors", "api", "accept", "latency_ms", "p99")
        ),
        "datalake_vs_processing_floor": divide(at("datalake", "rate"), at("floors", "processing", "rate")),
        "validator_vs_json_loads": at("in_process", "validate_vs_json_loads"),
        "parse_validate_vs_json_loads": at("in_process", "parse_validate_vs_json_loads"),
    }
    found: dict[str, Ratio] = {}
    for name, value in values.items():
        op, target, meaning = TARGETS[name]
        met = None if value is None or target is None else (value >= target if op == ">=" else value <= target)
        found[name] = Ratio(value=value, target=f"{op} {target}" if op else None, met=met, meaning=meaning)
    return found


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _pcts(d: dict[str, Any] | None, digits: int = 1) -> str:
    if not d:
        return "-"
    return " / ".join(_fmt(float(d[p]), digits) for p in ("p50", "p95", "p99"))


def _retries(counts: dict[str, int]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in counts.items()) or "none"


def render(console: Console, result: BenchResult) -> None:
    m, up = result.machine, result.make_up
    header = Table(title=f"bench {result.run_id}: machine", show_header=False)
    header.add_row("CPU", f"{m.cpu_model} ({m.nproc} usable of {m.cpu_count})")
    header.add_row("Python / MiniStack", f"{m.python} / {m.ministack or 'not installed'}")
    header.add_row("make up", f"{up.seconds} s ({up.note})" if up.measured else up.note)
    console.print(header)

    api, floor_api = result.api, (result.floors.get("api") or {})
    table = Table(title=f"API path: {api.get('orders')} orders, {api.get('clients')} clients")
    for column in ("", "pipeline", "floor"):
        table.add_column(column, justify="right" if column else "left")
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("accept orders/s", lambda r: _fmt(r["accept"]["throughput"])),
        *[(f"accept {p} (ms)", lambda r, p=p: _fmt(r["accept"]["latency_ms"][p])) for p in ("p50", "p95", "p99")],
        ("retried POSTs (status: n)", lambda r: _retries(r["accept"]["retried_requests"])),
        ("end-to-end orders/s", lambda r: _fmt(r["e2e"]["throughput"])),
        *[(f"end-to-end {p} (s)", lambda r, p=p: _fmt(r["e2e"]["latency_s"][p], 2)) for p in ("p50", "p95", "p99")],
        ("  p50/p95/p99 by processed_at", lambda r: _pcts(r["e2e"]["latency_processed_at_s"], 2)),
        ("first POST to last final (s)", lambda r: _fmt(r["e2e"]["seconds"], 2)),
    ]
    for label, cell in rows:
        table.add_row(label, cell(api) if api else "-", cell(floor_api) if floor_api else "-")
    console.print(table)

    lake, proc = result.datalake, (result.floors.get("processing") or {})
    if lake.get("skipped") is None:
        stages = lake["stages"]
        table = Table(
            title=f"data-lake path: one file of {lake['orders']:,} orders ({lake['file_bytes'] / 1e6:.1f} MB)"
        )
        table.add_column("")
        table.add_column("seconds", justify="right")
        table.add_row("upload (put_object)", _fmt(lake["upload_seconds"], 2))
        if stages.get("validator_timings"):
            table.add_row("(a) read + validate", _fmt(stages["read_and_validate_seconds"], 2))
            table.add_row("(b) claim + enqueue", _fmt(stages["enqueue_seconds"], 2))
            table.add_row("    queue, report, other", _fmt(stages["outside_validator_seconds"], 2))
        else:
            table.add_row("(a)+(b) upload to report", _fmt(stages["read_and_validate_plus_enqueue_seconds"], 2))
        table.add_row("(c) processing after the report", _fmt(stages["processing_after_report_seconds"], 2))
        table.add_row("upload to every order final", _fmt(lake["seconds"], 2))
        table.add_row("rate (orders/s)", _fmt(lake["rate"]))
        table.add_row("processing floor rate (orders/s)", _fmt(proc.get("rate")))
        console.print(table)

    inp = result.in_process
    if inp is not None:
        table = Table(title=f"in process: {inp.orders:,} orders of ~{inp.mean_payload_bytes} bytes")
        table.add_column("")
        table.add_column("orders/s", justify="right")
        table.add_row("json.loads (text)", _fmt(inp.json_loads_per_s, 0))
        table.add_row("OrderValidator.validate (parsed)", _fmt(inp.validate_per_s, 0))
        table.add_row("parse_json + validate (text)", _fmt(inp.parse_json_validate_per_s, 0))
        console.print(table)

    table = Table(title="targets")
    for column in ("ratio", "value", "target", "met"):
        table.add_column(column, justify="left" if column == "ratio" else "right")
    for ratio in result.ratios.values():
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[ratio.met]
        table.add_row(ratio.meaning, _fmt(ratio.value, 3), ratio.target or "(reported)", met)
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")


# ------------------------------------------------------------------------------------------ main
def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=None, help="orders through the API (default 2000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients (default 16)")
    parser.add_argument("--file-n", type=int, default=None, help="orders in the data-lake file (default 10000)")
    parser.add_argument("--skip-floors", action="store_true", help="do not create or measure the floors")
    parser.add_argument("--skip-datalake", action="store_true", help="do not measure the data-lake path")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for CI: n=30, file-n=60")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed for each wait (default 1200)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where the JSON goes (bench/results)")
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else (30 if args.quick else 2000)
    file_n = args.file_n if args.file_n is not None else (60 if args.quick else 10_000)
    if n < 2 or file_n < 2 or args.clients < 1:
        parser.error("--n and --file-n must be at least 2, --clients at least 1")
    return Options(
        n=n,
        clients=args.clients,
        file_n=file_n,
        skip_floors=args.skip_floors,
        skip_datalake=args.skip_datalake,
        quick=args.quick,
        timeout=args.timeout or (180.0 if args.quick else 1200.0),
        in_process_n=500 if args.quick else 2000,
        results_dir=args.results_dir,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: the floors are deleted in `finally`


def run(options: Options, console: Console) -> BenchResult:
    started_wall, started = datetime.now(UTC), time.monotonic()
    make_up = ensure_sandbox(console)
    outputs = StackOutputs.read().as_dict()
    session = boto3.session.Session()
    progress = Progress(
        TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    with progress:
        bench = Bench(options, session, progress)
        result = BenchResult(
            run_id=bench.run_id,
            started_at=started_wall.isoformat(timespec="seconds"),
            options=BenchOptions.model_validate(options, from_attributes=True),
            machine=machine(),
            make_up=make_up,
        )
        bench.say(f"bench {bench.run_id}: in-process validator ({options.in_process_n} orders)")
        result.in_process = in_process(options.in_process_n, repeats=3 if options.quick else 5)
        result.api = bench.api_path(outputs)
        result.floors = {"skipped": True} if options.skip_floors else {}
        result.datalake = {"skipped": True} if options.skip_datalake else {}
        if not options.skip_floors:
            with Floors(bench) as floors:
                bench.say(f"floors created in {floors.setup_seconds:.1f} s")
                result.floors["api"] = floors.api()
                if not options.skip_datalake:
                    result.datalake = bench.datalake_path(outputs)
                result.floors["processing"] = floors.processing(options.file_n)
            bench.say("floors deleted")
        elif not options.skip_datalake:
            result.datalake = bench.datalake_path(outputs)
    result.ratios = ratios(result)
    if not make_up.measured:
        bench.notes.append(make_up.note)
    result.notes = bench.notes
    result.duration_seconds = round(time.monotonic() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    default_environment()
    console = Console()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = run(options, console)
    except BenchError as exc:
        console.print(f"[red]bench failed:[/red] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]bench interrupted; the floors it had created are deleted[/yellow]")
        return 130
    path = result.write(options.results_dir)
    render(console, BenchResult.read(path))
    console.print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} (and latest.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
