"""Benchmark the running sandbox against minimal reference pipelines ("floors") on the same emulator.

`make bench` (N=2000 C=16 FILE_N=10000) measures the API path (N orders by C clients: accept and end-to-end),
the data-lake path (one file of FILE_N orders, by stage), the floors (a minimal API -> Lambda -> DynamoDB + FIFO
-> Lambda pipeline created with boto3 and deleted again) under the same load, and the order validator against
json.loads in process. It prints tables and writes bench/results/<time>-<run>.json and latest.json. It fails
only when it cannot measure (an order never final, a floor not created). docs/PERFORMANCE.md explains every number.
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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orders.model import FINAL_STATUSES, NEW_ORDER
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

FLOOR_CODE = Path(__file__).with_name("bench_floors")
FINAL = frozenset(FINAL_STATUSES)
FLOOR_FINAL = frozenset({NEW_ORDER})
FLOOR_ROLE = "arn:aws:iam::000000000000:role/bench-floor"  # any ARN string works on the emulator
POLL_INTERVAL = 0.1
RETRYABLE_HTTP = {429, 502, 503, 504}
UFS = "AC AL AP AM BA CE DF ES GO MA MT MS MG PA PB PR PE PI RJ RN RS RO RR SC SP SE TO".split()
PRICES = [Decimal(p) for p in ("0.99", "12.50", "99.90", "150.00", "2500.00", "37.45")]
TARGETS = {
    "api_e2e_throughput": (">=", 0.80, "API end-to-end throughput, pipeline / floor"),
    "api_accept_p99": ("<=", 1.25, "API accept p99 latency, pipeline / floor"),
    "datalake_vs_processing_floor": (">=", 0.70, "data-lake orders/s / processing floor orders/s"),
    "validator_vs_json_loads": (">=", 0.50, "validate orders/s / json.loads orders/s"),
    "parse_validate_vs_json_loads": (None, None, "parse_json + validate orders/s / json.loads orders/s"),
}
FIGURES = {  # each ratio's figure, and the floor's figure it is divided by
    "api_e2e_throughput": ("api.e2e.throughput", "floors.api.e2e.throughput"),
    "api_accept_p99": ("api.accept.latency_ms.p99", "floors.api.accept.latency_ms.p99"),
    "datalake_vs_processing_floor": ("datalake.rate", "floors.processing.rate"),
    "validator_vs_json_loads": ("in_process.validate_vs_json_loads", None),
    "parse_validate_vs_json_loads": ("in_process.parse_validate_vs_json_loads", None),
}


class BenchError(Exception):
    """The bench could not measure something (an order never final, a floor not created)."""


# ------------------------------------------------------------------------------------------ orders, numbers
def make_order(template: dict[str, Any], order_id: str, rng: random.Random, products: list[str], max_lines: int):
    """A valid order shaped like the lab's example, with varied lines, optional fields, formats and amounts."""
    chosen = rng.sample(products, rng.randint(1, min(max_lines, len(products))))
    order = order_with(order_id, [(p, rng.randint(1, 3), rng.choice(PRICES)) for p in chosen], template)
    order["order_date"] = rng.choice(["2024-03-05", "2024-03-05T10:30:00Z", "2024-03-05T10:30:00.250-03:00"])
    customer, shipping, payment = order["customer"], order["shipping"], order["payment"]
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
    for holder, key in ((order, "notes"), (customer, "phone"), (payment, "transaction_id")):
        if rng.random() < 0.3:
            holder.pop(key, None)
    shipping["cost"] = rng.choice([Decimal("0.00"), Decimal("50.00"), Decimal("19.90")])
    payment["amount"] += shipping["cost"] if rng.random() < 0.5 else 0
    return order


