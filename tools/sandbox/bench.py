"""Benchmark the running sandbox against minimal reference pipelines ("floors") on the same emulator.

`make bench` (N=2000 C=16 FILE_N=10000) measures the API path (N orders by C clients: accept and end-to-end),
the data-lake path (one file of FILE_N orders, by stage), the floors (bench_floors/floors.yaml, a minimal
API -> Lambda -> DynamoDB + FIFO -> Lambda stack deployed for the run and deleted again) under the same load, and
the order validator against json.loads in process. It prints tables, writes bench/results/<time>-<run>.json and
latest.json, and draws them (.png beside each). It fails only when it cannot measure (an order never final, a
floor not created). docs/PERFORMANCE.md explains every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import timeit
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager, nullcontext, suppress
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

from orders.model import FINAL_STATUSES
from orders.report import report_key
from orders.validation import OrderValidator, parse_json
from sandbox.aws import OUTPUTS, ROOT, default_environment
from sandbox.deploy.core import api_base_url, build_zip, request_token, settle
from sandbox.deploy.core import wait as wait_for
from sandbox.deploy.local import upload_code
from sandbox.emulator import answering
from sandbox.load import order_with, to_wire
from sandbox.poll import TimedOut, wait_until
from sandbox.records import BenchOptions, BenchResult, InProcess, Machine, MakeUp, Ratio, StackOutputs
from sandbox.seed import seed
from sandbox.state import orders as read_orders
from sandbox.state import queue_depth, stack_functions

FLOORS = Path(__file__).with_name("bench_floors")  # the floors' template and their Lambda code
UFS = "AC AL AP AM BA CE DF ES GO MA MT MS MG PA PB PR PE PI RJ RN RS RO RR SC SP SE TO".split()
PRICES = [Decimal(p) for p in ("0.99", "12.50", "99.90", "150.00", "2500.00", "37.45")]
TARGETS = {  # docs/PERFORMANCE.md's ratios (issue 13 raised two): a figure over the floor's, and the target
    "api_e2e_throughput": ("api.e2e.throughput", "floors.api.e2e.throughput", ">= 1.0"),
    "api_accept_p99": ("api.accept.latency_ms.p99", "floors.api.accept.latency_ms.p99", "<= 1.25"),
    "datalake_vs_processing_floor": ("datalake.rate", "floors.processing.rate", ">= 0.80"),
    "validator_vs_json_loads": ("in_process.validate_vs_json_loads", None, ">= 0.50"),
    "parse_validate_vs_json_loads": ("in_process.parse_validate_vs_json_loads", None, None),
}


class BenchError(Exception):
    """The bench could not measure something (an order never final, a file never reported)."""


# ------------------------------------------------------------------------------------------ orders, numbers
def make_order(order_id: str, rng: random.Random, products: list[str], max_lines: int) -> dict[str, Any]:
    """A valid order shaped like the lab's example, with varied lines, optional fields, formats and amounts."""
    chosen = rng.sample(products, rng.randint(1, min(max_lines, len(products))))
    order = order_with(order_id, [(p, rng.randint(1, 3), rng.choice(PRICES)) for p in chosen])
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


def percentiles(values: list[float], digits: int = 3) -> list[float]:
    """p0 to p100 (101 values, interpolated between closest ranks): the distribution the picture draws."""
    if len(values) < 2:  # statistics.quantiles needs two points before Python 3.13
        return [round(sum(values), digits)] * 101
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [round(v, digits) for v in (min(values), *cuts, max(values))]


def distribution(values: list[float], digits: int = 3) -> dict[str, float | int]:
    curve = percentiles(values, digits)
    mean = round(statistics.fmean(values), digits) if values else 0.0
    return {"count": len(values), "p50": curve[50], "p95": curve[95], "p99": curve[99], "max": curve[100], "mean": mean}


def per_second(offsets: list[float]) -> list[int]:
    """Orders final in each second from the start (`offsets` in seconds): the throughput the picture draws."""
    counts = Counter(int(t) for t in offsets)
    return [counts[k] for k in range(int(max(offsets, default=0)) + 1)]


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else 0.0


