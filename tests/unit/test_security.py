"""Security of the stack, read from infra/template.yaml and checked against the code.

The IAM tests derive what each function needs from its source: the handler's wiring (module-level objects
built from `boto3.client(...)` and the settings), the use cases and adapters it calls, and every boto3 client
method reached from there, found with `ast`. A new client call in an adapter fails these tests until the
function's role grants exactly that action on exactly that resource.
"""

from __future__ import annotations

import ast
import base64
import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cfn import of_type
from fakes import FakeQueue, FakeStore

from orders import validation
from orders.report import report_key
from orders.validation import MAX_ORDER_BYTES, OrderValidator
from service.use_cases import OrderIntake

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO_ROOT / "functions"

# How each boto3 client method is authorised. A method missing here fails the IAM test: add it with its action.
IAM_ACTIONS: dict[tuple[str, str], str] = {
    ("dynamodb", "get_item"): "dynamodb:GetItem",
    ("dynamodb", "put_item"): "dynamodb:PutItem",
    ("dynamodb", "update_item"): "dynamodb:UpdateItem",
    ("dynamodb", "delete_item"): "dynamodb:DeleteItem",
    ("dynamodb", "batch_get_item"): "dynamodb:BatchGetItem",
    ("dynamodb", "batch_write_item"): "dynamodb:BatchWriteItem",
    ("dynamodb", "query"): "dynamodb:Query",
    ("dynamodb", "scan"): "dynamodb:Scan",
    ("sqs", "send_message"): "sqs:SendMessage",
    ("sqs", "send_message_batch"): "sqs:SendMessage",
    ("sqs", "receive_message"): "sqs:ReceiveMessage",
    ("sqs", "delete_message"): "sqs:DeleteMessage",
    ("sqs", "delete_message_batch"): "sqs:DeleteMessage",
    ("sqs", "change_message_visibility"): "sqs:ChangeMessageVisibility",
    ("sqs", "change_message_visibility_batch"): "sqs:ChangeMessageVisibility",
    ("sqs", "get_queue_attributes"): "sqs:GetQueueAttributes",
    ("sns", "publish"): "sns:Publish",
    ("sns", "publish_batch"): "sns:Publish",
    ("s3", "get_object"): "s3:GetObject",
    ("s3", "head_object"): "s3:GetObject",
    ("s3", "put_object"): "s3:PutObject",
    ("s3", "delete_object"): "s3:DeleteObject",
}
# TransactWriteItems has no IAM action of its own: each inner write is authorised as its single-item action.
TRANSACT_WRITES = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
# What Lambda's SQS event-source mapping does with the function's role.
EVENT_SOURCE_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
LOG_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}


# ================================================================ the template


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def target(reference: Any) -> str:
    """The logical id that a !Ref or !GetAtt points at."""
    assert isinstance(reference, dict) and len(reference) == 1, reference
    [(kind, value)] = reference.items()
    assert kind in {"Ref", "Fn::GetAtt"}, reference
    return str(value if kind == "Ref" else value[0])


def sub_text(value: Any) -> str:
    """The text of a !Sub string (or of a plain string)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return str(sub[0] if isinstance(sub, list) else sub)
    assert isinstance(value, str), value
    return value


def resource_key(value: Any) -> str:
    """One comparable spelling of a policy Resource: Ref:X, Arn:X, or the (Sub) ARN text."""
    if isinstance(value, dict) and "Ref" in value:
        return f"Ref:{value['Ref']}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        return f"Arn:{name}" if attribute == "Arn" else f"{attribute}:{name}"
    return sub_text(value)


def parameter_default(template: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and "Ref" in value:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def role_statements(resources: dict[str, dict[str, Any]], role: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in resources[role]["Properties"].get("Policies", []):
        statements += as_list(policy["PolicyDocument"]["Statement"])
    return statements


def granted(resources: dict[str, dict[str, Any]], role: str) -> set[tuple[str, str]]:
    """Every (action, resource) pair the role's Allow statements grant."""
    pairs = set()
    for statement in role_statements(resources, role):
        if statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                pairs |= {(action, resource_key(r)) for r in as_list(statement["Resource"])}
    return pairs


