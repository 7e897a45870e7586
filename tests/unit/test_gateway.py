"""sandbox.gateway against a stubbed API Gateway client: how enforcement is read, switched on and undone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from sandbox import gateway

API = "abc123"
RESOURCES = {"items": [{"id": "root", "path": "/"}, {"id": "res1", "path": "/orders"}]}
METHOD = {"restApiId": API, "resourceId": "res1", "httpMethod": "POST"}
MODELS = {"application/json": "Order"}


@pytest.fixture
def client() -> Iterator[tuple[Any, Stubber]]:
    apigateway = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).client("apigateway", endpoint_url="http://localhost:4566")
    with Stubber(apigateway) as stub:
        yield apigateway, stub
        stub.assert_no_pending_responses()


def method_with(stub: Stubber, validator: dict[str, Any] | None, missing: bool = False) -> None:
    """The resources, the POST /orders method and (when it names one) its validator, as the API returns them."""
    stub.add_response("get_resources", RESOURCES, {"restApiId": API})
    method: dict[str, Any] = {"httpMethod": "POST", "requestModels": MODELS}
    if validator is not None:
        method["requestValidatorId"] = validator["id"]
    stub.add_response("get_method", method, METHOD)
    if validator is None:
        return
    request = {"restApiId": API, "requestValidatorId": validator["id"]}
    if missing:
        stub.add_client_error(
            "get_request_validator", "NotFoundException", http_status_code=404, expected_params=request
        )
    else:
        stub.add_response("get_request_validator", validator, request)


def repoint_and_redeploy(stub: Stubber, validator_id: str, why: str, deleted: str | None = None) -> None:
    """The method pointed at `validator_id` ("" for none), `deleted` removed, and the stage deployed again."""
    patch = [{"op": "replace", "path": "/requestValidatorId", "value": validator_id}]
    stub.add_response("update_method", {}, {**METHOD, "patchOperations": patch})
    if deleted:
        stub.add_response("delete_request_validator", {}, {"restApiId": API, "requestValidatorId": deleted})
    stub.add_response("create_deployment", {"id": "d1"}, {"restApiId": API, "stageName": "dev", "description": why})


TEMPLATE_VALIDATOR = {"id": "v1", "name": "body", "validateRequestBody": True}
OURS = {"id": "v2", "name": gateway.ENFORCING_VALIDATOR, "validateRequestBody": True}


def test_a_registered_body_validator_is_enforcement(client) -> None:
    apigateway, stub = client
    method_with(stub, TEMPLATE_VALIDATOR)
    gate = gateway.inspect(apigateway, API)
    assert gate.enforced and "'body'" in gate.reason


@pytest.mark.parametrize(
    ("validator", "missing", "reason"),
    [
        (None, False, "no registered request validator"),  # MiniStack's CloudFormation: no id on the method
        (TEMPLATE_VALIDATOR, True, "no registered request validator"),  # an id the API does not know
        ({"id": "v3", "name": "params", "validateRequestBody": False}, False, "does not validate the body"),
    ],
    ids=["no validator id", "unknown validator", "parameters only"],
)
def test_no_enforcement_without_a_registered_body_validator(client, validator, missing, reason) -> None:
    apigateway, stub = client
    method_with(stub, validator, missing)
    gate = gateway.inspect(apigateway, API)
    assert not gate.enforced and reason in gate.reason


def test_enforce_adds_a_validator_points_the_method_at_it_and_redeploys(client) -> None:
    apigateway, stub = client
    method_with(stub, None)
    stub.add_response(
        "create_request_validator",
        OURS,
        {"restApiId": API, "name": gateway.ENFORCING_VALIDATOR, "validateRequestBody": True,
         "validateRequestParameters": False},
    )  # fmt: skip
    repoint_and_redeploy(stub, "v2", "e2e: request model enforced")
    assert gateway.enforce(apigateway, API, "dev") is True


def test_enforce_changes_nothing_where_the_gateway_already_enforces(client) -> None:
    apigateway, stub = client
    method_with(stub, TEMPLATE_VALIDATOR)
    assert gateway.enforce(apigateway, API, "dev") is False


def test_restore_removes_only_the_validator_enforce_added(client) -> None:
    apigateway, stub = client
    method_with(stub, TEMPLATE_VALIDATOR)
    assert gateway.restore(apigateway, API, "dev") is False  # the template's own validator stays

    method_with(stub, OURS)
    repoint_and_redeploy(stub, "", "e2e: request model as deployed", deleted="v2")
    assert gateway.restore(apigateway, API, "dev") is True


def test_refusals_are_the_template_answer_and_the_built_in_one(client) -> None:
    apigateway, stub = client
    template = '{"message": "Pedido inválido.", "errors": [{"field": "(corpo)", "message": "m"}]}'
    stub.add_response(
        "get_gateway_response",
        {"responseType": "BAD_REQUEST_BODY", "responseTemplates": {"application/json": template}},
        {"restApiId": API, "responseType": "BAD_REQUEST_BODY"},
    )
    answers = gateway.refusals(apigateway, API)
    assert answers == [
        {"message": "Pedido inválido.", "errors": [{"field": "(corpo)", "message": "m"}]},
        {"message": "Invalid request body"},
    ]
