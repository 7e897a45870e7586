"""Deploy the stack to real AWS as `aws cloudformation package` + `deploy` would, with boto3 only (docs/AWS.md).

`deploy` uploads the code zip of `deploy.core` to `<stack>-artifacts-<account>-<region>`, shows a change set,
executes it and prints the stack events once boto3's waiter returns; `--dry-run` deletes it unexecuted. `destroy`
deletes the stack. Both refuse an endpoint override, except a dry run against an emulator, and ask first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError, NoCredentialsError

from sandbox.aws import DUMMY_CREDENTIALS, SANDBOX
from sandbox.deploy import core

# The hosts an emulator answers on. 0.0.0.0 is compared against, never bound.
EMULATOR_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"})  # noqa: S104
AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"  # and AWS_ENDPOINT_URL_<SERVICE>
# Seconds between two reads by boto3's waiters: the emulator settles in about a second, AWS in minutes.
DELAYS = {"emulator": 0.5, "aws": 5.0}
TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation takes inline; a larger template goes through S3, as `package`'s
NOT_UPDATABLE = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED"})
EMAIL_SUBSCRIPTIONS = frozenset({"ErrorEmailSubscription", "PendingEmailSubscription"})


def _matching(pattern: str, problem: str) -> Callable[[str], str]:
    """An argparse type: the value when the whole of it matches `pattern`, else a usage error saying `problem`."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise argparse.ArgumentTypeError(f"{value!r}{problem}")
        return value

    return check


# The stack name becomes part of S3 bucket names: lower case only.
stack_name = _matching(
    r"[a-z](-?[a-z0-9])+",
    ": use lower-case letters, digits and single hyphens, starting with a letter"
    " (the name is part of the S3 bucket names)",
)
region_name = _matching(r"[a-z]{2}(-[a-z]+)+-[0-9]+", " is not a region name such as us-east-1 or sa-east-1")
email = _matching(r"[^@\s]+@[^@\s]+\.[^@\s]+", " is not an e-mail address")


# ---------------------------------------------------------------- where the calls go


def endpoint_kind(url: str) -> str:
    """'aws', 'emulator' or 'other' for an endpoint URL."""
    host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower()
    if host in EMULATOR_HOSTS or host.startswith("127.") or "localstack" in host or "ministack" in host:
        return "emulator"
    return "aws" if host.endswith(AWS_HOST_SUFFIXES) else "other"


def check_target(client_endpoints: Iterable[str], environ: Mapping[str, str], *, dry_run: bool) -> str:
    """'aws', or 'emulator' for a dry run against one; refuse anything else with what to do about it.

    Both AWS_ENDPOINT_URL[_<SERVICE>] and the endpoints the clients resolved (an `endpoint_url` in ~/.aws/config
    too) are checked: a variable pointing at an emulator refuses even if botocore would ignore it.
    """
    variables = {
        name: url for name, url in sorted(environ.items()) if name.startswith(ENDPOINT_VARIABLE) and url.strip()
    }
    kinds = {endpoint_kind(url) for url in [*variables.values(), *client_endpoints]}
    if not variables and kinds == {"aws"}:
        if environ.get("AWS_ACCESS_KEY_ID") == DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]:
            raise SystemExit(
                "refusing: AWS_ACCESS_KEY_ID=test is the emulator's dummy credential. Unset AWS_ACCESS_KEY_ID"
                " and AWS_SECRET_ACCESS_KEY to use your AWS profile (AWS_PROFILE=... or `aws sso login`)."
            )
        return "aws"
    if dry_run and kinds == {"emulator"}:
        return "emulator"
    named = ", ".join(f"{name}={value}" for name, value in variables.items()) or "an endpoint_url in ~/.aws/config"
    only = "" if dry_run else " (only --dry-run may run against an emulator)"
    problem = f"points at an emulator{only}" if "emulator" in kinds else "overrides the AWS endpoint"
    raise SystemExit(
        f"refusing: {named} {problem}, and this command talks to real AWS.\n"
        f"Unset it to deploy to AWS: `unset {' '.join(variables) or ENDPOINT_VARIABLE}`."
    )


