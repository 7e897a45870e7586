"""The API and file-validator handlers: event in, response out, with the use cases wired to fakes."""

from __future__ import annotations

import base64
import importlib
import io
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from fakes import FakeFiles, FakeNotifier, FakeQueue, FakeRestockQueue, FakeSqs, FakeStore

from orders.masking import mask_document, mask_text
from orders.model import FieldError
from orders.report import FileReport, report_key
from orders.stock import PendingNotice
from orders.validation import OrderValidator
from service.adapters import DynamoStore, SnsNotifier
from service.batch import Heartbeat
from service.config import ApiSettings, MissingSetting
from service.logs import log
from service.use_cases import FileIngestion, OrderIntake

ERROR_TOPIC = "arn:aws:sns:us-east-1:000000000000:errors"


class Api:
    def __init__(self, module: Any, store: FakeStore, queue: FakeQueue) -> None:
        self.module, self.store, self.queue = module, store, queue

    def post(self, body: str | None, headers: dict[str, str] | None = None, encoded: bool = False) -> dict[str, Any]:
        event = {
            "httpMethod": "POST",
            "resource": "/orders",
            "headers": {"Content-Type": "application/json"} if headers is None else headers,
            "body": base64.b64encode(body.encode()).decode() if encoded and body is not None else body,
            "isBase64Encoded": encoded,
        }
        return self.module.handler(event, None)

    def get(self, resource: str, **params: str) -> dict[str, Any]:
        return self.module.handler({"httpMethod": "GET", "resource": resource, "pathParameters": params}, None)


@pytest.fixture
def api(lambda_env: None, monkeypatch: pytest.MonkeyPatch) -> Api:
    module = importlib.import_module("handlers.api")
    store, queue = FakeStore(stock={"PRD-1001": 5, "PRD-2002": 5}), FakeQueue()
    monkeypatch.setattr(module, "_store", store)
    monkeypatch.setattr(module, "_intake", OrderIntake(OrderValidator(), store, queue))
    return Api(module, store, queue)


def test_post_accepts_the_lab_example(api: Api, lab_text: str) -> None:
    response = api.post(lab_text)
    assert response["statusCode"] == 202
    assert json.loads(response["body"]) == {
        "order_id": "ORD-20231001-0001",
        "replayed": False,
        "message": "Pedido enviado para processamento.",
    }
    assert api.queue.sent_ids == ["ORD-20231001-0001"]


def test_post_reads_a_base64_body(api: Api, lab_text: str) -> None:
    assert api.post(lab_text, encoded=True)["statusCode"] == 202


def test_post_without_content_type_is_read_as_json(api: Api, lab_text: str) -> None:
    assert api.post(lab_text, headers={})["statusCode"] == 202


def test_post_with_a_non_json_content_type_is_415(api: Api, lab_text: str) -> None:
    response = api.post(lab_text, headers={"content-type": "text/plain"})
    assert response["statusCode"] == 415
    assert api.queue.sent == []


def test_post_invalid_is_400_with_the_error_list(api: Api) -> None:
    response = api.post('{"order_id": "A#1"}')
    body = json.loads(response["body"])
    assert response["statusCode"] == 400
    assert body["message"] == "Pedido inválido."
    assert {"order_id", "company", "items"} <= {e["field"] for e in body["errors"]}
    assert api.store.orders == {} and api.queue.sent == []


def test_post_of_the_same_body_again_is_an_idempotent_replay(api: Api, lab_text: str) -> None:
    # Given an order accepted once (its client never saw the 202: the function died, or the network)
    api.post(lab_text)

    # When the client sends the very same order again, whitespace aside
    response = api.post(json.dumps(json.loads(lab_text)))

    # Then it is answered 202 again, says so, and the order is sent again (the queue drops the repeat)
    assert response["statusCode"] == 202
    assert json.loads(response["body"]) == {
        "order_id": "ORD-20231001-0001",
        "replayed": True,
        "message": "Pedido já recebido com este mesmo conteúdo; nada foi duplicado.",
    }
    assert [order.order_id for order in api.queue.sent] == ["ORD-20231001-0001"] * 2
    assert len(api.store.orders) == 1


