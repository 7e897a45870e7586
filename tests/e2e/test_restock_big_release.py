"""A restock that releases 10,000 waiting orders at once (issue 11, point 2): it completes, the books balance, and
GET /restocks/{id} pages through every order it served."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from e2e_support import eventually, make_order, put_file, read_report, to_wire, unique

from sandbox.dlq import PAIRS, peek

ORDERS = 10_000
# Longest ids (64 characters): their list in the restock record outgrew DynamoDB's 400 KB at about 6,300 orders.
ID_WIDTH = 64


def released_items(aws, outputs: dict[str, str], restock_id: str) -> list[dict[str, Any]]:
    """The restock's released-order items, read from the table (every page)."""
    db = aws.client("dynamodb")
    request: dict[str, Any] = {
        "TableName": outputs["OrdersTable"],
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :released)",
        "ExpressionAttributeValues": {":pk": {"S": f"RESTOCK#{restock_id}"}, ":released": {"S": "RELEASED#"}},
    }
    items: list[dict[str, Any]] = []
    while True:
        response = db.query(**request)
        items += response["Items"]
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def statuses(aws, outputs: dict[str, str], order_ids: list[str]) -> dict[str, str]:
    """order_status of each order, read from the table 100 at a time."""
    db = aws.client("dynamodb")
    found: dict[str, str] = {}
    for start in range(0, len(order_ids), 100):
        keys = [{"PK": {"S": f"ORDER#{o}"}, "SK": {"S": "ORDER"}} for o in order_ids[start : start + 100]]
        while keys:
            request = {outputs["OrdersTable"]: {"Keys": keys, "ProjectionExpression": "order_id, order_status"}}
            response = db.batch_get_item(RequestItems=request)
            for item in response["Responses"][outputs["OrdersTable"]]:
                found[item["order_id"]["S"]] = item["order_status"]["S"]
            keys = response.get("UnprocessedKeys", {}).get(outputs["OrdersTable"], {}).get("Keys", [])
    return found


def rate(moments: list[datetime]) -> float:
    """Orders per second between the first and the last of these release instants."""
    return (len(moments) - 1) / max((moments[-1] - moments[0]).total_seconds(), 1e-3)


@pytest.mark.heavy
def test_a_restock_releases_ten_thousand_waiting_orders(aws, outputs, api, products):
    # Given 10,000 orders of one unit of a product without stock, one minute apart, in one data-lake file
    [product] = products(0)
    prefix = unique("E2E-BIG")
    start = datetime(2024, 3, 1)
    orders = []
    for n in range(ORDERS):
        order = make_order([(product, 1)], order_id=f"{prefix}-{n:05d}-".ljust(ID_WIDTH, "x"))
        order["order_date"] = (start + timedelta(minutes=n)).isoformat() + "Z"
        orders.append(order)
    order_ids = [o["order_id"] for o in orders]
    report = read_report(
        aws, outputs, put_file(aws, outputs, f"incoming/e2e/{prefix}.json", to_wire(orders).encode()), timeout=600
    )
    assert (report["accepted"], report["rejected"]) == (ORDERS, 0)
    # And all of them wait for it
    eventually(
        lambda: api.get_product(product).json()["waiting_items"] == ORDERS,
        timeout=900,
        interval=5,
        what="10,000 orders waiting",
    )

    # When a restock of 10,000 units arrives
    response = api.post_restock(product, ORDERS, key=unique("E2E-BIG-RESTOCK"))
    assert response.status_code == 202, response.text
    restock_id = response.json()["restock_id"]

    # Then its release runs to the end
    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = api.http.get(f"{api.base}/restocks/{restock_id}", timeout=30).json()
        return body if body["released_at"] else None

    first = eventually(finished, timeout=1_800, interval=5, what="the 10,000-order release to end")
    # And GET /restocks/{id} counts 10,000 and pages through each order once, oldest first
    pages = [first]
    while pages[-1]["next"] is not None:
        page = api.http.get(f"{api.base}/restocks/{restock_id}", params={"after": pages[-1]["next"]}, timeout=30)
        assert page.status_code == 200, page.text
        pages.append(page.json())
    assert {page["released_count"] for page in pages} == {ORDERS}
    assert [order_id for page in pages for order_id in page["released_orders"]] == order_ids
    assert len(pages) == 10, "pages of 1,000"
    # And every order is `Novo Pedido`, and the stock balances: all 10,000 units reserved, nobody waiting
    assert set(statuses(aws, outputs, order_ids).values()) == {"Novo Pedido"}
    assert api.stock(product) == (0, ORDERS)
    assert api.get_product(product).json()["waiting_items"] == 0
    assert api.final_order(order_ids[-1])["order_status"] == "Novo Pedido"
    # And every order_released message went out: the outbox of the product is empty
    outbox = aws.client("dynamodb").query(
        TableName=outputs["OrdersTable"],
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RELEASED#{product}"}},
        Select="COUNT",
    )
    assert outbox["Count"] == 0
    # And nothing of this test went to a dead-letter queue
    sqs = aws.client("sqs")
    for dlq_output, _ in PAIRS.values():
        bodies = [m["Body"] for m in peek(sqs, outputs[dlq_output])]
        assert [b for b in bodies if product in b or prefix in b] == [], dlq_output

    # The release rate at its start and at its end (a figure for the report, not a timed assertion)
    moments = sorted(datetime.fromisoformat(i["released_at"]["S"]) for i in released_items(aws, outputs, restock_id))
    assert len(moments) == ORDERS
    figures = {
        "first 1,000 orders/s": round(rate(moments[:1_000]), 1),
        "last 1,000 orders/s": round(rate(moments[-1_000:]), 1),
        "whole release orders/s": round(rate(moments), 1),
        "seconds": round((moments[-1] - moments[0]).total_seconds(), 1),
    }
    print(f"\nrelease of {ORDERS:,} waiting orders: {json.dumps(figures)}")
