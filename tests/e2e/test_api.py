"""The API entry: POST /orders, GET /orders/{id}, GET /products/{id}, through API Gateway."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from e2e_support import ORDERS, eventually, make_order, unique

from sandbox.load import lab_example, to_wire


def test_lab_example_verbatim_is_accepted_and_processed(api):
    """The lab's own payload, byte for byte: 202 (a replay once it exists), then a final state."""
    body = (ORDERS / "lab-example.json").read_bytes()
    response = api.post_order(None, data=body)
    assert response.status_code == 202, response.text
    replayed = response.json()["replayed"]
    assert response.json() == {
        "order_id": "ORD-20231001-0001",
        "replayed": replayed,
        "message": (
            "Pedido já recebido com este mesmo conteúdo; nada foi duplicado."
            if replayed
            else "Pedido enviado para processamento."
        ),
    }
    order = api.final_order("ORD-20231001-0001")
    assert [i["product_id"] for i in order["items"]] == ["PRD-1001", "PRD-2002"]


def test_example_order_ends_new_order_with_stock_reserved(api, products):
    # Given two products with stock
    phone, headset = products(10, 10)
    order = make_order([(phone, 1), (headset, 2)])

    # When the order is posted
    response = api.post_order(order)

    # Then it is accepted, processed as Novo Pedido, and the stock moved from available to reserved
    assert response.status_code == 202, response.text
    assert response.json() == {
        "order_id": order["order_id"],
        "replayed": False,
        "message": "Pedido enviado para processamento.",
    }
    final = api.final_order(order["order_id"])
    assert final["order_status"] == "Novo Pedido"
    assert [(i["product_id"], i["quantity"], i["item_status"]) for i in final["items"]] == [
        (phone, 1, "Reservado"),
        (headset, 2, "Reservado"),
    ]
    assert api.stock(phone) == (9, 1)
    assert api.stock(headset) == (8, 2)


def test_an_accepted_order_is_never_404(api, products):
    (product,) = products(5)
    order = make_order([(product, 1)])
    assert api.post_order(order).status_code == 202
    response = api.get_order(order["order_id"])
    assert response.status_code == 200
    assert response.json()["order_status"] in {"Recebido", "Novo Pedido", "Produto Pendente"}


def test_out_of_stock_item_leaves_order_pending_and_notifies(api, products, inbox, outputs):
    # Given one product in stock and one with too little
    in_stock, scarce = products(5, 1)
    order = make_order([(in_stock, 2), (scarce, 3)])

    # When the order is posted
    assert api.post_order(order).status_code == 202

    # Then the order is pending, only the scarce item is pending, and its stock is untouched
    final = api.final_order(order["order_id"])
    assert final["order_status"] == "Produto Pendente"
    assert {i["product_id"]: i["item_status"] for i in final["items"]} == {in_stock: "Reservado", scarce: "Pendente"}
    assert api.stock(in_stock) == (3, 2)
    assert api.stock(scarce) == (1, 0)

    # And the pending-stock notification names the pending item, with personal data masked
    message = inbox.wait_for(lambda m: m["body"].get("order_id") == order["order_id"])
    assert message["topic"] == outputs["PendingTopicArn"]
    assert message["body"]["event"] == "order_pending"
    assert message["body"]["pending_items"] == [{"product_id": scarce, "quantity": 3}]
    assert message["body"]["customer_email"] == "m***@example.com"
    assert "mariana.alves@example.com" not in message["raw"]
    assert "123.456.789-00" not in message["raw"]


def test_product_without_stock_record_is_pending(api, products):
    (known,) = products(5)
    unknown_product = unique("E2E-NOSTOCK")
    order = make_order([(known, 1), (unknown_product, 1)])
    assert api.post_order(order).status_code == 202
    final = api.final_order(order["order_id"])
    assert final["order_status"] == "Produto Pendente"
    # The product is now known by the item waiting for it: no stock, one waiting item (a restock serves it).
    product = api.get_product(unknown_product)
    assert product.status_code == 200
    assert (product.json()["available"], product.json()["reserved"], product.json()["waiting_items"]) == (0, 0, 1)