# ------------------------------------------------------------------------------------------ what a run records
@dataclass
class Posted:
    """One order's POST: the first attempt's start (wall and monotonic) and the accepted attempt."""

    order_id: str
    first_wall: float
    first_mono: float
    start_mono: float = 0.0
    end_mono: float = 0.0
    retried_statuses: list[int] = field(default_factory=list)


@dataclass
class Finals:
    """The orders a watch reads (`ids`, appended as they are accepted) and when each was first seen final."""

    ids: list[str] = field(default_factory=list)
    seen: dict[str, tuple[float, str, str | None]] = field(default_factory=dict)  # id -> (monotonic, status, at)

    def offsets(self, start: float) -> list[float]:
        """Seconds from `start` (monotonic) to each order's final state."""
        return [seen - start for seen, _, _ in self.seen.values()]


# ------------------------------------------------------------------------------------------ runs
class Bench:
    def __init__(self, options: BenchOptions, session: boto3.session.Session, progress: Progress) -> None:
        self.options, self.session, self.progress = options, session, progress
        self.run_id = uuid.uuid4().hex[:8].upper()
        self.products = [f"BENCH-{self.run_id}-P{k}" for k in range(10)]
        self.notes: list[str] = []

    def orders(self, tag: str, count: int, shapes_of: str) -> list[tuple[str, str]]:
        """(order_id, wire body): fresh ids; the same `shapes_of` gives a floor the pipeline's orders."""
        shapes = random.Random(f"{shapes_of}-{count}")  # noqa: S311 (reproducible shapes, not secrets)
        ids = [f"BENCH-{self.run_id}-{tag}-{k:06d}" for k in range(count)]
        return [(i, to_wire(make_order(i, shapes, self.products, 3))) for i in ids]

    def seed_products(self, table: str) -> None:
        stock = [{"product_id": p, "description": "bench", "available": 10**9} for p in self.products]
        seed(self.session, table, stock)

    @contextmanager
    def watching(self, label: str, table: str, count: int, window: int | None = None) -> Iterator[Finals]:
        """Timestamps each order's final state while the block runs; then waits for all `count`.

        A thread reads the pending orders (BatchGetItem, rounds ~100 ms apart). `window` bounds a round to the
        oldest pending ones (a file's orders are processed roughly in order), so watching 10,000 orders does not
        flood the emulator with reads.
        """
        db, finals, halt = self.session.client("dynamodb"), Finals(), threading.Event()
        names = {"#i": "order_id", "#s": "order_status", "#p": "processed_at"}
        task = self.progress.add_task(f"{label}: final", total=count)

        def watch() -> None:  # the only writer of `seen`; `ids` only grow
            pending: dict[str, None] = {}  # insertion-ordered; every id taken from `ids` is pending or seen
            while not halt.is_set():
                started = time.monotonic()
                pending.update(dict.fromkeys(finals.ids[len(pending) + len(finals.seen) :]))
                found = read_orders(
                    db, table, list(pending)[:window], ProjectionExpression="#i, #s, #p", ExpressionAttributeNames=names
                )
                now = time.monotonic()
                for item in found:
                    if (status := item.get("order_status", {}).get("S")) in FINAL_STATUSES:
                        order_id = item["order_id"]["S"]
                        finals.seen.setdefault(order_id, (now, status, item.get("processed_at", {}).get("S")))
                        pending.pop(order_id, None)
                halt.wait(0.1 - (time.monotonic() - started))  # a long round starts the next at once

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-watcher") as pool:
            watcher = pool.submit(watch)

            def all_final() -> bool:
                if watcher.done():  # it stops before `halt` only when a read failed
                    error = watcher.exception()
                    raise BenchError(f"{label}: reading the table failed: {error!r}") from error
                self.progress.update(task, completed=len(finals.seen))
                return len(finals.seen) >= count

            try:
                yield finals
                wait_until(all_final, timeout=self.options.timeout, interval=0.05, what=label)
            except TimedOut:
                missing = [order_id for order_id in finals.ids if order_id not in finals.seen][:5]
                raise BenchError(
                    f"{label}: only {len(finals.seen)} of {count} orders final before the deadline; "
                    f"still waiting for e.g. {missing}; is the consumer's event-source mapping enabled?"
                ) from None
            finally:
                halt.set()

    def post_until_final(self, label: str, url: str, table: str, bodies: list[tuple[str, str]]):
        """POST every body with C threads, watched until final; retry 429/5xx with back-off (a throttled order is
        not taken)."""
        posting = self.progress.add_task(f"{label}: POST /orders", total=len(bodies))
        local, stop, deadline = threading.local(), threading.Event(), time.monotonic() + self.options.timeout

        def post(order_id: str, body: str, finals: Finals) -> Posted:
            local.http = getattr(local, "http", None) or requests.Session()
            posted, delay = Posted(order_id, time.time(), time.monotonic()), 0.05
            while not stop.is_set():
                if time.monotonic() > deadline:
                    last = posted.retried_statuses
                    raise BenchError(f"order {order_id} not accepted before the deadline; last: {last}")
                posted.start_mono = time.monotonic()
                try:
                    response = local.http.post(
                        url, data=body.encode(), headers={"Content-Type": "application/json"}, timeout=30
                    )
                except requests.RequestException as exc:
                    posted.retried_statuses.append(0)
                    if len(posted.retried_statuses) > 5:
                        raise BenchError(f"POST {order_id}: {exc!r}") from exc
                else:
                    posted.end_mono, status = time.monotonic(), response.status_code
                    # 409 after a failed attempt: that attempt reached the function and took the order.
                    if status == 202 or (status == 409 and posted.retried_statuses):
                        finals.ids.append(order_id)
                        self.progress.advance(posting)
                        return posted
                    if status not in {429, 502, 503, 504}:
                        raise BenchError(f"POST {order_id}: HTTP {status} {response.text[:300]}")
                    posted.retried_statuses.append(status)
                stop.wait(delay * (0.5 + random.random()))  # noqa: S311 (jitter, not a secret)
                delay = min(delay * 2, 1.0)
            raise BenchError("stopped")

        with self.watching(label, table, len(bodies)) as finals:
            pool = ThreadPoolExecutor(max_workers=self.options.clients, thread_name_prefix="bench-post")
            try:
                posted = [f.result() for f in as_completed([pool.submit(post, *body, finals) for body in bodies])]
            except BaseException:  # a worker's BenchError, or Ctrl-C: stop the others
                stop.set()
                raise
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
        return posted, finals

    def api_load(self, label: str, url: str, table: str, tag: str) -> dict[str, Any]:
        """N orders by C clients after a warm-up of 2 x C orders, which starts C execution environments of each
        function so neither the pipeline nor the floor pays its cold starts inside the measurement."""
        warmup = self.orders(f"{tag}W", 2 * self.options.clients, "warm")
        self.post_until_final(f"{label} warm-up", url, table, warmup)
        posted, finals = self.post_until_final(label, url, table, self.orders(tag, self.options.n, "api"))
        first, last_accept = min(p.first_mono for p in posted), max(p.end_mono for p in posted)
        offsets = finals.offsets(first)
        by_id = {p.order_id: p for p in posted}
        accept_ms = [1000 * (p.end_mono - p.start_mono) for p in posted]
        e2e_s = [seen - by_id[i].first_mono for i, (seen, _, _) in finals.seen.items()]
        processed = [  # processed_at is the processor's wall clock: no polling error
            datetime.fromisoformat(at).timestamp() - by_id[i].first_wall for i, (_, _, at) in finals.seen.items() if at
        ]
        retries = Counter(s for p in posted for s in p.retried_statuses)
        return {
            "orders": self.options.n,
            "clients": self.options.clients,
            "warmup_orders": len(warmup),
            "accept": {
                "window_seconds": round(last_accept - first, 3),
                "throughput": rate(len(posted), last_accept - first),
                "latency_ms": distribution(accept_ms, 1),
                "latency_with_retries_ms": distribution([1000 * (p.end_mono - p.first_mono) for p in posted], 1),
                "retried_requests": {str(s): retries[s] for s in sorted(retries)},
            },
            "e2e": {
                "seconds": round(max(offsets), 3),
                "throughput": rate(self.options.n, max(offsets)),
                "latency_s": distribution(e2e_s),
                "latency_processed_at_s": distribution(processed),
                "final_statuses": dict(Counter(status for _, status, _ in finals.seen.values())),
            },
            "curves": {
                "accept_ms": percentiles(accept_ms, 1),
                "e2e_s": percentiles(e2e_s),
                "final_per_second": per_second(offsets),
            },
        }

    # -------------------------------------------------------------------- 1. API path
    def api_path(self, outputs: dict[str, str]) -> dict[str, Any]:
        self.seed_products(outputs["OrdersTable"])
        result = self.api_load("pipeline API", f"{outputs['ApiBaseUrl']}/orders", outputs["OrdersTable"], "API")
        if result["e2e"]["final_statuses"].get("Produto Pendente"):
            self.notes.append("some pipeline orders ended Produto Pendente: the bench's stock was not ample")
        if throttled := result["accept"]["retried_requests"].get("429"):
            self.notes.append(
                f"the pipeline's API stage throttled {throttled} requests (429, retried): its throttling limits "
                "cap the API figures; the floor has none"
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
        with self.watching(label, outputs["OrdersTable"], len(orders), window=200) as finals:
            finals.ids.extend(order_id for order_id, _ in orders)
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
        seconds, until_report, timings = max(finals.offsets(uploaded)), report_seen - uploaded, report["timings"]
        return {
            "orders": len(orders),
            "file_bytes": len(body),
            "key": report["key"],
            "upload_seconds": round(uploaded - started, 3),
            "seconds": round(seconds, 3),
            "rate": rate(len(orders), seconds),
            "stages": {  # the file validator's own clock, and the bench's around it
                "validator_timings": timings,
                "read_and_validate_seconds": round(timings["read_seconds"] + timings["validate_seconds"], 3),
                "enqueue_seconds": round(timings["claim_seconds"] + timings["enqueue_seconds"], 3),
                "outside_validator_seconds": round(until_report - sum(timings.values()), 3),
                "read_and_validate_plus_enqueue_seconds": round(until_report, 3),
                "processing_after_report_seconds": round(seconds - until_report, 3),
                "report_last_modified": modified.isoformat() if modified else None,  # whole seconds in S3
            },
            "curves": {"final_per_second": per_second(finals.offsets(uploaded))},
        }

    # -------------------------------------------------------------------- 3. floors
    def processing_floor(self, floor: dict[str, str], count: int) -> dict[str, Any]:
        """The floor consumer's rate alone: FILE_N orders queued first (mapping disabled), then drained."""
        lam, sqs = self.session.client("lambda"), self.session.client("sqs")
        queue, mapping = floor["QueueUrl"], floor["Mapping"]
        lam.update_event_source_mapping(UUID=mapping, Enabled=False)
        wait_until(lambda: not any(queue_depth(sqs, queue)), timeout=self.options.timeout, what="floor queue drained")
        orders = self.orders("FPROC", count, "file")
        task = self.progress.add_task("processing floor: queue", total=count)

        def send(chunk: list[tuple[str, str]]) -> None:
            entries = [
                {"Id": str(k), "MessageBody": body, "MessageGroupId": order_id, "MessageDeduplicationId": order_id}
                for k, (order_id, body) in enumerate(chunk)
            ]
            if failed := sqs.send_message_batch(QueueUrl=queue, Entries=entries).get("Failed", []):
                raise BenchError(f"floor queue refused {len(failed)} messages: {failed[0]}")
            self.progress.advance(task, len(chunk))

        filling = time.monotonic()
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="bench-fill") as pool:
            list(pool.map(send, [orders[k : k + 10] for k in range(0, count, 10)]))
        filled = time.monotonic() - filling
        with self.watching("processing floor", floor["Table"], count, window=200) as finals:
            finals.ids.extend(order_id for order_id, _ in orders)
            started = time.monotonic()
            lam.update_event_source_mapping(UUID=mapping, Enabled=True)
        seconds = max(finals.offsets(started))
        return {
            "orders": count,
            "queue_fill_seconds": round(filled, 3),
            "seconds": round(seconds, 3),
            "rate": rate(count, seconds),
            "curves": {"final_per_second": per_second(finals.offsets(started))},
        }