# ================================================================ the code: which AWS calls each function makes
@dataclass(frozen=True)
class Client:
    service: str


@dataclass(frozen=True)
class Setting:
    """A value read from the function's environment variable `env`."""

    env: str


@dataclass(frozen=True)
class SettingsObject:
    cls: str


@dataclass(eq=False)
class Instance:
    cls: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AwsCall:
    service: str
    method: str
    cls: str
    settings: frozenset[str]
    transact_writes: frozenset[str] = frozenset()
    index: str | None = None  # a Query of a secondary index is authorised on the index's ARN


def _settings_fields(tree: ast.Module) -> dict[str, dict[str, str]]:
    """config.py: for each settings class, field -> environment variable (from `name: str = env("X")`, its bases'
    fields included)."""
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    def fields_of(name: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for base in classes[name].bases:
            found |= fields_of(base.id) if isinstance(base, ast.Name) and base.id in classes else {}
        for s in classes[name].body:
            if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and isinstance(s.value, ast.Call):
                if isinstance(s.value.func, ast.Name) and s.value.func.id == "env":
                    found[s.target.id] = s.value.args[0].value  # type: ignore[attr-defined]
        return found

    return {name: fields_of(name) for name in classes}


class CodeModel:
    """A small abstract interpreter over functions/: enough to follow objects from a handler to boto3."""

    def __init__(self, sources: dict[str, str] | None = None) -> None:
        overrides = sources or {}

        def parse(relative: str) -> ast.Module:
            text = overrides.get(relative) or (FUNCTIONS / relative).read_text("utf-8")
            return ast.parse(text, relative)

        self.classes: dict[str, ast.ClassDef] = {}
        for path in sorted((FUNCTIONS / "service").rglob("*.py")):
            for node in parse(path.relative_to(FUNCTIONS).as_posix()).body:
                if isinstance(node, ast.ClassDef):
                    assert node.name not in self.classes, f"two classes named {node.name} under service/"
                    self.classes[node.name] = node
        self.settings = _settings_fields(parse("service/config.py"))
        self._parse = parse

    # -- evaluation -----------------------------------------------------------------------------
    def lineage(self, cls: str) -> list[ast.ClassDef]:
        """The class and its bases defined under service/, in method resolution order (single chains and mixins)."""
        node = self.classes[cls]
        bases = [b.id for b in node.bases if isinstance(b, ast.Name) and b.id in self.classes]
        return [node, *(c for base in bases for c in self.lineage(base))]

    def _find(
        self, cls: str, name: str, after: ast.ClassDef | None = None
    ) -> tuple[ast.ClassDef, ast.FunctionDef] | None:
        """The method `name` of `cls` as Python finds it (for `super()`, in the classes after `after`)."""
        lineage = self.lineage(cls)
        for owner in lineage[lineage.index(after) + 1 :] if after is not None else lineage:
            for node in owner.body:
                if isinstance(node, ast.FunctionDef) and node.name == name:
                    return owner, node
        return None

    def _method(self, cls: str, name: str) -> ast.FunctionDef | None:
        found = self._find(cls, name)
        return found[1] if found else None

    @staticmethod
    def _params(function: ast.FunctionDef) -> list[str]:
        names = [a.arg for a in function.args.posonlyargs + function.args.args]
        static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in function.decorator_list)
        return names if static else names[1:]

    @staticmethod
    def _bind_names(params: list[str], call: ast.Call, frame: Frame) -> dict[str, Any]:
        bound = {name: frame.value(arg) for name, arg in zip(params, call.args, strict=False)}
        bound.update({k.arg: frame.value(k.value) for k in call.keywords if k.arg})
        return bound

    def _bind(self, function: ast.FunctionDef, call: ast.Call, frame: Frame) -> dict[str, Any]:
        return self._bind_names(self._params(function) + [a.arg for a in function.args.kwonlyargs], call, frame)

    def instantiate(self, cls: str, call: ast.Call, frame: Frame) -> Instance:
        instance = Instance(cls)
        self._initialise(instance, call, frame, None)
        return instance

    def _initialise(self, instance: Instance, call: ast.Call, frame: Frame, after: ast.ClassDef | None) -> None:
        found = self._find(instance.cls, "__init__", after)
        if found is None:  # a dataclass: its fields, in order, are its arguments
            fields = [
                s.target.id
                for c in reversed(self.lineage(instance.cls))
                for s in c.body
                if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
            ]
            instance.fields.update(self._bind_names(fields, call, frame))
            return
        owner, init = found
        init_frame = Frame(self, instance, self._bind(init, call, frame), init, {})
        for statement in init.body:  # in order: a field may be built from one assigned before it
            if isinstance(statement, ast.Assign):
                for assigned in statement.targets:
                    if _is_self_attribute(assigned):
                        instance.fields[assigned.attr] = init_frame.value(statement.value)  # type: ignore[attr-defined]
            elif isinstance(statement, ast.Expr) and _is_super_init(statement.value):
                self._initialise(instance, statement.value, init_frame, owner)  # type: ignore[arg-type]

    # -- following calls ------------------------------------------------------------------------
    def calls_of(
        self, instance: Instance, method: str, arguments: dict[str, Any], seen: tuple[Any, ...] = ()
    ) -> Iterator[AwsCall]:
        function = self._method(instance.cls, method)
        assert function is not None, f"{instance.cls}.{method} is called but not defined"
        key = (id(instance), method)
        if key in seen:
            return
        frame = Frame(self, instance, arguments, function, {})
        for node in ast.walk(function):
            if isinstance(node, ast.Call):
                # A bound method handed on (`unclaimed_if_unsent(self.store.release, ...)`) is called by its taker.
                for handed in node.args:
                    if isinstance(handed, ast.Attribute) and _is_self_attribute(handed.value):
                        held = instance.fields.get(handed.value.attr)  # type: ignore[attr-defined]
                        if isinstance(held, Instance) and self._method(held.cls, handed.attr):
                            yield from self.calls_of(held, handed.attr, {}, (*seen, key))
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner, name = node.func.value, node.func.attr
            if _is_self_attribute(owner):
                held = instance.fields.get(owner.attr)  # type: ignore[attr-defined]
                if isinstance(held, Client) and name == "get_paginator":
                    # client.get_paginator("query").paginate(...): the operation, with the paginate call's arguments
                    [paginate] = [
                        n
                        for n in ast.walk(function)
                        if isinstance(n, ast.Call) and getattr(n.func, "value", None) is node
                    ]
                    yield self._aws_call(held, node.args[0].value, paginate, frame)  # type: ignore[attr-defined]
                elif isinstance(held, Client):
                    yield self._aws_call(held, name, node, frame)
                elif isinstance(held, Instance):
                    callee = self._method(held.cls, name)
                    assert callee is not None, f"{held.cls}.{name} is called but not defined"
                    yield from self.calls_of(held, name, self._bind(callee, node, frame), (*seen, key))
            elif isinstance(owner, ast.Name) and owner.id == "self" and self._method(instance.cls, name):
                callee = self._method(instance.cls, name)
                assert callee is not None
                yield from self.calls_of(instance, name, self._bind(callee, node, frame), (*seen, key))

    def _aws_call(self, client: Client, method: str, call: ast.Call, frame: Frame) -> AwsCall:
        settings: set[str] = set()
        for keyword in call.keywords:
            settings |= frame.settings_in(keyword.value)
        writes: set[str] = set()
        if (client.service, method) == ("dynamodb", "transact_write_items"):
            writes = self._transact_writes(call, frame, settings)
        cls = frame.instance.cls if frame.instance else "(handler)"
        [index] = [
            k.value.value for k in call.keywords if k.arg == "IndexName" and isinstance(k.value, ast.Constant)
        ] or [None]
        return AwsCall(client.service, method, cls, frozenset(settings), frozenset(writes), index)

    def _transact_writes(self, call: ast.Call, frame: Frame, settings: set[str]) -> set[str]:
        """The kinds of the inner writes (Put, Update, ...) and, into `settings`, the tables they name.

        The writes are the dict literals of the method that builds them: this one when `TransactItems` is a
        local list, or the adapter's methods returning the type of the parameter it comes from
        (`commit(write: PreparedWrite)` sends what `prepare_commit(...) -> PreparedWrite` built), and of the
        helpers it calls on self.
        """
        [items] = [k.value for k in call.keywords if k.arg == "TransactItems"]
        root = items
        while isinstance(root, ast.Attribute):
            root = root.value
        assert frame.instance is not None and frame.function is not None and isinstance(root, ast.Name)
        if root.id in frame.locals:
            builders = [frame.function]
        else:
            [parameter] = [a for a in frame.function.args.args if a.arg == root.id and a.annotation is not None]
            wanted = ast.unparse(parameter.annotation)  # type: ignore[arg-type]
            builders = [
                m
                for c in self.lineage(frame.instance.cls)
                for m in c.body
                if isinstance(m, ast.FunctionDef) and m.returns is not None and ast.unparse(m.returns) == wanted
            ]
        # A builder may have its writes made by the store's helpers (`self._update(...)`): those are read too.
        builders += [
            helper
            for builder in list(builders)
            for node in ast.walk(builder)
            if isinstance(node, ast.Call)
            and _is_self_attribute(node.func)
            and (helper := self._method(frame.instance.cls, node.func.attr)) is not None  # type: ignore[attr-defined]
        ]
        writes: set[str] = set()
        instance_frame = Frame(self, frame.instance, {}, None, {})
        for builder in builders:
            for node in ast.walk(builder):
                if isinstance(node, ast.Dict):
                    for k, v in zip(node.keys, node.values, strict=True):
                        if isinstance(k, ast.Constant) and k.value in TRANSACT_WRITES:
                            writes.add(TRANSACT_WRITES[k.value])
                        if isinstance(k, ast.Constant) and k.value == "TableName":
                            settings |= instance_frame.settings_in(v)
        assert writes, f"{frame.instance.cls}.{frame.function.name}: cannot tell what its transaction writes"
        return writes

    def handler_calls(self, handler_module: str) -> list[AwsCall]:
        """Every AWS call reachable from the handler module (handlers/x.py)."""
        tree = self._parse(handler_module)
        frame = Frame(self, None, {}, None, {})
        for statement in tree.body:
            if isinstance(statement, ast.Assign):
                for assigned in statement.targets:
                    if isinstance(assigned, ast.Name):
                        frame.globals[assigned.id] = frame.value(statement.value)
        found: list[AwsCall] = []
        for function in tree.body:
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    held = frame.value(node.func.value)
                    if isinstance(held, Instance):
                        callee = self._method(held.cls, node.func.attr)
                        assert callee is not None, f"{held.cls}.{node.func.attr} is called but not defined"
                        found += self.calls_of(held, node.func.attr, self._bind(callee, node, frame))
                    elif isinstance(held, Client):
                        found.append(self._aws_call(held, node.func.attr, node, frame))
        return found


