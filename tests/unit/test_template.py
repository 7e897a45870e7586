"""Static checks of infra/template.yaml, of the API model generated from schema.json, and of the tools."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cfn import of_type

from sandbox import model
from sandbox.deploy import core as deploy

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
SCHEMA = REPO_ROOT / "functions" / "orders" / "schema.json"
OUTPUTS = [
    "ApiId",
    "ApiStage",
    "ApiUrl",
    "DataLakeBucket",
    "OrdersTable",
    "OrderQueueUrl",
    "FileQueueUrl",
    "ErrorTopicArn",
    "PendingTopicArn",
]


# ---------------------------------------------------------------- loading


def target(reference: Any) -> str:
    """The logical id that a !Ref or !GetAtt points at."""
    assert isinstance(reference, dict) and len(reference) == 1, reference
    [(kind, value)] = reference.items()
    if kind == "Ref":
        return str(value)
    assert kind == "Fn::GetAtt", reference
    return str(value[0])


def _text(value: Any) -> str:
    """The literal text of a string or of a !Sub string."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return str(sub[0] if isinstance(sub, list) else sub)
    return value if isinstance(value, str) else ""


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- tools over the template
def test_cfn_lint_passes() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    assert cfn_lint.exists(), f"{cfn_lint} is missing: install the dev dependencies"

    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)

    assert result.returncode == 0, result.stdout + result.stderr


def test_model_check_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.model", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "tools")},
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_api_model_is_the_validator_schema(resources: dict[str, dict[str, Any]]) -> None:
    schema = json.loads(SCHEMA.read_text("utf-8"))

    in_template = resources["OrderModel"]["Properties"]["Schema"]

    assert in_template == model.api_model(schema)
    assert "$ref" not in json.dumps(in_template) and '"x-' not in json.dumps(in_template)
    assert in_template["required"] == schema["required"]
    assert set(in_template["properties"]) == set(schema["properties"])


def test_model_check_notices_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    schema = json.loads(SCHEMA.read_text("utf-8"))
    schema["properties"]["order_id"]["maxLength"] = 65
    drifted = tmp_path / "schema.json"
    drifted.write_text(json.dumps(schema), "utf-8")
    monkeypatch.setattr(model, "SCHEMA", drifted)
    monkeypatch.setattr(sys, "argv", ["model.py", "--check"])

    assert model.main() == 1


def test_the_post_method_validates_the_body_with_the_model(resources: dict[str, dict[str, Any]]) -> None:
    post = resources["PostOrderMethod"]["Properties"]

    assert post["HttpMethod"] == "POST"
    assert target(post["RequestModels"]["application/json"]) == "OrderModel"
    assert resources[target(post["RequestValidatorId"])]["Properties"]["ValidateRequestBody"] is True


def test_the_gateway_refuses_a_body_in_portuguese_with_plain_json(resources: dict[str, dict[str, Any]]) -> None:
    # No $context variables: AWS does not JSON-escape validationErrorString, and the e2e suite reads this answer back.
    [response] = [r["Properties"] for r in of_type(resources, "AWS::ApiGateway::GatewayResponse").values()]
    answer = json.loads(response["ResponseTemplates"]["application/json"])

    assert (response["ResponseType"], response["StatusCode"]) == ("BAD_REQUEST_BODY", "400")
    assert answer["message"] == "Pedido inválido."
    assert [e["field"] for e in answer["errors"]] == ["(corpo)"]
    assert "modelo do pedido" in answer["errors"][0]["message"]