def distribution(values: list[float], scale: float = 1.0, digits: int = 3) -> dict[str, float | int]:
    scaled = [v * scale for v in values]
    # statistics.quantiles needs two points before Python 3.13
    cuts = statistics.quantiles(scaled, n=100, method="inclusive") if len(scaled) > 1 else [sum(scaled)] * 99
    return {
        "count": len(scaled),
        **{f"p{p}": round(cuts[p - 1], digits) for p in (50, 95, 99)},
        "max": round(max(scaled, default=0.0), digits),
        "mean": round(statistics.fmean(scaled), digits) if scaled else 0.0,
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
    url: str, bodies: list[tuple[str, str]], clients: int, deadline: float, on_accept: Callable[[Posted], None]
) -> list[Posted]:
    """POST every body with `clients` threads; retry 429/5xx with back-off (a throttled order is not taken)."""
    local, stop = threading.local(), threading.Event()

    def post(order_id: str, body: str) -> Posted:
        local.http = getattr(local, "http", None) or requests.Session()
        posted, delay = Posted(order_id, time.time(), time.monotonic()), 0.05
        while not stop.is_set():
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
                posted.end_mono, status = time.monotonic(), response.status_code
                # 409 after a failed attempt: that attempt reached the function and took the order.
                if status == 202 or (status == 409 and posted.retried_statuses):
                    on_accept(posted)
                    return posted
                if status not in RETRYABLE_HTTP:
                    raise BenchError(f"POST {order_id}: HTTP {status} {response.text[:300]}")
                posted.retried_statuses.append(status)
            stop.wait(delay * (0.5 + random.random()))  # noqa: S311 (jitter, not a secret)
            delay = min(delay * 2, 1.0)
        raise BenchError("stopped")

    pool = ThreadPoolExecutor(max_workers=clients, thread_name_prefix="bench-post")
    try:
        return [future.result() for future in as_completed([pool.submit(post, *body) for body in bodies])]
    except BaseException:  # a worker's BenchError, or Ctrl-C: stop the others
        stop.set()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------------------------ final states
class FinalWatcher(threading.Thread):
    """Polls order records (BatchGetItem, ~every 100 ms) and timestamps when each is first seen final.

    `window` bounds the keys read per round to the oldest pending ones (a file's orders are processed
    roughly in order), so watching 10,000 orders does not flood the emulator with reads.
    """

    def __init__(self, db: Any, table: str, final: frozenset[str], window: int | None = None) -> None:
        super().__init__(daemon=True, name="bench-watcher")
        self._db, self._table, self._final, self._window = db, table, final, window
        self._lock, self.halt = threading.Lock(), threading.Event()
        self._pending: dict[str, None] = {}  # insertion-ordered
        self.seen: dict[str, tuple[float, str, str | None]] = {}  # id -> (monotonic, status, processed_at)
        self.error: BaseException | None = None
        self.rounds = 0

    def add(self, order_ids: Iterable[str]) -> None:
        with self._lock:
            self._pending.update(dict.fromkeys(order_ids))

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                started = time.monotonic()
                with self._lock:
                    ids = list(self._pending)[: self._window]
                names = {"#i": "order_id", "#s": "order_status", "#p": "processed_at"}
                items = read_orders(
                    self._db, self._table, ids, ProjectionExpression="#i, #s, #p", ExpressionAttributeNames=names
                )
                now = time.monotonic()
                with self._lock:
                    for item in items:
                        status, order_id = item.get("order_status", {}).get("S"), item["order_id"]["S"]
                        if status in self._final and order_id not in self.seen:
                            self.seen[order_id] = (now, status, item.get("processed_at", {}).get("S"))
                            self._pending.pop(order_id, None)
                self.rounds += 1
                self.halt.wait(max(0.0, POLL_INTERVAL - (time.monotonic() - started)))
        except BaseException as exc:  # reported by wait_final in the main thread
            self.error = exc

    def wait_final(self, expected: int, deadline: float, advance: Callable[[int], None], what: str) -> None:
        shown = 0

        def all_final() -> bool:
            nonlocal shown
            if self.error is not None:
                raise BenchError(f"{what}: reading the table failed: {self.error!r}") from self.error
            advance(len(self.seen) - shown)
            shown = len(self.seen)
            return shown >= expected

        try:
            wait_until(all_final, timeout=deadline - time.monotonic(), interval=0.05, what=what)
        except TimedOut:
            with self._lock:
                missing = list(self._pending)[:5]
            raise BenchError(
                f"{what}: only {len(self.seen)} of {expected} orders final before the deadline; "
                f"still waiting for e.g. {missing}; is the consumer's event-source mapping enabled?"
            ) from None

    def last(self) -> float:
        return max(seen[0] for seen in self.seen.values())

    def processed_at(self) -> list[float]:
        return [epoch(at) for _, _, at in self.seen.values() if at is not None]


