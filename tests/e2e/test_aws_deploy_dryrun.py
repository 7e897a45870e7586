"""sandbox.deploy.aws against the emulator: the dry run previews the change set and leaves nothing behind;
anything else is refused. Each test uses its own stack name, so the sandbox stack is never touched."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError
from e2e_support import unique

TOOL = [sys.executable, "-m", "sandbox.deploy.aws"]
REGION = "us-east-1"


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "AWS_ENDPOINT_URL": os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566"),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    return subprocess.run([*TOOL, *args], capture_output=True, text=True, timeout=300, env=environ, check=False)


def stack_status(aws: boto3.session.Session, stack: str) -> str | None:
    try:
        return str(aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def change_sets(aws: boto3.session.Session, stack: str) -> list[str]:
    try:
        summaries = aws.client("cloudformation").list_change_sets(StackName=stack)["Summaries"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return []
        raise
    return [summary["ChangeSetName"] for summary in summaries]


def bucket_exists(aws: boto3.session.Session, bucket: str) -> bool:
    try:
        aws.client("s3").head_bucket(Bucket=bucket)
    except ClientError:
        return False
    return True


@pytest.fixture
def dry_run_stack(aws: boto3.session.Session) -> str:
    stack = unique("dryrun").lower()
    assert stack_status(aws, stack) is None
    return stack


def test_a_dry_run_shows_the_change_set_and_leaves_nothing_behind(
    aws: boto3.session.Session, dry_run_stack: str
) -> None:
    # Given a stack name that does not exist yet
    account = aws.client("sts").get_caller_identity()["Account"]

    # When the deploy runs as a dry run against the emulator
    result = run_tool("deploy", "--stack", dry_run_stack, "--region", REGION, "--dry-run", "--yes")

    # Then it prints the CREATE change set with the stack's resources
    assert result.returncode == 0, result.stderr
    assert f"(CREATE) for stack {dry_run_stack}" in result.stdout
    for resource in ("OrdersTable", "OrderQueue", "ApiFunction", "DataLakeBucket", "AWS::ApiGateway::RestApi"):
        assert resource in result.stdout
    assert "deleted without executing" in result.stdout
    # And no stack, change set or artifact bucket remains
    assert stack_status(aws, dry_run_stack) in {None, "DELETE_COMPLETE"}
    assert change_sets(aws, dry_run_stack) == []
    assert not bucket_exists(aws, f"{dry_run_stack}-artifacts-{account}-{REGION}")


def test_without_dry_run_the_emulator_endpoint_is_refused(aws: boto3.session.Session, dry_run_stack: str) -> None:
    result = run_tool(
        "deploy", "--stack", dry_run_stack, "--region", REGION, "--notification-email", "ops@example.com", "--yes"
    )

    assert result.returncode == 1
    assert "points at an emulator" in result.stderr
    assert "Unset it to deploy to AWS" in result.stderr
    assert stack_status(aws, dry_run_stack) is None


def test_destroy_refuses_the_emulator_endpoint(aws: boto3.session.Session, dry_run_stack: str) -> None:
    result = run_tool("destroy", "--stack", dry_run_stack, "--region", REGION, "--yes")

    assert result.returncode == 1
    assert "points at an emulator" in result.stderr
