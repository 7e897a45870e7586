"""Restocking closes the loop on `Produto Pendente`: waiting items are served first come, first served."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from e2e_support import ROOT, eventually, make_order, put_file, read_report, unique

from service.adapters import DynamoStore

RESTOCKS = ROOT / "seed" / "restocks"
OLDER, NEWER, NEWEST = "2024-03-01T10:00:00Z", "2024-03-02T10:00:00Z", "2024-03-03T10:00:00Z"


def post_pending(api, lines: list[tuple[str, int]], order_date: str) -> str:
    """An order that ends `Produto Pendente`; returns its id."""
    order = make_order(lines)
    order["order_date"] = order_date
    response = api.post_order(order)
    assert response.status_code == 202, response.text
    assert api.final_order(order["order_id"])["order_status"] == "Produto Pendente"
    return str(order["order_id"])


def restock(api, product_id: str, quantity: int, key: str | None = None) -> dict[str, Any]:
    """POST a restock and wait until its release has run to the end; returns GET /restocks/{id}."""
    response = api.post_restock(product_id, quantity, key=key)
    assert response.status_code == 202, response.text
    return released(api, response.json()["restock_id"])


def released(api, restock_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        response = api.http.get(f"{api.base}/restocks/{restock_id}", timeout=30)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["released_at"] else None

    return eventually(done, timeout=timeout, what=f"restock {restock_id} released")


def order(api, order_id: str) -> dict[str, Any]:
    response = api.get_order(order_id)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def item_status(body: dict[str, Any], product_id: str) -> str:
    [item] = [i for i in body["items"] if i["product_id"] == product_id]
    return str(item["item_status"])


def released_notices(inbox, order_id: str) -> list[dict[str, Any]]:
    return inbox.matching(lambda m: m["body"].get("event") == "order_released" and m["body"]["order_id"] == order_id)


# ---------------------------------------------------------------- release, oldest first
def test_a_restock_covering_only_the_first_order_queued_releases_only_that_one(api, products, inbox):
    # Given two orders waiting for 2 units each; the one queued first carries the later order_date, so the time the
    # system received each decides, never the date a client wrote
    [product] = products(0)
    older = post_pending(api, [(product, 2)], NEWER)
    newer = post_pending(api, [(product, 2)], OLDER)

    # When 3 units arrive
    result = restock(api, product, 3)

    # Then only the older order is served; the newer one keeps waiting, and the stock accounts for every unit
    assert order(api, older)["order_status"] == "Novo Pedido"
    assert item_status(order(api, older), product) == "Reservado"
    assert order(api, newer)["order_status"] == "Produto Pendente"
    assert item_status(order(api, newer), product) == "Pendente"
    assert api.stock(product) == (1, 2)
    assert result["released_orders"] == [older]
    assert api.get_product(product).json()["waiting_items"] == 1
    # And the release is told, on the pending topic, with its own event type
    notice = inbox.wait_for(lambda m: m["body"].get("event") == "order_released" and m["body"]["order_id"] == older)
    assert notice["body"]["order_status"] == "Novo Pedido"
    assert "@" in notice["body"]["customer_email"] and "***" in notice["body"]["customer_email"]
    assert released_notices(inbox, newer) == []


def test_an_order_dated_year_1_does_not_jump_the_queue(api, products):
    # Given an order waiting for the product
    [product] = products(0)
    first = post_pending(api, [(product, 1)], NEWER)

    # When a later order claims to be from year 1 (any producer can write any order_date)
    forged = post_pending(api, [(product, 1)], "0001-01-01T00:00:00Z")

    # Then one unit serves the order that was received first
    result = restock(api, product, 1)
    assert result["released_orders"] == [first]
    assert order(api, forged)["order_status"] == "Produto Pendente"


def test_a_later_smaller_item_does_not_jump_the_queue(api, products):
    # Given an older order for 5 units and a newer one for 1
    [product] = products(0)
    older = post_pending(api, [(product, 5)], OLDER)
    newer = post_pending(api, [(product, 1)], NEWER)

    # When 3 units arrive: enough for the newer order, not for the older
    result = restock(api, product, 3)

    # Then nobody is served: strict first come, first served
    assert result["released_orders"] == []
    assert order(api, older)["order_status"] == "Produto Pendente"
    assert order(api, newer)["order_status"] == "Produto Pendente"
    assert api.stock(product) == (3, 0)

    # And a new order for 1 unit does not take the stock the older order waits for either
    late = post_pending(api, [(product, 1)], NEWEST)
    assert api.stock(product) == (3, 0)

    # When 2 more units arrive, the older order is served first; the 0 left serve nobody else
    result = restock(api, product, 2)
    assert result["released_orders"] == [older]
    assert [order(api, o)["order_status"] for o in (older, newer, late)] == [
        "Novo Pedido",
        "Produto Pendente",
        "Produto Pendente",
    ]
    assert api.stock(product) == (0, 5)


def test_a_late_order_dated_earlier_waits_behind_the_head_for_the_stock_it_holds(api, products):
    # Given 5 units held back for an order waiting for 10 (strict first come, first served)
    [product] = products(0)
    head = post_pending(api, [(product, 10)], NEWER)
    restock(api, product, 5)
    assert api.stock(product) == (5, 0)

    # When an order dated earlier arrives later, for 3 units that the held stock would cover
    late = post_pending(api, [(product, 3)], OLDER)

    # Then it queues behind the head: its date buys no place, and the 5 units stay for the head
    assert [order(api, o)["order_status"] for o in (head, late)] == ["Produto Pendente", "Produto Pendente"]
    assert api.stock(product) == (5, 0)
    assert api.get_product(product).json()["waiting_items"] == 2


def test_a_restock_covering_both_releases_both_with_their_history(api, products, inbox):
    # Given two waiting orders
    [product] = products(0)
    first = post_pending(api, [(product, 2)], OLDER)
    second = post_pending(api, [(product, 3)], NEWER)

    # When a restock covers both
    result = restock(api, product, 10)

    # Then both are served, oldest first, and 5 units are left
    assert result["released_orders"] == [first, second]
    assert api.stock(product) == (5, 5)
    assert api.get_product(product).json()["waiting_items"] == 0
    for order_id in (first, second):
        body = order(api, order_id)
        assert body["order_status"] == "Novo Pedido"
        assert item_status(body, product) == "Reservado"
        # And each order's history tells what it became, when and why
        history = body["status_history"]
        assert [h["status"] for h in history] == ["Recebido", "Produto Pendente", "Novo Pedido"]
        assert all(h["at"] and h["reason"] for h in history)
        assert history[0]["at"] <= history[1]["at"] <= history[2]["at"] == body["released_at"]
        assert product in history[1]["reason"]
        assert result["restock_id"] in history[2]["reason"]
        inbox.wait_for(lambda m, o=order_id: m["body"].get("event") == "order_released" and m["body"]["order_id"] == o)
    # And each release is told once
    assert [len(released_notices(inbox, o)) for o in (first, second)] == [1, 1]


def test_an_order_is_released_only_when_its_last_pending_item_is_reserved(api, products, inbox):
    # Given an order waiting for two products
    [first, second, in_stock] = products(0, 0, 5)
    order_id = post_pending(api, [(first, 1), (second, 1), (in_stock, 2)], OLDER)
    assert api.stock(in_stock) == (3, 2)

    # When only the first product is restocked
    restock(api, first, 1)

    # Then its item is reserved, but the order still waits for the other
    body = order(api, order_id)
    assert (body["order_status"], item_status(body, first), item_status(body, second)) == (
        "Produto Pendente",
        "Reservado",
        "Pendente",
    )
    assert released_notices(inbox, order_id) == []

    # When the second product is restocked, the order is complete
    restock(api, second, 4)
    body = order(api, order_id)
    assert body["order_status"] == "Novo Pedido"
    assert {i["item_status"] for i in body["items"]} == {"Reservado"}
    assert (api.stock(first), api.stock(second), api.stock(in_stock)) == ((0, 1), (3, 1), (3, 2))
    inbox.wait_for(lambda m: m["body"].get("event") == "order_released" and m["body"]["order_id"] == order_id)


# ---------------------------------------------------------------- exactly once
def test_a_duplicate_restock_is_applied_once(api, products):
    # Given a product with 1 unit
    [product] = products(1)
    key = unique("KEY")

    # When the same restock is sent three times with one Idempotency-Key, two of them at the same moment
    first = api.post_restock(product, 4, key=key)
    with ThreadPoolExecutor(max_workers=2) as pool:
        again = list(pool.map(lambda _: api.post_restock(product, 4, key=key), range(2)))

    # Then every answer names the same restock, and the stock rises once
    assert [r.status_code for r in (first, *again)] == [202, 202, 202]
    assert {r.json()["restock_id"] for r in (first, *again)} == {key}
    assert [first.json()["replayed"], *(r.json()["replayed"] for r in again)] == [False, True, True]
    released(api, key)
    assert api.stock(product) == (5, 0)

    # And the key cannot be reused for another quantity
    conflict = api.post_restock(product, 7, key=key)
    assert conflict.status_code == 409, conflict.text
    assert api.stock(product) == (5, 0)


def test_a_restock_message_delivered_twice_raises_the_stock_once(api, aws, outputs, products):
    # SQS delivers at least once: the same restock can reach the restocker twice (here, past the queue's
    # five-minute deduplication, as two messages). The restock's record makes the second a no-op.
    [product] = products(2)
    restock_id = unique("DUP")
    body = json.dumps({"restock_id": restock_id, "product_id": product, "quantity": 3})
    sqs = aws.client("sqs")

    for attempt in range(2):
        sqs.send_message(
            QueueUrl=outputs["RestockQueueUrl"],
            MessageBody=body,
            MessageGroupId=product,
            MessageDeduplicationId=f"{restock_id}-{attempt}",
        )
        released(api, restock_id)

    assert api.stock(product) == (5, 0)
    assert api.http.get(f"{api.base}/restocks/{restock_id}", timeout=30).json()["restock_status"] == "Aplicada"


def test_a_restock_without_a_key_gets_one_in_the_answer(api, products):
    [product] = products(0)

    response = api.post_restock(product, 2)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["restock_id"] and body["product_id"] == product and body["quantity"] == 2
    released(api, body["restock_id"])
    assert api.stock(product) == (2, 0)


def test_a_restock_of_an_unknown_product_creates_its_stock_and_releases_its_orders(api):
    # Orders may name a product nobody stocked yet: they wait, and its first restock serves them.
    product = unique("E2E-NEW")
    order_id = post_pending(api, [(product, 2)], OLDER)

    restock(api, product, 2)

    assert order(api, order_id)["order_status"] == "Novo Pedido"
    assert api.stock(product) == (0, 2)


def test_bad_restocks_get_400_with_reasons_and_change_nothing(api, products):
    [product] = products(3)
    cases = {
        "zero": {"quantity": 0},
        "negative": {"quantity": -2},
        "fraction": {"quantity": 1.5},
        "text": {"quantity": "10"},
        "boolean": {"quantity": True},
        "missing": {},
        "not an object": [1],
    }
    for name, body in cases.items():
        response = api.post_restock(product, data=json.dumps(body))
        assert response.status_code == 400, (name, response.text)
        errors = response.json()["errors"]
        assert errors and all(e["field"] and e["message"] for e in errors), name

    assert api.post_restock(product, data="{").status_code == 400
    assert api.post_restock(product, 1, key="bad key!").status_code == 400
    assert api.post_restock(product, 1, headers={"Content-Type": "text/plain"}).status_code == 415
    assert api.stock(product) == (3, 0)


# ---------------------------------------------------------------- concurrency
def test_concurrent_restocks_and_new_orders_balance_the_books(api, products, aws, outputs):
    # Given a product with 4 units and six orders already waiting for it
    [product] = products(4)
    waiting = [post_pending(api, [(product, 5)], "2024-03-01T09:00:00Z")]
    waiting += [post_pending(api, [(product, q)], f"2024-03-01T10:0{n}:00Z") for n, q in enumerate([3, 1, 4, 2, 2])]

    # When restocks and new orders of the same product arrive at the same time
    restocks = [3, 5, 2, 6, 4]
    new_orders = [make_order([(product, qty)]) for qty in (1, 2, 3, 1, 2, 4)]
    for n, new in enumerate(new_orders):
        new["order_date"] = f"2024-03-0{2 + n % 2}T10:00:00Z"
    jobs: list[tuple[str, Any]] = [("restock", q) for q in restocks] + [("order", o) for o in new_orders]
    jobs = jobs[::2] + jobs[1::2]  # interleaved

    def send(job: tuple[str, Any]) -> str:
        kind, payload = job
        response = api.post_restock(product, payload) if kind == "restock" else api.post_order(payload)
        assert response.status_code == 202, response.text
        return str(response.json()["restock_id"] if kind == "restock" else payload["order_id"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(send, jobs))

    # Then, once everything has settled ...
    for (kind, _), sent in zip(jobs, ids, strict=True):
        if kind == "restock":
            released(api, sent, timeout=60)
    bodies = [api.final_order(o) for o in (*waiting, *(o["order_id"] for o in new_orders))]

    # ... every unit is accounted for: what is reserved is exactly what the orders' reserved items hold
    lines = [(b["order_date"], b["order_id"], i) for b in bodies for i in b["items"] if i["product_id"] == product]
    reserved_units = sum(i["quantity"] for _, _, i in lines if i["item_status"] == "Reservado")
    available, reserved = api.stock(product)
    assert available >= 0
    assert available + reserved == 4 + sum(restocks)
    assert reserved == reserved_units
    # ... an order is `Novo Pedido` exactly when its item is reserved
    for body in bodies:
        assert (body["order_status"] == "Novo Pedido") == (body["items"][0]["item_status"] == "Reservado"), body
    # ... and no stock sits beside a waiting item that it could serve: the head of the queue does not fit
    still_waiting = [i for _, _, i in lines if i["item_status"] == "Pendente"]
    assert api.get_product(product).json()["waiting_items"] == len(still_waiting)
    head = DynamoStore(aws.client("dynamodb"), outputs["OrdersTable"]).pending_queue(product, limit=1)
    if still_waiting:
        assert head[0].quantity > available, (head, available)


# ---------------------------------------------------------------- restock files
def test_a_restock_file_mixing_valid_and_invalid_lines_gets_a_report(aws, outputs, api, products, inbox):
    # Given a product with an order waiting for 4 units, another in stock, and the sample file naming them
    [waited, stocked] = products(0, 1)
    order_id = post_pending(api, [(waited, 4)], OLDER)
    text = (RESTOCKS / "restock-mixed.json").read_text("utf-8")
    body = text.replace("PRD-1001", waited).replace("PRD-3003", stocked).replace("PRD-2002", unique("E2E-ZERO"))

    # When it lands under restock/ in the data lake
    key = f"restock/e2e/{unique('mixed').lower()}.json"
    report_at = put_file(aws, outputs, key, body.encode("utf-8"))

    # Then the report counts every line, and says why each rejected line failed
    report = read_report(aws, outputs, report_at)
    assert report["kind"] == "restocks"
    assert (report["received"], report["accepted"], report["rejected"]) == (5, 2, 3)
    assert len(report["accepted_restock_ids"]) == 2
    rejected = {r["index"]: r for r in report["rejections"]}
    assert set(rejected) == {1, 2, 3}
    assert [e["field"] for e in rejected[1]["errors"]] == ["quantity"]
    assert [e["field"] for e in rejected[2]["errors"]] == ["quantity"]
    assert rejected[2]["product_id"] == stocked
    assert [e["field"] for e in rejected[3]["errors"]] == ["product_id"]

    # And the valid lines were applied once each and released the waiting order
    for restock_id in report["accepted_restock_ids"]:
        released(api, restock_id)
    assert api.final_order(order_id)["order_status"] == "Novo Pedido"
    assert api.stock(waited) == (1, 4)
    assert api.stock(stocked) == (4, 0)
    # And the rejections were reported on the validation-errors topic, like an order file's
    notice = inbox.wait_for(lambda m: m["body"].get("event") == "file_report" and m["body"].get("key") == key)
    assert notice["body"]["rejected"] == 3
