"""sandbox.deploy.aws without AWS: the refusals, the confirmation, the arguments, and the change-set flow
against stubbed clients (botocore Stubber; the conftest socket guard proves no request leaves)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from sandbox.deploy import aws as aws_deploy
from sandbox.deploy.aws import Clients, check_target, confirm, main, stack_parameters

REGION = "sa-east-1"
ACCOUNT = "123456789012"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/orders/1"
AWS_ENDPOINTS = [
    "https://sts.sa-east-1.amazonaws.com",
    "https://s3.sa-east-1.amazonaws.com",
    "https://cloudformation.sa-east-1.amazonaws.com",
]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
PREVIOUS = object()  # a parameter the change set keeps at its previous value
TEMPLATE_KEYS = ["ArtifactBucket", "ArtifactKey", "NotificationEmail", "StrictDocuments"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def no_aws_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The Makefile exports the sandbox's endpoint and dummy keys; each test sets what it needs."""
    for name in list(aws_deploy.os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setattr(aws_deploy, "SANDBOX", tmp_path / "sandbox")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Clients, Stubber, Stubber, Stubber]]:
    """Clients for real AWS endpoints whose every call is stubbed; unanswered calls fail the test."""
    session = boto3.session.Session(
        aws_access_key_id="AKIAUNITTESTONLY0000", aws_secret_access_key="unit-test", region_name=REGION
    )
    clients = Clients(session.client("sts"), session.resource("s3"), session.client("cloudformation"), REGION)
    stubs = Stubber(clients.sts), Stubber(clients.s3.meta.client), Stubber(clients.cfn)
    for stub in stubs:
        stub.activate()
    monkeypatch.setattr(Clients, "for_region", classmethod(lambda cls, region: clients))
    monkeypatch.setattr(aws_deploy, "DELAYS", {"aws": 0, "emulator": 0})
    monkeypatch.setattr(aws_deploy.core, "request_token", lambda prefix: f"{prefix}-unit")
    yield (clients, *stubs)
    for stub in stubs:
        stub.assert_no_pending_responses()


def identity(sts: Stubber) -> None:
    sts.add_response(
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/deployer", "UserId": "AIDAUNIT"},
    )


def no_stack(cfn: Stubber, stack: str) -> None:
    cfn.add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message=f"Stack with id {stack} does not exist",
        http_status_code=400,
    )


def stack(status: str, name: str = "orders", **extra: Any) -> dict[str, Any]:
    return {
        "Stacks": [
            {
                "StackName": name,
                "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/1",
                "StackStatus": status,
                "CreationTime": NOW,
                **extra,
            }
        ]
    }


def template_summary(cfn: Stubber) -> None:
    cfn.add_response("get_template_summary", {"Parameters": [{"ParameterKey": k} for k in TEMPLATE_KEYS]})


def change_set_created(cfn: Stubber, change_set: str, change_set_type: str, **parameters: Any) -> None:
    """CreateChangeSet answers `change_set` to a request with this type and these parameters, in this order."""
    given = [
        {"ParameterKey": key, **({"UsePreviousValue": True} if value is PREVIOUS else {"ParameterValue": value})}
        for key, value in parameters.items()
    ]
    request = {"StackName": "orders", "ChangeSetName": ANY, "ChangeSetType": change_set_type}
    request |= {"Capabilities": ["CAPABILITY_IAM"], "Parameters": given, "Description": ANY, "TemplateBody": ANY}
    cfn.add_response("create_change_set", {"Id": change_set, "StackId": STACK_ID}, request)


def an_update_of(aws: tuple[Clients, Stubber, Stubber, Stubber], described: dict[str, Any]) -> None:
    """The calls before the change set of an update whose code is already uploaded."""
    _, sts, s3, cfn = aws
    identity(sts)
    cfn.add_response("describe_stacks", described)
    s3.add_response("head_bucket", {})
    s3.add_response("head_object", {})
    template_summary(cfn)


# ---------------------------------------------------------------- the endpoint refusal


