"""The console (`sandbox ui`, `make ui`): one local page over the read model of `sandbox.views`, live.

It reads the sandbox only through `sandbox.views`, as the CLI does, and writes only through a user's doors: the API
(an order, a restock), an S3 upload, the DLQ redrive of `sandbox.dlq`. It binds to 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import uvicorn
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from orders.files import is_read, lake_key
from orders.masking import mask_body_text, mask_document
from sandbox import views
from sandbox.aws import ROOT
from sandbox.dlq import PAIRS, redrive
from sandbox.records import RestockBody
from sandbox.views import RecentAnswers, Sandbox

HOST = "127.0.0.1"
SEED_ORDERS = ROOT / "seed" / "orders"
REPORT_WAIT = 120.0  # seconds an upload waits for its report before answering without it
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_page = _templates.get_template("console.html")


class Live:
    """What the page polls, read under one lock: the log cursor and the inbox move as they are read."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox, self.lock = sandbox, threading.Lock()
        self.answers, self.notices = RecentAnswers(sandbox), views.Notices(sandbox)

    def status(self) -> views.Status:
        with self.lock:
            now = views.status(self.sandbox, self.answers)
            now.notifications = self.notices.read()
        now.products.sort(key=lambda p: (-p.waiting_items, p.product_id))
        return now

    def files(self) -> list[views.Report]:
        with self.lock:
            self.notices.read()
            return views.reports(self.sandbox, self.notices.by_file)


async def _same_origin(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """Refuse an action posted by another site's page: a browser names the page's origin on every cross-site POST."""
    origin = request.headers.get("origin")
    if request.method == "POST" and origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return PlainTextResponse(f"ação recusada: enviada de outra origem ({origin})", status_code=403)
    return await call_next(request)


def _render(macro: str, **values: Any) -> HTMLResponse:
    return HTMLResponse(str(getattr(_page.module, macro)(**values)))


def _answer(response: Any) -> HTMLResponse:
    """The API's answer, verbatim (status line and body), personal data masked as everywhere else."""
    body = mask_body_text(response.text, indent=2)
    return _render("answer", status=f"{response.status_code} {response.reason}", ok=response.ok, body=body)


def _note(text: str, ok: bool = True) -> HTMLResponse:
    return _render("answer", status=text, ok=ok, body="")


def build(sandbox: Sandbox) -> Starlette:
    live = Live(sandbox)
    examples = sorted(path.name for path in SEED_ORDERS.glob("*.json") if not path.name.startswith("datalake"))

    def page(request: Request) -> HTMLResponse:
        return HTMLResponse(
            _page.render(examples=examples, dlqs=sorted(PAIRS), api=sandbox.api, bucket=sandbox.outputs.DataLakeBucket)
        )

    def diagram(request: Request) -> HTMLResponse:
        return _render("diagram", s=live.status())

    def orders(request: Request) -> HTMLResponse:
        return _render("orders", rows=views.orders(sandbox, request.query_params.get("q", "").strip()))

    def order(request: Request) -> HTMLResponse:
        order_id = request.path_params["order_id"]
        found = sandbox.get("orders", order_id)
        details = mask_document(found.json()) if found.status_code == 200 else None
        return _render("order", order_id=order_id, order=details, trace=views.trace(sandbox, order_id))

    def files(request: Request) -> HTMLResponse:
        return _render("files", reports=live.files())

    # The actions read a form (async); their calls to the sandbox block, so they run in the thread pool, as the
    # plain (sync) routes do.
    async def post(path: str, body: str | bytes) -> HTMLResponse:
        return _answer(await run_in_threadpool(sandbox.post, path, body))

    async def post_order(request: Request) -> HTMLResponse:
        form = await request.form()
        text = str(form.get("body") or "").strip()
        example = str(form.get("example") or "")
        if not text and example in examples:
            text = (SEED_ORDERS / example).read_text("utf-8")
        return await post("orders", text.encode())

    async def restock(request: Request) -> HTMLResponse:
        form = await request.form()
        product = str(form.get("product_id") or "").strip()
        try:
            body = RestockBody(quantity=int(str(form.get("quantity") or ""))).model_dump_json()
        except ValueError:
            body = json.dumps({"quantity": form.get("quantity")})  # the API's own 400 says what is wrong
        return await post(f"products/{quote(product, safe='')}/restock", body)

    async def upload(request: Request) -> HTMLResponse:
        form = await request.form()
        file = form.get("file")
        if file is None or isinstance(file, str) or not file.filename:
            return _note("escolha um arquivo .json ou .jsonl", ok=False)
        key = lake_key(Path(file.filename).name, restock=bool(form.get("restock")))
        if not is_read(key):
            return _note(f"{key}: só arquivos .json e .jsonl são lidos", ok=False)
        data = await file.read()
        return _render("uploaded", **await run_in_threadpool(_put, sandbox, key, data))

    def redrive_dlq(request: Request) -> HTMLResponse:
        name = request.path_params["name"]
        if name not in PAIRS:
            return _note(f"fila desconhecida: {name}", ok=False)
        dlq, source = (sandbox.outputs[key] for key in PAIRS[name])
        moved = redrive(sandbox.sqs, dlq, source)
        return _note(f"{moved} mensagem(ns) da DLQ {name} devolvida(s) à fila de origem")

    return Starlette(
        routes=[
            Route("/", page),
            Route("/parts/diagram", diagram),
            Route("/parts/orders", orders),
            Route("/parts/order/{order_id}", order),
            Route("/parts/files", files),
            Route("/actions/order", post_order, methods=["POST"]),
            Route("/actions/restock", restock, methods=["POST"]),
            Route("/actions/upload", upload, methods=["POST"]),
            Route("/actions/redrive/{name}", redrive_dlq, methods=["POST"]),
        ],
        # Only this machine's names (no DNS rebinding onto 127.0.0.1), and actions only from the console's own page.
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=[HOST, "localhost"]),
            Middleware(BaseHTTPMiddleware, dispatch=_same_origin),
        ],
    )


def _put(sandbox: Sandbox, key: str, data: bytes) -> dict[str, Any]:
    """The upload's PutObject, then its report once the file validator wrote it."""
    etag, report_at = views.upload(sandbox, key, data)
    put = json.dumps({"ETag": etag, "Key": key, "Bucket": sandbox.outputs.DataLakeBucket}, indent=2)
    return {"put": put, "report_at": report_at, "found": views.wait_for_report(sandbox, report_at, REPORT_WAIT)}


def serve(sandbox: Sandbox, port: int) -> None:
    uvicorn.run(build(sandbox), host=HOST, port=port, log_level="warning")
