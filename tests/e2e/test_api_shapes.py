"""The running API's answers against the pydantic models docs/openapi.yaml is generated from (sandbox/api_shapes.py):
strict, and no key a model does not name, so a model that drifts from the handler fails here."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from e2e_support import Api, eventually, make_order, unique
from pydantic import BaseModel

from handlers import answers as said
from sandbox import api_shapes as shapes


def shaped(response: requests.Response, status: int, model: type[BaseModel]) -> BaseModel:
    """The answer, checked to have this status and to be exactly this model."""
    assert response.status_code == status, response.text
    return model.model_validate(response.json())


def test_an_order_its_replay_and_its_refusals_have_the_documented_shapes(api: Api, products) -> None:
    # Given a product in stock and an order for it
    (product,) = products(5)
    order = make_order([(product, 1)])

    # When it is sent, sent again, sent changed under the same id, and sent with a wrong payment
    first, again = api.post_order(order), api.post_order(order)
    other = api.post_order(make_order([(product, 2)], order_id=order["order_id"]))
    wrong = make_order([(product, 1)])
    wrong["payment"]["amount"] += Decimal("1.00")
    refused = api.post_order(wrong)

    # Then every answer is its model, with the handler's words
    assert shaped(first, 202, shapes.Accepted).message == said.ACCEPTED
    assert shaped(again, 202, shapes.Accepted).message == said.REPLAYED
    shaped(other, 409, shapes.Duplicate)
    invalid = shaped(refused, 400, shapes.Invalid)
    assert [error.field for error in invalid.errors] == ["payment.amount"]
    assert shapes.OrderView.model_validate(api.final_order(order["order_id"])).order_status == "Novo Pedido"
    product_view = shaped(api.get_product(product), 200, shapes.Product)
    assert (product_view.available, product_view.reserved) == (4, 1)


def test_a_restock_that_serves_a_waiting_order_has_the_documented_shapes(api: Api, products) -> None:
    # Given an order waiting for a product with no stock
    (product,) = products(0)
    order = make_order([(product, 2)])
    assert api.post_order(order).status_code == 202
    assert shapes.OrderView.model_validate(api.final_order(order["order_id"])).order_status == "Produto Pendente"

    # When the product is restocked, the restock sent again, its key reused, and a bad quantity sent
    key = unique("SHAPE-KEY")
    accepted = api.post_restock(product, 2, key)
    replayed, reused = api.post_restock(product, 2, key), api.post_restock(product, 3, key)
    bad = api.post_restock(product, 0)

    # Then every answer is its model, and the restock shows the order it served
    assert shaped(accepted, 202, shapes.RestockAccepted).restock_id == key
    assert shaped(replayed, 202, shapes.RestockAccepted).replayed is True
    shaped(reused, 409, shapes.RestockConflict)
    assert [error.field for error in shaped(bad, 400, shapes.RestockInvalid).errors] == ["quantity"]

    def released() -> shapes.RestockView | None:
        view = shaped(api.http.get(f"{api.base}/restocks/{key}", timeout=30), 200, shapes.RestockView)
        return view if view.released_at else None

    assert eventually(released, what=f"restock {key} released").released_orders == [order["order_id"]]
    served = shaped(api.get_order(order["order_id"]), 200, shapes.OrderView)
    assert (served.order_status, served.released_at is not None) == ("Novo Pedido", True)


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/orders/{id}", shapes.OrderNotFound),
        ("/products/{id}", shapes.ProductNotFound),
        ("/restocks/{id}", shapes.RestockNotFound),
    ],
)
def test_an_unknown_id_is_a_documented_404(api: Api, path: str, model: type[BaseModel]) -> None:
    shaped(api.http.get(api.base + path.format(id=unique("SHAPE-NONE")), timeout=30), 404, model)


def test_a_bad_cursor_and_a_body_that_is_not_json_have_the_documented_shapes(api: Api) -> None:
    cursor = api.http.get(f"{api.base}/restocks/{unique('SHAPE')}", params={"after": "not a cursor!"}, timeout=30)
    shaped(cursor, 400, shapes.BadCursor)
    not_json = api.post_restock(unique("SHAPE-PRD"), data="quantity=1", headers={"Content-Type": "text/plain"})
    assert shaped(not_json, 415, shapes.RestockUnsupportedMedia).message == said.RESTOCK_UNSUPPORTED_MEDIA