def test_invalid_order_gets_400_with_every_error_and_nothing_is_stored(api, products, gateway):
    (product,) = products(5)
    order = make_order([(product, 1)])
    order["items"][0]["quantity"] = "2"
    order["customer"]["address"]["state"] = "XX"
    order["order_id"] = unique("E2E-BAD")

    response = api.post_order(order)

    assert response.status_code == 400
    # The model refuses this body: an enforcing gateway answers for it, otherwise the Lambda names every error.
    assert gateway.check_refusal(response, to_wire(order).encode()) is gateway.enforced, response.text
    if not gateway.enforced:
        fields = {e["field"] for e in response.json()["errors"]}
        assert {"items[0].quantity", "customer.address.state"} <= fields
        assert all(e["message"] for e in response.json()["errors"])
    assert api.get_order(order["order_id"]).status_code == 404
    assert api.stock(product) == (5, 0)


@pytest.mark.parametrize(
    "body, field",
    [
        (b"", "(corpo)"),
        (b"{not json", "(corpo)"),
        (b'{"order_id": NaN}', "(corpo)"),
        (b"[]", "(pedido)"),
        (b"x" * (64 * 1024 + 1), "(corpo)"),
    ],
    ids=["empty", "not-json", "nan", "array", "too-large"],
)
def test_unreadable_bodies_get_400(api, gateway, body, field):
    response = api.post_order(None, data=body)
    assert response.status_code == 400, response.text
    if not gateway.check_refusal(response, body):
        assert response.json()["errors"][0]["field"] == field


def test_the_gateway_checks_the_model_exactly_when_the_api_says_it_does(api, gateway):
    # Given an order without an order_id, which the model refuses
    order = make_order([("PRD-1001", 1)])
    del order["order_id"]

    # When it is posted
    response = api.post_order(order)

    # Then it is the gateway that refuses it if, and only if, the API Gateway API shows an enforcing validator
    assert response.status_code == 400, response.text
    assert gateway.check_refusal(response, to_wire(order).encode()) is gateway.enforced, (gateway.reason, response.text)
    if not gateway.enforced:
        assert "order_id" in [e["field"] for e in response.json()["errors"]]


def test_wrong_content_type_is_refused(api):
    response = api.post_order(None, data=to_wire(make_order([("PRD-1001", 1)])), headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_a_used_order_id_with_another_body_gets_409(api, products):
    (product,) = products(5)
    order = make_order([(product, 1)])
    assert api.post_order(order).status_code == 202
    second = api.post_order({**order, "notes": "outro conteúdo"})
    assert second.status_code == 409
    assert second.json() == {"message": "Pedido duplicado."}
    api.final_order(order["order_id"])
    assert api.stock(product) == (4, 1)


def test_identical_requests_racing_get_one_order_and_replays(api, products):
    (product,) = products(50)
    order = make_order([(product, 1)])
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: api.post_order(order), range(8)))
    assert [a.status_code for a in answers] == [202] * 8
    assert sorted(a.json()["replayed"] for a in answers) == [False] + [True] * 7
    api.final_order(order["order_id"])
    assert api.stock(product) == (49, 1)


def test_concurrent_orders_for_a_scarce_product_never_oversell(api, products):
    # Given a product with 5 units
    (scarce,) = products(5)
    orders = [make_order([(scarce, 1)]) for _ in range(12)]

    # When 12 orders of one unit arrive at once
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda o: api.post_order(o).status_code, orders))
    assert statuses == [202] * 12

    # Then exactly 5 are served and 7 wait; stock never went below zero
    finals = [api.final_order(o["order_id"], timeout=60)["order_status"] for o in orders]
    assert finals.count("Novo Pedido") == 5
    assert finals.count("Produto Pendente") == 7
    assert api.stock(scarce) == (0, 5)


def test_unknown_order_and_product_are_404(api):
    assert api.get_order(unique("E2E-NONE")).status_code == 404
    assert api.get_product(unique("E2E-NONE")).status_code == 404


def test_product_stock_is_integers(api, products):
    (product,) = products(7)
    body = api.get_product(product).json()
    assert body["product_id"] == product
    assert (body["available"], body["reserved"]) == (7, 0)
    assert isinstance(body["available"], int) and isinstance(body["reserved"], int)


def test_money_survives_exactly(api, products):
    (product,) = products(5)
    order = make_order([(product, 3)])
    order["items"][0]["unit_price"] = lab_example()["items"][1]["unit_price"]  # 150.00
    order["payment"]["amount"] = order["items"][0]["unit_price"] * 3
    response = api.post_order(order)
    assert response.status_code == 202, response.text
    final = api.final_order(order["order_id"])
    assert final["items_total"] == "450.00"
    assert final["items"][0]["unit_price"] == "150.00"
    assert json.loads(to_wire(order))["payment"]["amount"] == 450.0
    eventually(lambda: api.stock(product) == (2, 3), what="stock reserved")
