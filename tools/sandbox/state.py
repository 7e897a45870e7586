"""What the stack holds, as the tools read it: the orders table by key (`service.keys`, the functions' own
layout), batched here once, the queues' depth, and the stack's functions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from service.keys import order_key, product_key, restock_key

__all__ = ["batch_get", "orders", "products", "queue_depth", "restocks", "stack_functions"]


def batch_get(db: Any, table: str, keys: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    """Every item of `keys` (100 a request), asking again for what DynamoDB leaves unprocessed."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {table: {"Keys": keys[start : start + 100], **options}}
        while request:
            response = db.batch_get_item(RequestItems=request)
            found += response.get("Responses", {}).get(table, [])
            request = response.get("UnprocessedKeys") or {}
    return found


def orders(db: Any, table: str, order_ids: Iterable[str], **options: Any) -> list[dict[str, Any]]:
    return batch_get(db, table, [order_key(i) for i in order_ids], ConsistentRead=True, **options)


def products(db: Any, table: str, product_ids: Iterable[str]) -> list[dict[str, Any]]:
    return batch_get(db, table, [product_key(p) for p in product_ids], ConsistentRead=True)


def restocks(db: Any, table: str, restock_ids: Iterable[str]) -> list[dict[str, Any]]:
    return batch_get(db, table, [restock_key(r) for r in restock_ids], ConsistentRead=True)


def queue_depth(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue, as SQS approximates them."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    visible, in_flight = (int(attributes.get(name, 0)) for name in names)
    return visible, in_flight


def stack_functions(cfn: Any, stack_name: str) -> list[str]:
    """The names of every Lambda function in the stack (so a function added later is covered too)."""
    resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    return sorted(r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Lambda::Function")