@contextmanager
def floor_stack(bench: Bench, stack_name: str) -> Iterator[dict[str, str]]:
    """bench_floors/floors.yaml as a stack of its own (its code in the sandbox's artifact bucket), seeded; its
    outputs and URL while the block runs, deleted on exit whatever happens (an error, Ctrl-C, SIGTERM)."""
    cfn, name = bench.session.client("cloudformation"), f"bench-floor-{bench.run_id.lower()}"
    artifacts = upload_code(bench.session, stack_name, build_zip(FLOORS))
    try:
        parameters = {"ArtifactBucket": artifacts.bucket, "ArtifactKey": artifacts.code_key}
        token = request_token("bench-floor")
        created = cfn.create_stack(
            StackName=name,
            TemplateBody=(FLOORS / "floors.yaml").read_text("utf-8"),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            ClientRequestToken=token,
        )
        final = settle(cfn, created["StackId"], token, "stack_create_complete", delay=0.1, timeout=120, show=False)
        floor = {o["OutputKey"]: o["OutputValue"] for o in final.get("Outputs", [])}
        bench.seed_products(floor["Table"])
        yield floor | {"Url": api_base_url(floor, os.environ["AWS_ENDPOINT_URL"]) + "/orders"}
    finally:
        # MiniStack's CloudFormation forgets a deleted function but leaves its warm workers running (1.5.33);
        # deleting the functions through the Lambda API first stops them.
        with suppress(BotoCoreError, ClientError):
            lam = bench.session.client("lambda")
            for function in stack_functions(cfn, name):
                lam.delete_function(FunctionName=function)
        with suppress(BotoCoreError, ClientError):
            cfn.delete_stack(StackName=name)
        if stopped := wait_for(cfn, "stack_delete_complete", delay=0.1, timeout=120, StackName=name):
            print(f"bench: floor stack {name} not deleted: {stopped}", file=sys.stderr)