def test_post_of_another_body_with_a_used_order_id_is_409(api: Api, lab_text: str) -> None:
    api.post(lab_text)
    other = json.loads(lab_text)
    other["items"][0]["quantity"] += 1
    other["payment"]["amount"] = 0  # the amount no longer matters: the id is taken before any send

    response = api.post(json.dumps(other))

    assert response["statusCode"] in (400, 409)
    other["payment"]["amount"] = json.loads(lab_text)["payment"]["amount"] + other["items"][0]["unit_price"]
    response = api.post(json.dumps(other))
    assert response["statusCode"] == 409
    assert json.loads(response["body"]) == {"message": "Pedido duplicado."}
    assert len(api.queue.sent) == 1


def test_a_replay_of_an_order_already_processed_sends_nothing(api: Api, lab_text: str) -> None:
    api.post(lab_text)
    api.store.orders["ORD-20231001-0001"]["order_status"] = "Novo Pedido"

    response = api.post(lab_text)

    assert response["statusCode"] == 202
    assert json.loads(response["body"])["replayed"] is True
    assert len(api.queue.sent) == 1


def test_post_whose_send_fails_is_503_and_leaves_nothing(api: Api, lab_text: str) -> None:
    api.queue.send_error = ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")
    response = api.post(lab_text)
    assert response["statusCode"] == 503
    assert api.store.orders == {}, "the claim is undone, so a retry is not a 409"
    api.queue.send_error = None
    assert api.post(lab_text)["statusCode"] == 202


def test_post_whose_claim_is_throttled_is_503(api: Api, lab_text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The store's adapters turn throttling into StoreBusy (service.adapters.table.refusal): still a 503 to retry.
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    monkeypatch.setattr(
        api.module, "_intake", OrderIntake(OrderValidator(), DynamoStore(dynamodb, "orders"), api.queue)
    )
    with Stubber(dynamodb) as stub:
        stub.add_client_error("put_item", service_error_code="ProvisionedThroughputExceededException")

        response = api.post(lab_text)

    assert response["statusCode"] == 503
    assert api.queue.sent == []


def test_get_order_shows_recebido_right_after_202(api: Api, lab_text: str) -> None:
    api.post(lab_text)
    api.store.orders["ORD-20231001-0001"].update(order_date="2023-10-01T10:30:00Z", items=[])
    response = api.get("/orders/{order_id}", order_id="ORD-20231001-0001")
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["order_status"] == "Recebido"


def test_get_unknown_order_and_product_are_404(api: Api) -> None:
    assert api.get("/orders/{order_id}", order_id="NOPE")["statusCode"] == 404
    api.store.get_product = lambda product_id: None  # type: ignore[attr-defined]
    assert api.get("/products/{product_id}", product_id="NOPE")["statusCode"] == 404


def test_unknown_route_is_404(api: Api) -> None:
    assert api.get("/nothing")["statusCode"] == 404


# ================================================================ file validator
@pytest.fixture
def file_handler(lambda_env: None, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, FakeFiles, FakeStore]:
    module = importlib.import_module("handlers.file_validator")
    store, files = FakeStore(), FakeFiles()
    ingestion = FileIngestion(OrderValidator(), store, FakeQueue(), files, FakeNotifier(), FakeRestockQueue())
    monkeypatch.setattr(module, "_ingestion", ingestion)
    monkeypatch.setattr(module, "_heartbeat", Heartbeat(FakeSqs(), "files-url"))
    return module, files, store


def s3_message(key: str, message_id: str = "m1", etag: str = "e1") -> dict[str, Any]:
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "lake"}, "object": {"key": key, "eTag": etag}},
    }
    return {"messageId": message_id, "body": json.dumps({"Records": [record]})}


