"""The single table's key layout, in one place: every partition and sort key the adapters write and read.

    ORDER#<order_id>      ORDER                  the order
                          PENDING#<product_id>   one of its items, waiting for stock (GSI1 PENDING#<product_id>)
    PRODUCT#<product_id>  STOCK                  the product's stock: available, reserved, waiting
    RESTOCK#<restock_id>  RESTOCK                the restock
                          RELEASED#<position>    an order it served, by its queue position
    RELEASED#<product_id> ORDER#<order_id>       the outbox: an order-released message not yet published
    FILE#<file_id>        FILE                   a data-lake file done
                          PART#<start>           what one chunk of it came to

GSI1 holds the claims neither processed nor swept yet (UNSENT#order for the API's, UNSENT#file-order for a
data-lake file's, UNSENT#restock, sorted by the instant they were received: what the sweeper looks through), the
orders by status (STATUS#<status>; a `Recebido` order is in its UNSENT# partition until processed or swept) and
each product's queue of waiting items (PENDING#<product_id>, sorted by queue position).
"""

from __future__ import annotations

from typing import Any

from orders.model import RECEIVED

CLAIMED_ORDERS = "UNSENT#order"
CLAIMED_FILE_ORDERS = "UNSENT#file-order"  # a file's claims: its own resume sends them first (the sweeper waits longer)
FILE_SOURCE = "s3://"  # how the source of a file's order begins: s3://<bucket>/<key>#<event tag>:<line>
CLAIMED_RESTOCKS = "UNSENT#restock"
ORDER = "ORDER"
RESTOCK = "RESTOCK"
STOCK = "STOCK"
FILE = "FILE"
PART = "PART#"
RELEASED = "RELEASED#"


def key(pk: str, sk: str) -> dict[str, Any]:
    """A primary key as DynamoDB's low-level API takes it."""
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def order_pk(order_id: str) -> str:
    return f"ORDER#{order_id}"


def product_pk(product_id: str) -> str:
    return f"PRODUCT#{product_id}"


def restock_pk(restock_id: str) -> str:
    return f"RESTOCK#{restock_id}"


def file_pk(file_id: str) -> str:
    return f"FILE#{file_id}"


def pending(product_id: str) -> str:
    """A waiting item's sort key under its order, and GSI1's partition of the product's queue."""
    return f"PENDING#{product_id}"


def pending_key(order_id: str, product_id: str) -> dict[str, Any]:
    return key(order_pk(order_id), pending(product_id))


def released_sk(position: str) -> str:
    """An order a restock served, under the restock, by its queue position."""
    return f"{RELEASED}{position}"


def notices_pk(product_id: str) -> str:
    """The outbox of a product's order-released messages not yet published."""
    return f"{RELEASED}{product_id}"


def notice_key(product_id: str, order_id: str) -> dict[str, Any]:
    return key(notices_pk(product_id), order_pk(order_id))


def file_key(file_id: str) -> dict[str, Any]:
    return key(file_pk(file_id), FILE)


def part_sk(start: int) -> str:
    return f"{PART}{start:09d}"


def status_partition(status: str) -> str:
    """GSI1: the orders in a status (a `Recebido` order may be in a claims partition instead: status_partitions)."""
    return f"STATUS#{status}"


def status_partitions(status: str) -> tuple[str, ...]:
    """GSI1's partitions of the orders in a status: a claim stays in its unsent partition, `Recebido`, until it is
    processed or the sweeper sends it again and moves it to `STATUS#Recebido`."""
    if status == RECEIVED:
        return (CLAIMED_ORDERS, CLAIMED_FILE_ORDERS, status_partition(status))
    return (status_partition(status),)


def claims_partition(source: str) -> str:
    """GSI1's partition of a claim made by `source`: a data-lake file's, or the API's."""
    return CLAIMED_FILE_ORDERS if source.startswith(FILE_SOURCE) else CLAIMED_ORDERS


def order_key(order_id: str) -> dict[str, Any]:
    return key(order_pk(order_id), ORDER)


def product_key(product_id: str) -> dict[str, Any]:
    return key(product_pk(product_id), STOCK)


def restock_key(restock_id: str) -> dict[str, Any]:
    return key(restock_pk(restock_id), RESTOCK)
