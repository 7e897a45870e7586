"""Recovery when a function dies midway: the same body again is a replay, and what a dead function claimed and
never sent is sent by the sweeper (an EventBridge schedule), so no order or restock stays received for good."""

from __future__ import annotations

import json

from e2e_support import eventually, make_order, unique

from orders.restock import Restock
from orders.validation import OrderValidator
from sandbox.load import lab_example, to_wire
from service.adapters import DynamoStore, SqsOrderQueue

# The sweeper runs every minute, three passes 20 s apart, for claims older than 20 s (infra/template.yaml); the
# schedule fires up to 10 s late on MiniStack. A claim left behind is therefore sent again within about 50 s.
RECOVERY_SECONDS = 120


def test_the_same_body_again_is_a_replay_and_another_body_with_that_id_is_409(api, products):
    [product] = products(5)
    order = make_order([(product, 1)])
    assert api.post_order(order).status_code == 202

    # The client's retry of the same order, as another serialisation of the same JSON
    again = api.post_order(order, data=json.dumps(json.loads(to_wire(order)), indent=2))
    assert again.status_code == 202, again.text
    assert again.json()["replayed"] is True

    other = dict(order, notes="outro pedido com o mesmo id")
    conflict = api.post_order(other)
    assert conflict.status_code == 409, conflict.text
    assert conflict.json() == {"message": "Pedido duplicado."}

    assert api.final_order(order["order_id"])["order_status"] == "Novo Pedido"
    assert api.stock(product) == (4, 1), "the replay reserved nothing twice"


def test_claims_left_by_a_function_that_died_before_its_send_are_finished_by_the_sweeper(aws, outputs, api, products):
    # Given an order and a restock claimed by functions that died before sending them (what a SIGKILL or a timeout
    # between the conditional PutItem and SendMessage leaves): both `Recebido`/`Recebida`, no message anywhere
    [product, restocked] = products(5, 0)
    store = DynamoStore(aws.client("dynamodb"), outputs["OrdersTable"])
    order = OrderValidator().validate(make_order([(product, 2)]))
    store.claim(order, f"api:{unique('died')}")
    restock = Restock(unique("KEY"), restocked, 7)
    store.claim_restock(restock, f"api:{unique('died')}")
    assert api.get_order(order.order_id).json()["order_status"] == "Recebido"

    # When the client retries nothing at all: the sweeper alone finishes both
    final = api.final_order(order.order_id, timeout=RECOVERY_SECONDS)

    # Then the order is processed once and the restock applied once
    assert final["order_status"] == "Novo Pedido"
    assert api.stock(product) == (3, 2)

    def applied() -> bool:
        body = api.http.get(f"{api.base}/restocks/{restock.restock_id}", timeout=30).json()
        return body["restock_status"] != "Recebida"

    eventually(applied, timeout=RECOVERY_SECONDS, interval=1, what="the restock applied by the sweeper")
    assert api.stock(restocked) == (7, 0)


def test_a_retry_of_the_same_body_finishes_an_order_whose_claim_was_left_behind(aws, outputs, api, products):
    # Given an order claimed by an API call that died before its send (the client saw a 502)
    [product] = products(5)
    document = make_order([(product, 1)])
    order = OrderValidator().validate(
        json.loads(to_wire(document), parse_float=type(lab_example()["payment"]["amount"]))
    )
    DynamoStore(aws.client("dynamodb"), outputs["OrdersTable"]).claim(order, f"api:{unique('died')}")

    # When the client sends the same body again
    response = api.post_order(document)

    # Then it is accepted (not a 409) and processed now, without waiting for a sweep
    assert response.status_code == 202, response.text
    assert response.json()["replayed"] is True
    assert api.final_order(order.order_id, timeout=30)["order_status"] == "Novo Pedido"


def test_the_sweepers_copy_of_an_order_already_delivered_is_dropped_by_the_queue(aws, outputs, api, products):
    # Claimants do not record their send, so the sweeper sends once more any claim still unprocessed 20 s after it
    # was received. The queue's five-minute deduplication by order_id must drop that copy (docs/RELIABILITY.md):
    # held here on the sandbox's own queue, with the adapter the API and the sweeper send through.
    # Given an order sent as the API sends it, delivered and processed (its message received and deleted)
    [product] = products(5)
    order = OrderValidator().validate(make_order([(product, 1)]))
    sqs, message_ids = aws.client("sqs"), []
    sqs.meta.events.register("after-call.sqs.SendMessage", lambda parsed, **_: message_ids.append(parsed["MessageId"]))
    sqs.meta.events.register(
        "after-call.sqs.SendMessageBatch",
        lambda parsed, **_: message_ids.extend(entry["MessageId"] for entry in parsed.get("Successful", [])),
    )
    queue = SqsOrderQueue(sqs, outputs["OrderQueueUrl"])
    queue.send(order)
    assert api.final_order(order.order_id)["order_status"] == "Novo Pedido"

    # When the sweeper sends it again
    assert queue.send_batch([order]) == []

    # Then the queue takes the copy as the first message (its id): accepted, never delivered, nothing reserved twice
    assert len(message_ids) == 2 and message_ids[0] == message_ids[1], message_ids
    assert api.stock(product) == (4, 1)
