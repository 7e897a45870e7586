"""The ports of service.ports on AWS: the single table's repositories, one module per aggregate over table.Table
(the one reading of DynamoDB's errors), and the queues, topics and data lake."""

from __future__ import annotations

from service.adapters.files import DynamoFiles
from service.adapters.files import S3DataLake as S3DataLake
from service.adapters.messages import SnsNotifier as SnsNotifier
from service.adapters.messages import SqsOrderQueue as SqsOrderQueue
from service.adapters.messages import SqsRestockQueue as SqsRestockQueue
from service.adapters.orders import DynamoOrders
from service.adapters.restocks import DynamoRestocks
from service.adapters.stock import DynamoStock


class DynamoStore(DynamoOrders, DynamoStock, DynamoRestocks, DynamoFiles):
    """Every repository of the single table over one client: what a function wires once."""
