"""A SIGKILL of a function midway: its work resumes within about a minute, and nothing is lost or done twice.

Each test kills a worker of one function while it is busy (the chaos monkey of `make soak CHAOS=1`), then waits
for the work to finish. The waits are bounds (docs/RELIABILITY.md, "Recovery when a function dies midway": the
work comes back 20-30 s after the kill), not speed assertions. Heavy: they run in CI with `make test-heavy`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from e2e_support import eventually, make_order, put_file, read_report, to_wire, unique

from sandbox.chaos import ChaosMonkey, workers

pytestmark = pytest.mark.heavy

RESUMED_WITHIN = 60  # seconds from the kill until the work is going again
FINAL = {"Novo Pedido", "Produto Pendente"}


def kill_a_busy_worker(root: int, function: str) -> None:
    """SIGKILL a worker of `function` as soon as one runs (the caller made sure it has work)."""
    monkey = ChaosMonkey(root, [function], min_age=0)
    eventually(lambda: workers(root, [function]) or None, timeout=60, interval=0.05, what=f"a worker of {function}")
    assert monkey.kill_one(function) is not None


def statuses(api, order_ids: list[str]) -> list[str]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda o: api.get_order(o).json().get("order_status", "?"), order_ids))


def test_a_file_validator_killed_mid_file_resumes_and_reports_every_order_once(aws, outputs, api, products, chaos_root):
    # Given a 3,000-order file being validated
    [product] = products(3000)
    orders = [make_order([(product, 1)]) for _ in range(3000)]
    report_at = put_file(aws, outputs, f"incoming/e2e/{unique('killed')}.json", to_wire(orders).encode())
    first = orders[0]["order_id"]
    eventually(lambda: api.get_order(first).status_code == 200, timeout=60, interval=0.1, what="the first claims")

    # When its worker is killed midway
    kill_a_busy_worker(chaos_root, outputs["FileValidatorFunctionName"])

    # Then the file resumes after the chunks it kept and its one report accounts for every order, once
    report = read_report(aws, outputs, report_at, timeout=RESUMED_WITHIN + 120)
    assert (report["received"], report["accepted"], report["rejected"]) == (3000, 3000, 0), report["rejections"][:3]
    ids = [o["order_id"] for o in orders]
    eventually(lambda: set(statuses(api, ids[-50:])) <= FINAL, timeout=180, interval=1, what="the last orders final")
    eventually(lambda: api.stock(product) == (0, 3000), timeout=180, interval=1, what="every unit reserved, once")


def test_a_processor_killed_with_a_batch_in_flight_finishes_it_within_its_visibility_timeout(
    api, products, chaos_root, outputs
):
    # Given 300 orders queued for the processor
    [product] = products(300)
    orders = [make_order([(product, 1)]) for _ in range(300)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(lambda o: api.post_order(o).status_code, orders)) == {202}

    # When a processor worker is killed while it works through them
    kill_a_busy_worker(chaos_root, outputs["ProcessorFunctionName"])

    # Then every order ends final, each reserved once
    ids = [o["order_id"] for o in orders]
    eventually(lambda: set(statuses(api, ids)) == {"Novo Pedido"}, timeout=RESUMED_WITHIN + 60, interval=2, what="all")
    assert api.stock(product) == (0, 300)


def test_a_restocker_killed_mid_release_goes_on_from_the_head_of_the_queue(aws, outputs, api, products, chaos_root):
    # Given 400 orders waiting for a product, and a restock that covers them all
    [product] = products(0)
    lines = "\n".join(to_wire(make_order([(product, 1)])) for _ in range(400))
    report = read_report(aws, outputs, put_file(aws, outputs, f"incoming/e2e/{unique('wait')}.jsonl", lines.encode()))
    ids = report["accepted_order_ids"]
    eventually(lambda: api.get_product(product).json()["waiting_items"] == 400, timeout=180, interval=1, what="queue")
    response = api.post_restock(product, 400)
    assert response.status_code == 202, response.text
    restock_id = response.json()["restock_id"]

    # When the restocker is killed while it releases them
    def released() -> int:
        body = api.http.get(f"{api.base}/restocks/{restock_id}", timeout=30).json()
        return int(body.get("released_count") or 0)

    eventually(lambda: released() > 0 or None, timeout=60, interval=0.1, what="the release under way")
    kill_a_busy_worker(chaos_root, outputs["RestockerFunctionName"])

    # Then the release goes on and every waiting order is served, once
    eventually(lambda: released() == 400, timeout=RESUMED_WITHIN + 120, interval=1, what="all 400 released")
    assert api.stock(product) == (0, 400)
    assert set(statuses(api, ids)) == {"Novo Pedido"}
    body = api.http.get(f"{api.base}/restocks/{restock_id}", timeout=30).json()
    assert body["released_at"], json.dumps(body)[:300]
