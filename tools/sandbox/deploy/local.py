"""Package functions/, upload the zip, create or update the stack, write .sandbox/outputs.json, resume the
consumers, seed the products that are missing and subscribe the notifications inbox.

The same script runs from the host (embedded MiniStack) and as the init hook inside the LocalStack
and MiniStack containers, so it needs only boto3 and the standard library. It is idempotent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
from typing import Any

import boto3
from botocore.exceptions import ClientError

from sandbox.aws import DEFAULT_REGION, OUTPUTS, SETTINGS
from sandbox.deploy import core
from sandbox.notifications import ensure_inbox
from sandbox.seed import read_rows, seed

POLL_DELAY = 0.25  # seconds between two reads of the stack: the emulators settle in about a second
TIMEOUT = 600
# A stack in one of these holds nothing to update: it is deleted and created again.
DEAD = frozenset({"ROLLBACK_COMPLETE", "CREATE_FAILED", "DELETE_COMPLETE"})


def upload_code(session: boto3.session.Session, stack: str, code: bytes) -> core.Artifacts:
    account = str(session.client("sts").get_caller_identity()["Account"])
    return core.package(session.client("s3"), stack, account, session.region_name or DEFAULT_REGION, code)


def _functions(description: dict[str, Any]) -> list[str]:
    return [o["OutputValue"] for o in description.get("Outputs", []) if o["OutputKey"].endswith("FunctionName")]


def update_code(session: boto3.session.Session, description: dict[str, Any], code: bytes) -> int:
    """The inner loop: push new code to the functions (UpdateFunctionCode with the zip itself, no upload to S3)
    when it differs; return how many."""
    lam = session.client("lambda")
    digest = base64.b64encode(hashlib.sha256(code).digest()).decode()
    stale = [
        name
        for name in _functions(description)
        if lam.get_function_configuration(FunctionName=name)["CodeSha256"] != digest
    ]
    for name in stale:
        lam.update_function_code(FunctionName=name, ZipFile=code)
    for name in stale:
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    return len(stale)


def deploy(session: boto3.session.Session, stack: str, parameters: dict[str, str]) -> dict[str, Any]:
    """Create or update the stack; when only functions/ changed, update the functions' code alone."""
    cfn = session.client("cloudformation")
    code, template = core.build_zip(), core.TEMPLATE.read_text("utf-8")
    current = core.describe_stack(cfn, stack)
    if current and current["StackStatus"] in DEAD:
        cfn.delete_stack(StackName=stack)
        core.wait(cfn, "stack_delete_complete", delay=POLL_DELAY, timeout=TIMEOUT, StackName=stack)
        current = None
    if current and current["StackStatus"].endswith("_COMPLETE"):
        deployed = {p["ParameterKey"]: p.get("ParameterValue") for p in current.get("Parameters", [])}
        same_parameters = all(deployed.get(name) == value for name, value in parameters.items())
        if same_parameters and cfn.get_template(StackName=stack).get("TemplateBody") == template:
            updated = update_code(session, current, code)
            core.say(f"template unchanged; code of {updated} function(s) updated")
            return current
    artifacts = upload_code(session, stack, code)
    params = {"ArtifactBucket": artifacts.bucket, "ArtifactKey": artifacts.code_key, **parameters}
    token = core.request_token("sandbox-deploy")
    request = {
        "StackName": stack,
        "TemplateBody": template,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        "Capabilities": core.CAPABILITIES,
        "ClientRequestToken": token,
    }
    try:
        stack_id = (cfn.update_stack if current else cfn.create_stack)(**request)["StackId"]
    except ClientError as exc:
        if current and core.is_no_changes(str(exc)):
            return current
        raise
    waiter = f"stack_{'update' if current else 'create'}_complete"
    return core.settle(cfn, stack_id, token, waiter, delay=POLL_DELAY, timeout=TIMEOUT, show=False)


def resume_consumers(session: boto3.session.Session, description: dict[str, Any]) -> None:
    """Enable the stack's event-source mappings (`make down` pauses them when state is persisted)."""
    lam = session.client("lambda")
    for name in _functions(description):
        for mapping in lam.list_event_source_mappings(FunctionName=name).get("EventSourceMappings", []):
            if mapping.get("State") == "Disabled":
                lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)


def main() -> int:
    started = time.monotonic()
    session, stack, endpoint = boto3.session.Session(), SETTINGS.stack, SETTINGS.endpoint
    email = os.environ.get("NOTIFICATION_EMAIL", "alerts@example.com")  # the README's table of variables
    parameters = {"StrictDocuments": os.environ.get("STRICT_DOCUMENTS", "false"), "NotificationEmail": email}
    description = deploy(session, stack, parameters)
    outputs = core.write_outputs(description, OUTPUTS, endpoint, **({"Endpoint": endpoint} if endpoint else {}))
    resume_consumers(session, description)
    seed(session, outputs["OrdersTable"], read_rows(), only_missing=True)
    ensure_inbox(session, outputs)
    print(json.dumps(outputs, indent=2, sort_keys=True))
    core.say(f"stack {stack} deployed in {time.monotonic() - started:.1f} s; outputs in {OUTPUTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
