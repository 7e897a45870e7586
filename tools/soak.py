"""Soak the running sandbox with a mix of good, duplicate, invalid and poison input, then balance the books.

`make soak N=2000` (default 2,000 orders): orders over a few scarce products arrive through the API
(16 concurrent clients) and through data-lake files; duplicates, invalid orders and poison messages are
mixed in, and restocks of the same products arrive meanwhile (through the API, some sent twice with the same
Idempotency-Key, and in a restock file with a bad line). At the end it checks, and prints:
  - every unique valid order is in a final state (or, for poison, in a dead-letter queue, counted);
  - rejected + accepted = received;
  - for each product, initial available + restocked = final available + reserved, and reserved = units of
    items Reservado (each restock applied once);
  - available never went negative (sampled throughout);
  - no stock sits beside a waiting item it could serve (the oldest waiting item does not fit), and `waiting`
    counts the items Pendente;
  - notifications = orders that waited + files with rejections (+ one dead-letter notice per poison message),
    and one order_released message per order released by a restock.
Exit status 0 only when the books balance. A summary is written to .sandbox/soak-last.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
import requests
from notifications import drain, subscribe_queue
from sandbox import ROOT, SANDBOX, load_outputs

from seed import seed

sys.path.insert(0, str(ROOT / "functions"))

from orders.report import report_key  # noqa: E402  (the domain package lives in functions/)

FINAL = {"Novo Pedido", "Produto Pendente"}


@dataclass
class Books:
    received: int = 0
    accepted: list[str] = field(default_factory=list)
    rejected: int = 0
    files_with_rejections: int = 0
    poison: list[str] = field(default_factory=list)
    min_available_seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _order(template: dict[str, Any], order_id: str, lines: list[tuple[str, int]]) -> dict[str, Any]:
    order = copy.deepcopy(template)
    order["order_id"] = order_id
    order["items"] = [{"product_id": p, "quantity": q, "unit_price": 12.5} for p, q in lines]
    order["payment"]["amount"] = float(sum(Decimal("12.5") * q for _, q in lines))
    return order


def _invalid(order: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    broken = copy.deepcopy(order)
    kind = rng.choice(["quantity", "state", "cpf", "amount"])
    if kind == "quantity":
        broken["items"][0]["quantity"] = 0
    elif kind == "state":
        broken["customer"]["address"]["state"] = "XX"
    elif kind == "cpf":
        broken["customer"]["cpf"] = "123"
    else:
        broken["payment"]["amount"] = 0.01
    return broken


def run(
    n: int = 2000, clients: int = 16, seed_value: int = 7, timeout: float = 900, quiet: bool = False
) -> dict[str, Any]:
    rng = random.Random(seed_value)  # noqa: S311 (reproducible test data, not secrets)
    outputs = load_outputs()
    session = boto3.session.Session()
    s3, sqs, db = session.client("s3"), session.client("sqs"), session.client("dynamodb")
    base = outputs["ApiBaseUrl"]
    run_id = uuid.uuid4().hex[:6].upper()
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))

    # Given a few scarce products: a good part of the demand cannot be served
    products = [f"SOAK-{run_id}-P{k}" for k in range(5)]
    initial = {p: max(1, n // 3) for p in products}
    seed(
        session,
        outputs["OrdersTable"],
        [{"product_id": p, "description": "soak", "available": a} for p, a in initial.items()],
    )
    inbox = subscribe_queue(session, f"soak-{run_id.lower()}", [outputs["ErrorTopicArn"], outputs["PendingTopicArn"]])
    template = json.loads((ROOT / "seed" / "orders" / "lab-example.json").read_text("utf-8"))
    books = Books()
    orders = [
        _order(
            template,
            f"SOAK-{run_id}-{i:06d}",
            [(p, rng.randint(1, 3)) for p in rng.sample(products, rng.randint(1, 3))],
        )
        for i in range(n)
    ]
    api_orders, file_orders = orders[: n * 6 // 10], orders[n * 6 // 10 :]
    started = time.monotonic()
    stop_sampling = threading.Event()

    def sample_stock() -> None:
        keys = [{"PK": {"S": f"PRODUCT#{p}"}, "SK": {"S": "STOCK"}} for p in products]
        while not stop_sampling.is_set():
            items = db.batch_get_item(RequestItems={outputs["OrdersTable"]: {"Keys": keys}})["Responses"]
            lowest = min(int(i["available"]["N"]) for i in items[outputs["OrdersTable"]])
            books.min_available_seen = min(books.min_available_seen, lowest)
            stop_sampling.wait(0.2)

    sampler = threading.Thread(target=sample_stock, daemon=True)
    sampler.start()

    # When poison messages go straight into the FIFO queue (first: their back-off runs while the rest arrives)
    for k in range(max(1, n // 500)):
        poison_id = f"SOAK-{run_id}-POISON{k}"
        sqs.send_message(
            QueueUrl=outputs["OrderQueueUrl"],
            MessageBody=json.dumps({"order_id": poison_id, "items": "poison"}),
            MessageGroupId=poison_id,
            MessageDeduplicationId=uuid.uuid4().hex,
        )
        books.poison.append(poison_id)

    # And orders arrive through the API, with duplicates and invalid ones mixed in
    http = threading.local()

    def post(order: dict[str, Any]) -> int:
        if not hasattr(http, "session"):
            http.session = requests.Session()
        response = http.session.post(f"{base}/orders", json=order, timeout=60)
        with books.lock:
            books.received += 1
            if response.status_code == 202:
                books.accepted.append(order["order_id"])
            elif response.status_code in (400, 409):
                books.rejected += 1
            else:
                raise RuntimeError(f"unexpected {response.status_code} for {order['order_id']}: {response.text}")
        return response.status_code

    # And restocks of the same products meanwhile: each applied once, however often it is sent
    restocks = {
        f"SOAK-{run_id}-R{k:03d}": (products[k % len(products)], rng.randint(1, max(6, n // 40)))
        for k in range(max(10, n // 40))
    }
    restocked = dict.fromkeys(products, 0)

    def post_restock(restock_id: str) -> int:
        if not hasattr(http, "session"):
            http.session = requests.Session()
        product, quantity = restocks[restock_id]
        response = http.session.post(
            f"{base}/products/{product}/restock",
            json={"quantity": quantity},
            headers={"Idempotency-Key": restock_id},
            timeout=60,
        )
        if response.status_code != 202:
            raise RuntimeError(f"unexpected {response.status_code} for restock {restock_id}: {response.text}")
        return response.status_code

    for product, quantity in restocks.values():
        restocked[product] += quantity
    api_traffic: list[Any] = list(api_orders)
    api_traffic += [o for o in api_orders if rng.random() < 0.05]  # duplicates: 409
    api_traffic += [_invalid(o, rng) | {"order_id": o["order_id"] + "-BAD"} for o in api_orders if rng.random() < 0.05]
    # Half the restocks come with the API orders, half once every order is final and many wait
    early, late = list(restocks)[: len(restocks) // 2], list(restocks)[len(restocks) // 2 :]
    api_traffic += early + [r for r in early if rng.random() < 0.3]  # some restocks sent twice
    rng.shuffle(api_traffic)
    say(
        f"soak {run_id}: {len(api_traffic)} API requests ({len(restocks)} restocks), {len(file_orders)} orders in "
        f"files, {max(1, n // 500)} poison"
    )
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(lambda job: post_restock(job) if isinstance(job, str) else post(job), api_traffic))
    say(f"  API done in {time.monotonic() - started:.1f} s")

    # And through data-lake files (JSON and JSON Lines), with invalid and duplicate lines
    file_keys: list[str] = []
    report_keys: dict[str, str] = {}
    for start in range(0, len(file_orders), 250):
        chunk = list(file_orders[start : start + 250])
        chunk += [_invalid(o, rng) | {"order_id": o["order_id"] + "-BADF"} for o in chunk if rng.random() < 0.04]
        chunk += [o for o in chunk[:3] if rng.random() < 0.5]  # the same order twice in one file
        rng.shuffle(chunk)
        jsonl = (start // 250) % 2 == 1
        key = f"incoming/soak/{run_id}-{start:06d}.{'jsonl' if jsonl else 'json'}"
        body = "\n".join(json.dumps(o) for o in chunk) if jsonl else json.dumps({"orders": chunk})
        etag = s3.put_object(Bucket=outputs["DataLakeBucket"], Key=key, Body=body.encode())["ETag"]
        file_keys.append(key)
        report_keys[key] = report_key(key, etag)

    # And a restock file: one valid line per product, and a line that is not a restock
    restock_file = f"restock/soak/{run_id}.json"
    lines: list[dict[str, Any]] = [{"product_id": p, "quantity": rng.randint(1, 5)} for p in products]
    for line in lines:
        restocked[line["product_id"]] += line["quantity"]
    lines.insert(2, {"product_id": products[0], "quantity": 0})
    etag = s3.put_object(Bucket=outputs["DataLakeBucket"], Key=restock_file, Body=json.dumps(lines).encode())["ETag"]
    file_keys.append(restock_file)
    report_keys[restock_file] = report_key(restock_file, etag)

    deadline = time.monotonic() + timeout
    reports: dict[str, dict[str, Any]] = {}
    while len(reports) < len(file_keys):
        for key in file_keys:
            if key in reports:
                continue
            try:
                body = s3.get_object(Bucket=outputs["DataLakeBucket"], Key=report_keys[key])["Body"].read()
                reports[key] = json.loads(body)
            except s3.exceptions.NoSuchKey:
                pass
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(reports)} of {len(file_keys)} file reports arrived")
        time.sleep(0.5)
    restock_report = reports.pop(restock_file)
    file_keys.remove(restock_file)
    restock_ids = list(restocks) + list(restock_report["accepted_restock_ids"])
    for report in reports.values():
        books.received += report["received"]
        books.accepted += report["accepted_order_ids"]
        books.rejected += report["rejected"]
        books.files_with_rejections += 1 if report["rejected"] or report["file_error"] else 0
    say(f"  files reported after {time.monotonic() - started:.1f} s")

    # Then every accepted order reaches a final state
    def statuses() -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        ids = sorted(set(books.accepted))
        for start in range(0, len(ids), 100):
            keys = [{"PK": {"S": f"ORDER#{i}"}, "SK": {"S": "ORDER"}} for i in ids[start : start + 100]]
            request = {outputs["OrdersTable"]: {"Keys": keys, "ConsistentRead": True}}
            while request:
                response = db.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(outputs["OrdersTable"], []):
                    found[item["order_id"]["S"]] = item
                request = response.get("UnprocessedKeys") or {}
        return found

    while True:
        records = statuses()
        waiting = [i for i in set(books.accepted) if records.get(i, {}).get("order_status", {}).get("S") not in FINAL]
        if not waiting:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    processed_at = time.monotonic() - started
    say(f"  orders final after {processed_at:.1f} s")
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(post_restock, late + [r for r in late if rng.random() < 0.3]))

    # And every restock has run its release, and no request to look at a queue again is left
    def unreleased() -> list[str]:
        keys = [{"PK": {"S": f"RESTOCK#{r}"}, "SK": {"S": "RESTOCK"}} for r in restock_ids]
        done = set()
        for start in range(0, len(keys), 100):
            request = {outputs["OrdersTable"]: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
            for item in db.batch_get_item(RequestItems=request)["Responses"].get(outputs["OrdersTable"], []):
                if "released_at" in item:
                    done.add(item["PK"]["S"].removeprefix("RESTOCK#"))
        return [r for r in restock_ids if r not in done]

    def restock_queue_busy() -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=outputs["RestockQueueUrl"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    settled = 0
    while settled < 3 and time.monotonic() < deadline:
        settled = settled + 1 if not unreleased() and not restock_queue_busy() else 0
        time.sleep(0.5)
    records = statuses()
    say(f"  restocks released after {time.monotonic() - started:.1f} s")

    # Poison messages reach the orders DLQ (a few receives with back-off). Each receive hides what it saw for a
    # few seconds, so that the next one gets further into a DLQ that holds more than ten messages (earlier runs).
    dlq_ids: set[str] = set()
    while len(dlq_ids) < len(books.poison) and time.monotonic() < deadline:
        batch = sqs.receive_message(
            QueueUrl=outputs["OrderDeadLetterQueueUrl"], MaxNumberOfMessages=10, VisibilityTimeout=5
        ).get("Messages", [])
        for message in batch:
            try:
                order_id = json.loads(message["Body"]).get("order_id")
            except ValueError:
                continue
            if order_id in books.poison:
                dlq_ids.add(order_id)
        time.sleep(0.5)
    stop_sampling.set()
    sampler.join()

    # Books
    pending_orders = [i for i, r in records.items() if r["order_status"]["S"] == "Produto Pendente"]
    reserved_units = {p: 0 for p in products}
    for record in records.values():
        for item in record["items"]["L"]:
            item = item["M"]
            if item["item_status"]["S"] == "Reservado":
                reserved_units[item["product_id"]["S"]] += int(item["quantity"]["N"])
    keys = [{"PK": {"S": f"PRODUCT#{p}"}, "SK": {"S": "STOCK"}} for p in products]
    product_records = {
        i["product_id"]["S"]: i
        for i in db.batch_get_item(RequestItems={outputs["OrdersTable"]: {"Keys": keys, "ConsistentRead": True}})[
            "Responses"
        ][outputs["OrdersTable"]]
    }
    stock = {p: (int(i["available"]["N"]), int(i["reserved"]["N"])) for p, i in product_records.items()}
    waiting_count = {p: int(i.get("waiting", {}).get("N", "0")) for p, i in product_records.items()}
    pending_items = {p: 0 for p in products}
    for record in records.values():
        for item in record["items"]["L"]:
            if item["M"]["item_status"]["S"] == "Pendente":
                pending_items[item["M"]["product_id"]["S"]] += 1

    def head_fits(product: str) -> bool:
        """Whether the oldest item waiting for the product would fit the stock left (it must not)."""
        head = db.query(
            TableName=outputs["OrdersTable"],
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"PENDING#{product}"}},
            Limit=1,
        )["Items"]
        return bool(head) and int(head[0]["quantity"]["N"]) <= stock[product][0]

    def history(record: dict[str, Any]) -> list[str]:
        return [entry["M"]["status"]["S"] for entry in record.get("status_history", {}).get("L", [])]

    waited = {i for i, r in records.items() if "Produto Pendente" in history(r)}
    released = {i for i in waited if records[i]["order_status"]["S"] == "Novo Pedido"}
    envelopes = []
    quiet_until = time.monotonic() + 3
    while time.monotonic() < quiet_until:
        got = drain(session, inbox)
        envelopes += got
        if got:
            quiet_until = time.monotonic() + 3
        time.sleep(0.3)
    session.client("sqs").delete_queue(QueueUrl=inbox)
    mine = [json.loads(e["Message"]) for e in envelopes]
    pending_notices = {m["order_id"] for m in mine if m.get("event") == "order_pending" and m["order_id"] in records}
    released_notices = [m["order_id"] for m in mine if m.get("event") == "order_released" and m["order_id"] in records]
    report_notices = [m for m in mine if m.get("event") == "file_report" and m.get("key") in reports]
    restock_notices = [m for m in mine if m.get("event") == "file_report" and m.get("key") == restock_file]
    dead_notices = [m for m in mine if m.get("event") == "message_dead_lettered" and m.get("order_id") in books.poison]

    unique_accepted = set(books.accepted)
    checks = {
        "no accepted order lost (all final)": len(waiting) == 0,
        "accepted ids are unique (no order taken twice)": len(unique_accepted) == len(books.accepted),
        "rejected + accepted = received": books.rejected + len(books.accepted) == books.received,
        "every valid order accepted once": unique_accepted == {o["order_id"] for o in orders},
        "poison messages all in the DLQ": dlq_ids == set(books.poison),
        "available + reserved = initial + restocked, per product": all(
            sum(stock[p]) == initial[p] + restocked[p] for p in products
        ),
        "every restock released": not unreleased(),
        "restock file: bad line reported, the rest applied": (
            restock_report["rejected"],
            len(restock_report["accepted_restock_ids"]),
            len(restock_notices),
        )
        == (1, len(products), 1),
        "no stock idle beside a waiting item it could serve": not any(head_fits(p) for p in products),
        "waiting = items Pendente, per product": all(waiting_count[p] == pending_items[p] for p in products),
        "reserved = units of items Reservado": all(stock[p][1] == reserved_units[p] for p in products),
        "available never negative": books.min_available_seen >= 0 and all(a >= 0 for a, _ in stock.values()),
        "pending notices = orders that waited": pending_notices == waited,
        "one order_released message per order released": sorted(released_notices) == sorted(released),
        "file notices = files with rejections": len(report_notices) == books.files_with_rejections,
        "dead-letter notices = poison messages": len({m["order_id"] for m in dead_notices}) == len(books.poison),
    }
    summary = {
        "run_id": run_id,
        "orders": n,
        "received": books.received,
        "accepted": len(books.accepted),
        "rejected": books.rejected,
        "final": len(unique_accepted) - len(waiting),
        "lost": len(waiting),
        "pending_orders": len(pending_orders),
        "restocks": len(restock_ids),
        "released_orders": len(released),
        "files": len(file_keys),
        "files_with_rejections": books.files_with_rejections,
        "poison": len(books.poison),
        "poison_in_dlq": len(dlq_ids),
        "oversold_units": sum(max(0, stock[p][1] - initial[p] - restocked[p]) for p in products)
        - min(0, books.min_available_seen),
        "stock": {
            p: {"initial": initial[p], "restocked": restocked[p], "available": stock[p][0], "reserved": stock[p][1]}
            for p in products
        },
        "seconds_to_all_final": round(processed_at, 1),
        "checks": checks,
        "ok": all(checks.values()),
    }
    SANDBOX.mkdir(exist_ok=True)
    (SANDBOX / "soak-last.json").write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=int(os.environ.get("N") or 2000), help="orders (default 2000)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    load_outputs()  # fails clearly when the sandbox is not deployed
    summary = run(args.n, args.clients, args.seed)
    print()
    keys = ("received", "accepted", "rejected", "final", "lost", "pending_orders", "restocks", "released_orders")
    for key in (*keys, "files", "poison_in_dlq"):
        print(f"  {key:<22} {summary[key]}")
    print(f"  {'oversold_units':<22} {summary['oversold_units']}")
    for product, numbers in summary["stock"].items():
        print(f"  {product:<22} {numbers}")
    print()
    for check, passed in summary["checks"].items():
        print(f"  [{'ok' if passed else 'FAIL'}] {check}")
    print("\nbooks balance" if summary["ok"] else "\nBOOKS DO NOT BALANCE")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
