"""Fixtures for the e2e suite: the running sandbox, reached only through its public doors."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import boto3
import pytest
from e2e_support import ROOT, Api, Gateway, Inbox, unique

from sandbox.aws import default_environment
from sandbox.chaos import sandbox_root
from sandbox.notifications import subscribe_queue
from sandbox.records import StackOutputs
from sandbox.seed import seed


@pytest.fixture(scope="session")
def outputs() -> dict[str, str]:
    path = ROOT / ".sandbox" / "outputs.json"
    if not path.exists():
        pytest.fail("the sandbox is not deployed (.sandbox/outputs.json missing): run `make up`, or `make test`")
    try:
        return StackOutputs.read(path).as_dict()
    except SystemExit as exc:
        pytest.fail(str(exc.code))


@pytest.fixture(scope="session")
def aws() -> boto3.session.Session:
    default_environment()
    return boto3.session.Session()


@pytest.fixture(scope="session")
def api(outputs: dict[str, str]) -> Api:
    return Api(outputs["ApiBaseUrl"])


@pytest.fixture(scope="session")
def gateway(aws: boto3.session.Session, outputs: dict[str, str]) -> Gateway:
    return Gateway(aws, outputs["ApiId"])


@pytest.fixture
def products(aws: boto3.session.Session, outputs: dict[str, str]) -> Callable[..., list[str]]:
    """products(5, 0) creates two products with 5 and 0 units available; their ids are unique to the test."""

    def create(*available: int) -> list[str]:
        items = [{"product_id": unique("E2E-PRD"), "description": "e2e", "available": n} for n in available]
        seed(aws, outputs["OrdersTable"], items)
        return [item["product_id"] for item in items]

    return create


@pytest.fixture(scope="session")
def inbox(aws: boto3.session.Session, outputs: dict[str, str]) -> Iterator[Inbox]:
    topics = [outputs["ErrorTopicArn"], outputs["PendingTopicArn"]]
    url = subscribe_queue(aws, unique("e2e-inbox").lower(), topics)
    yield Inbox(aws, url)
    sns = aws.client("sns")
    arn = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for topic in topics:
        for sub in sns.list_subscriptions_by_topic(TopicArn=topic).get("Subscriptions", []):
            if sub.get("Endpoint") == arn:
                sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    aws.client("sqs").delete_queue(QueueUrl=url)


@pytest.fixture(scope="session")
def chaos_root() -> int:
    """The pid of the MiniStack this checkout started, whose Lambda workers the chaos monkey may kill."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("the chaos monkey reads /proc (Linux)")
    try:
        return sandbox_root()
    except SystemExit as exc:
        pytest.skip(str(exc))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "heavy: a long load test; runs after every other test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Heavy tests run last, so a quick failure elsewhere shows before they start."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is not None)