# ------------------------------------------------------------------------------------------ runs
class Bench:
    def __init__(self, options: BenchOptions, session: boto3.session.Session, progress: Progress) -> None:
        self.options, self.session, self.progress = options, session, progress
        self.run_id = uuid.uuid4().hex[:8].upper()
        self.template = lab_example()
        self.products = [f"BENCH-{self.run_id}-P{k}" for k in range(10)]
        self.notes: list[str] = []

    def deadline(self) -> float:
        return time.monotonic() + self.options.timeout

    def say(self, text: str) -> None:
        self.progress.console.print(text)

    def orders(self, tag: str, count: int, shapes_of: str) -> list[tuple[str, str]]:
        """(order_id, wire body): fresh ids; the same `shapes_of` gives a floor the pipeline's orders."""
        shapes = random.Random(f"{shapes_of}-{count}")  # noqa: S311 (reproducible shapes, not secrets)
        ids = [f"BENCH-{self.run_id}-{tag}-{k:06d}" for k in range(count)]
        return [(i, to_wire(make_order(self.template, i, shapes, self.products, 3))) for i in ids]

    def seed_products(self, table: str) -> None:
        stock = [{"product_id": p, "description": "bench", "available": 10**9} for p in self.products]
        seed(self.session, table, stock)

    @contextmanager
    def watching(
        self, label: str, table: str, final: frozenset[str], ids: list[str], window: int | None = None
    ) -> Iterator[FinalWatcher]:
        """A watcher that timestamps each order's final state while the block runs; then wait for every one."""
        watcher = FinalWatcher(self.session.client("dynamodb"), table, final, window)
        task = self.progress.add_task(f"{label}: final", total=len(ids))
        watcher.start()
        try:
            yield watcher
            watcher.wait_final(len(ids), self.deadline(), lambda k: self.progress.advance(task, k), label)
        finally:
            watcher.halt.set()

    def post_until_final(self, label: str, url: str, table: str, final: frozenset[str], bodies: list[tuple[str, str]]):
        posting = self.progress.add_task(f"{label}: POST /orders", total=len(bodies))
        with self.watching(label, table, final, [i for i, _ in bodies]) as watcher:

            def accepted(p: Posted) -> None:
                watcher.add([p.order_id])
                self.progress.advance(posting)

            posted = post_orders(url, bodies, self.options.clients, self.deadline(), accepted)
        return posted, watcher

    def api_load(self, label: str, url: str, table: str, final: frozenset[str], tag: str) -> dict[str, Any]:
        """N orders by C clients after a warm-up of 2 x C orders, which starts C execution environments of each
        function so neither the pipeline nor the floor pays its cold starts inside the measurement."""
        warmup = self.orders(f"{tag}W", 2 * self.options.clients, "warm")
        self.post_until_final(f"{label} warm-up", url, table, final, warmup)
        posted, watcher = self.post_until_final(label, url, table, final, self.orders(tag, self.options.n, "api"))
        first, last_accept = min(p.first_mono for p in posted), max(p.end_mono for p in posted)
        last_final = watcher.last()
        by_id = {p.order_id: p for p in posted}
        processed = [(epoch(at), by_id[i].first_wall) for i, (_, _, at) in watcher.seen.items() if at is not None]
        retries = Counter(s for p in posted for s in p.retried_statuses)
        return {
            "orders": self.options.n,
            "clients": self.options.clients,
            "warmup_orders": len(warmup),
            "accept": {
                "window_seconds": round(last_accept - first, 3),
                "throughput": rate(len(posted), last_accept - first),
                "latency_ms": distribution([p.end_mono - p.start_mono for p in posted], 1000, 1),
                "latency_with_retries_ms": distribution([p.end_mono - p.first_mono for p in posted], 1000, 1),
                "retried_requests": {str(s): retries[s] for s in sorted(retries)},
            },
            "e2e": {
                "seconds": round(last_final - first, 3),
                "throughput": rate(self.options.n, last_final - first),
                "latency_s": distribution([seen[0] - by_id[i].first_mono for i, seen in watcher.seen.items()]),
                "latency_processed_at_s": distribution([at - sent for at, sent in processed]),
                "throughput_processed_at": rate(
                    len(processed), max((at for at, _ in processed), default=0) - min(p.first_wall for p in posted)
                ),
                "final_statuses": dict(Counter(status for _, status, _ in watcher.seen.values())),
                "poll_rounds": watcher.rounds,
            },
        }

    # -------------------------------------------------------------------- 1. API path
    def api_path(self, outputs: dict[str, str]) -> dict[str, Any]:
        self.seed_products(outputs["OrdersTable"])
        result = self.api_load("pipeline API", f"{outputs['ApiBaseUrl']}/orders", outputs["OrdersTable"], FINAL, "API")
        agw, result["stage_throttling"] = self.session.client("apigateway"), None
        with suppress(BotoCoreError, ClientError, KeyError):
            stage = agw.get_stage(restApiId=outputs["ApiId"], stageName=outputs["ApiStage"])
            settings = stage.get("methodSettings", {}).get("*/*", {})
            burst, limit = settings.get("throttlingBurstLimit"), settings.get("throttlingRateLimit")
            if burst is not None or limit is not None:
                result["stage_throttling"] = {"burst_limit": burst, "rate_limit": limit}
        if result["e2e"]["final_statuses"].get("Produto Pendente"):
            self.notes.append("some pipeline orders ended Produto Pendente: the bench's stock was not ample")
        if throttled := result["accept"]["retried_requests"].get("429"):
            self.notes.append(
                f"the pipeline's API stage throttled {throttled} requests (429, retried): its limits "
                f"{result['stage_throttling']} cap the API figures; the floor has none"
            )
        return result

    # -------------------------------------------------------------------- 2. data-lake path
    def datalake_path(self, outputs: dict[str, str]) -> dict[str, Any]:
        """One file of FILE_N orders, after a 2-order warm-up file that starts the file validator's worker."""
        self.seed_products(outputs["OrdersTable"])
        self.upload_until_final(outputs, "FILEW", self.orders("FILEW", 2, "warm"), "data lake warm-up")
        return self.upload_until_final(outputs, "FILE", self.orders("FILE", self.options.file_n, "file"), "data lake")

    def upload_until_final(self, outputs: dict[str, str], tag: str, orders: list[tuple[str, str]], label: str):
        s3, bucket = self.session.client("s3"), outputs["DataLakeBucket"]
        body = ("[" + ",\n".join(text for _, text in orders) + "]").encode("utf-8")
        key = f"incoming/bench/{self.run_id}-{tag}.json"
        with self.watching(label, outputs["OrdersTable"], FINAL, [i for i, _ in orders], window=200) as watcher:
            watcher.add(order_id for order_id, _ in orders)
            started = time.monotonic()
            etag = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")["ETag"]
            uploaded, report_at = time.monotonic(), report_key(key, etag)
            if stopped := wait_for(
                s3, "object_exists", delay=0.1, timeout=self.options.timeout, Bucket=bucket, Key=report_at
            ):
                raise BenchError(f"no file report at s3://{bucket}/{report_at} before the deadline: {stopped}")
            report_seen = time.monotonic()
            got = s3.get_object(Bucket=bucket, Key=report_at)
            report, modified = json.loads(got["Body"].read()), got.get("LastModified")
            if report.get("accepted") != len(orders):
                raise BenchError(
                    f"the report of {key} accepted {report.get('accepted')} of {len(orders)}: "
                    f"{report.get('file_error') or report.get('rejections', [])[:2]}"
                )
        last_final = watcher.last()
        uploaded_wall = time.time() - (time.monotonic() - uploaded)  # processed_at is wall-clock time
        until_report = report_seen - uploaded
        stages: dict[str, Any] = {
            "read_and_validate_plus_enqueue_seconds": round(until_report, 3),
            "processing_after_report_seconds": round(last_final - report_seen, 3),
            "report_last_modified": modified.isoformat() if modified else None,  # whole seconds in S3
            "validator_timings": None,
        }
        if isinstance(timings := report.get("timings"), dict):
            parts = {k: float(v) for k, v in timings.items() if isinstance(v, int | float)}
            stages["validator_timings"] = parts
            stages["read_and_validate_seconds"] = round(
                parts.get("read_seconds", 0.0) + parts.get("validate_seconds", 0.0), 3
            )
            stages["enqueue_seconds"] = round(parts.get("claim_seconds", 0.0) + parts.get("enqueue_seconds", 0.0), 3)
            stages["outside_validator_seconds"] = round(until_report - sum(parts.values()), 3)
        else:
            self.notes.append(
                "the file report has no `timings`: stages (a) read+validate and (b) enqueue are reported together"
            )
        return {
            "orders": len(orders),
            "file_bytes": len(body),
            "key": report["key"],
            "upload_seconds": round(uploaded - started, 3),
            "seconds": round(last_final - uploaded, 3),
            "rate": rate(len(orders), last_final - uploaded),
            "seconds_processed_at": round(max(watcher.processed_at(), default=uploaded_wall) - uploaded_wall, 3),
            "stages": stages,
        }