def test_file_handler_decodes_url_encoded_keys(file_handler: Any, lab_text: str) -> None:
    module, files, store = file_handler
    files.objects[("lake", "incoming/my orders/ação 1.json")] = lab_text.encode()

    response = module.handler({"Records": [s3_message("incoming/my+orders/a%C3%A7%C3%A3o+1.json")]}, None)

    assert response == {"batchItemFailures": []}
    assert files.reports[0][1] == report_key("incoming/my orders/ação 1.json", "e1")
    assert "ORD-20231001-0001" in store.orders


def test_file_handler_ignores_the_s3_test_event(file_handler: Any) -> None:
    module, files, _ = file_handler
    test_event = {"messageId": "t", "body": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})}
    assert module.handler({"Records": [test_event]}, None) == {"batchItemFailures": []}
    assert files.reports == []


def test_file_handler_reports_only_the_failed_message(file_handler: Any, lab_text: str) -> None:
    module, files, _ = file_handler
    files.objects[("lake", "incoming/ok.json")] = lab_text.encode()
    # incoming/missing.json was never uploaded: reading it fails, that message alone is retried
    response = module.handler(
        {"Records": [s3_message("incoming/missing.json", "m1"), s3_message("incoming/ok.json", "m2")]}, None
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert [r[1] for r in files.reports] == [report_key("incoming/ok.json", "e1")]


# ================================================================ configuration and logs
def test_settings_fail_loudly_when_a_variable_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDER_QUEUE_URL", raising=False)
    monkeypatch.setenv("TABLE_NAME", "orders")
    monkeypatch.setenv("STRICT_DOCUMENTS", "false")
    with pytest.raises(MissingSetting, match="ORDER_QUEUE_URL"):
        ApiSettings.from_env()


@pytest.mark.parametrize(("value", "strict"), [("true", True), ("false", False), ("TRUE", True)])
def test_strict_documents_flag(monkeypatch: pytest.MonkeyPatch, value: str, strict: bool) -> None:
    monkeypatch.setenv("TABLE_NAME", "orders")
    monkeypatch.setenv("ORDER_QUEUE_URL", "q")
    monkeypatch.setenv("STRICT_DOCUMENTS", value)
    monkeypatch.setenv("RESTOCK_QUEUE_URL", "r")
    assert ApiSettings.from_env().strict_documents is strict


def test_strict_documents_flag_refuses_other_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "orders")
    monkeypatch.setenv("ORDER_QUEUE_URL", "q")
    monkeypatch.setenv("STRICT_DOCUMENTS", "yes")
    with pytest.raises(MissingSetting):
        ApiSettings.from_env()


def test_log_lines_are_json_with_personal_data_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    log("INFO", "hello", order_id="O-1", customer={"cpf": "123.456.789-00", "email": "mariana.alves@example.com"})
    line = json.loads(out.getvalue())
    assert line["order_id"] == "O-1"
    assert line["customer"] == {"cpf": "***.456.789-**", "email": "m***@example.com"}
    assert "123.456.789-00" not in out.getvalue() and "mariana.alves" not in out.getvalue()


def test_log_lines_mask_ids_shaped_like_personal_data_whatever_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the API rejecting orders whose order_id is an e-mail and a CPF
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)

    # When it logs them, with the error's repr too
    log("INFO", "order rejected", order_id="zz.secret.person@example.org", error="KeyError('987.654.321-00')")

    # Then the line names them masked
    line = json.loads(out.getvalue())
    assert (line["order_id"], line["error"]) == ("z***@example.org", "KeyError('***.654.321-**')")


class RecordingSns:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> None:
        self.published.append(kwargs)