# ------------------------------------------------------------------------------------------ in process
def in_process(count: int, repeats: int) -> InProcess:
    """The validator against json.loads on the same payloads, best of `repeats` passes each."""
    rng = random.Random(42)  # noqa: S311 (reproducible payloads, not secrets)
    products = [f"PRD-{k:04d}" for k in range(40)]
    texts = [to_wire(make_order(f"INPROC-{k:06d}", rng, products, 8)) for k in range(count)]
    validator, documents = OrderValidator(), [parse_json(text) for text in texts]
    for document in documents:
        validator.validate(document)  # every payload valid, or OrderRejected says why

    def best(run: Callable[[], object]) -> float:  # with the garbage collector on, as in the Lambdas
        return rate(count, min(timeit.repeat(run, "import gc; gc.enable()", number=1, repeat=repeats)))

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
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text() if cpuinfo.exists() else "", re.MULTILINE)
    return Machine(
        nproc=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        cpu_count=os.cpu_count(),
        cpu_model=model[1].strip() if model else platform.processor() or None,
        python=platform.python_version(),
        platform=platform.platform(),
        ministack=metadata.version("ministack"),  # a dependency of the environment the bench runs in
        endpoint=os.environ["AWS_ENDPOINT_URL"],
    )


def ensure_sandbox(console: Console) -> MakeUp:
    """Use the running sandbox, or run `make up` (timed) when no emulator answers or it is not deployed."""
    if (running := answering()) and OUTPUTS.exists():
        return MakeUp(measured=False, note="the sandbox was already running; `make down` first to time `make up`")
    if (make := shutil.which("make")) is None:
        raise BenchError("no emulator answers and `make` is not installed: run `make up` first")
    console.print(f"[bold]no {'deployed stack' if running else 'emulator'}: running `make up`[/bold]")
    started = time.monotonic()
    if subprocess.run([make, "up"], cwd=ROOT, check=False).returncode != 0:
        raise BenchError("`make up` failed")
    what = "deploy and seed (the emulator was already running)" if running else "start, deploy and seed"
    seconds = round(time.monotonic() - started, 2)
    return MakeUp(measured=True, seconds=seconds, cold_start=not running, note=f"make up: {what}")


