"""One validator for both entries: the API and the data-lake files."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any

from orders.documents import is_valid_cnpj, is_valid_cpf
from orders.fastcheck import compile_schema
from orders.model import FieldError, Order, OrderItem, OrderRejected
from orders.schema_check import SchemaChecker, has_forbidden_characters

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


class BodyRejected(Exception):
    """An HTTP body that is not a JSON value within its size limit; `error` says why."""

    def __init__(self, error: FieldError) -> None:
        super().__init__(error.message)
        self.error = error


def parse_body(body: str | bytes | None, max_bytes: int, empty: str) -> Any:
    """Turn an HTTP body into a JSON value; raise BodyRejected when it is empty, too big, not UTF-8 or not JSON."""
    if body is None or (isinstance(body, (str, bytes)) and not body.strip()):
        raise BodyRejected(FieldError(BODY, empty))
    size = len(body) if isinstance(body, bytes) else len(body.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise BodyRejected(FieldError(BODY, f"corpo maior que o limite de {max_bytes} bytes"))
    try:
        return parse_json(utf8_text(body))
    except NotUtf8 as exc:
        raise BodyRejected(FieldError(BODY, f"corpo {exc}")) from exc
    except NotJson as exc:
        raise BodyRejected(FieldError(BODY, str(exc))) from exc


def parse_order_body(body: str | bytes | None) -> Any:
    """Turn an HTTP body into a JSON value, or raise OrderRejected with a body-level error."""
    try:
        return parse_body(body, MAX_ORDER_BYTES, "corpo vazio: envie o pedido em JSON")
    except BodyRejected as exc:
        raise OrderRejected([exc.error]) from exc


def _money_places_ok(value: Any) -> bool:
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return isinstance(exponent, int) and exponent >= -2
    return True


def _signed_zero(value: Any) -> bool:
    return isinstance(value, Decimal) and value.is_zero() and value.is_signed()


def _unsigned(value: Any) -> Any:
    return value.copy_abs() if _signed_zero(value) else value


def _unsigned_money(known: dict[str, Any]) -> dict[str, Any]:
    """The accepted document with no negative zero in its money: -0.0 is a valid price (it is not below the minimum
    of 0), but "-0.00" is no amount to store, send or show. Copies only what changes; the caller's document stays."""
    items, payment, shipping = known["items"], known["payment"], known["shipping"]
    if not (
        any(_signed_zero(item["unit_price"]) for item in items)
        or _signed_zero(payment["amount"])
        or _signed_zero(shipping["cost"])
    ):
        return known
    return {
        **known,
        "items": [{**item, "unit_price": _unsigned(item["unit_price"])} for item in items],
        "payment": {**payment, "amount": _unsigned(payment["amount"])},
        "shipping": {**shipping, "cost": _unsigned(shipping["cost"])},
    }


def _known_fields(value: Any, schema: dict[str, Any], definitions: dict[str, Any]) -> Any:
    """The document restricted to the fields the schema names: unknown fields are not stored."""
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


