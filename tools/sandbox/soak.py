"""Soak the running sandbox with a mix of good, duplicate, invalid and poison input, then balance the books.

`make soak N=2000`: orders over a few scarce products arrive through the API (16 clients) and in data-lake files,
with duplicates, invalid orders, poison messages and restocks (some sent twice, and a restock file with a bad line)
mixed in. The checks (the keys of `checks` below) are those of docs/RELIABILITY.md. `make soak CHAOS=1` also runs
the chaos monkey (sandbox.chaos) from the first message until the restocks are released; the clients then retry a
5xx or a dropped connection as real ones do, and no order may stay `Recebido` longer than RECOVERY_SECONDS.
Exit status 0 only when the books balance. A summary is written to .sandbox/soak-last.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests

from orders.model import FINAL_STATUSES
from sandbox import state, views
from sandbox.chaos import ChaosMonkey, sandbox_root
from sandbox.dlq import PAIRS, peek
from sandbox.load import order_with, to_wire
from sandbox.notifications import drain, subscribe_queue
from sandbox.poll import TimedOut, wait_until
from sandbox.records import ChaosSummary, RestockBody, RestockLine, SoakResult, StackOutputs, StockBooks
from sandbox.seed import seed
from sandbox.views import Sandbox, wait_for_report
from service.adapters import DynamoStore
from service.adapters.table import plain
from service.keys import restock_pk

FINAL = frozenset(FINAL_STATUSES)
# How long an order may stay `Recebido` when workers are killed under it (docs/RELIABILITY.md, "Chaos").
RECOVERY_SECONDS = 120
CHAOS_INTERVAL = 2.0
SEED = 7  # the same mix of input every run
# A client's patience with a 5xx or a dropped connection: this many attempts, the waits doubling from the first
# (0.5 s to 16 s, about 30 s in all): longer than a short MiniStack failure storm, not than a long one (a worker that
# dies while it starts makes MiniStack kill every worker of that function; docs/RELIABILITY.md, "Chaos").
ATTEMPTS, FIRST_BACKOFF = 7, 0.5
PRICE = Decimal("12.50")  # every soak item's unit price: the books count units, not money
QUIET_SECONDS = 3  # the notifications are all in once none has come for this long


@dataclass
class Books:
    """What the clients and the stock sampler counted as the soak went; the stack's records are read at the end."""

    received: int = 0
    accepted: list[str] = field(default_factory=list)
    rejected: int = 0
    replayed: int = 0  # the same order sent again, answered 202 with "replayed": true (nothing new taken)
    files_with_rejections: int = 0
    retried_requests: int = 0
    given_up: list[str] = field(default_factory=list)
    min_available_seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, order_id: str, status: int) -> None:
        """An order counts as accepted at its first 202; a later 202 is a replay (a retry whose first try got no
        answer, or the same order sent again)."""
        self.received += 1
        if status != 202:
            self.rejected += 1
        elif order_id in self.accepted:
            self.replayed += 1
        else:
            self.accepted.append(order_id)


def _invalid(order: dict[str, Any], rng: random.Random, suffix: str) -> dict[str, Any]:
    broken = copy.deepcopy(order) | {"order_id": order["order_id"] + suffix}
    holder, key, value = rng.choice(
        [
            (broken["items"][0], "quantity", 0),
            (broken["customer"]["address"], "state", "XX"),
            (broken["customer"], "cpf", "123"),
            (broken["payment"], "amount", Decimal("0.01")),
        ]
    )
    holder[key] = value
    return broken


def _post(http: requests.Session, url: str, attempts: int, **kwargs: Any) -> tuple[int | None, int]:
    """POST the same body until something other than a 5xx answers: (its status or None, attempts unanswered)."""
    for attempt in range(attempts):
        if attempt:
            time.sleep(FIRST_BACKOFF * 2 ** (attempt - 1))
        with contextlib.suppress(requests.ConnectionError, requests.Timeout):
            response = http.post(url, timeout=60, **kwargs)
            if response.status_code < 500:
                return response.status_code, attempt
    return None, attempts


def _every(seconds: float, stop: threading.Event, action: Callable[[], object]) -> threading.Thread:
    """A started thread that calls `action` every `seconds` until `stop` is set."""

    def loop() -> None:
        while not stop.wait(seconds):
            action()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def run(
    n: int = 2000,
    clients: int = 16,
    timeout: float = 900,
    quiet: bool = False,
    chaos: bool = False,
    chaos_interval: float = CHAOS_INTERVAL,
) -> SoakResult:
    """Soak and balance the books; with `chaos`, kill Lambda workers meanwhile (the killing stops whatever happens)."""
    stop = threading.Event()
    try:
        result = _soak(stop, n, clients, timeout, quiet, chaos, chaos_interval)
    finally:
        stop.set()
    result.write()
    return result