def _is_self_attribute(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def _is_super_init(node: ast.AST) -> bool:
    """`super().__init__(...)`."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__"):
        return False
    owner = node.func.value
    return isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super"


class Frame:
    """Names visible while reading one function: its arguments, its local assignments, the module's globals."""

    def __init__(
        self,
        model: CodeModel,
        instance: Instance | None,
        arguments: dict[str, Any],
        function: ast.FunctionDef | None,
        globals_: dict[str, Any],
    ) -> None:
        self.model = model
        self.instance = instance
        self.arguments = arguments
        self.globals = globals_
        self.function = function
        self.locals: dict[str, ast.expr] = {}
        if function is not None:
            for node in ast.walk(function):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    self.locals.setdefault(node.targets[0].id, node.value)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                    self.locals.setdefault(node.target.id, node.value)

    def value(self, node: ast.expr, depth: int = 0) -> Any:
        if depth > 20:
            return None
        if isinstance(node, ast.Name):
            if node.id in self.arguments:
                return self.arguments[node.id]
            if node.id in self.locals:
                return self.value(self.locals[node.id], depth + 1)
            return self.globals.get(node.id)
        if isinstance(node, ast.Attribute):
            if _is_self_attribute(node) and self.instance is not None:
                return self.instance.fields.get(node.attr)
            owner = self.value(node.value, depth + 1)
            if isinstance(owner, SettingsObject):
                env = self.model.settings.get(owner.cls, {}).get(node.attr)
                return Setting(env) if env else None
            return owner.fields.get(node.attr) if isinstance(owner, Instance) else None
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if func.value.id == "boto3" and func.attr == "client":
                    service = node.args[0] if node.args else node.keywords[0].value
                    assert isinstance(service, ast.Constant)
                    return Client(str(service.value))
                if func.attr == "from_env" and func.value.id in self.model.settings:
                    return SettingsObject(func.value.id)
            if isinstance(func, ast.Name) and func.id in self.model.classes:
                return self.model.instantiate(func.id, node, self)
        return None

    def settings_in(self, node: ast.expr, depth: int = 0) -> set[str]:
        """The environment settings an argument is built from (through names, dicts and lists)."""
        if depth > 20:
            return set()
        if isinstance(node, ast.Name) and node.id not in self.arguments and node.id in self.locals:
            return self.settings_in(self.locals[node.id], depth + 1)
        if isinstance(node, ast.Dict):
            parts = [n for n in (*node.keys, *node.values) if n is not None]
            return set().union(*(self.settings_in(n, depth + 1) for n in parts))
        if isinstance(node, (ast.List, ast.Tuple)):
            return set().union(*(self.settings_in(n, depth + 1) for n in node.elts))
        value = self.value(node, depth)
        return {value.env} if isinstance(value, Setting) else set()


# ================================================================ what each role must grant
def _function_handler_module(function: dict[str, Any]) -> str:
    module = function["Properties"]["Handler"].rsplit(".", 1)[0]
    return module.replace(".", "/") + ".py"


def _arn_key(resources: dict[str, dict[str, Any]], logical_id: str) -> str:
    kind = resources[logical_id]["Type"]
    return f"Ref:{logical_id}" if kind == "AWS::SNS::Topic" else f"Arn:{logical_id}"


def _consumed_queue(resources: dict[str, dict[str, Any]], function: str) -> str | None:
    for mapping in of_type(resources, "AWS::Lambda::EventSourceMapping").values():
        if target(mapping["Properties"]["FunctionName"]) == function:
            return target(mapping["Properties"]["EventSourceArn"])
    return None


def _notifying_bucket(resources: dict[str, dict[str, Any]], queue: str | None) -> tuple[str, set[str]]:
    """The bucket whose notifications feed `queue`, and the key prefixes they are filtered to."""
    for name, bucket in of_type(resources, "AWS::S3::Bucket").items():
        configurations = bucket["Properties"].get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        prefixes = {
            rule["Value"]
            for c in configurations
            if target(c["Queue"]) == queue
            for rule in c["Filter"]["S3Key"]["Rules"]
            if rule["Name"] == "prefix"
        }
        if prefixes:
            return name, prefixes
    raise AssertionError(f"an S3 call with the bucket from the event, but no bucket notifies {queue}")


def required(resources: dict[str, dict[str, Any]], function: str, model: CodeModel) -> set[tuple[str, str]]:
    """(action, resource) pairs the function needs: its code's AWS calls, its event source, its own logs."""
    props = resources[function]["Properties"]
    variables = props.get("Environment", {}).get("Variables", {})
    queue = _consumed_queue(resources, function)
    needs: set[tuple[str, str]] = set()
    unmapped = []
    for call in model.handler_calls(_function_handler_module(resources[function])):
        if (call.service, call.method) == ("dynamodb", "transact_write_items"):
            actions = set(call.transact_writes)
        elif (call.service, call.method) in IAM_ACTIONS:
            actions = {IAM_ACTIONS[(call.service, call.method)]}
        else:
            unmapped.append(f"{call.cls}: {call.service}.{call.method}")
            continue
        if call.service == "s3" and not call.settings:
            bucket, prefixes = _notifying_bucket(resources, queue)
            bucket_arn = "arn:${AWS::Partition}:s3:::" + sub_text(resources[bucket]["Properties"]["BucketName"])
            # Reads take the key from the notification; the one write is the file's report.
            written = {report_key("incoming/x.json", "e1").split("/", 1)[0] + "/"}
            for action in actions:
                keys = written if action == "s3:PutObject" else prefixes
                needs |= {(action, f"{bucket_arn}/{prefix}*") for prefix in keys}
            continue
        assert call.settings, f"{call.cls}: cannot tell which resource {call.service}.{call.method} addresses"
        for env in call.settings:
            assert env in variables, f"{function} calls {call.service}.{call.method} on ${env}, which it is not given"
            if call.index is not None:
                needs |= {(action, f"${{{target(variables[env])}.Arn}}/index/{call.index}") for action in actions}
                continue
            needs |= {(action, _arn_key(resources, target(variables[env]))) for action in actions}
    assert unmapped == [], f"add these client methods to IAM_ACTIONS: {unmapped}"
    if queue is not None:
        needs |= {(action, f"Arn:{queue}") for action in EVENT_SOURCE_ACTIONS}
    group = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/"
    group += sub_text(props["FunctionName"])
    needs |= {(action, arn) for action in LOG_ACTIONS for arn in (group, f"{group}:*")}
    return needs


@pytest.fixture(scope="module")
def code() -> CodeModel:
    return CodeModel()


FUNCTION_NAMES = ["ApiFunction", "FileValidatorFunction", "ProcessorFunction", "RestockerFunction", "SweeperFunction"]


# ================================================================ IAM
def test_the_template_has_the_five_functions(resources: dict[str, dict[str, Any]]) -> None:
    assert sorted(of_type(resources, "AWS::Lambda::Function")) == sorted(FUNCTION_NAMES)


@pytest.mark.parametrize("function", FUNCTION_NAMES)
def test_each_role_grants_exactly_what_its_function_calls(
    resources: dict[str, dict[str, Any]], code: CodeModel, function: str
) -> None:
    role = target(resources[function]["Properties"]["Role"])

    needs = required(resources, function, code)
    grants = granted(resources, role)

    assert sorted(needs - grants) == [], f"{role} lacks what {function} calls"
    assert sorted(grants - needs) == [], f"{role} grants more than {function} calls"


def test_the_code_model_sees_the_calls_that_matter(resources: dict[str, dict[str, Any]], code: CodeModel) -> None:
    # A guard on the analysis itself: if it went blind, the exact-match test above would compare empty sets.
    api = required(resources, "ApiFunction", code)
    processor = required(resources, "ProcessorFunction", code)
    validator = required(resources, "FileValidatorFunction", code)

    assert {("dynamodb:PutItem", "Arn:OrdersTable"), ("sqs:SendMessage", "Arn:OrderQueue")} <= api
    assert ("dynamodb:BatchGetItem", "Arn:OrdersTable") in processor
    assert ("dynamodb:UpdateItem", "Arn:OrdersTable") in processor, "the transaction's Update writes"
    assert {("sns:Publish", "Ref:PendingTopic"), ("sns:Publish", "Ref:ErrorTopic")} <= processor
    assert ("sqs:ChangeMessageVisibility", "Arn:OrderQueue") in processor
    assert ("sqs:ChangeMessageVisibility", "Arn:FileQueue") in validator
    assert not any(action.startswith("sns:") for action, _ in api)


STOCK_ADAPTER = "service/adapters/stock.py"
GET_PRODUCT = "    def get_product(self, product_id: str) -> dict[str, Any] | None:\n"


def test_a_new_boto3_call_in_an_adapter_needs_a_new_grant(resources: dict[str, dict[str, Any]]) -> None:
    source = (FUNCTIONS / STOCK_ADAPTER).read_text("utf-8")
    assert GET_PRODUCT in source
    changed = source.replace(GET_PRODUCT, GET_PRODUCT + "        self._db.scan(TableName=self._table)\n")

    needs = required(resources, "ApiFunction", CodeModel({STOCK_ADAPTER: changed}))

    assert ("dynamodb:Scan", "Arn:OrdersTable") in needs
    assert ("dynamodb:Scan", "Arn:OrdersTable") not in granted(resources, "ApiFunctionRole")


def test_an_unknown_client_method_is_reported_not_ignored(resources: dict[str, dict[str, Any]]) -> None:
    source = (FUNCTIONS / STOCK_ADAPTER).read_text("utf-8")
    changed = source.replace(GET_PRODUCT, GET_PRODUCT + "        self._db.describe_table(TableName=self._table)\n")

    with pytest.raises(AssertionError, match="describe_table"):
        required(resources, "ApiFunction", CodeModel({STOCK_ADAPTER: changed}))


def test_clients_are_built_only_where_the_analysis_looks() -> None:
    # The derivation follows clients built at a handler's module level or in a wiring's __init__ (service/bootstrap.py);
    # one built anywhere else would be missed.
    stray = []
    for path in sorted(FUNCTIONS.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        wired = {
            id(node)
            for statement in tree.body
            if isinstance(statement, ast.Assign) and path.parent.name == "handlers"
            for node in ast.walk(statement)
        } | {
            id(node)
            for statement in tree.body
            if isinstance(statement, ast.ClassDef) and path.name == "bootstrap.py"
            for init in statement.body
            if isinstance(init, ast.FunctionDef) and init.name == "__init__"
            for node in ast.walk(init)
        }
        for node in ast.walk(tree):
            func = node.func if isinstance(node, ast.Call) else None
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "boto3"
                and id(node) not in wired
            ):
                stray.append(f"{path.relative_to(FUNCTIONS)}:{node.lineno} boto3.{func.attr}")

    assert stray == []


def test_role_allow_statements_have_no_wildcards(resources: dict[str, dict[str, Any]]) -> None:
    problems = []
    for role in of_type(resources, "AWS::IAM::Role"):
        for statement in role_statements(resources, role):
            where = f"{role} {statement.get('Sid', statement.get('Action'))}"
            if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement:
                problems.append(f"{where}: only plain Allow statements belong in a function role")
                continue
            problems += [f"{where}: action {a}" for a in as_list(statement["Action"]) if "*" in a]
            for resource in map(resource_key, as_list(statement["Resource"])):
                stem = resource.removesuffix("/*").removesuffix(":*")
                if resource == "*" or "*" in stem:
                    problems.append(f"{where}: resource {resource}")
                if resource.endswith("/*") and ":s3:::" not in resource:
                    problems.append(f"{where}: {resource} (a path wildcard only for S3 key prefixes)")
                if resource.endswith(":*") and ":log-group:" not in resource:
                    problems.append(f"{where}: {resource} (':*' only for a log group's streams)")

    assert problems == []


def test_roles_have_no_other_source_of_permissions(resources: dict[str, dict[str, Any]]) -> None:
    for name, role in of_type(resources, "AWS::IAM::Role").items():
        props = role["Properties"]
        assert "ManagedPolicyArns" not in props, name
        assert [s["Principal"] for s in props["AssumeRolePolicyDocument"]["Statement"]] == [
            {"Service": "lambda.amazonaws.com"}
        ], name
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group"):
        assert of_type(resources, kind) == {}, kind


# ================================================================ S3 data lake
def test_the_data_lake_blocks_public_access_and_is_encrypted(resources: dict[str, dict[str, Any]]) -> None:
    props = resources["DataLakeBucket"]["Properties"]

    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}


