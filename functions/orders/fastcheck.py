"""The schema compiled to one flat Python function: a fast yes/no for the common case, a valid order.

SchemaChecker walks the schema for every document and collects every error with its message; that is
what a rejected order needs. An accepted order only needs a yes, which this generated function gives
several times faster. It returns 0 (invalid: ask SchemaChecker why), 1 (valid) or 2 (valid, with fields
the schema does not name). Every string it sees is appended to `strings`, so the caller can check all of
them for forbidden characters with one regular-expression search. It must never say yes where
SchemaChecker finds an error: tests/unit/test_validation_properties.py holds the two to the same verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from orders.schema_check import _regex

FastCheck = Callable[[Any, list[str]], int]


class _Generator:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"Decimal": Decimal}
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def constant(self, prefix: str, value: Any) -> str:
        name = self.fresh(prefix)
        self.names[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if ref is None:
            return schema
        resolved: dict[str, Any] = self.root["definitions"][ref.removeprefix("#/definitions/")]
        return resolved

    def type_test(self, var: str, expected: str) -> str:
        return {
            "object": f"type({var}) is dict",
            "array": f"type({var}) is list",
            "string": f"type({var}) is str",
            "boolean": f"type({var}) is bool",
            "integer": f"type({var}) is int",
            "number": f"(type({var}) is int or (type({var}) is Decimal and {var}.is_finite()))",
        }[expected]

    def value(self, var: str, schema: dict[str, Any], depth: int) -> None:
        schema = self.resolve(schema)
        expected = schema.get("type")
        if expected is not None:
            self.emit(depth, f"if not {self.type_test(var, expected)}: return 0")
        if expected == "object" or "properties" in schema:
            self.object(var, schema, depth)
        elif expected == "array":
            if "minItems" in schema:
                self.emit(depth, f"if len({var}) < {schema['minItems']}: return 0")
            if "maxItems" in schema:
                self.emit(depth, f"if len({var}) > {schema['maxItems']}: return 0")
            if "items" in schema:
                element = self.fresh("e")
                self.emit(depth, f"for {element} in {var}:")
                self.value(element, schema["items"], depth + 1)
        elif expected == "string":
            self.emit(depth, f"strings.append({var})")
            if "minLength" in schema:
                self.emit(depth, f"if len({var}) < {schema['minLength']}: return 0")
            if "maxLength" in schema:
                self.emit(depth, f"if len({var}) > {schema['maxLength']}: return 0")
            if "pattern" in schema:
                pattern = self.constant("p", _regex(schema["pattern"]).search)
                self.emit(depth, f"if {pattern}({var}) is None: return 0")
            if "enum" in schema:
                choices = self.constant("c", frozenset(schema["enum"]))
                self.emit(depth, f"if {var} not in {choices}: return 0")
        elif expected in ("integer", "number"):
            if "minimum" in schema:
                self.emit(depth, f"if {var} < {schema['minimum']!r}: return 0")
            if "maximum" in schema:
                self.emit(depth, f"if {var} > {schema['maximum']!r}: return 0")

    def object(self, var: str, schema: dict[str, Any], depth: int) -> None:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        for name in required - set(properties):
            self.emit(depth, f"if {var}.get({name!r}) is None: return 0")
        known = self.constant("k", frozenset(properties))
        self.emit(depth, f"if not {var}.keys() <= {known}: extra = 2")
        for name, sub in properties.items():
            child = self.fresh("v")
            self.emit(depth, f"{child} = {var}.get({name!r})")
            if name in required:
                self.emit(depth, f"if {child} is None: return 0")
                self.value(child, sub, depth)
            else:
                self.emit(depth, f"if {child} is not None:")
                self.value(child, sub, depth + 1)

    def build(self) -> FastCheck:
        self.emit(1, "extra = 1")
        self.value("document", self.root, 1)
        self.emit(1, "return extra")
        source = "def check(document, strings):\n" + "\n".join(self.lines) + "\n"
        namespace = dict(self.names)
        exec(compile(source, "<orders.fastcheck>", "exec"), namespace)  # noqa: S102 (code generated from our schema)
        check: FastCheck = namespace["check"]
        return check


def compile_schema(schema: dict[str, Any]) -> FastCheck:
    """A function check(document, strings) -> 0 invalid, 1 valid, 2 valid with unknown fields."""
    return _Generator(schema).build()