# ------------------------------------------------------------------------------------------ report
QUANTILES = ("p50", "p95", "p99")
API_ROWS = [  # label, the figure's path in a run of the API path (the pipeline's and the floor's)
    ("accept orders/s", "accept.throughput"),
    *((f"accept {q} (ms)", f"accept.latency_ms.{q}") for q in QUANTILES),
    ("retried POSTs (status: n)", "accept.retried_requests"),
    ("end-to-end orders/s", "e2e.throughput"),
    *((f"end-to-end {q} (s)", f"e2e.latency_s.{q}") for q in QUANTILES),
    *((f"  {q} by processed_at (s)", f"e2e.latency_processed_at_s.{q}") for q in QUANTILES),
    ("first POST to last final (s)", "e2e.seconds"),
]
TABLES = {  # title (formatted with the result), columns, rows: a label and each column's figure's path in the result
    "API path: {options[n]} orders, {options[clients]} clients": (
        ["", "pipeline", "floor"],
        [(label, f"api.{path}", f"floors.api.{path}") for label, path in API_ROWS],
    ),
    "data-lake path: one file of {options[file_n]} orders": (
        ["", ""],
        [
            ("upload (put_object), s", "datalake.upload_seconds"),
            ("(a) read + validate, s", "datalake.stages.read_and_validate_seconds"),
            ("(b) claim + enqueue, s", "datalake.stages.enqueue_seconds"),
            ("    queue, report, other, s", "datalake.stages.outside_validator_seconds"),
            ("(c) processing after the report, s", "datalake.stages.processing_after_report_seconds"),
            ("upload to every order final, s", "datalake.seconds"),
            ("rate, orders/s", "datalake.rate"),
            ("processing floor rate, orders/s", "floors.processing.rate"),
        ],
    ),
    "in process, orders/s": (
        ["", ""],
        [
            ("json.loads (text)", "in_process.json_loads_per_s"),
            ("OrderValidator.validate (parsed)", "in_process.validate_per_s"),
            ("parse_json + validate (text)", "in_process.parse_json_validate_per_s"),
        ],
    ),
    "targets": (
        ["ratio", "value", "target", "met"],
        [(name, f"ratios.{name}.value", f"ratios.{name}.target", f"ratios.{name}.met") for name in TARGETS],
    ),
}