def test_the_data_lake_refuses_requests_without_tls(resources: dict[str, dict[str, Any]]) -> None:
    policies = [
        p["Properties"]
        for p in of_type(resources, "AWS::S3::BucketPolicy").values()
        if target(p["Properties"]["Bucket"]) == "DataLakeBucket"
    ]
    assert len(policies) == 1, "one bucket policy on the data lake"
    statements = as_list(policies[0]["PolicyDocument"]["Statement"])

    denies = [
        s
        for s in statements
        if s["Effect"] == "Deny"
        and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and s["Principal"] in ("*", {"AWS": "*"})
        and as_list(s["Action"]) == ["s3:*"]
    ]
    assert len(denies) == 1
    assert sorted(map(resource_key, as_list(denies[0]["Resource"]))) == sorted(
        ["Arn:DataLakeBucket", "${DataLakeBucket.Arn}/*"]
    ), "the bucket and every object in it"
    assert [s for s in statements if s["Effect"] != "Deny"] == [], "the bucket policy grants nothing"


# ================================================================ queues and topics
def test_every_queue_is_encrypted_at_rest(resources: dict[str, dict[str, Any]]) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")

    assert len(queues) == 6
    assert {name: q["Properties"].get("SqsManagedSseEnabled") for name, q in queues.items()} == {
        name: True for name in queues
    }


