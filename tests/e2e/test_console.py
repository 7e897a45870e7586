"""The console (`sandbox ui`) in a real browser, as a person would use it: Debian's chromium driven by Playwright.

The screenshots in the READMEs (docs/img/console-*.png) are written by this test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from e2e_support import ORDERS, ROOT, eventually, unique
from playwright.sync_api import Browser, Page, expect, sync_playwright

from sandbox.load import order_with, to_wire

CHROMIUM = shutil.which("chromium")
# Every run takes its screenshots into .sandbox/; `SCREENSHOTS=docs/img make e2e` refreshes the READMEs' own.
SHOTS = ROOT / os.environ.get("SCREENSHOTS", ".sandbox/screenshots")
WAIT = 150_000  # ms: what the page shows comes from asynchronous functions, on a busy machine
MIXED_PRODUCTS = ["PRD-1001", "PRD-2002", "PRD-3003", "PRD-4004", "PRD-5005"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no chromium: .ci/run installs Debian's package (apt-get install -y chromium)")
        pytest.skip("no chromium on this machine: `apt-get install chromium` runs the console's browser test")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def console(outputs: dict[str, str]) -> Iterator[str]:
    """`sandbox ui` on a free port, as a process; its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("sandbox")), "ui", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        assert process.poll() is None, "sandbox ui exited"
        try:
            return requests.get(url, timeout=5).ok
        except requests.ConnectionError as exc:
            raise AssertionError(str(exc)) from exc

    try:
        eventually(serving, timeout=60, what="the console serving")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def open_order(page: Page, order_id: str) -> None:
    page.fill("#q", order_id)
    page.locator(f'a[data-order="{order_id}"]').click(timeout=WAIT)


def test_the_console_posts_follows_uploads_and_restocks_in_a_browser(browser, console, api, products, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(console)

    # Given the page, with the live architecture and its orders-by-status figures
    novo_pedido = page.locator('[data-figure="DynamoDB:Novo Pedido"]')
    expect(novo_pedido).to_be_visible(timeout=WAIT)
    before = int(novo_pedido.text_content() or "")

    # When the lab's example, with its own id and product, is posted through the form
    (product,) = products(5)
    order = order_with(unique("UI-ORD"), [(product, 1, Decimal("2500.00"))])
    page.fill("#send-order textarea", to_wire(order))
    page.click("#send-order button")

    # Then the API's answer is shown verbatim, and the Novo Pedido count moves
    answer = page.locator("#send-order .answer")
    expect(answer).to_contain_text("202", timeout=WAIT)
    expect(answer).to_contain_text(f'"order_id": "{order["order_id"]}"')
    eventually(lambda: int(novo_pedido.text_content() or "") > before, timeout=120, what="the Novo Pedido count moving")

    # And the order's trace shows its hops up to the Novo Pedido transaction
    open_order(page, order["order_id"])
    trace = page.locator("#order table.trace")
    expect(trace).to_contain_text("Novo Pedido", timeout=WAIT)
    expect(trace).to_contain_text("API aceitou", timeout=WAIT)
    expect(trace).to_contain_text("processador: transação gravada", timeout=WAIT)
    page.screenshot(path=SHOTS / "console.png", full_page=True)

    # When the mixed data-lake file (1 valid order, 2 invalid), with its own ids and products, is uploaded
    prefix = unique("UI")
    text = (ORDERS / "datalake-mixed.json").read_text("utf-8").replace("ORD-2023", prefix)
    for original, mine in zip(MIXED_PRODUCTS, products(10, 10, 10, 10, 10), strict=True):
        text = text.replace(original, mine)
    file = tmp_path / f"{prefix}-mixed.json"
    file.write_text(text, "utf-8")
    page.set_input_files("#upload input[type=file]", file)
    page.click("#upload button")

    # Then its report shows the two rejections with their reasons, personal data masked
    uploaded = page.locator("#upload .answer")
    expect(uploaded).to_contain_text("rejeitados 2", timeout=WAIT)
    expect(uploaded.locator("table.rejections tr")).to_have_count(3)
    expect(uploaded).to_contain_text("customer.email")
    expect(uploaded).not_to_contain_text("mariana.alves@")
    uploaded.screenshot(path=SHOTS / "console-upload.png")

    # Given an order left Produto Pendente for a product without stock
    (pending_product,) = products(0)
    pending = order_with(unique("UI-ORD"), [(pending_product, 1, Decimal("10.50"))])
    assert api.post_order(pending).status_code == 202
    assert api.final_order(pending["order_id"], timeout=60)["order_status"] == "Produto Pendente"

    # When that product is restocked through the form
    page.fill("#restock input[name=product_id]", pending_product)
    page.fill("#restock input[name=quantity]", "1")
    page.click("#restock button")
    expect(page.locator("#restock .answer")).to_contain_text("202", timeout=WAIT)

    # Then the order is released: Novo Pedido, its trace ending with the release
    open_order(page, pending["order_id"])
    shown = page.locator("#order")
    expect(shown.locator("h3")).to_contain_text("Novo Pedido", timeout=WAIT)
    expect(shown.locator("table.trace")).to_contain_text("aviso SNS order_released publicado", timeout=WAIT)
    shown.screenshot(path=SHOTS / "console-trace.png")


def test_the_console_takes_actions_only_from_its_own_page_and_names(console):
    # Given the console, when another site's page posts an action to it, or a name other than this machine's is used
    foreign = requests.post(f"{console}/actions/redrive/orders", headers={"Origin": "https://example.com"}, timeout=30)
    rebound = requests.get(console, headers={"Host": "attacker.example"}, timeout=30)

    # Then neither reaches the sandbox: the post is refused with its reason, the unknown name is refused
    assert foreign.status_code == 403
    assert "outra origem" in foreign.text
    assert rebound.status_code == 400