def _soak(
    stop: threading.Event, n: int, clients: int, timeout: float, quiet: bool, chaos: bool, chaos_interval: float
) -> SoakResult:
    sandbox = Sandbox(StackOutputs.read())
    outputs, session = sandbox.outputs, sandbox.session
    rng = random.Random(SEED)  # noqa: S311 (reproducible test data, not secrets)
    sqs, db, cfn = sandbox.sqs, session.client("dynamodb"), session.client("cloudformation")
    # Made before anything is sent: the chaos monkey needs the embedded MiniStack this checkout started
    monkey = ChaosMonkey(sandbox_root(), state.stack_functions(cfn, outputs.StackName), seed=SEED) if chaos else None
    table, base = outputs.OrdersTable, outputs.ApiBaseUrl
    run_id = uuid.uuid4().hex[:6].upper()
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))

    def until(check: Callable[[], Any], what: str) -> None:  # the books say what did not happen in time
        with contextlib.suppress(TimedOut):
            wait_until(check, timeout=deadline - time.monotonic(), interval=0.5, what=what)

    # Given a few scarce products: a good part of the demand cannot be served
    products = [f"SOAK-{run_id}-P{k}" for k in range(5)]
    initial = {p: max(1, n // 3) for p in products}
    seed(session, table, [{"product_id": p, "description": "soak", "available": a} for p, a in initial.items()])
    inbox = subscribe_queue(session, f"soak-{run_id.lower()}", [outputs.ErrorTopicArn, outputs.PendingTopicArn])
    books = Books()
    orders = [
        order_with(
            f"SOAK-{run_id}-{i:06d}",
            [(p, rng.randint(1, 3), PRICE) for p in rng.sample(products, rng.randint(1, 3))],
            description="soak",
        )
        for i in range(n)
    ]
    api_orders, file_orders = orders[: n * 6 // 10], orders[n * 6 // 10 :]
    started = time.monotonic()

    def sample_stock() -> None:
        lowest = min(int(plain(item)["available"]) for item in state.products(db, table, products))
        books.min_available_seen = min(books.min_available_seen, lowest)

    # The sampler, and the chaos monkey, run until the restocks are released
    threads = [_every(0.2, stop, sample_stock)]
    if monkey:
        threads.append(_every(chaos_interval, stop, monkey.kill_one))
        say(f"  chaos: one worker of {', '.join(monkey.functions)} killed every {chaos_interval:g} s")

    # When poison messages go straight into the FIFO queue (first: their back-off runs while the rest arrives)
    poison_ids = [f"SOAK-{run_id}-POISON{k}" for k in range(max(1, n // 500))]
    for order_id in poison_ids:
        body = json.dumps({"order_id": order_id, "items": "poison"})
        sqs.send_message(
            QueueUrl=outputs.OrderQueueUrl, MessageBody=body, MessageGroupId=order_id, MessageDeduplicationId=order_id
        )

    # And orders arrive through the API, with duplicates and invalid ones mixed in, and restocks of the same
    # products meanwhile: each applied once, however often it is sent
    http = threading.local()
    attempts = ATTEMPTS if monkey else 1  # without chaos, a 5xx is a bug to show at once
    restocks = {
        f"SOAK-{run_id}-R{k:03d}": (products[k % len(products)], rng.randint(1, max(6, n // 40)))
        for k in range(max(10, n // 40))
    }
    restocked = Counter[str]()
    for product, quantity in restocks.values():
        restocked[product] += quantity

    def send(job: dict[str, Any] | str) -> None:
        """An order (a document) or a restock (its id, also its Idempotency-Key), POSTed and counted."""
        http.session = getattr(http, "session", None) or requests.Session()
        if restock := isinstance(job, str):
            product, quantity = restocks[job]
            what, path, body = job, f"/products/{product}/restock", RestockBody(quantity=quantity).model_dump_json()
        else:
            what, path, body = job["order_id"], "/orders", to_wire(job)
        headers = {"Content-Type": "application/json"} | ({"Idempotency-Key": job} if restock else {})
        status, unanswered = _post(http.session, base + path, attempts, data=body.encode(), headers=headers)
        with books.lock:
            books.retried_requests += 1 if unanswered else 0
            if status is None and monkey:
                books.given_up.append(what)
            elif status not in ((202,) if restock else (202, 400, 409)):
                raise RuntimeError(f"unexpected {status or '5xx or no answer'} for {'restock ' * restock}{what}")
            elif not restock:
                books.answered(what, status)

    def send_all(jobs: list[Any]) -> None:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(send, jobs))

    api_traffic: list[Any] = list(api_orders)
    api_traffic += [o for o in api_orders if rng.random() < 0.03]  # the same order again: a 202 replay
    api_traffic += [o | {"notes": "outro pedido, mesmo id"} for o in api_orders if rng.random() < 0.03]  # 409
    api_traffic += [_invalid(o, rng, "-BAD") for o in api_orders if rng.random() < 0.05]
    # Half the restocks come with the API orders, half once every order is final and many wait
    early, late = list(restocks)[: len(restocks) // 2], list(restocks)[len(restocks) // 2 :]
    api_traffic += early + [r for r in early if rng.random() < 0.3]  # some restocks sent twice
    rng.shuffle(api_traffic)
    say(
        f"soak {run_id}: {len(api_traffic)} API requests ({len(restocks)} restocks), {len(file_orders)} orders in "
        f"files, {len(poison_ids)} poison"
    )
    send_all(api_traffic)
    say(f"  API done in {time.monotonic() - started:.1f} s ({books.retried_requests} requests retried)")

    # And through data-lake files (JSON and JSON Lines), with invalid and duplicate lines
    report_keys: dict[str, str] = {}

    def upload(key: str, body: str) -> None:
        report_keys[key] = views.upload(sandbox, key, body.encode())[1]

    for start in range(0, len(file_orders), 250):
        chunk = list(file_orders[start : start + 250])
        chunk += [_invalid(o, rng, "-BADF") for o in chunk if rng.random() < 0.04]
        chunk += [o for o in chunk[:3] if rng.random() < 0.5]  # the same order twice in one file
        rng.shuffle(chunk)
        if (start // 250) % 2:
            upload(f"incoming/soak/{run_id}-{start:06d}.jsonl", "\n".join(to_wire(o) for o in chunk))
        else:
            upload(f"incoming/soak/{run_id}-{start:06d}.json", to_wire({"orders": chunk}))
    # And a restock file: one valid line per product, and a line that is not a restock
    restock_file = f"restock/soak/{run_id}.json"
    lines = [RestockLine(product_id=p, quantity=rng.randint(1, 5)) for p in products]
    restocked.update({line.product_id: line.quantity for line in lines})
    lines.insert(2, RestockLine(product_id=products[0], quantity=0))
    upload(restock_file, json.dumps([line.model_dump() for line in lines]))

    # Then every file gets its report (S3's waiter)
    deadline = time.monotonic() + timeout
    reports = {k: wait_for_report(sandbox, r, max(1.0, deadline - time.monotonic())) for k, r in report_keys.items()}
    if missing := [key for key, report in reports.items() if report is None]:
        raise SystemExit(f"the reports of {missing} did not arrive")
    restock_report = reports.pop(restock_file)
    restock_ids = list(restocks) + list(restock_report["accepted_restock_ids"])
    for report in reports.values():
        books.received += report["received"]
        books.accepted += report["accepted_order_ids"]
        books.rejected += report["rejected"]
        books.files_with_rejections += 1 if report["rejected"] or report["file_error"] else 0
    say(f"  files reported after {time.monotonic() - started:.1f} s")

    # Then every accepted order reaches a final state
    records: dict[str, dict[str, Any]] = {}

    def not_final() -> list[str]:
        accepted = sorted(set(books.accepted))
        records.update({record["order_id"]: record for record in map(plain, state.orders(db, table, accepted))})
        return [i for i in accepted if records.get(i, {}).get("order_status") not in FINAL]

    until(lambda: not not_final(), "orders final")
    lost = not_final()
    processed_at = time.monotonic() - started
    say(f"  orders final after {processed_at:.1f} s")
    send_all(late + [r for r in late if rng.random() < 0.3])

    # And every restock has run its release, and no request to look at a queue again is left. A restock given up
    # under chaos may never have been taken: it is not waited for (the books fail on it at once, not at the timeout)
    def unreleased() -> list[str]:
        done = {item["PK"]["S"] for item in state.restocks(db, table, restock_ids) if "released_at" in item}
        return [r for r in restock_ids if restock_pk(r) not in done and r not in books.given_up]

    calm = 0

    def calm_three_times() -> bool:
        nonlocal calm
        calm = calm + 1 if not unreleased() and not any(state.queue_depth(sqs, outputs.RestockQueueUrl)) else 0
        return calm >= 3

    until(calm_three_times, "restocks released")
    not_final()  # the records as the late restocks left them
    say(f"  restocks released after {time.monotonic() - started:.1f} s")
    stop.set()
    for thread in threads:
        thread.join()
    if monkey:
        say(f"  chaos stopped: {len(monkey.kills)} workers killed {monkey.kills_per_function()}")

    # Poison messages reach the orders DLQ (a few receives with back-off); nothing else of this run reaches any DLQ
    # (the dead letters of earlier runs stay where they are)
    markers = (f"SOAK-{run_id}", f"soak/{run_id}")
    dead: dict[str, dict[str, str]] = {queue: {} for queue in PAIRS}  # {queue: {message id: body}}

    def poison_in(body: str) -> set[str]:  # a poison message's body is its order_id, quoted (json.dumps)
        return {i for i in poison_ids if f'"{i}"' in body}

    def poison_dead() -> set[str]:
        for queue, (dlq, _source) in PAIRS.items():
            letters = peek(sqs, getattr(outputs, dlq))
            dead[queue].update({m["MessageId"]: m["Body"] for m in letters if any(k in m["Body"] for k in markers)})
        return set().union(*map(poison_in, dead["orders"].values()))

    until(lambda: poison_dead() >= set(poison_ids), "poison in the DLQ")
    dlq_ids = poison_dead()
    stray_dead = {queue: sum(not poison_in(body) for body in bodies.values()) for queue, bodies in dead.items()}

    # Books: the stock and the items as the table holds them, and the notifications (long-polled until quiet)
    items = [item for record in records.values() for item in record["items"]]
    units = Counter[tuple[str, str]]()
    for item in items:
        units[item["item_status"], item["product_id"]] += int(item["quantity"])
    pending_items = Counter(item["product_id"] for item in items if item["item_status"] == "Pendente")
    product_records = {r["product_id"]: r for r in map(plain, state.products(db, table, products))}
    stock = {p: StockBooks(initial=initial[p], restocked=restocked[p], **r) for p, r in product_records.items()}
    store = DynamoStore(db, table)
    head = {p: store.pending_queue(p, limit=1) for p in products}  # the oldest item waiting for each
    waited = {
        i for i, r in records.items() if any(e["status"] == "Produto Pendente" for e in r.get("status_history", []))
    }
    released = {i for i in waited if records[i]["order_status"] == "Novo Pedido"}
    envelopes: list[dict[str, Any]] = []
    while got := drain(session, inbox, wait_seconds=QUIET_SECONDS):
        envelopes += got
    sqs.delete_queue(QueueUrl=inbox)
    mine = [json.loads(e["Message"]) for e in envelopes]

    def notices(event: str, key: str, among: Any) -> list[Any]:
        return [m.get(key) for m in mine if m.get("event") == event and m.get(key) in among]

    released_notices = notices("order_released", "order_id", records)
    unique_accepted = set(books.accepted)

    def seconds_recebido(record: dict[str, Any]) -> float:  # from its claim until the processor decided it (or now)
        end = datetime.fromisoformat(record["processed_at"]) if "processed_at" in record else datetime.now(UTC)
        return (end - datetime.fromisoformat(record["received_at"])).total_seconds()

    recebido = {i: seconds_recebido(r) for i, r in records.items()}
    longest_received = max(recebido.values(), default=0.0)
    checks = {
        "no accepted order lost (all final)": not lost,
        "accepted ids are unique (no order taken twice)": len(unique_accepted) == len(books.accepted),
        "rejected + accepted + replayed = received": books.rejected + len(books.accepted) + books.replayed
        == books.received,
        "every valid order accepted once": unique_accepted == {o["order_id"] for o in orders},
        "poison messages all in the DLQ": dlq_ids == set(poison_ids),
        "available + reserved = initial + restocked, per product": all(
            s.available + s.reserved == s.initial + s.restocked for s in stock.values()
        ),
        "every restock released": not unreleased(),
        "restock file: bad line reported, the rest applied": (
            restock_report["rejected"],
            len(restock_report["accepted_restock_ids"]),
            len(notices("file_report", "key", {restock_file})),
        )
        == (1, len(products), 1),
        "no stock idle beside a waiting item it could serve": not any(
            head[p] and head[p][0].quantity <= stock[p].available for p in products
        ),
        "waiting = items Pendente, per product": all(
            int(product_records[p].get("waiting", 0)) == pending_items[p] for p in products
        ),
        "reserved = units of items Reservado": all(stock[p].reserved == units["Reservado", p] for p in products),
        "available never negative": books.min_available_seen >= 0 and all(s.available >= 0 for s in stock.values()),
        "pending notices = orders that waited": set(notices("order_pending", "order_id", records)) == waited,
        "file notices = files with rejections": len(notices("file_report", "key", reports))
        == books.files_with_rejections,
        "dead-letter notices = poison messages": len(set(notices("message_dead_lettered", "order_id", poison_ids)))
        == len(poison_ids),
        "nothing of this run in a DLQ but the poison": not any(stray_dead.values()),
    }
    if not monkey:
        checks["one order_released message per order released"] = sorted(released_notices) == sorted(released)
    else:
        # A worker killed between the publish and its clean-up repeats the message (told at least once, see
        # docs/RELIABILITY.md): under chaos a repeat is counted in the summary, not failed
        checks["an order_released message for every order released"] = set(released_notices) == released
        checks["every request answered (5xx and dropped connections retried)"] = not books.given_up
        checks[f"no order Recebido longer than {RECOVERY_SECONDS} s"] = longest_received <= RECOVERY_SECONDS
    return SoakResult(
        run_id=run_id,
        orders=n,
        received=books.received,
        accepted=len(books.accepted),
        rejected=books.rejected,
        replayed=books.replayed,
        final=len(unique_accepted) - len(lost),
        lost=len(lost),
        pending_orders=sum(1 for r in records.values() if r["order_status"] == "Produto Pendente"),
        restocks=len(restock_ids),
        released_orders=len(released),
        files=len(reports),
        files_with_rejections=books.files_with_rejections,
        poison=len(poison_ids),
        poison_in_dlq=len(dlq_ids),
        oversold_units=sum(max(0, s.reserved - s.initial - s.restocked) for s in stock.values())
        - min(0, books.min_available_seen),
        stock=stock,
        seconds_to_all_final=round(processed_at, 1),
        repeated_released_messages=len(released_notices) - len(set(released_notices)),
        retried_requests=books.retried_requests,
        given_up_requests=len(books.given_up),
        given_up=sorted(books.given_up),
        dead_letters_not_poison=stray_dead,
        recovery_limit_seconds=RECOVERY_SECONDS,
        longest_recebido_seconds=round(longest_received, 1),
        recebido_orders=len(recebido),
        orders_recebido_over_limit=sorted(i for i, s in recebido.items() if s > RECOVERY_SECONDS),
        chaos=None
        if monkey is None
        else ChaosSummary(
            interval_seconds=chaos_interval,
            kills=len(monkey.kills),
            kills_per_function=monkey.kills_per_function(),
            killed=monkey.kills,
        ),
        checks=checks,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="orders (default 2000)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the pipeline to settle")
    parser.add_argument("--chaos", action="store_true", help="kill random Lambda workers throughout")
    parser.add_argument("--chaos-interval", type=float, default=CHAOS_INTERVAL, help="seconds between two kills")
    args = parser.parse_args()
    result = run(args.n, args.clients, args.timeout, chaos=args.chaos, chaos_interval=args.chaos_interval)
    keys = ("received", "accepted", "rejected", "final", "lost", "pending_orders", "restocks", "released_orders")
    keys += ("files", "poison_in_dlq", "dead_letters_not_poison", "oversold_units")
    rows: list[tuple[str, Any]] = [(key, getattr(result, key)) for key in keys]
    rows.append(("longest Recebido", f"{result.longest_recebido_seconds} s (limit {RECOVERY_SECONDS} s)"))
    if result.chaos is not None:
        rows.append(("workers killed", f"{result.chaos.kills} {result.chaos.kills_per_function}"))
        rows.append(("requests retried", f"{result.retried_requests} (given up: {result.given_up_requests})"))
        if result.orders_recebido_over_limit:
            rows.append(("Recebido over limit", f"{len(result.orders_recebido_over_limit)} orders"))
    rows += [(product, numbers.model_dump()) for product, numbers in result.stock.items()]
    print("", *(f"  {label:<22} {value}" for label, value in rows), "", sep="\n")
    print(*(f"  [{'ok' if passed else 'FAIL'}] {check}" for check, passed in result.checks.items()), sep="\n")
    print("\nbooks balance" if result.ok else "\nBOOKS DO NOT BALANCE")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