class OrderValidator:
    """Validates order documents against the schema plus the rules a schema cannot say."""

    def __init__(self, strict_documents: bool = False, schema: dict[str, Any] | None = None) -> None:
        self._schema = schema or load_schema()
        self._checker = SchemaChecker(self._schema)
        self._fast = compile_schema(self._schema)
        self.strict_documents = strict_documents

    def errors(self, document: Any) -> list[FieldError]:
        errors = self._checker.errors(document)
        if isinstance(document, dict):
            errors.extend(self._rule_errors(document))
        return errors

    def validate(self, document: Any) -> Order:
        strings: list[str] = []
        verdict = self._fast(document, strings)
        # The fast yes needs every string clean and every rule kept; anything else asks the full checker,
        # which says why (and is the reference: should it find nothing, the order stands).
        if not verdict or has_forbidden_characters("".join(strings)) or not self._rules_hold(document):
            errors = self.errors(document)
            if errors:
                order_id = document.get("order_id") if isinstance(document, dict) else None
                raise OrderRejected(errors, order_id if isinstance(order_id, str) else None)
        if verdict == 1:  # nothing unknown to drop: a shallow copy will do
            known = {name: value for name, value in document.items() if value is not None}
        else:
            known = _known_fields(document, self._schema, self._schema["definitions"])
        known.pop("order_status", None)  # the system decides the status
        known = _unsigned_money(known)
        items = tuple(
            OrderItem(item["product_id"], item["quantity"], Decimal(item["unit_price"]), item.get("description"))
            for item in known["items"]
        )
        return Order(order_id=known["order_id"], order_date=known["order_date"], items=items, document=known)

    def _rules_hold(self, doc: dict[str, Any]) -> bool:
        """The rules of _rule_errors as one yes/no, for a document the schema already accepted."""
        seen: set[str] = set()
        total = Decimal(0)
        for item in doc["items"]:
            price, product_id = item["unit_price"], item["product_id"]
            if (type(price) is Decimal and price.as_tuple().exponent < -2) or product_id in seen:  # type: ignore[operator]
                return False
            seen.add(product_id)
            total += price * item["quantity"]
        amount, cost = doc["payment"]["amount"], doc["shipping"]["cost"]
        for money in (amount, cost):
            if type(money) is Decimal and money.as_tuple().exponent < -2:  # type: ignore[operator]
                return False
        if amount != total and amount != total + cost:
            return False
        try:
            datetime.fromisoformat(doc["order_date"])
        except ValueError:
            return False
        if self.strict_documents:
            return is_valid_cpf(doc["customer"]["cpf"]) and is_valid_cnpj(doc["company"]["cnpj"])
        return True

    def _rule_errors(self, doc: dict[str, Any]) -> list[FieldError]:
        errors: list[FieldError] = []
        items: list[Any] = _of(doc, "items", list)
        payment: dict[str, Any] = _of(doc, "payment", dict)
        shipping: dict[str, Any] = _of(doc, "shipping", dict)

        money = [(f"items[{i}].unit_price", it.get("unit_price")) for i, it in enumerate(items) if isinstance(it, dict)]
        money += [("payment.amount", payment.get("amount")), ("shipping.cost", shipping.get("cost"))]
        for field, value in money:
            if not _money_places_ok(value):
                errors.append(FieldError(field, "valor monetário deve ter no máximo 2 casas decimais"))

        order_date = doc.get("order_date")
        if isinstance(order_date, str):
            try:
                datetime.fromisoformat(order_date)
            except ValueError:
                errors.append(FieldError("order_date", "data inexistente ou fora do formato ISO 8601"))

        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            product_id = item.get("product_id") if isinstance(item, dict) else None
            if isinstance(product_id, str):
                if product_id in seen:
                    errors.append(
                        FieldError(
                            f"items[{index}].product_id",
                            f"produto repetido (já está em items[{seen[product_id]}]): "
                            "some as quantidades em uma linha",
                        )
                    )
                seen.setdefault(product_id, index)

        total = _items_total(items)
        amount, cost = payment.get("amount"), shipping.get("cost")
        if total is not None and isinstance(amount, (int, Decimal)) and isinstance(cost, (int, Decimal)):
            if _is_number(amount) and _is_number(cost) and amount != total and amount != total + cost:
                errors.append(
                    FieldError(
                        "payment.amount",
                        f"valor {amount} difere do total dos itens ({total}) e do total com o frete",
                    )
                )

        if self.strict_documents:
            customer: dict[str, Any] = _of(doc, "customer", dict)
            company: dict[str, Any] = _of(doc, "company", dict)
            cpf, cnpj = customer.get("cpf"), company.get("cnpj")
            if isinstance(cpf, str) and not is_valid_cpf(cpf):
                errors.append(FieldError("customer.cpf", "CPF com dígitos verificadores inválidos"))
            if isinstance(cnpj, str) and not is_valid_cnpj(cnpj):
                errors.append(FieldError("company.cnpj", "CNPJ com dígitos verificadores inválidos"))
        return errors


def _of(doc: dict[str, Any], name: str, kind: type) -> Any:
    """doc[name] when it is of that kind, else an empty one: rules then skip what the schema reports."""
    value = doc.get(name)
    return value if isinstance(value, kind) else kind()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def _items_total(items: list[Any]) -> Decimal | None:
    """The items total, or None when the items are missing or unreadable (then there is nothing to compare)."""
    if not items:
        return None
    total = Decimal(0)
    for item in items:
        if not isinstance(item, dict):
            return None
        quantity, price = item.get("quantity"), item.get("unit_price")
        if not (isinstance(quantity, int) and not isinstance(quantity, bool) and isinstance(price, (int, Decimal))):
            return None
        if isinstance(price, bool):
            return None
        try:
            total += price * quantity
        except ArithmeticError:  # absurd magnitudes are already reported by the schema's maximum
            return None
    return total