@dataclass(frozen=True)
class Clients:
    sts: Any
    s3: Any  # boto3's S3 resource (a bucket emptied in one call); its client is s3.meta.client
    cfn: Any
    region: str

    @classmethod
    def for_region(cls, region: str) -> Clients:
        session = boto3.session.Session(region_name=region)
        return cls(session.client("sts"), session.resource("s3"), session.client("cloudformation"), region)


def caller_identity(sts: Any) -> tuple[str, str]:
    """The account id and the caller's ARN, or a clear exit when there are no usable credentials."""
    try:
        identity = sts.get_caller_identity()
    except NoCredentialsError as exc:
        raise SystemExit(
            "no AWS credentials: set AWS_PROFILE (after `aws configure` or `aws sso login`)"
            " or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ) from exc
    except ClientError as exc:
        raise SystemExit(f"AWS refused the credentials: {exc.response['Error'].get('Code')}") from exc
    return str(identity["Account"]), str(identity["Arn"])


def confirm(question: str, *, assume_yes: bool) -> None:
    """Go on only after a 'y' typed at a terminal, or with --yes."""
    if assume_yes:
        return
    if sys.stdin is None or not sys.stdin.isatty():
        raise SystemExit(f"{question}\nrefusing: no terminal to confirm on; pass --yes to proceed without asking")
    try:
        answer = input(f"{question} [y/N] ")
    except (EOFError, KeyboardInterrupt):
        answer = ""
    if answer.strip().lower() not in {"y", "yes"}:
        raise SystemExit("cancelled: nothing was changed")


# ---------------------------------------------------------------- S3


def object_count(s3: Any, bucket: str, account: str) -> int:
    """How many object versions and delete markers the bucket holds; 0 when there is no such bucket."""
    try:
        return sum(1 for _ in s3.Bucket(bucket).object_versions.filter(ExpectedBucketOwner=account))
    except ClientError as exc:
        if core.is_missing(exc):
            return 0
        raise


def empty_bucket(s3: Any, bucket: str, account: str) -> None:
    """Delete every object version and delete marker (boto3's batch action: 1,000 a request)."""
    versions = s3.Bucket(bucket).object_versions.filter(ExpectedBucketOwner=account)
    for answer in versions.delete(ExpectedBucketOwner=account):
        if errors := answer.get("Errors"):
            raise SystemExit(f"could not delete {errors[0].get('Key')} from {bucket}: {errors[0].get('Code')}")


def delete_bucket(s3: Any, bucket: str, account: str) -> bool:
    """Empty and delete a bucket; False when there was none."""
    try:
        empty_bucket(s3, bucket, account)
    except ClientError as exc:
        if core.is_missing(exc):
            return False
        raise
    s3.Bucket(bucket).delete(ExpectedBucketOwner=account)
    return True


def remove_created(s3: Any, artifacts: core.Artifacts, account: str) -> None:
    """What this run uploaded, for a dry run: the bucket if it made it, else the keys it added."""
    if artifacts.created_bucket:
        delete_bucket(s3, artifacts.bucket, account)
    else:
        for key in artifacts.uploaded:
            s3.Object(artifacts.bucket, key).delete(ExpectedBucketOwner=account)


def template_source(s3: Any, artifacts: core.Artifacts, account: str, template: str) -> dict[str, str]:
    """How CloudFormation takes the template: inline when it fits, else uploaded beside the code (as `package`)."""
    body = template.encode("utf-8")
    if len(body) <= TEMPLATE_BODY_LIMIT:
        return {"TemplateBody": template}
    key = artifacts.put(s3, account, body, "templates/{}.yaml")
    core.say(f"the template is over {TEMPLATE_BODY_LIMIT:,} bytes: it goes as s3://{artifacts.bucket}/{key}")
    return {"TemplateURL": f"{s3.meta.endpoint_url.rstrip('/')}/{artifacts.bucket}/{key}"}


# ---------------------------------------------------------------- CloudFormation


def stack_parameters(
    template_keys: Iterable[str], overrides: Mapping[str, str], previous_keys: Collection[str]
) -> list[dict[str, Any]]:
    """As `aws cloudformation deploy --parameter-overrides`: overrides win; on an update every other
    parameter keeps its previous value; on a create it takes the template default."""
    return [
        {"ParameterKey": key, "ParameterValue": overrides[key]}
        if key in overrides
        else {"ParameterKey": key, "UsePreviousValue": True}
        for key in template_keys
        if key in overrides or key in previous_keys
    ]


def change_set_description(cfn: Any, change_set_id: str, delay: float) -> dict[str, Any] | None:
    """Wait for the change set; its description with every change, or None when there is nothing to change."""
    failed = core.wait(cfn, "change_set_create_complete", delay=delay, timeout=900, ChangeSetName=change_set_id)
    if failed is not None:
        if core.is_no_changes(failed):
            return None
        raise SystemExit(f"the change set failed: {failed}")
    return cfn.get_paginator("describe_change_set").paginate(ChangeSetName=change_set_id).build_full_result()


def format_changes(described: dict[str, Any], change_set_type: str) -> str:
    """The change set as a table, one resource a line."""
    rows = [("action", "logical id", "type", "replacement")]
    for change in described["Changes"]:
        resource = change.get("ResourceChange", {})
        action = resource.get("Action", "")
        replacement = resource.get("Replacement", "") if action == "Modify" else ""
        rows.append((action, resource.get("LogicalResourceId", ""), resource.get("ResourceType", ""), replacement))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    header = (
        f"Change set {described['ChangeSetName']} ({change_set_type}) for stack"
        f" {described['StackName']}: {len(rows) - 1} changes"
    )
    lines = ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([header, *(line.rstrip() for line in lines)])


def _busy(status: str | None, *also_fine: str) -> bool:
    return status is not None and status.endswith("_IN_PROGRESS") and status not in also_fine


# ---------------------------------------------------------------- deploy


def deploy(
    clients: Clients, *, stack: str, account: str, overrides: Mapping[str, str], dry_run: bool, delay: float
) -> int:
    cfn, s3 = clients.cfn, clients.s3
    current = core.describe_stack(cfn, stack)
    status = current["StackStatus"] if current else None
    if status in NOT_UPDATABLE:
        raise SystemExit(
            f"stack {stack} is {status} and cannot be updated: remove it with"
            f" `make destroy-aws STACK={stack} REGION={clients.region}`, then deploy again"
        )
    if _busy(status, "REVIEW_IN_PROGRESS"):
        raise SystemExit(f"stack {stack} is {status}: wait for that operation to end, then deploy again")
    # A REVIEW_IN_PROGRESS stack holds no resources: the CLI creates it afresh too.
    creating = status in {None, "REVIEW_IN_PROGRESS"}
    if creating and not dry_run and "NotificationEmail" not in overrides:
        raise SystemExit(
            "a new stack needs --notification-email: the address subscribed to the validation-error"
            " and pending-stock topics (the template default, alerts@example.com, reaches nobody)"
        )

    code, template = core.build_zip(), core.TEMPLATE.read_text("utf-8")
    artifacts = core.package(s3.meta.client, stack, account, clients.region, code)
    where = f"s3://{artifacts.bucket}/{artifacts.code_key}"
    uploaded = artifacts.code_key in artifacts.uploaded
    core.say(f"uploaded {where} ({len(code):,} bytes)" if uploaded else f"{where} is already there")
    made_stack = status is None  # a CREATE change set makes an empty stack, which a dry run removes again
    change_set_id = stack_id = ""  # both emptied once the change set runs: nothing left to clean up
    try:
        source = template_source(s3.meta.client, artifacts, account, template)
        keys = [p["ParameterKey"] for p in cfn.get_template_summary(**source)["Parameters"]]
        previous = [] if creating or current is None else [p["ParameterKey"] for p in current.get("Parameters", [])]
        artifact = {"ArtifactBucket": artifacts.bucket, "ArtifactKey": artifacts.code_key}
        parameters = stack_parameters(keys, {**artifact, **overrides}, previous)
        change_set_type = "CREATE" if creating else "UPDATE"
        token = core.request_token("aws-deploy")
        created = cfn.create_change_set(
            StackName=stack,
            ChangeSetName=token,
            ChangeSetType=change_set_type,
            Capabilities=core.CAPABILITIES,
            Parameters=parameters,
            Description="sandbox.deploy.aws" + (" --dry-run" if dry_run else ""),
            **source,
        )
        change_set_id, stack_id = created["Id"], created["StackId"]
        core.say(f"created change set {change_set_id}")
        described = change_set_description(cfn, change_set_id, delay)
        if described is None:
            print(f"No changes to deploy. Stack {stack} is up to date.")
            return 0
        print(format_changes(described, change_set_type))
        shown = [f"{p['ParameterKey']}={p.get('ParameterValue', '(previous)')}" for p in parameters]
        print("Parameters: " + ", ".join(shown))
        if dry_run:
            return 0
        cfn.execute_change_set(ChangeSetName=change_set_id, ClientRequestToken=token)
        executing, change_set_id = change_set_id, ""
        core.say(f"executing {executing}; waiting for the stack, whose events follow when it settles")
        # Only a failed create leaves a stack that cannot be updated: the one case that needs destroy-aws.
        hint = f" Remove it with `make destroy-aws STACK={stack} REGION={clients.region}` before deploying again."
        waiter = f"stack_{'create' if creating else 'update'}_complete"
        final = core.settle(
            cfn, stack_id, token, waiter, delay=delay, timeout=3600, show=True, hint=hint if creating else ""
        )
        return report(final, described, creating=creating, region=clients.region, overrides=overrides)
    finally:
        if change_set_id:
            cfn.delete_change_set(ChangeSetName=change_set_id)
            if made_stack:  # the empty REVIEW_IN_PROGRESS stack the CREATE change set made
                cfn.delete_stack(StackName=stack_id)
                if stopped := core.wait(cfn, "stack_delete_complete", delay=delay, timeout=300, StackName=stack_id):
                    raise SystemExit(f"deleting the empty stack {stack_id}: {stopped}")
        if dry_run:
            remove_created(s3, artifacts, account)
            removed = f"; the empty stack {stack} it made was removed" if made_stack and stack_id else ""
            print(f"Dry run: the change set was deleted without executing{removed}.")


def report(
    final: dict[str, Any], described: dict[str, Any], *, creating: bool, region: str, overrides: Mapping[str, str]
) -> int:
    """The end of a successful deploy: the outputs, and the e-mails to confirm."""
    stack = final["StackName"]
    # .sandbox/aws/<stack>-<region>/ is the SANDBOX_DIR for `python -m sandbox.seed` (docs/AWS.md)
    path = SANDBOX / "aws" / f"{stack}-{region}" / "outputs.json"
    outputs = core.write_outputs(final, path, None, Region=region)
    core.say(f"outputs written to {path}")
    print(json.dumps(outputs, indent=2, sort_keys=True))
    print(f"Successfully {'created' if creating else 'updated'} stack {stack}. API: {outputs.get('ApiUrl', '?')}")
    touched = {change.get("ResourceChange", {}).get("LogicalResourceId") for change in described["Changes"]}
    if touched & EMAIL_SUBSCRIPTIONS:
        address = overrides.get("NotificationEmail", "the notification address")
        print(
            f"The SNS e-mail subscriptions of {address} are pending: open each 'AWS Notification -"
            " Subscription Confirmation' e-mail and follow 'Confirm subscription' (docs/AWS.md)."
        )
    return 0


# ---------------------------------------------------------------- destroy


def data_lake_bucket(cfn: Any, stack: str) -> str | None:
    try:
        resource = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="DataLakeBucket")
    except ClientError as exc:
        if core.error_code(exc) == "ValidationError":
            return None
        raise
    return resource["StackResourceDetail"].get("PhysicalResourceId") or None