def _at(document: Any, path: str) -> Any:
    """The figure at a dotted path of a result's dump, or None where a section was skipped."""
    for key in path.split("."):
        document = document.get(key) if isinstance(document, dict) else None
    return document


def ratios(result: BenchResult) -> dict[str, Ratio]:
    document, found = result.model_dump(), {}
    for name, (figure, floor, target) in TARGETS.items():
        value, below = _at(document, figure), _at(document, floor) if floor else 1
        value = round(value / below, 3) if isinstance(value, int | float) and below else None
        met = None
        if value is not None and target is not None:
            op, bound = target.split()
            met = value >= float(bound) if op == ">=" else value <= float(bound)
        found[name] = Ratio(value=value, target=target, met=met, meaning=f"{figure} / {floor}" if floor else figure)
    return found


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "[green]yes[/green]" if value else "[red]no[/red]"
    if isinstance(value, dict):  # retried requests by status
        return ", ".join(f"{status}: {n}" for status, n in value.items()) or "none"
    if isinstance(value, float):
        return f"{value:,.{0 if abs(value) >= 1000 else 2 if abs(value) >= 1 else 3}f}"
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def render(console: Console, result: BenchResult) -> None:
    """The tables, read from the result as it was written: each cell a figure of it ("-" where none)."""
    document, m, up = result.model_dump(), result.machine, result.make_up
    machine = f"{m.cpu_model} ({m.nproc} usable of {m.cpu_count} CPUs), Python {m.python}, MiniStack {m.ministack}"
    console.print(f"bench {result.run_id}: {machine}" + (f"; {up.note} in {up.seconds} s" if up.measured else ""))
    for title, (columns, rows) in TABLES.items():
        table = Table(title=title.format(**document), show_header=any(columns))
        for k, column in enumerate(columns):
            table.add_column(column, justify="right" if k else "left")
        for label, *paths in rows:
            table.add_row(label, *(_fmt(_at(document, path)) for path in paths))
        console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")


