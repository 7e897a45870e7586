"""The ports of service.ports on AWS: the single table's repositories, one module per aggregate over table.Table
(the one reading of DynamoDB's errors), and the queues, topics and data lake."""

from __future__ import annotations

from service.adapters.files import DynamoFiles, S3DataLake
from service.adapters.messages import SnsNotifier, SqsOrderQueue, SqsRestockQueue
from service.adapters.orders import DynamoOrders, PreparedWrite
from service.adapters.restocks import DynamoRestocks
from service.adapters.stock import DynamoStock
from service.keys import CLAIMED_ORDERS, CLAIMED_RESTOCKS


class DynamoStore(DynamoOrders, DynamoStock, DynamoRestocks, DynamoFiles):
    """Every repository of the single table over one client: what a function wires once."""


OrderStore = DynamoStore  # the name tests/e2e and tools/soak.py read the table through

__all__ = [
    "CLAIMED_ORDERS",
    "CLAIMED_RESTOCKS",
    "DynamoStore",
    "OrderStore",
    "PreparedWrite",
    "S3DataLake",
    "SnsNotifier",
    "SqsOrderQueue",
    "SqsRestockQueue",
]
