"""Masks for personal data that must never reach reports, notifications, logs or the DLQ listing raw.

The one policy, by shape and by name:
- any string that holds an e-mail, a CPF (`000.000.000-00` or 11 digits) or a formatted CNPJ
  (`00.000.000/0000-00`) has it masked, whatever the field is called and wherever it sits in the text
  (an order_id, an error message, a file key);
- 14 bare digits are masked when they are a CNPJ (its check digits hold), so timestamp-like ids stay readable;
- a field named `cpf`, `email` or `cnpj` (or ending in `_cpf`, `_email`, `_cnpj`) is masked whole, even
  when its value is malformed.
Masking twice changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from orders.documents import is_valid_cnpj

_DIGITS = re.compile(r"[0-9]")
_MASKED_CPF = re.compile(r"\*\*\*\.[0-9]{3}\.[0-9]{3}-\*\*")
_MASKED_CNPJ = re.compile(r"\*\*\.[0-9]{3}\.[0-9]{3}/\*\*\*\*-\*\*")
# Digits glued to letters (hex ids, hashes) are not documents: only runs that stand apart count.
_APART_BEFORE, _APART_AFTER = r"(?<![0-9A-Za-z])", r"(?![0-9A-Za-z])"
_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]"
_SHAPES = re.compile(
    # The local part starts where its run of characters starts: one scan per run, never quadratic.
    rf"(?P<email>(?<!{_LOCAL}){_LOCAL}+@[\w-]+(?:\.[\w-]+)+)"
    rf"|{_APART_BEFORE}(?:(?P<cnpj>[0-9]{{2}}\.[0-9]{{3}}\.[0-9]{{3}}/[0-9]{{4}}-[0-9]{{2}})|(?P<digits14>[0-9]{{14}}))"
    rf"{_APART_AFTER}"
    rf"|{_APART_BEFORE}(?P<cpf>[0-9]{{3}}\.?[0-9]{{3}}\.?[0-9]{{3}}-?[0-9]{{2}}){_APART_AFTER}"
)


def _mask_number(value: str, length: int, masked: re.Pattern[str], shown: Callable[[str], str]) -> str:
    """A document number with only its middle digits shown; one already masked stays as it is; "***" if malformed."""
    if masked.fullmatch(value):
        return value
    digits = "".join(_DIGITS.findall(value))
    return shown(digits) if len(digits) == length else "***"


def mask_cpf(cpf: str) -> str:
    """Keep the middle six digits, as the Brazilian LGPD guidance does: 123.456.789-00 -> ***.456.789-**."""
    return _mask_number(cpf, 11, _MASKED_CPF, lambda d: f"***.{d[3:6]}.{d[6:9]}-**")


def mask_cnpj(cnpj: str) -> str:
    """The same six middle digits kept: 11.222.333/0001-81 -> **.222.333/****-**."""
    return _mask_number(cnpj, 14, _MASKED_CNPJ, lambda d: f"**.{d[2:5]}.{d[5:8]}/****-**")


def mask_email(email: str) -> str:
    """m***@example.com: the first letter and the domain."""
    local, at, domain = email.partition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def _masked(match: re.Match[str]) -> str:
    found = match.group()
    if match.group("email"):
        return mask_email(found)
    if match.group("cpf"):
        return mask_cpf(found)
    if match.group("digits14") and not is_valid_cnpj(found):
        return found
    return mask_cnpj(found)


def mask_text(text: str) -> str:
    """The text with every e-mail, CPF and CNPJ in it masked, and the rest as it was."""
    return _SHAPES.sub(_masked, text)


_BY_NAME: dict[str, Callable[[str], str]] = {"cpf": mask_cpf, "email": mask_email, "cnpj": mask_cnpj}


def _by_name(key: Any) -> Callable[[str], str] | None:
    """The mask of a `cpf`/`email`/`cnpj` field, or of a `*_cpf`/`*_email`/`*_cnpj` one (`customer_email`)."""
    return _BY_NAME.get(str(key).lower().rsplit("_", 1)[-1])


def mask_document(value: Any) -> Any:
    """A deep copy of a JSON-like value with personal data masked, by field name and by shape (see above)."""
    if isinstance(value, dict):
        masked = {}
        for key, item in value.items():
            by_name = _by_name(key)
            masked[mask_text(key) if isinstance(key, str) else key] = (
                by_name(item) if by_name and isinstance(item, str) else mask_document(item)
            )
        return masked
    if isinstance(value, list | tuple):
        return [mask_document(item) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_body(text: str) -> Any:
    """A body that may be JSON: its document masked when it parses, else its text masked."""
    try:
        return mask_document(json.loads(text))
    except ValueError:
        return mask_text(text)


def mask_body_text(text: str, indent: int | None = None) -> str:
    """`mask_body` as text: a JSON body written back as JSON (a JSON string keeps its quotes), any other as it was."""
    try:
        document = json.loads(text)
    except ValueError:
        return mask_text(text)
    return json.dumps(mask_document(document), ensure_ascii=False, indent=indent)
