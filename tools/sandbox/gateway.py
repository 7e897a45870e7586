"""The API gateway's own check of `POST /orders` bodies: is the request model enforced here, and switching it on.

The template gives the method a request validator and the `Order` model on every target. Whether the gateway
applies them depends on the target, so tools and tests ask the API Gateway API instead of guessing:

- AWS and LocalStack 4.14 register the validator and enforce it.
- MiniStack's CloudFormation accepts `AWS::ApiGateway::RequestValidator` but registers nothing, so the method has
  no `requestValidatorId` and every body reaches the Lambda. A validator created through the API Gateway API is
  enforced, which is what `enforce` does (and `make e2e-gateway` runs the API tests under it).

    python -m sandbox.gateway status     # "enforced" or "not enforced", and why
    python -m sandbox.gateway enforce    # switch it on where it is off (a new deployment of the stage)
    python -m sandbox.gateway restore    # undo `enforce`
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import dataclass
from typing import Any

import boto3

from sandbox.aws import default_environment
from sandbox.records import StackOutputs

ORDERS_PATH = "/orders"
METHOD = "POST"
# The validator `enforce` creates; `restore` removes only this one, never the template's.
ENFORCING_VALIDATOR = "body-enforced"
# What a gateway answers to a body its model refuses when it does not apply the template's BAD_REQUEST_BODY
# response: LocalStack 4.14 (next_gen/execute_api/handlers/method_request.py and gateway_exception.py).
BUILT_IN_REFUSAL = {"message": "Invalid request body"}
# How LocalStack 4.14's gateway answers (500) when its own parsing raises before any integration runs: json.loads
# of a body nested deeper than Python's recursion limit, or of a number over 4,300 digits (gateway_exception.py).
BUILT_IN_FAILURE = "Error in apigateway invocation"


@dataclass(frozen=True)
class Gate:
    """What the gateway checks of a `POST /orders` body before the Lambda sees it."""

    resource_id: str
    validator: dict[str, Any] | None
    model: str | None

    @property
    def enforced(self) -> bool:
        return bool(self.validator and self.validator.get("validateRequestBody") and self.model)

    @property
    def reason(self) -> str:
        if self.model is None:
            return "the method has no application/json model"
        if self.validator is None:
            return "the method has no registered request validator"
        if not self.validator.get("validateRequestBody"):
            return f"validator {self.validator['name']!r} does not validate the body"
        return f"validator {self.validator['name']!r} checks the body against model {self.model!r}"


def inspect(apigateway: Any, api_id: str) -> Gate:
    """Read the method, its validator and its model through the API Gateway API."""
    pages = apigateway.get_paginator("get_resources").paginate(restApiId=api_id)
    resource = next(r for page in pages for r in page["items"] if r["path"] == ORDERS_PATH)
    method = apigateway.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=METHOD)
    model = (method.get("requestModels") or {}).get("application/json")
    validator = None
    if validator_id := method.get("requestValidatorId"):
        with contextlib.suppress(apigateway.exceptions.NotFoundException):
            validator = apigateway.get_request_validator(restApiId=api_id, requestValidatorId=validator_id)
    return Gate(resource["id"], validator, model)


def order_model(apigateway: Any, api_id: str, gate: Gate) -> str:
    """The JSON schema the gateway holds for the method's body, as the gateway returns it."""
    if gate.model is None:
        raise SystemExit(f"{METHOD} {ORDERS_PATH} has no model")
    schema: str = apigateway.get_model(restApiId=api_id, modelName=gate.model)["schema"]
    return schema


def refusals(apigateway: Any, api_id: str) -> list[dict[str, Any]]:
    """The bodies the gateway answers (400) to a body its model refuses: the template's, or the built-in one."""
    response = apigateway.get_gateway_response(restApiId=api_id, responseType="BAD_REQUEST_BODY")
    ours: dict[str, Any] = json.loads(response["responseTemplates"]["application/json"])
    return [ours, BUILT_IN_REFUSAL]


def _point_method_at(apigateway: Any, api_id: str, gate: Gate, validator_id: str) -> None:
    apigateway.update_method(
        restApiId=api_id,
        resourceId=gate.resource_id,
        httpMethod=METHOD,
        patchOperations=[{"op": "replace", "path": "/requestValidatorId", "value": validator_id}],
    )


def enforce(apigateway: Any, api_id: str, stage: str) -> bool:
    """Make the gateway check the body against the model; False when it already did."""
    gate = inspect(apigateway, api_id)
    if gate.enforced:
        return False
    validator = apigateway.create_request_validator(
        restApiId=api_id, name=ENFORCING_VALIDATOR, validateRequestBody=True, validateRequestParameters=False
    )
    _point_method_at(apigateway, api_id, gate, validator["id"])
    apigateway.create_deployment(restApiId=api_id, stageName=stage, description="e2e: request model enforced")
    return True


def restore(apigateway: Any, api_id: str, stage: str) -> bool:
    """Undo `enforce`: the method loses the validator it added; False when there was nothing to undo."""
    gate = inspect(apigateway, api_id)
    if not gate.validator or gate.validator.get("name") != ENFORCING_VALIDATOR:
        return False
    _point_method_at(apigateway, api_id, gate, "")
    apigateway.delete_request_validator(restApiId=api_id, requestValidatorId=gate.validator["id"])
    apigateway.create_deployment(restApiId=api_id, stageName=stage, description="e2e: request model as deployed")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["status", "enforce", "restore"])
    args = parser.parse_args()
    default_environment()
    outputs = StackOutputs.read().as_dict()
    apigateway = boto3.session.Session().client("apigateway")
    api_id, stage = outputs["ApiId"], outputs["ApiStage"]
    if args.action == "enforce":
        changed = enforce(apigateway, api_id, stage)
        print("request model enforced" if changed else "request model already enforced: nothing changed")
    elif args.action == "restore":
        changed = restore(apigateway, api_id, stage)
        print("request model back as deployed" if changed else "nothing to restore")
    gate = inspect(apigateway, api_id)
    print(f"{METHOD} {ORDERS_PATH}: {'enforced' if gate.enforced else 'not enforced'} ({gate.reason})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
