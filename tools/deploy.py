"""Package functions/, upload the zip, create or update the stack, write .sandbox/outputs.json.

The same script runs from the host (embedded MiniStack) and as the init hook inside the LocalStack
and MiniStack containers, so it needs only boto3 and the standard library. It is idempotent.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
from typing import Any

import boto3
from botocore.exceptions import ClientError
from sandbox import OUTPUTS, ROOT
from stack import (
    CAPABILITIES,
    SETTLED,
    TEMPLATE,
    artifact_bucket,
    build_zip,
    code_key,
    describe_stack,
    ensure_bucket,
    is_no_changes,
    outputs_of,
    put_if_missing,
    save_outputs,
    wait,
)

DEFAULT_STACK = "order-pipeline"
POLL_DELAY = 0.25  # seconds between two reads of the stack: the emulators settle in about a second
TIMEOUT = 600


def upload_code(session: boto3.session.Session, stack: str, code: bytes) -> tuple[str, str]:
    account = str(session.client("sts").get_caller_identity()["Account"])
    region = session.region_name or "us-east-1"
    s3 = session.client("s3")
    bucket, key = artifact_bucket(stack, account, region), code_key(code)
    ensure_bucket(s3, bucket, account, region)
    put_if_missing(s3, bucket, key, code, account)
    return bucket, key


def _functions(description: dict[str, Any]) -> list[str]:
    return [o["OutputValue"] for o in description.get("Outputs", []) if o["OutputKey"].endswith("FunctionName")]


def _only_code_changed(cfn: Any, current: dict[str, Any], parameters: dict[str, str]) -> bool:
    """True when the deployed stack has this very template and these parameters (the code aside)."""
    if not current["StackStatus"].endswith("_COMPLETE") or current["StackStatus"].startswith(("DELETE", "ROLLBACK")):
        return False
    deployed = {p["ParameterKey"]: p.get("ParameterValue") for p in current.get("Parameters", [])}
    if any(deployed.get(name) != value for name, value in parameters.items()):
        return False
    body = cfn.get_template(StackName=current["StackName"]).get("TemplateBody")
    return isinstance(body, str) and body == TEMPLATE.read_text("utf-8")


def update_code(session: boto3.session.Session, description: dict[str, Any], code: bytes, stack: str) -> int:
    """The inner loop: push new code to the functions (UpdateFunctionCode) when it differs; return how many."""
    lam = session.client("lambda")
    digest = base64.b64encode(hashlib.sha256(code).digest()).decode()
    stale = [
        name
        for name in _functions(description)
        if lam.get_function_configuration(FunctionName=name)["CodeSha256"] != digest
    ]
    if not stale:
        return 0
    bucket, key = upload_code(session, stack, code)
    for name in stale:
        lam.update_function_code(FunctionName=name, S3Bucket=bucket, S3Key=key)
    for name in stale:
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    return len(stale)


def _settled(cfn: Any, stack: str, waiter: str) -> dict[str, Any]:
    """Wait with boto3's waiter; the description once the stack is complete, else exit with the events' reasons."""
    stopped = wait(cfn, waiter, delay=POLL_DELAY, timeout=TIMEOUT, StackName=stack)
    current = describe_stack(cfn, stack)
    status = current["StackStatus"] if current else "DELETED"
    if current is None or status not in SETTLED:
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"][:15] if current else []
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in events]
        raise SystemExit(f"stack {stack} ended {status} ({stopped}):\n  " + "\n  ".join(reasons))
    return current


def deploy(session: boto3.session.Session, stack: str, parameters: dict[str, str]) -> dict[str, Any]:
    """Create or update the stack; when only functions/ changed, update the functions' code alone."""
    cfn = session.client("cloudformation")
    code = build_zip()
    current = describe_stack(cfn, stack)
    if current is not None and _only_code_changed(cfn, current, parameters):
        updated = update_code(session, current, code, stack)
        print(f"template unchanged; code of {updated} function(s) updated", file=sys.stderr)
        return current
    bucket, key = upload_code(session, stack, code)
    params = {"ArtifactBucket": bucket, "ArtifactKey": key, **parameters}
    request = {
        "StackName": stack,
        "TemplateBody": TEMPLATE.read_text("utf-8"),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        "Capabilities": CAPABILITIES,
    }
    if current and current["StackStatus"] in {"ROLLBACK_COMPLETE", "CREATE_FAILED", "DELETE_COMPLETE"}:
        cfn.delete_stack(StackName=stack)
        wait(cfn, "stack_delete_complete", delay=POLL_DELAY, timeout=TIMEOUT, StackName=stack)
        current = None
    if current is None:
        cfn.create_stack(**request)
        return _settled(cfn, stack, "stack_create_complete")
    try:
        cfn.update_stack(**request)
    except ClientError as exc:
        if not is_no_changes(str(exc)):
            raise
    return _settled(cfn, stack, "stack_update_complete")


def resume_consumers(session: boto3.session.Session, description: dict[str, Any]) -> None:
    """Enable the stack's event-source mappings (`make down` pauses them when state is persisted)."""
    lam = session.client("lambda")
    for name in _functions(description):
        for mapping in lam.list_event_source_mappings(FunctionName=name).get("EventSourceMappings", []):
            if mapping.get("State") == "Disabled" or mapping.get("Enabled") is False:
                lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)


def api_base_url(outputs: dict[str, str], endpoint: str | None) -> str:
    """The URL a host can call: the emulators' `/_aws/execute-api/{id}/{stage}`, or the AWS form with no endpoint."""
    if endpoint:
        return f"{endpoint.rstrip('/')}/_aws/execute-api/{outputs['ApiId']}/{outputs['ApiStage']}"
    return outputs["ApiUrl"]


def write_outputs(stack_description: dict[str, Any], endpoint: str | None) -> dict[str, str]:
    outputs = outputs_of(stack_description)
    outputs["ApiBaseUrl"] = api_base_url(outputs, endpoint)
    if endpoint:
        outputs["Endpoint"] = endpoint
    save_outputs(OUTPUTS, outputs)
    return outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", default=os.environ.get("STACK_NAME", DEFAULT_STACK))
    parser.add_argument("--strict-documents", default=os.environ.get("STRICT_DOCUMENTS", "false"))
    parser.add_argument("--notification-email", default=os.environ.get("NOTIFICATION_EMAIL", "alerts@example.com"))
    parser.add_argument(
        "--sandbox", action="store_true", help="also seed missing products and subscribe the notifications inbox"
    )
    args = parser.parse_args()

    started = time.monotonic()
    session = boto3.session.Session()
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    description = deploy(
        session,
        args.stack,
        {"StrictDocuments": args.strict_documents, "NotificationEmail": args.notification_email},
    )
    outputs = write_outputs(description, endpoint)
    if args.sandbox:
        resume_consumers(session, description)
        sys.path.insert(0, str(ROOT / "tools"))
        from notifications import ensure_inbox

        from seed import load_products, seed

        seed(session, outputs["OrdersTable"], load_products(ROOT / "seed" / "products.json"), only_missing=True)
        ensure_inbox(session, outputs)
    print(json.dumps(outputs, indent=2, sort_keys=True))
    print(f"stack {args.stack} deployed in {time.monotonic() - started:.1f} s; outputs in {OUTPUTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