# ---------------------------------------------------------------- IAM
def _policy_documents(resources: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        for key in ("AssumeRolePolicyDocument", "PolicyDocument"):
            if key in props:
                found.append((name, props[key]))
        for policy in props.get("Policies", []):
            found.append((f"{name}/{policy['PolicyName']}", policy["PolicyDocument"]))
    return found


def test_the_template_has_policies_to_check(resources: dict[str, dict[str, Any]]) -> None:
    assert len(_policy_documents(resources)) >= 7


def test_no_wildcard_actions_or_resources(resources: dict[str, dict[str, Any]]) -> None:
    problems = []
    for name, document in _policy_documents(resources):
        for statement in document["Statement"]:
            if statement.get("Effect") == "Deny":
                continue  # a Deny grants nothing; the TLS-only bucket policy denies s3:* to everyone
            for action in _as_list(statement.get("Action", [])):
                if "*" in str(action):
                    problems.append(f"{name}: action {action}")
            for resource in _as_list(statement.get("Resource", [])):
                text = _text(resource)
                if text == "*" or ("*" in text and not (text.endswith("/*") or text.endswith(":*"))):
                    problems.append(f"{name}: resource {resource}")
                if text.count("*") > 1:
                    problems.append(f"{name}: resource {resource}")
            if statement.get("Principal") == "*" or statement.get("NotAction") or statement.get("NotResource"):
                problems.append(f"{name}: {statement}")

    assert problems == []


def test_one_role_per_function(resources: dict[str, dict[str, Any]]) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")
    roles = of_type(resources, "AWS::IAM::Role")

    used = [target(f["Properties"]["Role"]) for f in functions.values()]

    assert len(functions) == 5
    assert sorted(used) == sorted(set(used)) == sorted(roles)


# ---------------------------------------------------------------- queues and functions
def _mappings(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return of_type(resources, "AWS::Lambda::EventSourceMapping")


def test_queues_hide_a_message_as_long_as_its_consumer_may_run_and_no_longer_than_a_minute(
    resources: dict[str, dict[str, Any]],
) -> None:
    # AWS refuses an event-source mapping whose queue hides messages for less than the function's timeout; a
    # longer timeout would keep the work of a killed function hidden that much longer (docs/RELIABILITY.md,
    # "Crash recovery in seconds")
    mappings = _mappings(resources)
    assert len(mappings) == 3

    for name, mapping in mappings.items():
        queue = resources[target(mapping["Properties"]["EventSourceArn"])]
        function = resources[target(mapping["Properties"]["FunctionName"])]
        assert queue["Type"] == "AWS::SQS::Queue", name
        assert function["Type"] == "AWS::Lambda::Function", name
        visibility, timeout = int(queue["Properties"]["VisibilityTimeout"]), int(function["Properties"]["Timeout"])
        assert timeout <= visibility <= 60, name


def test_both_event_source_mappings_report_batch_item_failures(resources: dict[str, dict[str, Any]]) -> None:
    mappings = _mappings(resources)

    assert {name: m["Properties"].get("FunctionResponseTypes") for name, m in mappings.items()} == {
        name: ["ReportBatchItemFailures"] for name in mappings
    }


def test_each_queue_is_consumed_by_its_function(resources: dict[str, dict[str, Any]]) -> None:
    pairs = {
        (target(m["Properties"]["EventSourceArn"]), target(m["Properties"]["FunctionName"]))
        for m in _mappings(resources).values()
    }

    assert pairs == {
        ("OrderQueue", "ProcessorFunction"),
        ("FileQueue", "FileValidatorFunction"),
        ("RestockQueue", "RestockerFunction"),
    }
    assert resources["ProcessorFunction"]["Properties"]["Handler"] == "handlers.processor.handler"
    assert resources["FileValidatorFunction"]["Properties"]["Handler"] == "handlers.file_validator.handler"
    assert resources["RestockerFunction"]["Properties"]["Handler"] == "handlers.restocker.handler"


def test_restocks_of_a_product_share_one_fifo_group_and_have_a_fifo_dead_letter_queue(
    resources: dict[str, dict[str, Any]],
) -> None:
    queue = resources["RestockQueue"]["Properties"]
    dead_letter = target(queue["RedrivePolicy"]["deadLetterTargetArn"])

    assert queue["FifoQueue"] is True
    assert resources[dead_letter]["Properties"]["FifoQueue"] is True


def test_the_fifo_queue_has_a_fifo_dead_letter_queue(
    template: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    fifo = {name: q for name, q in queues.items() if q["Properties"].get("FifoQueue") is True}
    assert "OrderQueue" in fifo

    for name, queue in queues.items():
        redrive = queue["Properties"].get("RedrivePolicy")
        if name in {"OrderQueue", "FileQueue"}:
            assert redrive, f"{name} has no dead-letter queue"
        if redrive:
            dead_letter = queues[target(redrive["deadLetterTargetArn"])]
            assert (dead_letter["Properties"].get("FifoQueue") is True) == (name in fifo), name
            count = redrive["maxReceiveCount"]
            if isinstance(count, dict):  # {"Ref": "MaxReceiveCount"}: the parameter's default
                count = template["Parameters"][count["Ref"]]["Default"]
            assert int(count) >= 1


def test_the_file_queue_is_standard(resources: dict[str, dict[str, Any]]) -> None:
    assert not resources["FileQueue"]["Properties"].get("FifoQueue")


def test_runtime_is_python312_everywhere(resources: dict[str, dict[str, Any]]) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")

    runtimes = {name: f["Properties"]["Runtime"] for name, f in functions.items()}

    assert runtimes == {name: "python3.12" for name in functions}


# ---------------------------------------------------------------- bucket, parameters, outputs
def test_the_bucket_notifies_the_file_queue_for_order_and_restock_files(resources: dict[str, dict[str, Any]]) -> None:
    configurations = resources["DataLakeBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]

    seen = set()
    for configuration in configurations:
        rules = {r["Name"]: r["Value"] for r in configuration["Filter"]["S3Key"]["Rules"]}
        assert target(configuration["Queue"]) == "FileQueue"
        assert configuration["Event"].startswith("s3:ObjectCreated:")
        seen.add((rules.get("prefix"), rules.get("suffix")))

    # No suffix rule (S3 matches it case-sensitively): the file validator reads .json/.jsonl in any case
    assert seen == {("incoming/", None), ("restock/", None)}


def test_strict_documents_is_off_by_default(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["StrictDocuments"]

    assert parameter["Default"] == "false"
    assert sorted(parameter["AllowedValues"]) == ["false", "true"]


def test_functions_that_validate_get_the_strict_flag(resources: dict[str, dict[str, Any]]) -> None:
    for name in ("ApiFunction", "FileValidatorFunction"):
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert variables["STRICT_DOCUMENTS"] == {"Ref": "StrictDocuments"}, name


def test_outputs(template: dict[str, Any]) -> None:
    missing = [name for name in OUTPUTS if name not in template.get("Outputs", {})]

    assert missing == []


# ---------------------------------------------------------------- deploy and seed tools
def test_build_zip_is_reproducible_and_carries_the_code() -> None:
    first, second = deploy.build_zip(), deploy.build_zip()

    assert first == second
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert "handlers/api.py" in names and "handlers/answers.py" in names
    assert "orders/schema.json" in names
    assert "service/use_cases.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_build_zip_ignores_times_and_caches(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "mod.py").write_text("X = 1\n")
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-312.pyc").write_bytes(b"\0")
    (tmp_path / "stray.pyc").write_bytes(b"\0")
    first = deploy.build_zip(tmp_path)
    os.utime(tmp_path / "pkg" / "mod.py", (1_000_000_000, 1_000_000_000))

    second = deploy.build_zip(tmp_path)

    assert first == second
    assert zipfile.ZipFile(io.BytesIO(first)).namelist() == ["pkg/mod.py"]


def test_build_zip_changes_with_the_code(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("X = 1\n")
    first = deploy.build_zip(tmp_path)
    (tmp_path / "mod.py").write_text("X = 2\n")

    assert deploy.build_zip(tmp_path) != first


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://localhost:4566", "http://localhost:4566/_aws/execute-api/abc123/dev"),
        ("http://localhost:4566/", "http://localhost:4566/_aws/execute-api/abc123/dev"),
        (None, "https://abc123.execute-api.us-east-1.amazonaws.com/dev"),
        ("", "https://abc123.execute-api.us-east-1.amazonaws.com/dev"),
    ],
)
def test_api_base_url(endpoint: str | None, expected: str) -> None:
    outputs = {"ApiId": "abc123", "ApiStage": "dev", "ApiUrl": "https://abc123.execute-api.us-east-1.amazonaws.com/dev"}

    assert deploy.api_base_url(outputs, endpoint) == expected
