"""The deploy core both deployers share: the code zip, the artifact bucket, stack reads, waiting, outputs.

`local` (the sandbox) and `aws` (real AWS, through a change set) differ only in how they ask CloudFormation for
the change; both wait for it with `settle` (boto3's waiter, then the operation's events). This module also runs
inside the LocalStack and MiniStack containers (the deploy hook), so it needs only boto3 and the standard library.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from itertools import takewhile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from sandbox.aws import ROOT

FUNCTIONS = ROOT / "functions"
TEMPLATE = ROOT / "infra" / "template.yaml"
CAPABILITIES = ["CAPABILITY_IAM"]  # the template creates roles, all without explicit names
# CloudFormation says "nothing to change" only in a message (an update's ValidationError, a FAILED change set's
# StatusReason): there is no code for it. The AWS CLI matches these same texts.
NO_CHANGES = ("The submitted information didn't contain changes", "No updates are to be performed")
SUCCESS = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE"})


def build_zip(source: Path = FUNCTIONS) -> bytes:
    """A reproducible zip of the function code: same sources, same bytes, same key."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo(str(path.relative_to(source)), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def artifact_bucket(stack: str, account: str, region: str) -> str:
    return f"{stack}-artifacts-{account}-{region}"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_missing(exc: ClientError) -> bool:
    return error_code(exc) in {"404", "NoSuchBucket", "NoSuchKey", "NotFound"}


def is_no_changes(message: str) -> bool:
    return any(text in message for text in NO_CHANGES)


def exists(head: Any, **request: str) -> bool:
    """Whether this account's bucket or object is there (HeadBucket, HeadObject with ExpectedBucketOwner)."""
    try:
        head(**request)
    except ClientError as exc:
        if error_code(exc) in {"403", "AccessDenied"}:
            raise SystemExit(
                f"bucket {request['Bucket']} exists but this account cannot use it (another account owns the name,"
                " or you lack s3:ListBucket on it): choose another --stack"
            ) from exc
        if is_missing(exc):
            return False
        raise
    return True


@dataclass
class Artifacts:
    """What a deploy put in the artifact bucket, and what of it this run created (a dry run removes exactly that)."""

    bucket: str
    code_key: str = ""
    created_bucket: bool = False
    uploaded: list[str] = field(default_factory=list)  # the keys this run put

    def put(self, s3: Any, account: str, body: bytes, key_format: str) -> str:
        """Upload `body` unless it is there, at a key named by its content (`package`'s habit): the key."""
        key = key_format.format(hashlib.sha256(body).hexdigest()[:20])
        if not exists(s3.head_object, Bucket=self.bucket, Key=key, ExpectedBucketOwner=account):
            s3.put_object(Bucket=self.bucket, Key=key, Body=body, ExpectedBucketOwner=account)
            self.uploaded.append(key)
        return key


def package(s3: Any, stack: str, account: str, region: str, code: bytes) -> Artifacts:
    """Upload the code zip to `<stack>-artifacts-<account>-<region>` unless it is there, creating the bucket if
    missing, as `aws cloudformation package` does."""
    artifacts = Artifacts(artifact_bucket(stack, account, region))
    if not exists(s3.head_bucket, Bucket=artifacts.bucket, ExpectedBucketOwner=account):
        options = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=artifacts.bucket, **options)
        artifacts.created_bucket = True
    artifacts.code_key = artifacts.put(s3, account, code, "functions/{}.zip")
    return artifacts


def describe_stack(cfn: Any, stack: str) -> dict[str, Any] | None:
    try:
        stacks: list[dict[str, Any]] = cfn.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        # A missing stack has no error code of its own: a ValidationError "Stack with id X does not exist".
        if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


def wait(client: Any, waiter: str, *, delay: float, timeout: float, **request: Any) -> str | None:
    """Run one of boto3's waiters (CloudFormation's, or the bench floors'); None once it succeeds, else why it stopped.

    The waiter's own failure states (ROLLBACK_COMPLETE, a FAILED change set...) and running out of time both
    come back as text: each deployer knows what to tell its user.
    """
    attempts = int(timeout / max(delay, 0.1)) + 1
    try:
        client.get_waiter(waiter).wait(**request, WaiterConfig={"Delay": delay, "MaxAttempts": attempts})
    except WaiterError as exc:
        last = exc.last_response or {}
        return str(last.get("StatusReason") or (last.get("Error") or {}).get("Message") or exc)
    return None


def say(message: str) -> None:
    """Progress goes to stderr; what a user may want to keep (changes, outputs) goes to stdout."""
    print(message, file=sys.stderr, flush=True)


def request_token(prefix: str) -> str:
    """A name for this run's stack operation; CloudFormation stamps every event of the operation with it. Unique:
    CloudFormation takes a token it has seen as a retry of that operation (two runs in one second would share the
    time alone)."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def settle(
    cfn: Any, stack_id: str, token: str, waiter: str, *, delay: float, timeout: float, show: bool, hint: str = ""
) -> dict[str, Any]:
    """Wait with boto3's `waiter` until the stack settles; its final description, or an exit naming how it ended.

    The operation's events (those stamped with `token`) go to stderr, oldest first, once the waiter returns (it has
    no hook to print from while it waits): with `show` always, else only when the stack did not end complete.
    """
    stopped = wait(cfn, waiter, delay=delay, timeout=timeout, StackName=stack_id)
    final: dict[str, Any] = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
    failed = final["StackStatus"] not in SUCCESS
    if show or failed:
        pages = cfn.get_paginator("describe_stack_events").paginate(StackName=stack_id)  # newest first
        events = (event for page in pages for event in page["StackEvents"])
        for event in reversed(list(takewhile(lambda event: event.get("ClientRequestToken") == token, events))):
            reason = event.get("ResourceStatusReason") or ""
            say(f"  {event.get('ResourceStatus', ''):<28} {event.get('LogicalResourceId', ''):<26} {reason}".rstrip())
    if failed:
        ended = final["StackStatus"] + (f" ({stopped})" if stopped else "")
        raise SystemExit(f"stack {final['StackName']} ended {ended}; the events above say why.{hint}")
    return final


def write_outputs(description: dict[str, Any], path: Path, endpoint: str | None, **extra: str) -> dict[str, str]:
    """Save the stack's outputs by key at `path`, with its StackName, `extra` and the URL a host calls (ApiBaseUrl)."""
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    outputs.update(StackName=description["StackName"], **extra)
    if endpoint or "ApiUrl" in outputs:
        outputs["ApiBaseUrl"] = api_base_url(outputs, endpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then renamed: a tool reading the file meanwhile sees the old outputs or the new, never half.
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(outputs, indent=2, sort_keys=True) + "\n", "utf-8")
    partial.replace(path)
    return outputs


def api_base_url(outputs: dict[str, str], endpoint: str | None) -> str:
    """The URL a host can call: the emulators' `/_aws/execute-api/{id}/{stage}`, or the AWS form with no endpoint."""
    if endpoint:
        return f"{endpoint.rstrip('/')}/_aws/execute-api/{outputs['ApiId']}/{outputs['ApiStage']}"
    return outputs["ApiUrl"]