def destroy(clients: Clients, args: argparse.Namespace, *, account: str, where: str, delay: float) -> int:
    cfn, s3, stack = clients.cfn, clients.s3, args.stack
    current = core.describe_stack(cfn, stack)
    if current and _busy(current["StackStatus"], "REVIEW_IN_PROGRESS", "DELETE_IN_PROGRESS"):
        raise SystemExit(f"stack {stack} is {current['StackStatus']}: wait for that operation to end")
    lake = data_lake_bucket(cfn, stack) if current else None
    lake_objects = object_count(s3, lake, account) if lake else 0
    if lake_objects and not args.empty_data_lake:
        raise SystemExit(
            f"the data-lake bucket {lake} holds {lake_objects} objects, and CloudFormation cannot delete"
            f" a bucket that is not empty (the stack would end DELETE_FAILED).\nKeep what you need"
            f" (`aws s3 sync s3://{lake} ./backup`), then run again with --empty-data-lake"
            f" (ARGS=--empty-data-lake with make), or empty it yourself: `aws s3 rm s3://{lake} --recursive`."
        )
    if current is None and not args.delete_artifacts:
        print(f"No stack {stack} in {clients.region}: nothing to delete.")
        return 0
    doomed = "the orders table and every order in it, the queues, topics, functions and API"
    question = f"Destroy stack {stack} ({doomed}) in {where}?" if current else f"Delete the artifacts of {where}?"
    confirm(question, assume_yes=args.yes)
    if lake and lake_objects:
        question = f"Also delete the {lake_objects} objects in s3://{lake} (order files and reports)?"
        confirm(f"{question} They cannot be recovered.", assume_yes=args.yes)
        empty_bucket(s3, lake, account)
        core.say(f"emptied s3://{lake}")
    if current:
        token = core.request_token("aws-destroy")
        cfn.delete_stack(StackName=current["StackId"], ClientRequestToken=token)
        core.say(f"deleting stack {stack}")
        hint = " If DataLakeBucket failed, the bucket was not empty: run again with --empty-data-lake."
        core.settle(
            cfn, current["StackId"], token, "stack_delete_complete", delay=delay, timeout=3600, show=True, hint=hint
        )
        print(f"Deleted stack {stack}.")
    bucket = core.artifact_bucket(stack, account, clients.region)
    if args.delete_artifacts:
        print(f"Deleted s3://{bucket}." if delete_bucket(s3, bucket, account) else f"No bucket {bucket}.")
    else:
        print(f"Kept s3://{bucket} (the code zips); --delete-artifacts removes it.")
    print(
        f"The functions' log groups /aws/lambda/{stack}-* are not part of the stack; delete them in the"
        " CloudWatch console or with `aws logs delete-log-group` if you do not want them (docs/AWS.md)."
    )
    return 0


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.deploy.aws",
        description="Deploy or destroy the stack on real AWS (boto3 only; see docs/AWS.md).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stack", required=True, type=stack_name, help="stack name (lower case; part of bucket names)")
    common.add_argument("--region", required=True, type=region_name, help="AWS region, e.g. sa-east-1")
    common.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation (needed without a TTY)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("deploy", parents=[common], help="package and deploy through a change set")
    up.add_argument("--notification-email", type=email, help="address subscribed to both SNS topics")
    up.add_argument(
        "--strict-documents",
        action=argparse.BooleanOptionalAction,
        help="verify CPF/CNPJ check digits (default: the stack's current value, or off for a new stack)",
    )
    up.add_argument("--dry-run", action="store_true", help="show the change set, then delete it without executing")
    down = commands.add_parser("destroy", parents=[common], help="delete the stack")
    down.add_argument(
        "--empty-data-lake", action="store_true", help="delete every object in the data-lake bucket first (asks again)"
    )
    down.add_argument("--delete-artifacts", action="store_true", help="also empty and delete the artifact bucket")
    return parser


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    longest = core.artifact_bucket(args.stack, "0" * 12, args.region)
    if len(longest) > 63:
        parser.error(f"--stack is too long for the bucket names ({longest} has {len(longest)} characters; 63 at most)")
    dry_run = args.command == "deploy" and args.dry_run

    clients = Clients.for_region(args.region)
    endpoints = [client.meta.endpoint_url for client in (clients.sts, clients.s3.meta.client, clients.cfn)]
    target = check_target(endpoints, os.environ if environ is None else environ, dry_run=dry_run)
    account, caller = caller_identity(clients.sts)
    where = f"account {account} ({caller}), region {args.region}"
    if target == "emulator":
        where += f", on the emulator at {clients.cfn.meta.endpoint_url}"
    delay = DELAYS[target]

    if args.command == "destroy":
        return destroy(clients, args, account=account, where=where, delay=delay)
    verb = "Preview (dry run: show the change set, then delete it)" if dry_run else "Deploy"
    confirm(f"{verb} stack {args.stack} in {where}?", assume_yes=args.yes)
    overrides = {"NotificationEmail": args.notification_email} if args.notification_email else {}
    if args.strict_documents is not None:
        overrides["StrictDocuments"] = str(args.strict_documents).lower()
    return deploy(clients, stack=args.stack, account=account, overrides=overrides, dry_run=dry_run, delay=delay)


if __name__ == "__main__":
    sys.exit(main())