# ------------------------------------------------------------------------------------------ floors
class Floors(ExitStack):
    """The reference pipeline, created with boto3 for this run; each resource deleted on exit, whatever happens."""

    def __init__(self, bench: Bench) -> None:
        super().__init__()
        self.bench, self.session = bench, bench.session
        self.name = self.table = f"bench-floor-{bench.run_id.lower()}"

    def __enter__(self) -> Floors:
        started = time.monotonic()
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - started
        return self

    def _created(self, what: str, delete: Callable[..., Any], **request: Any) -> None:
        self.callback(self._delete, what, delete, request)  # deleted on its own: one failure does not stop the rest

    @staticmethod
    def _delete(what: str, delete: Callable[..., Any], request: dict[str, Any]) -> None:
        try:
            delete(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"ResourceNotFoundException", "NotFoundException"}:
                print(f"bench: could not delete floor {what}: {exc}", file=sys.stderr)
        except BotoCoreError as exc:
            print(f"bench: could not delete floor {what}: {exc}", file=sys.stderr)

    def _create(self) -> None:
        db, sqs, lam, agw = (self.session.client(s) for s in ("dynamodb", "sqs", "lambda", "apigateway"))
        self._created("table", db.delete_table, TableName=self.table)
        db.create_table(
            TableName=self.table,
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("PK", "SK")],
            BillingMode="PAY_PER_REQUEST",
        )
        self._ready(db, "table_exists", "table", TableName=self.table)
        attributes = {"FifoQueue": "true", "VisibilityTimeout": "60"}
        self.queue_url = sqs.create_queue(QueueName=f"{self.name}.fifo", Attributes=attributes)["QueueUrl"]
        self._created("queue", sqs.delete_queue, QueueUrl=self.queue_url)
        queue = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]
        code, arns = build_zip(FLOOR_CODE), {}
        for role in ("api", "processor"):
            name = f"{self.name}-{role}"
            arns[role] = lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=FLOOR_ROLE,
                Handler=f"{role}_floor.handler",
                Code={"ZipFile": code},
                Timeout=30,
                MemorySize=256,
                Environment={"Variables": {"TABLE_NAME": self.table, "QUEUE_URL": self.queue_url}},
            )["FunctionArn"]
            self._created(name, lam.delete_function, FunctionName=name)
            self._ready(lam, "function_active_v2", name, FunctionName=name)
        self.mapping = lam.create_event_source_mapping(
            EventSourceArn=queue["QueueArn"],
            FunctionName=f"{self.name}-processor",
            BatchSize=10,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            Enabled=True,
        )["UUID"]
        self._created("mapping", lam.delete_event_source_mapping, UUID=self.mapping)
        api_id = agw.create_rest_api(name=self.name, endpointConfiguration={"types": ["REGIONAL"]})["id"]
        self._created("REST API", agw.delete_rest_api, restApiId=api_id)
        root = next(r["id"] for r in agw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
        resource = agw.create_resource(restApiId=api_id, parentId=root, pathPart="orders")["id"]
        agw.put_method(restApiId=api_id, resourceId=resource, httpMethod="POST", authorizationType="NONE")
        region = self.session.region_name or "us-east-1"
        agw.put_integration(
            restApiId=api_id,
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
        agw.create_deployment(restApiId=api_id, stageName="bench")
        self.url = api_base_url({"ApiId": api_id, "ApiStage": "bench"}, os.environ["AWS_ENDPOINT_URL"]) + "/orders"
        self.bench.seed_products(self.table)

    @staticmethod
    def _ready(client: Any, waiter: str, what: str, **request: Any) -> None:
        if (stopped := wait_for(client, waiter, delay=0.1, timeout=60, **request)) is not None:
            raise BenchError(f"floor {what} not ready: {stopped}")

    def api(self) -> dict[str, Any]:
        result = self.bench.api_load("floor API", self.url, self.table, FLOOR_FINAL, "FAPI")
        return result | {"setup_seconds": round(self.setup_seconds, 3)}

    def processing(self, count: int) -> dict[str, Any]:
        """The consumer's rate alone: FILE_N orders queued first (mapping disabled), then drained."""
        lam, sqs, bench = self.session.client("lambda"), self.session.client("sqs"), self.bench
        lam.update_event_source_mapping(UUID=self.mapping, Enabled=False)
        try:
            drained = lambda: not any(queue_depth(sqs, self.queue_url))  # noqa: E731
            wait_until(drained, timeout=bench.options.timeout, interval=0.1, what="queue drained")
        except TimedOut:
            raise BenchError(f"floor queue not drained within {bench.options.timeout:.0f} s") from None
        orders = bench.orders("FPROC", count, "file")
        task = bench.progress.add_task("processing floor: queue", total=count)

        def send(chunk: list[tuple[str, str]]) -> None:
            entries = [
                {"Id": str(k), "MessageBody": body, "MessageGroupId": order_id, "MessageDeduplicationId": order_id}
                for k, (order_id, body) in enumerate(chunk)
            ]
            if failed := sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed", []):
                raise BenchError(f"floor queue refused {len(failed)} messages: {failed[0]}")
            bench.progress.advance(task, len(chunk))

        filling = time.monotonic()
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="bench-fill") as pool:
            list(pool.map(send, [orders[k : k + 10] for k in range(0, count, 10)]))
        filled = time.monotonic() - filling
        with bench.watching("processing floor", self.table, FLOOR_FINAL, [i for i, _ in orders], 200) as watcher:
            watcher.add(order_id for order_id, _ in orders)
            started, started_wall = time.monotonic(), time.time()
            lam.update_event_source_mapping(UUID=self.mapping, Enabled=True)
        processed_at, last = watcher.processed_at(), watcher.last()
        return {
            "orders": count,
            "queue_fill_seconds": round(filled, 3),
            "seconds": round(last - started, 3),
            "rate": rate(count, last - started),
            "rate_processed_at": rate(len(processed_at), max(processed_at, default=started_wall) - started_wall),
        }


# ------------------------------------------------------------------------------------------ in process
def in_process(count: int, repeats: int) -> InProcess:
    """The validator against json.loads on the same payloads, best of `repeats` passes each."""
    rng, template = random.Random(42), lab_example()  # noqa: S311 (reproducible payloads, not secrets)
    products = [f"PRD-{k:04d}" for k in range(40)]
    texts = [to_wire(make_order(template, f"INPROC-{k:06d}", rng, products, 8)) for k in range(count)]
    validator, documents = OrderValidator(), [parse_json(text) for text in texts]
    for document in documents:
        validator.validate(document)  # every payload valid, or OrderRejected says why

    def best(run: Callable[[], object]) -> float:
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - started)
        return rate(count, min(seconds))

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
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    try:
        ministack: str | None = metadata.version("ministack")
    except metadata.PackageNotFoundError:
        ministack = None
    return Machine(
        nproc=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        cpu_count=os.cpu_count(),
        cpu_model=next(iter(models), platform.processor() or None),
        python=platform.python_version(),
        platform=platform.platform(),
        ministack=ministack,
        endpoint=os.environ["AWS_ENDPOINT_URL"],
    )


