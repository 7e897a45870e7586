"""Each function's wiring, built once per cold start: its settings from the environment, the clients, the adapters
and its use case. Tests wire the same use cases with the fakes of tests/unit/fakes.py."""

from __future__ import annotations

import boto3
from botocore.config import Config

from orders.validation import OrderValidator
from service.adapters import DynamoStore, S3DataLake, SnsNotifier, SqsOrderQueue, SqsRestockQueue
from service.batch import BatchFailures, Heartbeat
from service.config import ApiSettings, FileSettings, ProcessorSettings, QueueSettings, RestockSettings, SweeperSettings
from service.use_cases import FileIngestion, OrderIntake, OrderProcessor, RestockIntake, StockRelease, Sweeper

# The clients leave the checking of a request's parameters to the service, which checks them anyway: botocore's
# own check walks every value of a request, and was about half the processor's CPU time per batch (py-spy, make bench).
# It is passed at each `boto3.client(...)` call rather than through a helper: tests/unit/test_security.py derives each
# role's grants from those calls.
CLIENTS = Config(parameter_validation=False)


class ApiWiring:
    def __init__(self) -> None:
        settings = ApiSettings.from_env()
        sqs = boto3.client("sqs", config=CLIENTS)
        self.store = DynamoStore(boto3.client("dynamodb", config=CLIENTS), settings.table_name)
        validator = OrderValidator(strict_documents=settings.strict_documents)
        self.orders = OrderIntake(validator, self.store, SqsOrderQueue(sqs, settings.order_queue_url))
        self.restocks = RestockIntake(self.store, SqsRestockQueue(sqs, settings.restock_queue_url))


class ConsumerWiring:
    """What every queue-fed function has, with the handling of the records it could not finish."""

    def __init__(
        self, settings: QueueSettings, queue_url: str, queue: str, pending_topic_arn: str | None = None
    ) -> None:
        self.sqs = boto3.client("sqs", config=CLIENTS)
        self.notifier = SnsNotifier(boto3.client("sns", config=CLIENTS), settings.error_topic_arn, pending_topic_arn)
        self.store = DynamoStore(boto3.client("dynamodb", config=CLIENTS), settings.table_name)
        self.releases = SqsRestockQueue(self.sqs, settings.restock_queue_url)
        self.failures = BatchFailures(self.sqs, queue_url, self.notifier, settings.max_receive_count, queue)
        self.heartbeat = Heartbeat(self.sqs, queue_url)


class FileValidatorWiring(ConsumerWiring):
    def __init__(self) -> None:
        settings = FileSettings.from_env()
        super().__init__(settings, settings.file_queue_url, "files")
        self.file_queue_url = settings.file_queue_url
        validator = OrderValidator(strict_documents=settings.strict_documents)
        orders = SqsOrderQueue(self.sqs, settings.order_queue_url)
        files = S3DataLake(boto3.client("s3", config=CLIENTS))
        self.ingestion = FileIngestion(validator, self.store, orders, files, self.notifier, self.releases)


class ProcessorWiring(ConsumerWiring):
    def __init__(self) -> None:
        settings = ProcessorSettings.from_env()
        super().__init__(settings, settings.order_queue_url, "orders", settings.pending_topic_arn)
        self.processor = OrderProcessor(self.store, self.notifier, releases=self.releases)


class RestockerWiring(ConsumerWiring):
    def __init__(self) -> None:
        settings = RestockSettings.from_env()
        super().__init__(settings, settings.restock_queue_url, "restocks", settings.pending_topic_arn)
        self.release = StockRelease(self.store, self.notifier, releases=self.releases)


class SweeperWiring:
    def __init__(self) -> None:
        self.settings = SweeperSettings.from_env()
        store = DynamoStore(boto3.client("dynamodb", config=CLIENTS), self.settings.table_name)
        sqs = boto3.client("sqs", config=CLIENTS)
        orders = SqsOrderQueue(sqs, self.settings.order_queue_url)
        restocks = SqsRestockQueue(sqs, self.settings.restock_queue_url)
        self.sweeper = Sweeper(store, orders, restocks, stuck_after=self.settings.stuck_after_seconds)
