"""The API's answers as pydantic models: sandbox/openapi.py generates docs/openapi.yaml's schemas from them, and
tests/e2e/test_api_shapes.py validates the running API's answers with them.

Statuses, limits and the id rule are read from functions/ and the order schema; the answers' texts are the
handler's own, functions/handlers/answers.py. Tools only: functions/ has no dependencies, so the handler never
imports this module.
"""

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from handlers import answers as said
from orders import model as domain
from orders.restock import (
    MAX_RESTOCK_QUANTITY,
    RELEASED_PAGE,
    RESTOCK_APPLIED,
    RESTOCK_RECEIVED,
)
from sandbox.gateway import BUILT_IN_REFUSAL
from sandbox.model import SCHEMA

# The ids' rule of the order schema (order_id), which product and restock ids and Idempotency-Key follow too.
ID_RULE = {k: v for k, v in json.loads(SCHEMA.read_text("utf-8"))["properties"]["order_id"].items() if k[0] != "x"}
ID_TEXT = f"{ID_RULE['minLength']}-{ID_RULE['maxLength']} characters of {ID_RULE['pattern'].strip('^+$')}"
Id = Annotated[str, Field(min_length=ID_RULE["minLength"], max_length=ID_RULE["maxLength"], pattern=ID_RULE["pattern"])]
Money = Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]{2}$", examples=["2500.00"])]  # handlers/api.py `_money`
OrderStatus = Literal[domain.RECEIVED, domain.NEW_ORDER, domain.PRODUCT_PENDING]
ItemStatus = Literal[domain.RECEIVED, domain.RESERVED, domain.PENDING]
RestockStatus = Literal[RESTOCK_RECEIVED, RESTOCK_APPLIED]
Quantity = Annotated[int, Field(ge=1, le=MAX_RESTOCK_QUANTITY)]


class Answer(BaseModel):
    # Strict, and no key the handler does not write: a live answer with another shape fails the e2e suite.
    model_config = ConfigDict(strict=True, extra="forbid")


class FieldError(Answer):
    """One refused field (or the body as a whole), and why, in Portuguese."""

    field: str
    message: str


def _message(name: str, doc: str, *texts: str, **fields: Any) -> type[Answer]:
    """An answer that is a message, one of these texts, and these fields."""
    return create_model(
        name, __base__=Answer, __doc__=doc, __module__=__name__, message=(Literal[texts], ...), **fields
    )


INVALID_DOC = "A 400 of the handler: its message, and every error at once."
ERRORS = (list[FieldError], Field(min_length=1))


class Accepted(Answer):
    """An order recorded as Recebido and queued, or a replay of one."""

    order_id: str
    replayed: bool = Field(description="True when the same order was received before.")
    message: Literal[said.ACCEPTED, said.REPLAYED]


class StatusChange(Answer):
    """One change of an order's status."""

    status: OrderStatus
    at: str = Field(description="ISO 8601, UTC.")
    reason: str = Field(description="Why, in Portuguese, for the customer's eyes.")


class OrderItemView(Answer):
    """One item of an order and its own status."""

    product_id: str
    quantity: int = Field(ge=1)
    unit_price: Money | None
    item_status: ItemStatus


class OrderView(Answer):
    """The order and every change of its status."""

    order_id: str
    order_status: OrderStatus
    order_date: str | None = Field(description="As sent.")
    received_at: str | None = Field(description="ISO 8601, UTC.")
    processed_at: str | None = Field(description="ISO 8601, UTC; null while Recebido.")
    released_at: str | None = Field(
        description="ISO 8601, UTC: when a restock reserved the last of its waiting items and it became Novo Pedido; "
        "null for an order that never waited, or still waits."
    )
    status_history: list[StatusChange] = Field(description="Every change of order_status, oldest first.")
    items_total: Money | None
    items: list[OrderItemView]


class Product(Answer):
    """A product's stock."""

    product_id: str
    description: str | None = Field(
        description="Null for a product the seed did not describe (first named by a waiting order or a restock)."
    )
    available: int
    reserved: int
    waiting_items: int = Field(description="Order items waiting for this product (Pendente), served by its restocks.")