def ensure_sandbox(console: Console) -> MakeUp:
    """Use the running sandbox, or run `make up` (timed) when no emulator answers or it is not deployed."""
    emulator = [sys.executable, "-m", "sandbox.emulator", "status"]
    answering = subprocess.run(emulator, capture_output=True, check=False).returncode == 0
    if answering and OUTPUTS.exists():
        return MakeUp(measured=False, note="the sandbox was already running; `make down` first to time `make up`")
    if (make := shutil.which("make")) is None:
        raise BenchError("no emulator answers and `make` is not installed: run `make up` first")
    console.print(f"[bold]no {'deployed stack' if answering else 'emulator'}: running `make up`[/bold]")
    started = time.monotonic()
    if subprocess.run([make, "up"], cwd=ROOT, check=False).returncode != 0:
        raise BenchError("`make up` failed")
    what = "start, deploy and seed" if not answering else "deploy and seed (the emulator was already running)"
    seconds = round(time.monotonic() - started, 2)
    return MakeUp(measured=True, seconds=seconds, cold_start=not answering, note=f"make up: {what}")


# ------------------------------------------------------------------------------------------ report
def _at(document: Any, path: str | None) -> float | None:
    for key in (path or "-").split("."):
        document = document.get(key) if isinstance(document, dict) else None
    return float(document) if isinstance(document, int | float) else None