def test_notifications_mask_ids_shaped_like_personal_data_in_subject_and_message() -> None:
    # Given a rejected file line and a pending order whose ids look like a CPF and an e-mail
    sns = RecordingSns()
    notifier = SnsNotifier(sns, "errors", "pending")
    report = FileReport(bucket="lake", key="incoming/a.json")
    report.reject(0, "zz.secret.person@example.org", [FieldError("order_id", "formato inválido")])

    # When they are published
    notifier.file_report(report)
    notifier.pending_stock(PendingNotice("ORD-98765432100", "c.d@example.com", (("B", 1),)))
    notifier.dead_letter({"queue": "orders", "body": '{"order_id": "987.654.321-00"}'})

    # Then each went to its topic, and no subject or message holds them raw
    assert [message["TopicArn"] for message in sns.published] == ["errors", "pending", "errors"]
    text = json.dumps(sns.published, ensure_ascii=False)
    assert "zz.secret" not in text and "98765432100" not in text and "987.654.321-00" not in text
    assert sns.published[1]["Subject"] == "Pedido ORD-***.654.321-**: produto pendente"


def test_the_dlq_listing_and_the_cli_mask_by_the_one_policy() -> None:
    from sandbox import cli as sandbox_cli
    from sandbox import dlq

    # A dead-lettered body, JSON or not, shows ids shaped like personal data masked
    assert dlq._preview('{"order_id": "zz.secret.person@example.org"}') == '{"order_id": "z***@example.org"}'
    assert dlq._preview("not json: 987.654.321-00") == "not json: ***.654.321-**"
    # And the CLI prints through the domain's masks, not a policy of its own
    assert sandbox_cli.mask is mask_document and sandbox_cli.mask_text is mask_text


def test_every_line_of_a_unit_of_work_carries_its_correlation_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.logs import bound

    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    with bound(order_id="O-7", file_key="incoming/a.json"):
        log("INFO", "first")
        with bound(message_id="m1"):
            log("WARNING", "second")
    log("INFO", "after")
    first, second, after = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["order_id"], first["file_key"]) == ("O-7", "incoming/a.json")
    assert (second["order_id"], second["message_id"]) == ("O-7", "m1")
    assert "order_id" not in after


@pytest.mark.parametrize("bad", ["", "x" * 65, "A#1", "a b", "é", "x" * 2000])
def test_ids_that_cannot_exist_are_404_without_a_lookup(api: Api, bad: str) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("no lookup expected")

    api.store.get_order = refuse  # type: ignore[method-assign]
    api.store.get_product = refuse  # type: ignore[attr-defined]
    assert api.get("/orders/{order_id}", order_id=bad)["statusCode"] == 404
    assert api.get("/products/{product_id}", product_id=bad)["statusCode"] == 404


def test_a_file_unfinished_in_time_goes_on_in_a_new_message_and_this_one_succeeds(
    file_handler: Any, lab_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, files, _ = file_handler
    files.objects[("lake", "incoming/a.json")] = lab_text.encode()
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(module, "_sqs", type("Sqs", (), {"send_message": lambda self, **kw: sent.append(kw)})())

    class AlmostOutOfTime:
        def get_remaining_time_in_millis(self) -> int:
            return 1_000

    message = s3_message("incoming/a.json")
    response = module.handler({"Records": [message]}, AlmostOutOfTime())

    assert response == {"batchItemFailures": []}
    assert [m["MessageBody"] for m in sent] == [message["body"]]
    assert files.reports == []


@pytest.mark.usefixtures("lambda_env")
def test_each_function_wires_the_topics_its_notices_go_to() -> None:
    from conftest import LAMBDA_ENVIRONMENT

    from service import bootstrap

    errors, pending = LAMBDA_ENVIRONMENT["ERROR_TOPIC_ARN"], LAMBDA_ENVIRONMENT["PENDING_TOPIC_ARN"]
    wirings = (bootstrap.FileValidatorWiring, bootstrap.ProcessorWiring, bootstrap.RestockerWiring)
    topics = {wiring.__name__: (n._errors, n._pending) for wiring in wirings for n in [wiring().notifier]}

    assert topics == {
        "FileValidatorWiring": (errors, None),  # it reports files and dead letters, never pending stock
        "ProcessorWiring": (errors, pending),
        "RestockerWiring": (errors, pending),
    }