class Restock(BaseModel):
    """The body of a restock; other fields are ignored."""

    model_config = ConfigDict(strict=True)

    quantity: Quantity


class RestockAccepted(Answer):
    """A restock recorded and queued, or the one already received under its Idempotency-Key."""

    restock_id: Id = Field(description="The Idempotency-Key, or the one generated.")
    product_id: str
    quantity: Quantity
    restock_status: RestockStatus
    replayed: bool = Field(description="True when the key was received before.")
    message: Literal[said.RESTOCK_ACCEPTED, said.RESTOCK_REPLAYED]


class RestockView(Answer):
    """A restock, how many orders it served, and one page of them."""

    restock_id: str
    product_id: str
    quantity: int = Field(ge=1)
    restock_status: RestockStatus
    received_at: str | None = Field(description="ISO 8601, UTC; null for a restock that reached the queue another way.")
    applied_at: str | None = Field(description="ISO 8601, UTC; null while Recebida.")
    released_at: str | None = Field(
        description="ISO 8601, UTC: when the release of the waiting items ended; null before."
    )
    released_count: int = Field(ge=0, description="How many orders had a waiting item reserved by this restock.")
    released_orders: list[str] = Field(
        description="One page of the orders whose waiting items this restock reserved, oldest in the queue first; "
        f"at most {RELEASED_PAGE:,}."
    )
    next: str | None = Field(description="Pass as `?after=` for the next page; null on the last page.")


class GatewayMessage(BaseModel):
    """An answer of API Gateway itself: the function was not called."""

    message: str


Invalid = _message("Invalid", INVALID_DOC, said.INVALID, errors=ERRORS)
RestockInvalid = _message("RestockInvalid", INVALID_DOC, said.RESTOCK_INVALID, errors=ERRORS)
GatewayRefusal = _message("GatewayRefusal", "LocalStack's gateway refused the body.", *BUILT_IN_REFUSAL.values())
Duplicate = _message(
    "Duplicate", "The order_id was already received with another document; nothing was kept.", said.DUPLICATE
)
NOT_JSON = "A Content-Type that is not JSON, or a charset other than UTF-8."
UnsupportedMedia = _message("UnsupportedMedia", NOT_JSON, said.UNSUPPORTED_MEDIA, said.NOT_UTF8)
RestockUnsupportedMedia = _message("RestockUnsupportedMedia", NOT_JSON, said.RESTOCK_UNSUPPORTED_MEDIA, said.NOT_UTF8)
Unavailable = _message(
    "Unavailable",
    "The store or the queue refused; nothing was kept: send the same request again (a restock with the same "
    "Idempotency-Key is applied once).",
    said.UNAVAILABLE,
)
OrderNotFound = _message("OrderNotFound", "Unknown order.", said.ORDER_NOT_FOUND)
ProductNotFound = _message("ProductNotFound", "Unknown product.", said.PRODUCT_NOT_FOUND)
RestockNotFound = _message("RestockNotFound", "Unknown restock.", said.RESTOCK_NOT_FOUND)
RestockConflict = _message(
    "RestockConflict",
    "The Idempotency-Key was already used by a restock of another product or quantity; nothing was applied.",
    said.RESTOCK_CONFLICT,
)
BadCursor = _message("BadCursor", "An `after` that is not the `next` of a page.", said.RESTOCK_BAD_CURSOR)


class _Schema(GenerateJsonSchema):
    """No field titles (pydantic titles each field after its name, "Order Id"), and keys in the order written."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def sort(self, value: Any, parent_key: str | None = None) -> Any:
        return value


def components(ref_template: str) -> dict[str, Any]:
    """The JSON Schemas (2020-12, OpenAPI 3.1's dialect) of every shape of this module, by name."""
    models = [
        value
        for value in globals().values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == __name__
        and value is not Answer
    ]
    _, top = models_json_schema(
        [(model, "validation") for model in models], ref_template=ref_template, schema_generator=_Schema
    )
    defs: dict[str, Any] = top["$defs"]
    return defs