@pytest.mark.parametrize(
    "variable, url",
    [
        ("AWS_ENDPOINT_URL", "http://localhost:4566"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ("AWS_ENDPOINT_URL", "http://localstack:4566"),
        ("AWS_ENDPOINT_URL", "http://ministack:4566"),
        ("AWS_ENDPOINT_URL", "https://localhost.localstack.cloud:4566"),
        ("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://localhost:4566"),
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4566"),
    ],
)
def test_an_emulator_endpoint_is_refused_with_what_to_unset(variable: str, url: str) -> None:
    with pytest.raises(SystemExit) as refused:
        check_target(AWS_ENDPOINTS, {variable: url}, dry_run=False)

    message = str(refused.value)
    assert f"{variable}={url} points at an emulator" in message
    assert "Unset it to deploy to AWS" in message
    assert f"unset {variable}" in message


def test_any_endpoint_override_is_refused_even_in_a_dry_run() -> None:
    environ = {"AWS_ENDPOINT_URL": "https://vpce-123.cloudformation.internal.example"}
    for dry_run in (False, True):
        with pytest.raises(SystemExit, match="overrides the AWS endpoint"):
            check_target(AWS_ENDPOINTS, environ, dry_run=dry_run)


def test_an_endpoint_from_the_config_file_is_refused_too() -> None:
    endpoints = [*AWS_ENDPOINTS[:2], "http://localhost:4566"]

    with pytest.raises(SystemExit, match=r"endpoint_url in ~/\.aws/config points at an emulator"):
        check_target(endpoints, {}, dry_run=False)


def test_a_dry_run_is_the_one_case_allowed_against_an_emulator() -> None:
    emulator = ["http://localhost:4566"] * 3

    assert check_target(emulator, {"AWS_ENDPOINT_URL": "http://localhost:4566"}, dry_run=True) == "emulator"
    assert check_target(AWS_ENDPOINTS, {}, dry_run=True) == "aws"
    assert check_target(AWS_ENDPOINTS, {}, dry_run=False) == "aws"


def test_the_emulators_dummy_credentials_are_refused_for_aws() -> None:
    with pytest.raises(SystemExit, match="AWS_ACCESS_KEY_ID=test is the emulator's dummy"):
        check_target(AWS_ENDPOINTS, {"AWS_ACCESS_KEY_ID": "test"}, dry_run=False)


@pytest.mark.parametrize("command", [["deploy"], ["deploy", "--yes"], ["destroy", "--yes"]])
def test_main_refuses_the_sandbox_endpoint_before_any_call(command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")

    # Any request would hit the socket guard (RuntimeError) instead of this refusal.
    with pytest.raises(SystemExit, match="points at an emulator"):
        main([*command, "--stack", "orders", "--region", REGION])


# ---------------------------------------------------------------- confirmation


def test_without_a_terminal_and_without_yes_it_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_deploy.sys, "stdin", io.StringIO())
    monkeypatch.setattr("builtins.input", pytest.fail)

    with pytest.raises(SystemExit, match="no terminal to confirm on; pass --yes"):
        confirm("Deploy?", assume_yes=False)


def test_yes_skips_the_question(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_deploy.sys, "stdin", io.StringIO())
    monkeypatch.setattr("builtins.input", pytest.fail)

    confirm("Deploy?", assume_yes=True)


@pytest.mark.parametrize("answer, goes_on", [("y", True), ("YES", True), ("", False), ("n", False), ("sure", False)])
def test_only_yes_at_a_terminal_goes_on(answer: str, goes_on: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(aws_deploy.sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda question: asked.append(question) or answer)

    if goes_on:
        confirm("Deploy?", assume_yes=False)
    else:
        with pytest.raises(SystemExit, match="cancelled: nothing was changed"):
            confirm("Deploy?", assume_yes=False)
    assert asked == ["Deploy? [y/N] "]


def test_the_question_names_the_account_region_and_stack(
    aws: tuple[Clients, Stubber, Stubber, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, sts, _, _ = aws
    identity(sts)
    monkeypatch.setattr(aws_deploy.sys, "stdin", io.StringIO())

    with pytest.raises(SystemExit) as refused:
        main(["deploy", "--stack", "orders", "--region", REGION], environ={})

    message = str(refused.value)
    assert f"Deploy stack orders in account {ACCOUNT} (arn:aws:iam::{ACCOUNT}:user/deployer), region {REGION}?" in (
        message
    )
    assert "pass --yes" in message


# ---------------------------------------------------------------- arguments


def test_deploy_arguments() -> None:
    args = aws_deploy.build_parser().parse_args(
        ["deploy", "--stack", "orders-prod", "--region", REGION, "--notification-email", "ops@example.com"]
        + ["--strict-documents", "--yes", "--dry-run"]
    )

    assert (args.command, args.stack, args.region) == ("deploy", "orders-prod", REGION)
    assert (args.notification_email, args.strict_documents, args.yes, args.dry_run) == (
        "ops@example.com",
        True,
        True,
        True,
    )


def test_strict_documents_is_left_alone_unless_given() -> None:
    parse = aws_deploy.build_parser().parse_args
    base = ["deploy", "--stack", "orders", "--region", REGION]

    assert parse(base).strict_documents is None
    assert parse([*base, "--no-strict-documents"]).strict_documents is False


def test_destroy_arguments() -> None:
    args = aws_deploy.build_parser().parse_args(
        ["destroy", "--stack", "orders", "--region", REGION, "--empty-data-lake", "--delete-artifacts", "-y"]
    )

    assert (args.command, args.empty_data_lake, args.delete_artifacts, args.yes) == ("destroy", True, True, True)


@pytest.mark.parametrize(
    "argv",
    [
        ["deploy", "--stack", "orders"],
        ["deploy", "--region", REGION],
        ["deploy", "--stack", "Orders", "--region", REGION],
        ["deploy", "--stack", "orders--x", "--region", REGION],
        ["deploy", "--stack", "orders-", "--region", REGION],
        ["deploy", "--stack", "1orders", "--region", REGION],
        ["deploy", "--stack", "orders", "--region", "Brazil"],
        ["deploy", "--stack", "orders", "--region", REGION, "--notification-email", "nobody"],
        ["destroy", "--stack", "orders", "--region", REGION, "--dry-run"],
        ["deploy", "--stack", "orders", "--region", REGION, "--empty-data-lake"],
        ["--stack", "orders", "--region", REGION],
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv, environ={})

    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_a_stack_name_too_long_for_the_bucket_names_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["deploy", "--stack", "o" * 30, "--region", "ap-southeast-2"], environ={})

    assert "too long for the bucket names" in capsys.readouterr().err


# ---------------------------------------------------------------- parameters, as `aws cloudformation deploy`


def test_a_new_stack_gets_the_overrides_and_the_template_defaults() -> None:
    parameters = stack_parameters(TEMPLATE_KEYS, {"ArtifactBucket": "b", "ArtifactKey": "k"}, previous_keys=[])

    assert parameters == [
        {"ParameterKey": "ArtifactBucket", "ParameterValue": "b"},
        {"ParameterKey": "ArtifactKey", "ParameterValue": "k"},
    ]


def test_an_update_keeps_the_previous_value_of_what_is_not_overridden() -> None:
    parameters = stack_parameters(TEMPLATE_KEYS, {"ArtifactKey": "k2"}, previous_keys=TEMPLATE_KEYS)

    assert parameters == [
        {"ParameterKey": "ArtifactBucket", "UsePreviousValue": True},
        {"ParameterKey": "ArtifactKey", "ParameterValue": "k2"},
        {"ParameterKey": "NotificationEmail", "UsePreviousValue": True},
        {"ParameterKey": "StrictDocuments", "UsePreviousValue": True},
    ]


def test_an_override_the_template_lacks_is_left_out_as_the_cli_does() -> None:
    parameters = stack_parameters(TEMPLATE_KEYS[:1], {"ArtifactBucket": "b", "Gone": "x"}, previous_keys=["Gone"])

    assert parameters == [{"ParameterKey": "ArtifactBucket", "ParameterValue": "b"}]


# ---------------------------------------------------------------- the change-set flow, stubbed


def test_a_dry_run_of_a_new_stack_deletes_the_change_set_the_stack_and_what_it_uploaded(
    aws: tuple[Clients, Stubber, Stubber, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    _, sts, s3, cfn = aws
    bucket = f"orders-artifacts-{ACCOUNT}-{REGION}"
    change_set = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/aws-deploy/1"
    identity(sts)
    no_stack(cfn, "orders")
    s3.add_client_error("head_bucket", service_error_code="404", http_status_code=404)
    s3.add_response(
        "create_bucket", {}, {"Bucket": bucket, "CreateBucketConfiguration": {"LocationConstraint": REGION}}
    )
    s3.add_client_error("head_object", service_error_code="404", http_status_code=404)
    s3.add_response("put_object", {}, {"Bucket": bucket, "Key": ANY, "Body": ANY, "ExpectedBucketOwner": ACCOUNT})
    template_summary(cfn)
    change_set_created(cfn, change_set, "CREATE", ArtifactBucket=bucket, ArtifactKey=ANY)
    created = {
        "ChangeSetName": "aws-deploy",
        "StackName": "orders",
        "Status": "CREATE_COMPLETE",
        "Changes": [
            {"ResourceChange": {"Action": "Add", "LogicalResourceId": lid, "ResourceType": rtype}}
            for lid, rtype in [("OrdersTable", "AWS::DynamoDB::Table"), ("OrderQueue", "AWS::SQS::Queue")]
        ],
    }
    cfn.add_response("describe_change_set", {"Status": "CREATE_IN_PROGRESS"}, {"ChangeSetName": change_set})
    cfn.add_response("describe_change_set", created, {"ChangeSetName": change_set})  # the waiter's last read
    cfn.add_response("describe_change_set", created, {"ChangeSetName": change_set})  # every page of the changes
    cfn.add_response("delete_change_set", {}, {"ChangeSetName": change_set})
    cfn.add_response("delete_stack", {}, {"StackName": STACK_ID})
    cfn.add_response("describe_stacks", stack("DELETE_COMPLETE"), {"StackName": STACK_ID})
    s3.add_response(
        "list_object_versions",
        {"Versions": [{"Key": "functions/x.zip", "VersionId": "null"}]},
        {"Bucket": bucket, "ExpectedBucketOwner": ACCOUNT},
    )
    s3.add_response("delete_objects", {}, None)
    s3.add_response("delete_bucket", {}, {"Bucket": bucket, "ExpectedBucketOwner": ACCOUNT})

    assert main(["deploy", "--stack", "orders", "--region", REGION, "--dry-run", "--yes"], environ={}) == 0

    out = capsys.readouterr().out
    assert "Change set aws-deploy (CREATE) for stack orders: 2 changes" in out
    assert "OrdersTable" in out and "AWS::SQS::Queue" in out
    assert "deleted without executing; the empty stack orders it made was removed" in out


def test_a_template_too_big_to_send_inline_goes_through_the_artifact_bucket_and_a_dry_run_removes_it(
    aws: tuple[Clients, Stubber, Stubber, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, sts, s3, cfn = aws
    bucket = f"orders-artifacts-{ACCOUNT}-{REGION}"
    change_set = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/aws-deploy/1"
    monkeypatch.setattr(aws_deploy, "TEMPLATE_BODY_LIMIT", 1000)  # ours is about 32 KB
    identity(sts)
    cfn.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
    s3.add_response("head_bucket", {})
    s3.add_response("head_object", {})  # the code zip is there
    s3.add_client_error("head_object", service_error_code="404", http_status_code=404)  # the template is not
    body = aws_deploy.core.TEMPLATE.read_bytes()
    key = f"templates/{hashlib.sha256(body).hexdigest()[:20]}.yaml"
    s3.add_response("put_object", {}, {"Bucket": bucket, "Key": key, "Body": body, "ExpectedBucketOwner": ACCOUNT})
    url = f"https://s3.{REGION}.amazonaws.com/{bucket}/{key}"
    cfn.add_response(
        "get_template_summary", {"Parameters": [{"ParameterKey": k} for k in TEMPLATE_KEYS]}, {"TemplateURL": url}
    )
    request = {"StackName": "orders", "ChangeSetName": ANY, "ChangeSetType": "UPDATE", "Capabilities": ANY}
    request |= {"Parameters": ANY, "Description": ANY, "TemplateURL": url}
    cfn.add_response("create_change_set", {"Id": change_set, "StackId": STACK_ID}, request)
    created = {"ChangeSetName": "aws-deploy", "StackName": "orders", "Status": "CREATE_COMPLETE", "Changes": []}
    created["Changes"] = [{"ResourceChange": {"Action": "Modify", "LogicalResourceId": "OrderQueue"}}]
    cfn.add_response("describe_change_set", created, {"ChangeSetName": change_set})  # the waiter's read
    cfn.add_response("describe_change_set", created, {"ChangeSetName": change_set})  # the changes
    cfn.add_response("delete_change_set", {}, {"ChangeSetName": change_set})
    s3.add_response("delete_object", {}, {"Bucket": bucket, "Key": key, "ExpectedBucketOwner": ACCOUNT})

    assert main(["deploy", "--stack", "orders", "--region", REGION, "--dry-run", "--yes"], environ={}) == 0


def test_an_update_without_changes_says_so_and_deletes_the_empty_change_set(
    aws: tuple[Clients, Stubber, Stubber, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    cfn = aws[3]
    change_set = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/aws-deploy/2"
    previous = [{"ParameterKey": k, "ParameterValue": "old"} for k in TEMPLATE_KEYS]
    an_update_of(aws, stack("UPDATE_COMPLETE", Parameters=previous))
    change_set_created(
        cfn,
        change_set,
        "UPDATE",
        ArtifactBucket=ANY,
        ArtifactKey=ANY,
        NotificationEmail=PREVIOUS,
        StrictDocuments="true",
    )
    cfn.add_response(
        "describe_change_set",
        {
            "Status": "FAILED",
            "StatusReason": "The submitted information didn't contain changes. Submit different information"
            " to create a change set.",
        },
    )
    cfn.add_response("delete_change_set", {}, {"ChangeSetName": change_set})

    argv = ["deploy", "--stack", "orders", "--region", REGION, "--strict-documents", "--yes"]
    assert main(argv, environ={}) == 0

    assert "No changes to deploy. Stack orders is up to date." in capsys.readouterr().out


def test_an_update_executes_follows_the_events_and_writes_the_outputs(
    aws: tuple[Clients, Stubber, Stubber, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    cfn = aws[3]
    change_set = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/aws-deploy/3"
    an_update_of(aws, stack("CREATE_COMPLETE", Parameters=[]))
    cfn.add_response("create_change_set", {"Id": change_set, "StackId": STACK_ID})
    change = {"Action": "Modify", "LogicalResourceId": "ApiFunction", "ResourceType": "AWS::Lambda::Function"}
    created = {
        "ChangeSetName": "aws-deploy",
        "StackName": "orders",
        "Status": "CREATE_COMPLETE",
        "Changes": [{"ResourceChange": {**change, "Replacement": "False"}}],
    }
    cfn.add_response("describe_change_set", created)
    cfn.add_response("describe_change_set", created)
    cfn.add_response("execute_change_set", {}, {"ChangeSetName": change_set, "ClientRequestToken": "aws-deploy-unit"})
    old_event = {"StackId": STACK_ID, "EventId": "old", "StackName": "orders", "Timestamp": NOW}
    old_event |= {"LogicalResourceId": "OldFunction", "ClientRequestToken": "aws-deploy-earlier"}
    update_event = {**old_event, "EventId": "new", "LogicalResourceId": "ApiFunction"}
    update_event |= {"ResourceStatus": "UPDATE_COMPLETE", "ClientRequestToken": "aws-deploy-unit"}
    outputs = [{"OutputKey": "ApiUrl", "OutputValue": "https://abc.execute-api.sa-east-1.amazonaws.com/dev"}]
    cfn.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})  # boto3's waiter
    cfn.add_response("describe_stacks", stack("UPDATE_COMPLETE", Outputs=outputs), {"StackName": STACK_ID})
    cfn.add_response("describe_stacks", stack("UPDATE_COMPLETE", Outputs=outputs), {"StackName": STACK_ID})
    cfn.add_response("describe_stack_events", {"StackEvents": [update_event, old_event]})

    assert main(["deploy", "--stack", "orders", "--region", REGION, "--yes"], environ={}) == 0

    captured = capsys.readouterr()
    assert "Modify  ApiFunction  AWS::Lambda::Function  False" in captured.out
    assert "Successfully updated stack orders. API: https://abc.execute-api" in captured.out
    assert "UPDATE_COMPLETE" in captured.err and "ApiFunction" in captured.err
    assert "OldFunction" not in captured.err  # only this operation's events
    written = aws_deploy.SANDBOX / "aws" / f"orders-{REGION}" / "outputs.json"
    assert '"ApiBaseUrl": "https://abc.execute-api.sa-east-1.amazonaws.com/dev"' in written.read_text()


def test_a_new_stack_needs_the_notification_address(aws: tuple[Clients, Stubber, Stubber, Stubber]) -> None:
    _, sts, _, cfn = aws
    identity(sts)
    no_stack(cfn, "orders")

    with pytest.raises(SystemExit, match="a new stack needs --notification-email"):
        main(["deploy", "--stack", "orders", "--region", REGION, "--yes"], environ={})


def test_a_rolled_back_stack_is_not_updated_but_pointed_at_destroy(
    aws: tuple[Clients, Stubber, Stubber, Stubber],
) -> None:
    _, sts, _, cfn = aws
    identity(sts)
    cfn.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"))

    with pytest.raises(SystemExit, match=r"ROLLBACK_COMPLETE and cannot be updated.*make destroy-aws STACK=orders"):
        main(["deploy", "--stack", "orders", "--region", REGION, "--yes"], environ={})


# ---------------------------------------------------------------- destroy, stubbed


def data_lake(cfn: Stubber, s3: Stubber, objects: int) -> str:
    bucket = f"orders-datalake-{ACCOUNT}-{REGION}"
    cfn.add_response(
        "describe_stack_resource",
        {
            "StackResourceDetail": {
                "LogicalResourceId": "DataLakeBucket",
                "PhysicalResourceId": bucket,
                "ResourceType": "AWS::S3::Bucket",
                "LastUpdatedTimestamp": NOW,
                "ResourceStatus": "CREATE_COMPLETE",
            }
        },
    )
    versions = [{"Key": f"incoming/{n}.json", "VersionId": "null"} for n in range(objects)]
    s3.add_response("list_object_versions", {"Versions": versions})
    return bucket


def test_destroy_refuses_a_data_lake_that_is_not_empty_before_deleting_anything(
    aws: tuple[Clients, Stubber, Stubber, Stubber],
) -> None:
    _, sts, s3, cfn = aws
    identity(sts)
    cfn.add_response("describe_stacks", stack("CREATE_COMPLETE"))
    bucket = data_lake(cfn, s3, objects=2)

    with pytest.raises(SystemExit) as refused:
        main(["destroy", "--stack", "orders", "--region", REGION, "--yes"], environ={})

    message = str(refused.value)
    assert f"the data-lake bucket {bucket} holds 2 objects" in message
    assert "CloudFormation cannot delete a bucket that is not empty" in message
    assert "--empty-data-lake" in message


def test_destroy_with_empty_data_lake_asks_twice_at_a_terminal(
    aws: tuple[Clients, Stubber, Stubber, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, sts, s3, cfn = aws
    identity(sts)
    cfn.add_response("describe_stacks", stack("CREATE_COMPLETE"))
    data_lake(cfn, s3, objects=1)
    questions: list[str] = []
    answers = iter(["y", "n"])
    monkeypatch.setattr(aws_deploy.sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda question: questions.append(question) or next(answers))

    with pytest.raises(SystemExit, match="cancelled"):
        main(["destroy", "--stack", "orders", "--region", REGION, "--empty-data-lake"], environ={})

    assert questions[0].startswith("Destroy stack orders (the orders table and every order in it")
    assert f"account {ACCOUNT}" in questions[0] and f"region {REGION}" in questions[0]
    assert questions[1].startswith(f"Also delete the 1 objects in s3://orders-datalake-{ACCOUNT}-{REGION}")


def test_destroy_empties_the_data_lake_deletes_the_stack_and_the_artifacts(
    aws: tuple[Clients, Stubber, Stubber, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    _, sts, s3, cfn = aws
    artifacts = f"orders-artifacts-{ACCOUNT}-{REGION}"
    identity(sts)
    cfn.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
    lake = data_lake(cfn, s3, objects=3)
    # boto3's batch delete lists the versions again, then deletes each of them (1,000 a request)
    versions = [{"Key": f"incoming/{n}.json", "VersionId": "null"} for n in range(3)]
    s3.add_response("list_object_versions", {"Versions": versions}, {"Bucket": lake, "ExpectedBucketOwner": ACCOUNT})
    deleted = {"Bucket": lake, "Delete": {"Objects": versions}, "ExpectedBucketOwner": ACCOUNT}
    s3.add_response("delete_objects", {}, deleted)
    cfn.add_response("delete_stack", {}, {"StackName": STACK_ID, "ClientRequestToken": "aws-destroy-unit"})
    cfn.add_response("describe_stacks", stack("DELETE_COMPLETE"), {"StackName": STACK_ID})  # boto3's waiter
    cfn.add_response("describe_stacks", stack("DELETE_COMPLETE"), {"StackName": STACK_ID})
    cfn.add_response("describe_stack_events", {"StackEvents": []})
    s3.add_response("list_object_versions", {"Versions": [{"Key": "functions/a.zip", "VersionId": "null"}]})
    s3.add_response("delete_objects", {}, {"Bucket": artifacts, "Delete": ANY, "ExpectedBucketOwner": ACCOUNT})
    s3.add_response("delete_bucket", {}, {"Bucket": artifacts, "ExpectedBucketOwner": ACCOUNT})

    argv = ["destroy", "--stack", "orders", "--region", REGION, "--empty-data-lake", "--delete-artifacts", "--yes"]
    assert main(argv, environ={}) == 0

    out = capsys.readouterr().out
    assert "Deleted stack orders." in out
    assert f"Deleted s3://{artifacts}." in out


def test_a_stack_that_did_not_end_complete_exits_showing_this_operations_events(
    aws: tuple[Clients, Stubber, Stubber, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    clients, _, _, cfn = aws
    cfn.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK_ID})  # the waiter stops
    cfn.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK_ID})
    event = {"StackId": STACK_ID, "EventId": "2", "StackName": "orders", "Timestamp": NOW, "ClientRequestToken": "t"}
    failed = {**event, "LogicalResourceId": "OrdersTable", "ResourceStatus": "CREATE_FAILED"}
    failed["ResourceStatusReason"] = "AccessDenied"
    older = {**event, "EventId": "1", "LogicalResourceId": "Earlier", "ClientRequestToken": "another"}
    cfn.add_response("describe_stack_events", {"StackEvents": [failed, older]})

    with pytest.raises(SystemExit, match=r"^stack orders ended ROLLBACK_COMPLETE .*the events above say why\. Hint"):
        aws_deploy.core.settle(
            clients.cfn, STACK_ID, "t", "stack_create_complete", delay=0, timeout=1, show=False, hint=" Hint"
        )

    err = capsys.readouterr().err
    assert "CREATE_FAILED" in err and "OrdersTable" in err and "AccessDenied" in err
    assert "Earlier" not in err
