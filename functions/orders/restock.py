"""Restocks: validating a restock request, and the first-come, first-served release of pending items."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orders.model import FieldError, Rejected
from orders.validation import BODY as BODY_FIELD
from orders.validation import parse_body

MAX_RESTOCK_BYTES = 4 * 1024
MAX_RESTOCK_LINES = 1_000  # per file: each line is claimed and queued on its own

MAX_RESTOCK_QUANTITY = 1_000_000
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ID_RULE = "deve ter de 1 a 64 caracteres entre A-Z, a-z, 0-9, _ e -"

# Orders listed per page of GET /restocks/{id}: a page stays far below API Gateway's and DynamoDB's limits (each id is
# at most 64 characters), while a big release is read in a few requests.
RELEASED_PAGE = 1_000
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,256}")
_POSITION = re.compile(r"[0-9A-Za-z:.+_-]{1,64}#[A-Za-z0-9_-]{1,64}")

RESTOCK_RECEIVED = "Recebida"
RESTOCK_APPLIED = "Aplicada"


class RestockRejected(Rejected):
    pass


@dataclass(frozen=True)
class Restock:
    """N units of a product arriving; `restock_id` makes a second delivery of the same restock a no-op."""

    restock_id: str
    product_id: str
    quantity: int

    def as_message(self) -> dict[str, Any]:
        return {"restock_id": self.restock_id, "product_id": self.product_id, "quantity": self.quantity}


def is_valid_id(value: Any) -> bool:
    """Ids of orders, products and restocks: 1-64 characters of [A-Za-z0-9_-], as in orders/schema.json."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def parse_restock_body(body: str | bytes | None) -> Any:
    """Turn an HTTP body into a JSON value, or raise RestockRejected with a body-level error."""
    return parse_body(body, MAX_RESTOCK_BYTES, 'corpo vazio: envie {"quantity": N}', RestockRejected)


def quantity_errors(value: Any) -> list[FieldError]:
    # bool is an int in Python, but `true` is not a quantity in JSON.
    if not isinstance(value, int) or isinstance(value, bool):
        return [FieldError("quantity", "deve ser um número inteiro")]
    if not 1 <= value <= MAX_RESTOCK_QUANTITY:
        return [FieldError("quantity", f"deve estar entre 1 e {MAX_RESTOCK_QUANTITY}")]
    return []


def validate_restock(document: Any, restock_id: str, product_id: str | None = None) -> Restock:
    """A restock from a JSON object: {"quantity": N} (API, product in the path) or a file line
    {"product_id": ..., "quantity": N}. Unknown fields are ignored, as in orders."""
    if not isinstance(document, dict):
        raise RestockRejected([FieldError(BODY_FIELD, 'deve ser um objeto JSON como {"quantity": 10}')])
    errors: list[FieldError] = []
    in_body = product_id is None
    product_id = document.get("product_id") if in_body else product_id
    if in_body and "product_id" not in document:
        errors.append(FieldError("product_id", "campo obrigatório"))
    elif not is_valid_id(product_id):
        errors.append(FieldError("product_id", ID_RULE))
    if "quantity" not in document:
        errors.append(FieldError("quantity", "campo obrigatório"))
    else:
        errors += quantity_errors(document["quantity"])
    if errors:
        raise RestockRejected(errors)
    return Restock(restock_id, str(product_id), int(document["quantity"]))


@dataclass(frozen=True)
class PendingItem:
    """An item waiting for stock: the queue of a product is ordered by (the instant its order was queued,
    order_id)."""

    order_id: str
    product_id: str
    quantity: int
    queued_at: str  # queue_position(): the GSI sort key


def queue_position(queued_at: datetime, order_id: str) -> str:
    """The sort key of a waiting item: the instant the order entered the orders queue (the system's clock, never
    the client's `order_date`, which anybody can set to year 1), then the order_id.

    One format (UTC, microseconds), so the keys sort as text in the order of the instants they name.
    """
    moment = queued_at if queued_at.tzinfo is not None else queued_at.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC).isoformat(timespec='microseconds')}#{order_id}"


def plan_release(available: int, queue: Iterable[PendingItem]) -> list[PendingItem]:
    """The items the stock serves, oldest first; the first item that does not fit stops the queue.

    Strict first-come, first-served: a later, smaller item never jumps ahead of an older one that waits.
    """
    served: list[PendingItem] = []
    for item in queue:
        if item.quantity > available:
            break
        served.append(item)
        available -= item.quantity
    return served


def release_reason(restock_id: str | None) -> str:
    """Why a released order became `Novo Pedido`, for its history."""
    if restock_id is None:
        return "fila do produto reavaliada com estoque disponível: todos os itens reservados"
    return f"estoque reposto (reposição {restock_id}): todos os itens reservados"


def page_cursor(position: str) -> str:
    """The opaque, URL-safe `next` cursor of a page that ends at this queue position."""
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def cursor_position(cursor: str) -> str | None:
    """The queue position a `next` cursor stands for, or None when the text is not such a cursor."""
    if not _CURSOR.fullmatch(cursor):
        return None
    try:
        position = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return position if _POSITION.fullmatch(position) else None