def ratios(result: BenchResult) -> dict[str, Ratio]:
    document, found = result.model_dump(), {}
    for name, (op, target, meaning) in TARGETS.items():
        figure, floor = FIGURES[name]
        value, below = _at(document, figure), _at(document, floor)
        if floor:
            value = round(value / below, 3) if value is not None and below else None
        met = None if value is None or target is None else (value >= target if op == ">=" else value <= target)
        found[name] = Ratio(value=value, target=f"{op} {target}" if op else None, met=met, meaning=meaning)
    return found


def _fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _table(console: Console, title: str, columns: list[str] | None, rows: Iterable[Iterable[str]]) -> None:
    """One table: the first column left, the others right (no header row when `columns` is None)."""
    table = Table(title=title, show_header=columns is not None)
    for k, column in enumerate(columns or ["", ""]):
        table.add_column(column, justify="right" if k and columns else "left")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def render(console: Console, result: BenchResult) -> None:
    m, up, api = result.machine, result.make_up, result.api
    machine_rows = [
        ("CPU", f"{m.cpu_model} ({m.nproc} usable of {m.cpu_count})"),
        ("Python / MiniStack", f"{m.python} / {m.ministack or 'not installed'}"),
        ("make up", f"{up.seconds} s ({up.note})" if up.measured else up.note),
    ]
    _table(console, f"bench {result.run_id}: machine", None, machine_rows)

    quantiles = ("p50", "p95", "p99")
    labels = [
        "accept orders/s",
        *(f"accept {q} (ms)" for q in quantiles),
        "retried POSTs (status: n)",
        "end-to-end orders/s",
        *(f"end-to-end {q} (s)" for q in quantiles),
        "  p50/p95/p99 by processed_at",
        "first POST to last final (s)",
    ]

    def column(r: dict[str, Any]) -> list[str]:
        if not r:
            return ["-"] * len(labels)
        accept, e2e, by_processed = r["accept"], r["e2e"], r["e2e"]["latency_processed_at_s"]
        return [
            _fmt(accept["throughput"]),
            *(_fmt(accept["latency_ms"][q]) for q in quantiles),
            ", ".join(f"{status}: {n}" for status, n in accept["retried_requests"].items()) or "none",
            _fmt(e2e["throughput"]),
            *(_fmt(e2e["latency_s"][q], 2) for q in quantiles),
            " / ".join(_fmt(float(by_processed[q]), 2) for q in quantiles) if by_processed else "-",
            _fmt(e2e["seconds"], 2),
        ]

    title = f"API path: {api.get('orders')} orders, {api.get('clients')} clients"
    _table(
        console,
        title,
        ["", "pipeline", "floor"],
        zip(labels, column(api), column(result.floors.get("api") or {}), strict=True),
    )

    lake, stages = result.datalake, result.datalake.get("stages") or {}
    if lake.get("skipped") is None:
        if stages.get("validator_timings"):
            split = [
                ("(a) read + validate", stages["read_and_validate_seconds"]),
                ("(b) claim + enqueue", stages["enqueue_seconds"]),
                ("    queue, report, other", stages["outside_validator_seconds"]),
            ]
        else:
            split = [("(a)+(b) upload to report", stages["read_and_validate_plus_enqueue_seconds"])]
        rows = [
            ("upload (put_object)", lake["upload_seconds"]),
            *split,
            ("(c) processing after the report", stages["processing_after_report_seconds"]),
            ("upload to every order final", lake["seconds"]),
        ]
        floor_rate = (result.floors.get("processing") or {}).get("rate")
        rates = [("rate (orders/s)", _fmt(lake["rate"])), ("processing floor rate (orders/s)", _fmt(floor_rate))]
        title = f"data-lake path: one file of {lake['orders']:,} orders ({lake['file_bytes'] / 1e6:.1f} MB)"
        _table(console, title, ["", "seconds"], [*((label, _fmt(v, 2)) for label, v in rows), *rates])
    if (inp := result.in_process) is not None:
        rows = [
            ("json.loads (text)", inp.json_loads_per_s),
            ("OrderValidator.validate (parsed)", inp.validate_per_s),
            ("parse_json + validate (text)", inp.parse_json_validate_per_s),
        ]
        title = f"in process: {inp.orders:,} orders of ~{inp.mean_payload_bytes} bytes"
        _table(console, title, ["", "orders/s"], ((label, _fmt(v, 0)) for label, v in rows))
    met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}
    targets = [(r.meaning, _fmt(r.value, 3), r.target or "(reported)", met[r.met]) for r in result.ratios.values()]
    _table(console, "targets", ["ratio", "value", "target", "met"], targets)
    for note in result.notes:
        console.print(f"note: {note}")


