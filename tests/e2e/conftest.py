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

# A pytest-xdist worker starts with COLUMNS=80, as if on a terminal; the tools run here would then wrap their output
# at 80 columns, where a serial run's piped output is whole (sandbox.cli's consoles).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


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


# `make e2e` runs the suite on two pytest-xdist workers (`-n 2 --dist loadgroup`). Every test makes its own ids, so
# any two may run at once, except those that read or change one thing the whole sandbox shares:
# - SHARED: tests that must not run at the same time as each other, so each group runs on one worker in turn;
# - ALONE: tests that must not run beside any other; `make e2e` runs them after the others, on one worker.
SHARED = {
    # `dlq list` and the soak peek at a DLQ by receiving its messages, which hides them from any other reader for
    # a while, and `dlq redrive` moves every message out of it.
    "dead-letter queues": ("test_faults.py::", "test_soak.py::"),
    # `make notifications` and `sandbox notifications` drain the one inbox `make up` subscribed to both topics.
    "the make notifications inbox": ("test_readme.py::test_a_readme_block_works", "test_cli.py::test_notifications_"),
    # Each starts a MiniStack of its own: one at a time, so two extra emulators never share the cores with ours.
    "a second emulator": (
        "test_sandbox_lifecycle.py::test_start_twice",
        "test_sandbox_lifecycle.py::test_with_persistence",
        "test_inner_loop.py::",
        "test_cli.py::test_reset_",
    ),
}
ALONE = (
    # SIGKILLs a Lambda worker of each function, which may be in the middle of another test's batch.
    "test_chaos.py::",
    # Rewrites .sandbox/outputs.json, which the tools in every other test read, and re-enables the queue consumers.
    "test_sandbox_lifecycle.py::test_the_deploy_hook_is_idempotent",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "heavy: a long load test; runs after every other test")
    config.addinivalue_line("markers", "alone: shares the sandbox with no other test; `make e2e` runs it last")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark SHARED and ALONE tests; heavy tests run last, so a quick failure elsewhere shows before they start."""
    for item in items:
        where = item.nodeid.removeprefix("tests/e2e/")
        for group, tests in SHARED.items():
            if where.startswith(tests):
                item.add_marker(pytest.mark.xdist_group(group))
        if where.startswith(ALONE):
            item.add_marker(pytest.mark.alone)
    items.sort(key=lambda item: item.get_closest_marker("heavy") is not None)
