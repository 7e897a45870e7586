"""The `sandbox` command against the running sandbox; `reset` only against an emulator of its own."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from click.testing import Result
from e2e_support import ORDERS, ROOT, Api, eventually, make_order, put_file, read_report, to_wire, unique
from typer.testing import CliRunner

from sandbox.cli import app
from sandbox.gateway import BUILT_IN_REFUSAL
from sandbox.poll import TimedOut, wait_until
from sandbox.views import QUEUES

SANDBOX = Path(sys.executable).with_name("sandbox")
SEED_PRODUCTS = json.loads((ROOT / "seed" / "products.json").read_text("utf-8"))
MIXED_IDS = ["PRD-1001", "PRD-2002", "PRD-3003", "PRD-4004", "PRD-5005"]
RESTOCKS = ROOT / "seed" / "restocks"


def sandbox(*args: str, **kwargs: object) -> Result:
    """`sandbox ARGS` in this process (stdout and stderr apart)."""
    return CliRunner().invoke(app, list(args), **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write(tmp_path: Path, name: str, document: object) -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document), "utf-8")
    return path


@contextmanager
def following(*args: str) -> Iterator[Callable[[str, float], str]]:
    """`sandbox ARGS` as a process; yields wait_for(text, timeout) -> the line; Ctrl-C at the end must exit 0."""
    process = subprocess.Popen(
        [str(SANDBOX), *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A shell's background job starts with SIGINT ignored, and an ignored signal survives exec: give the
        # command the default, so that its Ctrl-C handling is what this test checks.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout or ():
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()

    def wait_for(text: str, timeout: float = 30) -> str:
        def printed() -> str | None:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                return None
            return line if text in line else None

        try:
            return wait_until(printed, timeout=timeout, interval=0, what=f"{text!r} printed")
        except TimedOut:
            pytest.fail(f"{text!r} not printed by `sandbox {' '.join(args)}` within {timeout:.0f} s")

    try:
        yield wait_for
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def pending_order(api: Api, product_id: str, quantity: int = 1) -> str:
    order = make_order([(product_id, quantity)])
    assert api.post_order(order).status_code == 202
    assert api.final_order(order["order_id"])["order_status"] == "Produto Pendente"
    return str(order["order_id"])


def test_seed_then_status_shows_the_products_and_every_queue(tmp_path, outputs):
    # Given two unique products seeded through the command
    prefix = unique("CLI-PRD")
    file = write(
        tmp_path,
        "products.json",
        [
            {"product_id": f"{prefix}-A", "description": "cli seeded", "available": 7},
            {"product_id": f"{prefix}-B", "description": "cli seeded", "available": 0},
        ],
    )
    seeded = sandbox("seed", str(file))
    assert seeded.exit_code == 0, seeded.output
    assert "2 of 2 products written" in seeded.stdout
    assert "0 of 2" in sandbox("seed", str(file), "--only-missing").stdout

    # When the status is asked for, the stock table narrowed to them
    result = sandbox("status", "--product", prefix)

    # Then it shows the six queues, the orders by status and the products with their stock and waiting items
    assert result.exit_code == 0, result.output
    for label, key in QUEUES.items():
        name = re.escape(outputs[key].rsplit("/", 1)[-1])
        assert re.search(rf"{label}\W+{name}\W+\d+\W+\d+", result.stdout), key
    for state in ("Recebido", "Novo Pedido", "Produto Pendente"):
        assert re.search(state + r"\W+\d+", result.stdout), state
    assert "waiting_items" in result.stdout
    assert re.search(rf"{prefix}-A\W+cli seeded\W+7\W+0\W+0", result.stdout)
    assert re.search(rf"{prefix}-B\W+cli seeded\W+0\W+0\W+0", result.stdout)


def test_seed_of_a_bad_file_is_a_usage_error(tmp_path):
    result = sandbox("seed", str(write(tmp_path, "bad.json", [{"product_id": "X"}])))
    assert result.exit_code == 2
    assert "available" in result.stderr


def test_send_answers_202_and_watch_reaches_the_final_state(tmp_path, products):
    # Given an order file like the lab's example, with its own order_id and product
    (product,) = products(5)
    order = make_order([(product, 2)])
    file = write(tmp_path, "order.json", to_wire(order))

    # When it is sent and watched
    result = sandbox("send", str(file), "--watch")

    # Then the API accepted it and it ended Novo Pedido with its item reserved
    assert result.exit_code == 0, result.output
    assert "202" in result.stdout and order["order_id"] in result.stdout
    assert "Novo Pedido" in result.stdout
    assert re.search(rf"{product}\W+2\W+10.50\W+Reservado", result.stdout)

    # And sending the same file again is a replay: 202, nothing created twice
    again = sandbox("send", str(file))
    assert again.exit_code == 0, again.output
    assert "202" in again.stdout and "Pedido já recebido" in again.stdout

    # While another order under the same order_id is a 409 and exit code 1
    other = write(tmp_path, "other.json", to_wire({**order, "notes": "outro conteúdo"}))
    conflict = sandbox("send", str(other))
    assert conflict.exit_code == 1
    assert "409" in conflict.stdout and "Pedido duplicado." in conflict.stdout


def test_send_of_an_invalid_order_prints_the_400_and_exits_1(gateway):
    result = sandbox("send", str(ORDERS / "invalid-fields.json"))
    assert result.exit_code == 1
    # The API's answer verbatim: ours, or the built-in one of a gateway that refuses without our template (LocalStack).
    built_in = gateway.enforced and BUILT_IN_REFUSAL["message"] in result.stdout
    assert "400" in result.stdout and ("Pedido inválido." in result.stdout or built_in)


def test_send_dry_run_validates_locally():
    result = sandbox("send", "--dry-run", str(ORDERS / "invalid-fields.json"))
    assert result.exit_code == 1
    assert "items[0].quantity" in result.stdout
    assert sandbox("send", "--dry-run", str(ORDERS / "lab-example.json")).exit_code == 0


def test_watch_follows_an_order_to_produto_pendente(api, products):
    # Given an order for a product without stock
    (product,) = products(0)
    order = make_order([(product, 1)])
    assert api.post_order(order).status_code == 202

    # When it is watched
    result = sandbox("watch", order["order_id"], "--timeout", "60")

    # Then the watch ends on its final status and shows the item pending
    assert result.exit_code == 0, result.output
    assert "Produto Pendente" in result.stdout
    assert re.search(rf"{product}\W+1\W+10.50\W+Pendente", result.stdout)

    # And the order's history: received by the API, then left waiting for stock, each with its time
    history = result.stdout[result.stdout.index("status history") :]
    assert re.search(r"Recebido\W+\d{4}-\d\d-\d\dT[\d:.]+\S*\W+pedido recebido pela API", history), history
    assert re.search(r"Produto Pendente\W+\d{4}-\d\d-\d\dT", history), history


def test_watch_of_an_unknown_order_exits_1():
    result = sandbox("watch", unique("CLI-NONE"), "--timeout", "5")
    assert result.exit_code == 1
    assert "not found" in result.stderr


def test_upload_prints_the_counts_and_rejections_of_a_mixed_file(tmp_path, outputs, products):
    # Given the mixed sample (1 valid, 2 invalid orders) with its own order ids and products
    prefix = unique("CLI")
    text = (ORDERS / "datalake-mixed.json").read_text("utf-8").replace("ORD-2023", prefix)
    for original, mine in zip(MIXED_IDS, products(10, 10, 10, 10, 10), strict=True):
        text = text.replace(original, mine)
    file = write(tmp_path, "mixed.json", text)
    key = f"cli/[bold]{uuid.uuid4().hex[:8]} mixed.json"

    # When it is uploaded
    result = sandbox("upload", str(file), "--key", key)

    # Then the report's counts and each rejection are printed, personal data masked, the key as it is (not markup)
    assert result.exit_code == 0, result.output
    assert f"uploaded s3://{outputs['DataLakeBucket']}/incoming/{key}" in result.stdout
    assert re.search(r"\W3\W+1\W+2\W+-", result.stdout), result.stdout
    assert f"{prefix}1004-0002" in result.stdout and "customer.email" in result.stdout
    assert f"{prefix}1004-0003" in result.stdout and "company" in result.stdout
    assert "mariana.alves@" not in result.stdout

    # And its accepted order can be watched to its final status
    watched = sandbox("watch", f"{prefix}1004-0001")
    assert watched.exit_code == 0, watched.output
    assert "Novo Pedido" in watched.stdout

    # And with --strict a file with rejections (here: every order already received) exits 1
    strict = sandbox("upload", str(file), "--key", f"cli/{uuid.uuid4().hex[:8]} again.json", "--strict")
    assert strict.exit_code == 1
    assert re.search(r"\W3\W+0\W+3\W+-", strict.stdout), strict.stdout


def test_restock_releases_a_pending_order_and_prints_the_stock(api, products):
    # Given an order for 2 units of a product without stock, left Produto Pendente
    (product,) = products(0)
    order_id = pending_order(api, product, quantity=2)

    # When 2 units are restocked through the command
    result = sandbox("restock", product, "2", "--timeout", "60")

    # Then the API accepted it, the release ran, and the stock shows the 2 units reserved, nobody waiting
    assert result.exit_code == 0, result.output
    assert "202" in result.stdout and '"restock_status": "Recebida"' in result.stdout
    assert re.search(r"restock \S+\W+released", result.stdout), result.stdout
    assert re.search(rf"{product}\W+e2e\W+0\W+2\W+0", result.stdout), result.stdout

    # And the output names the released order, now Novo Pedido, as the API says too
    released = result.stdout[result.stdout.index("released orders") :]
    assert re.search(rf"{order_id}\W+Novo Pedido", released), released
    assert api.get_order(order_id).json()["order_status"] == "Novo Pedido"


def test_restock_with_a_key_is_applied_once_and_the_key_is_not_reused(api, products):
    # Given a restock of 3 units sent with an Idempotency-Key, not waited for
    (product,) = products(1)
    key = unique("CLI-KEY")
    first = sandbox("restock", product, "3", "--key", key, "--no-wait")
    assert first.exit_code == 0, first.output
    assert f'"restock_id": "{key}"' in first.stdout and '"replayed": false' in first.stdout
    assert "released orders" not in first.stdout

    # When it is sent again with the same key, and waited for
    again = sandbox("restock", product, "3", "--key", key)

    # Then it is the same restock, replayed, and the stock rose once
    assert again.exit_code == 0, again.output
    assert '"replayed": true' in again.stdout
    assert re.search(rf"{product}\W+e2e\W+4\W+0\W+0", again.stdout), again.stdout
    assert api.stock(product) == (4, 0)

    # And the same key for another quantity is a 409 and exit code 1
    conflict = sandbox("restock", product, "5", "--key", key, "--no-wait")
    assert conflict.exit_code == 1
    assert "409" in conflict.stdout and "Idempotency-Key" in conflict.stdout


def test_restock_of_a_bad_quantity_prints_the_400_and_exits_1(api, products):
    (product,) = products(2)
    result = sandbox("restock", product, "0")
    assert result.exit_code == 1
    assert "400" in result.stdout and "Reposição inválida." in result.stdout
    assert '"field": "quantity"' in result.stdout
    assert api.stock(product) == (2, 0)


def test_upload_restock_prints_the_counts_and_rejections_of_a_mixed_file(tmp_path, api, products):
    # Given the mixed restock sample (2 valid lines, 3 invalid) with its own products
    first, second, third = products(1, 1, 1)
    text = (RESTOCKS / "restock-mixed.json").read_text("utf-8")
    for original, mine in zip(("PRD-1001", "PRD-2002", "PRD-3003"), (first, second, third), strict=True):
        text = text.replace(original, mine)
    file = write(tmp_path, "restock-mixed.json", text)
    key = f"cli/{uuid.uuid4().hex[:8]} restock-mixed.json"

    # When it is uploaded as a restock file
    result = sandbox("upload", "--restock", str(file), "--key", key)

    # Then it went under restock/ and its report's counts and rejections (named by product) are printed
    assert result.exit_code == 0, result.output
    assert f"restock/{key}" in result.stdout
    assert re.search(r"\W5\W+2\W+3\W+-", result.stdout), result.stdout
    rejections = result.stdout[result.stdout.index("rejections") :]
    assert "product_id" in rejections and "order_id" not in rejections
    assert re.search(rf"1\W+{second}\W+quantity", rejections), rejections
    assert re.search(rf"2\W+{third}\W+quantity", rejections), rejections
    assert re.search(r"3\W+-\W+product_id: campo obrigatório", rejections), rejections

    # And the accepted restocks are listed, and applied: the valid lines' stock rose
    accepted = {restock_id.rsplit("-", 1)[1] for restock_id in re.findall(r"s3-[0-9a-f]{24}-\d+", result.stdout)}
    assert accepted == {"0", "4"}, result.stdout
    eventually(lambda: api.stock(first) == (6, 0) and api.stock(third) == (4, 0), timeout=60, what="restocked stock")
    assert api.stock(second) == (1, 0)


def test_trace_prints_the_hops_of_an_api_order_with_their_times(api, products):
    # Given an order for a product without stock, left Produto Pendente, then released by a restock
    (product,) = products(0)
    order_id = pending_order(api, product)
    assert api.post_restock(product, 1).status_code == 202
    eventually(lambda: api.final_order(order_id)["order_status"] == "Novo Pedido", timeout=60, what="the release")

    # When it is traced
    def traced() -> str | None:
        result = sandbox("trace", order_id)
        assert result.exit_code == 0, result.output
        return result.stdout if "order_released publicado" in result.stdout else None

    text = eventually(traced, timeout=30, what=f"the release in the trace of {order_id}")

    # Then every hop is there, in order, from the API to the release (the API's own line may come after the
    # processor's: the queue can deliver before the API has logged), each with the time since the hop before
    assert re.search(r"api\W+API aceitou", text[text.index("pedido recebido pela API") :]), text
    hops = [
        r"tabela\W+Recebido\W+pedido recebido pela API",
        r"tabela\W+Produto Pendente",
        r"processor\W+processador: transação gravada; aviso SNS de produto pendente",
        r"restocker\W+reposição reservou o item pendente",
        r"restocker\W+aviso SNS order_released publicado",
    ]
    positions = [re.search(hop, text) for hop in hops]
    assert all(positions), text
    assert [p.start() for p in positions if p] == sorted(p.start() for p in positions if p), text
    assert re.search(r"tabela\W+Novo Pedido\W+estoque reposto", text), text
    assert len(re.findall(r"\+\d+\.\d{3}s", text)) >= len(hops) - 1, text


def test_trace_of_a_file_order_names_its_file(aws, outputs, products):
    # Given a file of one order, accepted by the file validator and processed
    order = make_order([(products(5)[0], 1)])
    key = f"incoming/cli-trace/{uuid.uuid4().hex[:8]}.json"
    report_at = put_file(aws, outputs, key, to_wire([order]).encode("utf-8"))
    assert read_report(aws, outputs, report_at)["accepted"] == 1

    # When it is traced
    def traced() -> str | None:
        result = sandbox("trace", order["order_id"])
        assert result.exit_code == 0, result.output
        return result.stdout if "transação gravada" in result.stdout and "arquivo validado" in result.stdout else None

    text = eventually(traced, timeout=60, what=f"the trace of {order['order_id']}")

    # Then it comes from the file, received from the data lake, validated and processed, with the times between
    assert f"from {key}" in text, text
    assert re.search(r"tabela\W+Recebido\W+pedido recebido em arquivo do data lake", text), text
    assert re.search(rf"file-validator\W+arquivo validado.*file_key={re.escape(key)}", text), text
    assert re.search(r"processor\W+processador: transação gravada\W+order_status=Novo Pedido", text), text
    assert re.search(r"\+\d+\.\d{3}s", text), text


def test_trace_of_an_unknown_order_exits_1():
    result = sandbox("trace", unique("CLI-NONE"))
    assert result.exit_code == 1
    assert "not found" in result.stderr


def test_upload_of_a_file_the_validator_ignores_is_a_usage_error(tmp_path):
    result = sandbox("upload", "--restock", str(write(tmp_path, "restock.txt", "{}")))
    assert result.exit_code == 2
    assert "restock/restock.txt" in result.stderr and ".json" in result.stderr


def test_notifications_print_the_pending_notice_masked(api, products):
    # Given an order left Produto Pendente (its pending notice goes to the inbox)
    order_id = pending_order(api, products(0)[0])

    # When the notifications are read until it shows up
    printed: list[str] = []

    def notice() -> bool:
        result = sandbox("notifications", "--wait", "1")
        assert result.exit_code == 0, result.output
        printed.append(result.stdout)
        return f"Pedido {order_id}: produto pendente" in "".join(printed)

    eventually(notice, timeout=60, interval=0.5, what=f"the pending notice of {order_id}")

    # Then the message is printed with the e-mail masked
    text = "".join(printed)
    block = text[text.index(f"Pedido {order_id}") :].split("\n---", 1)[0]
    assert '"order_status": "Produto Pendente"' in block
    assert '"customer_email": "m***@example.com"' in block
    assert "mariana.alves@" not in text


def test_notifications_follow_prints_as_they_arrive_until_ctrl_c(api, products):
    (product,) = products(0)
    with following("notifications", "--follow") as wait_for:
        wait_for("following", 30)
        order_id = pending_order(api, product)
        wait_for(f"Pedido {order_id}: produto pendente", 60)


def test_logs_print_the_processor_line_of_an_order(api, products):
    # Given an order processed a moment ago
    order = make_order([(products(3)[0], 1)])
    assert api.post_order(order).status_code == 202
    api.final_order(order["order_id"])

    # When the processor's logs are read, narrowed to it
    def line() -> str | None:
        result = sandbox("logs", "processor", "--grep", order["order_id"], "--since", "10m")
        assert result.exit_code == 0, result.output
        return next((ln for ln in result.stdout.splitlines() if "order processed" in ln), None)

    found = eventually(line, timeout=30, what="the processor's log line")

    # Then it is one line: time, level, message, then the fields
    assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00 INFO +order processed ", found), found
    assert f"order_id={order['order_id']}" in found and "order_status=Novo Pedido" in found
    assert "START" not in found and "REPORT" not in found


def test_logs_follow_prints_new_lines_until_ctrl_c(api, products):
    (product,) = products(3)
    order = make_order([(product, 1)])
    with following("logs", "processor", "--follow", "--since", "1s", "--grep", order["order_id"]) as wait_for:
        wait_for("following", 30)
        assert api.post_order(order).status_code == 202
        assert "order processed" in wait_for(f"order_id={order['order_id']}", 60)


def test_usage_errors_exit_2(tmp_path):
    assert sandbox("send", str(tmp_path / "missing.json")).exit_code == 2
    assert sandbox("logs", "nobody").exit_code == 2
    assert sandbox("logs", "--since", "yesterday").exit_code == 2
    assert sandbox("frobnicate").exit_code == 2
    assert sandbox("restock", "PRD-1001", "ten").exit_code == 2
    assert sandbox("restock", "PRD-1001").exit_code == 2


def test_when_nothing_answers_the_error_says_make_up():
    result = sandbox("status", env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"})
    assert result.exit_code == 1
    assert "the sandbox is not running: run `make up`" in result.stderr


def test_without_outputs_the_error_says_make_up(tmp_path):
    result = subprocess.run(
        [str(SANDBOX), "status"],
        env=dict(os.environ, SANDBOX_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "run `make up`" in result.stderr


def _table_items(session: boto3.session.Session, endpoint: str, table: str) -> list[dict]:
    db = session.client("dynamodb", endpoint_url=endpoint)
    return [item for page in db.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]


def test_reset_wipes_orders_and_stock_and_seeds_again_on_its_own_emulator(tmp_path):
    # reset wipes a whole table: never the shared sandbox. A second emulator on its own port and folder.
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, SANDBOX_DIR=str(tmp_path), PYTHON=sys.executable)
    hook = [shutil.which("bash") or "/bin/bash", str(ROOT / "localstack" / "init" / "ready.d" / "10-deploy.sh")]
    emulator = [sys.executable, "-m", "sandbox.emulator"]
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SANDBOX), *args], env=env, input=stdin, capture_output=True, text=True, timeout=300)

    try:
        started = subprocess.run([*emulator, "start"], env=env, capture_output=True, text=True, timeout=60)
        assert started.returncode == 0, started.stdout + started.stderr
        deployed = subprocess.run(hook, env=env, capture_output=True, text=True, timeout=300)
        assert deployed.returncode == 0, deployed.stderr
        outputs = json.loads((tmp_path / "outputs.json").read_text("utf-8"))
        assert outputs["Endpoint"] == endpoint
        table = outputs["OrdersTable"]

        # Given an extra product and an order processed against it (order, stock moves)
        extra = unique("CLI-RESET")
        assert cli("seed", str(write(tmp_path, "extra.json", [{"product_id": extra, "available": 2}]))).returncode == 0
        order = make_order([(extra, 1)])
        api = Api(outputs["ApiBaseUrl"])
        assert api.post_order(order).status_code == 202
        assert api.final_order(order["order_id"], timeout=60)["order_status"] == "Novo Pedido"

        # When the reset is declined, nothing is deleted
        declined = cli("reset", stdin="n\n")
        assert declined.returncode == 1 and "nothing deleted" in declined.stderr
        assert any(item["PK"]["S"] == f"ORDER#{order['order_id']}" for item in _table_items(session, endpoint, table))

        # When it is confirmed with --yes
        reset = cli("reset", "--yes")
        assert reset.returncode == 0, reset.stdout + reset.stderr

        # Then the table holds only the seed file's products, with their initial stock
        items = _table_items(session, endpoint, table)
        assert {(item["PK"]["S"], item["SK"]["S"]) for item in items} == {
            (f"PRODUCT#{p['product_id']}", "STOCK") for p in SEED_PRODUCTS
        }
        stock = {
            item["PK"]["S"].removeprefix("PRODUCT#"): (item["available"]["N"], item["reserved"]["N"]) for item in items
        }
        assert stock == {p["product_id"]: (str(p["available"]), "0") for p in SEED_PRODUCTS}
        assert api.get_order(order["order_id"]).status_code == 404

        # And with --no-seed it is left empty, the stack still answering
        assert cli("reset", "--yes", "--no-seed").returncode == 0
        assert _table_items(session, endpoint, table) == []
        assert api.get_product(SEED_PRODUCTS[0]["product_id"]).status_code == 404
    finally:
        subprocess.run([*emulator, "stop"], env=env, capture_output=True, text=True, timeout=60)
