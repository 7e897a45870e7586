"""One validator for both entries, the API and the data-lake files: the schema's generated code, then the rules
a schema cannot say. Every error at once, each with its field path and a Portuguese message."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any, TypeGuard

from orders import order_schema
from orders.documents import is_valid_cnpj, is_valid_cpf
from orders.model import FieldError, Order, OrderRejected, Rejected
from orders.schema_errors import UNKNOWN, JsonSchemaValueException, JsonSchemaValuesException

MAX_ORDER_BYTES = 64 * 1024
BODY = "(corpo)"


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(resources.files("orders").joinpath("schema.json").read_text("utf-8"))
    return schema


class NotJson(ValueError):
    """Text that is not one JSON value; the message says why, in Portuguese, ready for a user."""


# The messages of Python's json scanner (JSONDecodeError.msg, without the position), in the users' language.
# Anything not listed still gets a Portuguese message: "sintaxe inválida" and the position.
_SYNTAX = {
    "Expecting value": "esperado um valor",
    "Expecting property name enclosed in double quotes": "esperado o nome de um campo entre aspas duplas",
    "Expecting ':' delimiter": "esperado ':' depois do nome do campo",
    "Expecting ',' delimiter": "esperado ',' entre dois elementos",
    "Unterminated string starting at": "texto sem aspas de fechamento",
    "Invalid control character at": "caractere de controle dentro de um texto",
    "Invalid \\escape": "escape inválido",
    "Invalid \\uXXXX escape": "escape \\uXXXX inválido",
    "Extra data": "conteúdo depois do fim do JSON",
}


def _reject_constant(name: str) -> Any:
    raise NotJson(f"JSON inválido: {name} não é um número JSON válido")


def _integer(digits: str) -> int:
    # int() refuses more digits than this with an English ValueError; say it in the users' language instead.
    limit = sys.get_int_max_str_digits()
    if limit and len(digits) - digits.startswith("-") > limit:
        raise NotJson(f"JSON inválido: número inteiro com mais de {limit} dígitos")
    return int(digits)


def parse_json(text: str) -> Any:
    """Parse JSON keeping every fraction as Decimal; NaN and Infinity are refused.

    Raise NotJson, whose message is Portuguese and names the position: Python's own texts never reach a user.
    """
    try:
        return json.loads(text, parse_float=Decimal, parse_int=_integer, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"coluna {exc.colno}" if exc.lineno == 1 else f"linha {exc.lineno}, coluna {exc.colno}"
        raise NotJson(f"JSON inválido: {_SYNTAX.get(exc.msg, 'sintaxe inválida')} ({where})") from exc
    except RecursionError as exc:
        raise NotJson("JSON inválido: aninhamento profundo demais (listas ou objetos uns dentro dos outros)") from exc


class NotUtf8(ValueError):
    """A body or file that is not UTF-8 text; the message (Portuguese) follows "corpo" or "arquivo"."""


def utf8_text(data: str | bytes) -> str:
    """The text of an HTTP body or a data-lake file: UTF-8 only, a leading BOM dropped; raise NotUtf8.

    Bytes are decoded strictly. A str was decoded by the API gateway already, which replaces every byte that is not
    UTF-8 with U+FFFD (MiniStack's apigateway_v1, for a media type that is not binary): in such a text U+FFFD is the
    only trace of bad bytes, so it is refused too. A client that means the character writes the JSON escape \\ufffd.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotUtf8(f"não está em UTF-8 (byte inválido na posição {exc.start})") from exc
    else:
        text = data
        replaced = text.find("\ufffd")
        if replaced >= 0:
            raise NotUtf8(
                f"não está em UTF-8 (U+FFFD, a marca de um byte inválido, no caractere {replaced}; "
                "se o caractere é intencional, escreva \\ufffd)"
            )
    return text.removeprefix("\ufeff")  # editors on Windows add a BOM; it carries no meaning


def parse_body(body: str | bytes | None, max_bytes: int, empty: str, rejected: type[Rejected]) -> Any:
    """Turn an HTTP body into a JSON value; raise `rejected` with the body's error when it is empty, too big, not
    UTF-8 or not JSON."""
    if body is None or (isinstance(body, (str, bytes)) and not body.strip()):
        raise rejected([FieldError(BODY, empty)])
    size = len(body) if isinstance(body, bytes) else len(body.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise rejected([FieldError(BODY, f"corpo maior que o limite de {max_bytes} bytes")])
    try:
        return parse_json(utf8_text(body))
    except NotUtf8 as exc:
        raise rejected([FieldError(BODY, f"corpo {exc}")]) from exc
    except NotJson as exc:
        raise rejected([FieldError(BODY, str(exc))]) from exc


def parse_order_body(body: str | bytes | None) -> Any:
    """Turn an HTTP body into a JSON value, or raise OrderRejected with a body-level error."""
    return parse_body(body, MAX_ORDER_BYTES, "corpo vazio: envie o pedido em JSON", OrderRejected)


# ---------------------------------------------------------------- the schema's errors, in Portuguese
_TYPE_NAMES = {
    "object": "deve ser um objeto",
    "array": "deve ser uma lista",
    "string": "deve ser texto",
    "integer": "deve ser um número inteiro",
    "number": "deve ser um número",
}
# Each rule of the schema, from its value in the definition to the message; a definition's x-message replaces the
# message of the rules that judge a text's form (length, pattern, choices), not of its type or characters.
_MESSAGES: dict[str, Callable[[Any], str]] = {
    "type": lambda expected: _TYPE_NAMES[expected],
    "characters": lambda _: "contém caracteres não permitidos (de controle ou substitutos UTF-16 isolados)",
    "minLength": lambda least: f"deve ter ao menos {least} caractere(s)",
    "maxLength": lambda most: f"deve ter no máximo {most} caracteres",
    "pattern": lambda _: "formato inválido",
    "enum": lambda choices: f"deve ser um de: {', '.join(choices)}",
    "minimum": lambda least: f"deve ser maior ou igual a {least}",
    "maximum": lambda most: f"deve ser menor ou igual a {most}",
    "minItems": lambda least: f"deve ter ao menos {least} item(ns)",
    "maxItems": lambda most: f"deve ter no máximo {most} itens",
}
_CUSTOM = frozenset({"minLength", "maxLength", "pattern", "enum"})
REQUIRED = "campo obrigatório"
WHOLE = "(pedido)"


def _schema_errors(found: list[JsonSchemaValueException]) -> list[FieldError]:
    """The schema's errors as users read them: one per field (the first: its type, then its characters, then its
    form), a missing field named by itself, and nothing inside a list already too long."""
    errors: list[FieldError] = []
    named: set[str] = set()
    too_long: list[str] = []
    for error in found:
        path = error.name.removeprefix("data").removeprefix(".")  # data.items[0].quantity: items[0].quantity
        if path in named or any(path.startswith(f"{outer}[") for outer in too_long):
            continue
        named.add(path)
        definition = error.definition
        if error.rule == "required":
            errors += [
                FieldError(f"{path}.{name}" if path else name, REQUIRED)
                for name in definition["required"]
                if error.value.get(name) is None
            ]
            continue
        if error.rule == "maxItems":
            too_long.append(path)
        custom = definition.get("x-message") if error.rule in _CUSTOM else None
        errors.append(FieldError(path or WHOLE, custom or _MESSAGES[error.rule](definition.get(error.rule))))
    return errors


# ---------------------------------------------------------------- the rules a schema cannot say
PLACES = "valor monetário deve ter no máximo 2 casas decimais"
_CENT, _TENTH, _UNIT = Decimal("0.01"), Decimal("0.1"), Decimal(1)


def _two_places(value: Decimal) -> bool:
    """At most 2 decimal places as written: 2800.000 has 3, though it equals 2800."""
    # same_quantum() compares exponents: it answers for the usual 150.00, 150.0 and 150 at a quarter of the cost of
    # as_tuple(), which is left for the rest (1.5E+2 has no decimals; NaN and infinities are no amounts).
    if value.same_quantum(_CENT) or value.same_quantum(_TENTH) or value.same_quantum(_UNIT):
        return True
    exponent = value.as_tuple().exponent
    return isinstance(exponent, int) and exponent > 0


def _is_number(value: Any) -> TypeGuard[int | Decimal]:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def rule_errors(document: dict[str, Any], strict_documents: bool) -> list[FieldError]:
    """The rules of an order that its schema cannot say, on whatever parts of it are readable (the schema reports
    the rest): money has at most 2 decimals, the date exists, no product is repeated, the amount is the items'
    total with or without shipping, and in strict mode the CPF's and CNPJ's check digits hold."""
    items, payment, shipping = document.get("items"), document.get("payment"), document.get("shipping")
    items = items if isinstance(items, list) else []
    payment = payment if isinstance(payment, dict) else {}
    shipping = shipping if isinstance(shipping, dict) else {}
    places: list[FieldError] = []
    repeats: list[FieldError] = []
    first: dict[str, int] = {}
    # The items' total, or None when it cannot be read (then there is no amount to compare with it).
    total: Decimal | None = Decimal(0) if items else None
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            total = None
            continue
        price = item.get("unit_price")
        if type(price) is Decimal and not _two_places(price):
            places.append(FieldError(f"items[{index}].unit_price", PLACES))
        product_id = item.get("product_id")
        if isinstance(product_id, str):
            if product_id in first:
                message = f"produto repetido (já está em items[{first[product_id]}]): some as quantidades em uma linha"
                repeats.append(FieldError(f"items[{index}].product_id", message))
            else:
                first[product_id] = index
        if total is not None:
            quantity = item.get("quantity")
            if type(quantity) is int and (type(price) is Decimal or type(price) is int):  # no bool
                try:
                    total += price * quantity
                except ArithmeticError:  # absurd magnitudes are already reported by the schema's maximum
                    total = None
            else:
                total = None
    amount, cost = payment.get("amount"), shipping.get("cost")
    errors = places
    if type(amount) is Decimal and not _two_places(amount):
        errors.append(FieldError("payment.amount", PLACES))
    if type(cost) is Decimal and not _two_places(cost):
        errors.append(FieldError("shipping.cost", PLACES))
    order_date = document.get("order_date")
    if isinstance(order_date, str):
        try:
            datetime.fromisoformat(order_date)
        except ValueError:
            errors.append(FieldError("order_date", "data inexistente ou fora do formato ISO 8601"))
    errors += repeats
    if total is not None and _is_number(amount) and _is_number(cost) and amount != total and amount != total + cost:
        errors.append(
            FieldError("payment.amount", f"valor {amount} difere do total dos itens ({total}) e do total com o frete")
        )
    if strict_documents:
        customer, company = document.get("customer"), document.get("company")
        cpf = customer.get("cpf") if isinstance(customer, dict) else None
        cnpj = company.get("cnpj") if isinstance(company, dict) else None
        if isinstance(cpf, str) and not is_valid_cpf(cpf):
            errors.append(FieldError("customer.cpf", "CPF com dígitos verificadores inválidos"))
        if isinstance(cnpj, str) and not is_valid_cnpj(cnpj):
            errors.append(FieldError("company.cnpj", "CNPJ com dígitos verificadores inválidos"))
    return errors


# ---------------------------------------------------------------- what an accepted order keeps
def _unsigned(value: Any) -> Any:
    return value.copy_abs() if isinstance(value, Decimal) and value.is_zero() and value.is_signed() else value


def _unsigned_money(known: dict[str, Any]) -> dict[str, Any]:
    """The accepted document with no negative zero in its money: -0.0 is a valid price (it is not below the minimum
    of 0), but "-0.00" is no amount to store, send or show. Copies only what changes."""
    items, payment, shipping = known["items"], known["payment"], known["shipping"]
    money = [item["unit_price"] for item in items]
    money += (payment["amount"], shipping["cost"])
    # Accepted money is not below 0, so a signed Decimal is a negative zero.
    if not any([type(value) is Decimal and value.is_signed() for value in money]):
        return known
    return {
        **known,
        "items": [{**item, "unit_price": _unsigned(item["unit_price"])} for item in items],
        "payment": {**payment, "amount": _unsigned(payment["amount"])},
        "shipping": {**shipping, "cost": _unsigned(shipping["cost"])},
    }


def _known_fields(value: Any, schema: dict[str, Any], definitions: dict[str, Any]) -> Any:
    """The document restricted to the fields the schema names, none of them null: unknown fields are not stored."""
    if "$ref" in schema:
        schema = definitions[schema["$ref"].removeprefix("#/definitions/")]
    if isinstance(value, dict) and "properties" in schema:
        return {
            name: _known_fields(value[name], sub, definitions)
            for name, sub in schema["properties"].items()
            if name in value and value[name] is not None
        }
    if isinstance(value, list) and "items" in schema:
        return [_known_fields(element, schema["items"], definitions) for element in value]
    return value


# The generated code is untyped (tools/sandbox/model.py writes it in fastjsonschema's style): this is its signature.
_schema_validate: Callable[[Any], Any] = order_schema.validate


class OrderValidator:
    """Validates order documents: the schema (orders/order_schema.py, generated from schema.json), then the rules."""

    def __init__(self, strict_documents: bool = False) -> None:
        self.strict_documents = strict_documents
        self._schema = load_schema()

    def errors(self, document: Any) -> list[FieldError]:
        """Every error of the document, the schema's first; none means the order is valid."""
        return self._check(document)[0]

    def validate(self, document: Any) -> Order:
        """The order the document describes, or OrderRejected with every error."""
        errors, leave_out = self._check(document)
        if errors:
            order_id = document.get("order_id") if isinstance(document, dict) else None
            raise OrderRejected(errors, order_id if isinstance(order_id, str) else None)
        # With nothing to leave out (the usual case), a shallow copy will do: the caller's document stays as it was.
        known = _known_fields(document, self._schema, self._schema["definitions"]) if leave_out else dict(document)
        known.pop("order_status", None)  # the system decides the status
        return Order.of(_unsigned_money(known))

    def _check(self, document: Any) -> tuple[list[FieldError], bool]:
        """Every error, and whether the document holds fields to leave out (unknown ones, or null ones)."""
        try:
            _schema_validate(document)
        except JsonSchemaValuesException as exc:
            found = [error for error in exc.errors if error.rule != UNKNOWN]
            errors, leave_out = _schema_errors(found), len(found) < len(exc.errors)
        else:
            errors, leave_out = [], False
        if isinstance(document, dict):
            errors += rule_errors(document, self.strict_documents)
        return errors, leave_out
