"""Structured JSON log lines on stdout, with personal data masked and a correlation id bound per unit of work."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from orders.codec import json_default
from orders.masking import mask_document, mask_text

_bound: ContextVar[dict[str, Any] | None] = ContextVar("log_fields", default=None)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every line logged inside carries these fields (order_id, file_key, message_id)."""
    token = _bound.set({**(_bound.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


def log(level: str, message: str, **fields: Any) -> None:
    line = {"time": datetime.now(UTC).isoformat(), "level": level, "message": mask_text(message)}
    line.update(mask_document({**(_bound.get() or {}), **fields}))
    text = json.dumps(line, default=json_default, ensure_ascii=False)
    # Input may carry lone surrogates (valid in JSON escapes, not in UTF-8): escape rather than fail.
    # Writing every time also spares MiniStack's ~50 ms wait for output of a silent handler.
    sys.stdout.write(text.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")
    sys.stdout.flush()