# ------------------------------------------------------------------------------------------ main
def parse_options(argv: list[str] | None = None) -> BenchOptions:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=None, help="orders through the API (default 2000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients (default 16)")
    parser.add_argument("--file-n", type=int, default=None, help="orders in the data-lake file (default 10000)")
    parser.add_argument("--skip-floors", action="store_true", help="do not create or measure the floors")
    parser.add_argument("--skip-datalake", action="store_true", help="do not measure the data-lake path")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for CI: n=30, file-n=60")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed for each wait (default 1200)")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    args = parser.parse_args(argv)
    quick = args.quick
    args.n = args.n if args.n is not None else (30 if quick else 2000)
    args.file_n = args.file_n if args.file_n is not None else (60 if quick else 10_000)
    if args.n < 2 or args.file_n < 2 or args.clients < 1:
        parser.error("--n and --file-n must be at least 2, --clients at least 1")
    args.timeout = args.timeout or (180.0 if quick else 1200.0)
    return BenchOptions.model_validate(vars(args) | {"in_process_n": 500 if quick else 2000})


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: the floors are deleted in `finally`


def run(options: BenchOptions, console: Console) -> BenchResult:
    started_wall, started = datetime.now(UTC), time.monotonic()
    make_up = ensure_sandbox(console)
    outputs = StackOutputs.read().as_dict()
    columns = TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    with Progress(*columns, console=console) as progress:
        bench = Bench(options, boto3.session.Session(), progress)
        result = BenchResult(
            run_id=bench.run_id,
            started_at=started_wall.isoformat(timespec="seconds"),
            options=options,
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
    result.notes = bench.notes + ([] if make_up.measured else [make_up.note])
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