def test_every_topic_is_encrypted_with_the_sns_key(resources: dict[str, dict[str, Any]]) -> None:
    topics = of_type(resources, "AWS::SNS::Topic")

    assert len(topics) == 2
    assert {name: t["Properties"].get("KmsMasterKeyId") for name, t in topics.items()} == {
        name: "alias/aws/sns" for name in topics
    }


def test_only_the_data_lake_may_send_to_the_file_queue(resources: dict[str, dict[str, Any]]) -> None:
    [policy] = of_type(resources, "AWS::SQS::QueuePolicy").values()
    props = policy["Properties"]
    bucket_name = sub_text(resources["DataLakeBucket"]["Properties"]["BucketName"])

    [statement] = as_list(props["PolicyDocument"]["Statement"])

    assert [target(q) for q in props["Queues"]] == ["FileQueue"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert as_list(statement["Action"]) == ["sqs:SendMessage"]
    assert resource_key(statement["Resource"]) == "Arn:FileQueue"
    assert sub_text(statement["Condition"]["ArnLike"]["aws:SourceArn"]) == f"arn:${{AWS::Partition}}:s3:::{bucket_name}"
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


# ================================================================ API
def test_the_api_stage_throttles_every_method(template: dict[str, Any], resources: dict[str, dict[str, Any]]) -> None:
    settings = resources["ApiStage"]["Properties"]["MethodSettings"]
    [everything] = [s for s in settings if (s["ResourcePath"], s["HttpMethod"]) == ("/*", "*")]

    burst = int(parameter_default(template, everything["ThrottlingBurstLimit"]))
    rate = float(parameter_default(template, everything["ThrottlingRateLimit"]))

    assert (burst, rate) == (200, 100)
    # Below the account defaults (5,000 burst, 10,000/s), or the stage limit would add nothing.
    assert 0 < rate <= burst < 5000


@pytest.fixture
def api(lambda_env: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = importlib.import_module("handlers.api")
    calls: list[str] = []
    store, queue = FakeStore(calls=calls), FakeQueue(calls=calls)
    monkeypatch.setattr(module, "_store", store)
    monkeypatch.setattr(module, "_intake", OrderIntake(OrderValidator(), store, queue))
    return module, store, queue


def _post(module: Any, body: bytes, encoded: bool) -> dict[str, Any]:
    event = {
        "httpMethod": "POST",
        "resource": "/orders",
        "headers": {"Content-Type": "application/json"},
        "body": base64.b64encode(body).decode() if encoded else body.decode("utf-8"),
        "isBase64Encoded": encoded,
    }
    response: dict[str, Any] = module.handler(event, None)
    return response


@pytest.mark.parametrize("encoded", [False, True], ids=["text", "base64"])
def test_a_body_over_64_kib_is_refused_before_any_work(
    api: Any, lab_text: str, monkeypatch: pytest.MonkeyPatch, encoded: bool
) -> None:
    module, store, queue = api
    body = lab_text.encode("utf-8")
    body += b" " * (MAX_ORDER_BYTES + 1 - len(body))
    parsed: list[int] = []
    monkeypatch.setattr(validation, "parse_json", lambda text: parsed.append(len(text)))

    response = _post(module, body, encoded)

    assert MAX_ORDER_BYTES == 64 * 1024 and len(body) == MAX_ORDER_BYTES + 1
    assert response["statusCode"] == 400
    assert [e["field"] for e in json.loads(response["body"])["errors"]] == ["(corpo)"]
    assert parsed == [], "the body was not even parsed"
    assert store.calls == [] and store.orders == {} and queue.sent == []


def test_a_body_of_exactly_64_kib_is_accepted(api: Any, lab_text: str) -> None:
    module, _, queue = api
    body = lab_text.encode("utf-8")
    body += b" " * (MAX_ORDER_BYTES - len(body))

    response = _post(module, body, encoded=False)

    assert response["statusCode"] == 202
    assert len(queue.sent) == 1
