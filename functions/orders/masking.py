"""Masks for personal data that must never reach notifications or logs raw."""

from __future__ import annotations

import re
from typing import Any

_DIGITS = re.compile(r"[0-9]")


def mask_cpf(cpf: str) -> str:
    """Keep the middle six digits, as the Brazilian LGPD guidance does: 123.456.789-00 -> ***.456.789-**."""
    digits = "".join(_DIGITS.findall(cpf))
    if len(digits) != 11:
        return "***"
    return f"***.{digits[3:6]}.{digits[6:9]}-**"


def mask_email(email: str) -> str:
    """m***@example.com: the first letter and the domain."""
    local, at, domain = email.partition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


_SENSITIVE = {"cpf": mask_cpf, "email": mask_email}


def mask_document(value: Any) -> Any:
    """A deep copy of a JSON-like value with every `cpf` and `email` field masked."""
    if isinstance(value, dict):
        return {
            key: _SENSITIVE[key](item) if key in _SENSITIVE and isinstance(item, str) else mask_document(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_document(item) for item in value]
    return value
