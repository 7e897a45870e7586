"""A small JSON-schema (draft 4 subset) checker that reports every error, in Portuguese.

API Gateway enforces the same `schema.json` as its request model; this checker runs it again inside
the Lambdas (the API model may be coarser, or not enforced at all by an emulator) and, unlike a
first-error validator, collects all the errors of a document with their field paths.
Supported keywords: type, required, properties, items, minItems, maxItems, minLength, maxLength,
pattern, enum, minimum, maximum, $ref (local "#/definitions/..."), x-message (our error text).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

from orders.model import FieldError

_TYPE_NAMES = {
    "object": "deve ser um objeto",
    "array": "deve ser uma lista",
    "string": "deve ser texto",
    "integer": "deve ser um número inteiro",
    "number": "deve ser um número",
    "boolean": "deve ser verdadeiro ou falso",
}


def _is_type(value: Any, expected: str) -> bool:
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if expected == "integer":
        return isinstance(value, int)
    if expected == "number":
        return isinstance(value, (int, Decimal)) and (not isinstance(value, Decimal) or value.is_finite())
    raise ValueError(f"unsupported schema type {expected!r}")


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    # ECMA 262 `$` matches only at the very end; Python's also matches before a final newline.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


# What SQS and DynamoDB accept in a string: no control characters but tab/newlines, no lone UTF-16 surrogates.
_FORBIDDEN_CHARACTERS = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def has_forbidden_characters(text: str) -> bool:
    # Printable text (no controls, surrogates or non-characters) is the common case and a fast C check.
    return not text.isprintable() and _FORBIDDEN_CHARACTERS.search(text) is not None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class SchemaChecker:
    """Checks documents against one schema; build once, call many times."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._root = schema

    def errors(self, document: Any) -> list[FieldError]:
        found: list[FieldError] = []
        self._check(document, self._root, "", found.append)
        return found

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if ref is None:
            return schema
        if not ref.startswith("#/definitions/"):
            raise ValueError(f"only local definitions are supported, got {ref!r}")
        resolved: dict[str, Any] = self._root["definitions"][ref.removeprefix("#/definitions/")]
        return resolved

    def _check(self, value: Any, schema: dict[str, Any], path: str, report: Callable[[FieldError], None]) -> None:
        schema = self._resolve(schema)
        field = path or "(pedido)"
        custom = schema.get("x-message")
        expected = schema.get("type")
        if expected is not None and not _is_type(value, expected):
            report(FieldError(field, _TYPE_NAMES[expected]))
            return
        if isinstance(value, dict):
            for name in schema.get("required", ()):
                if name not in value or value[name] is None:
                    report(FieldError(_join(path, name), "campo obrigatório"))
            for name, sub in schema.get("properties", {}).items():
                if name in value and value[name] is not None:
                    self._check(value[name], sub, _join(path, name), report)
        elif isinstance(value, list):
            if "minItems" in schema and len(value) < schema["minItems"]:
                report(FieldError(field, f"deve ter ao menos {schema['minItems']} item(ns)"))
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                report(FieldError(field, f"deve ter no máximo {schema['maxItems']} itens"))
                return
            if "items" in schema:
                for index, element in enumerate(value):
                    self._check(element, schema["items"], f"{path}[{index}]", report)
        elif isinstance(value, str):
            if has_forbidden_characters(value):
                report(
                    FieldError(field, "contém caracteres não permitidos (de controle ou substitutos UTF-16 isolados)")
                )
            elif "minLength" in schema and len(value) < schema["minLength"]:
                report(FieldError(field, custom or f"deve ter ao menos {schema['minLength']} caractere(s)"))
            elif "maxLength" in schema and len(value) > schema["maxLength"]:
                report(FieldError(field, custom or f"deve ter no máximo {schema['maxLength']} caracteres"))
            elif "pattern" in schema and not _regex(schema["pattern"]).search(value):
                report(FieldError(field, custom or "formato inválido"))
            elif "enum" in schema and value not in schema["enum"]:
                report(FieldError(field, custom or f"deve ser um de: {', '.join(schema['enum'])}"))
        elif isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                report(FieldError(field, f"deve ser maior ou igual a {schema['minimum']}"))
            if "maximum" in schema and value > schema["maximum"]:
                report(FieldError(field, f"deve ser menor ou igual a {schema['maximum']}"))