def draw(result: BenchResult, path: Path) -> Path:
    """The run as a picture: orders final per second over time and the latency distributions, pipeline and floor."""
    from matplotlib.figure import Figure  # imported here: about a second, and only the picture needs it

    figure = Figure(figsize=(13, 8.5), layout="constrained")
    (api_rate, lake_rate), (accept, e2e) = figure.subplots(2, 2)
    sections = {
        "pipeline": (api_rate, result.api),
        "floor": (api_rate, result.floors.get("api")),
        "data-lake file": (lake_rate, result.datalake),
        "processing floor": (lake_rate, result.floors.get("processing")),
    }
    for label, (axes, section) in sections.items():
        if curves := (section or {}).get("curves"):
            axes.stairs(curves["final_per_second"], label=label)  # one step per second
            for distribution_axes, curve in ((accept, "accept_ms"), (e2e, "e2e_s")):
                if curve in curves:
                    distribution_axes.plot(curves[curve], range(101), label=label)
    o, m = result.options, result.machine
    for axes, title, x in (
        (api_rate, f"API: orders final per second ({o.n} orders, {o.clients} clients)", "s since the first POST"),
        (lake_rate, f"data lake: orders final per second (a file of {o.file_n})", "s since the upload (or enable)"),
        (accept, "API accept latency (202), distribution", "ms"),
        (e2e, "API end-to-end latency (POST to final), distribution", "s"),
    ):
        axes.set(title=title, xlabel=x, ylabel="percentile" if axes in (accept, e2e) else "orders/s")
        axes.grid(alpha=0.3)
        if axes.has_data():
            axes.legend()
    figure.suptitle(
        f"bench {result.run_id}, {result.started_at}: {m.cpu_model} ({m.nproc} CPUs), MiniStack {m.ministack}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


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
    parser.add_argument("--picture-to", type=Path, help="also write the picture here (docs/img/bench-latest.png)")
    parser.add_argument("--plot", type=Path, metavar="RESULT.json", help="only draw RESULT.png from a results file")
    args = parser.parse_args(argv)
    quick = {"n": 30, "file_n": 60, "timeout": 180.0, "in_process_n": 500}  # a smoke run
    sizes = quick if args.quick else {"n": 2000, "file_n": 10_000, "timeout": 1200.0, "in_process_n": 2000}
    options = BenchOptions.model_validate(sizes | {k: v for k, v in vars(args).items() if v is not None})
    if options.n < 2 or options.file_n < 2 or options.clients < 1:
        parser.error("--n and --file-n must be at least 2, --clients at least 1")
    return options


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
        progress.console.print(f"bench {bench.run_id}: in-process validator ({options.in_process_n} orders)")
        result.in_process = in_process(options.in_process_n, repeats=3 if options.quick else 5)
        result.api = bench.api_path(outputs)
        result.floors = {"skipped": True} if options.skip_floors else {}
        result.datalake = {"skipped": True} if options.skip_datalake else {}
        floors_started = time.monotonic()
        with nullcontext() if options.skip_floors else floor_stack(bench, outputs["StackName"]) as floor:
            if floor is not None:
                setup = {"setup_seconds": round(time.monotonic() - floors_started, 3)}
                progress.console.print(f"floors created in {setup['setup_seconds']:.1f} s")
                result.floors["api"] = bench.api_load("floor API", floor["Url"], floor["Table"], "FAPI") | setup
            if not options.skip_datalake:
                result.datalake = bench.datalake_path(outputs)
            if floor is not None:
                result.floors["processing"] = bench.processing_floor(floor, options.file_n)
    result.ratios = ratios(result)
    result.notes = bench.notes + ([] if make_up.measured else [make_up.note])
    result.duration_seconds = round(time.monotonic() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    console = Console()
    if options.plot is not None:  # draw a results file again, nothing measured
        picture = draw(BenchResult.read(options.plot), options.plot.with_suffix(".png"))
    else:
        default_environment()
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # cleans up like Ctrl-C: the floor stack's `finally`
        try:
            result = run(options, console)
        except (BenchError, SystemExit, TimedOut) as exc:  # SystemExit: no outputs, or no floor stack (settle)
            if isinstance(exc, SystemExit) and not isinstance(exc.code, str):
                raise
            console.print(f"[red]bench failed:[/red] {exc}")
            return 1
        except KeyboardInterrupt:
            console.print("[yellow]bench interrupted; the floor stack it had created is deleted[/yellow]")
            return 130
        path = result.write(options.results_dir)
        render(console, result := BenchResult.read(path))
        picture = draw(result, path.with_suffix(".png"))
        shutil.copyfile(picture, options.results_dir / "latest.png")
        console.print(f"results: {path} (and latest.json)")
    if options.picture_to is not None:
        options.picture_to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, options.picture_to)
    console.print(f"picture: {picture}" + (f", {options.picture_to}" if options.picture_to else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
