"""Structured JSON log lines on stdout, with personal data masked."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from orders.codec import json_default
from orders.masking import mask_document


def log(level: str, message: str, **fields: Any) -> None:
    line = {"time": datetime.now(UTC).isoformat(), "level": level, "message": message}
    line.update(mask_document(fields))
    # Writing every time also spares MiniStack's ~50 ms wait for output of a silent handler.
    text = json.dumps(line, default=json_default, ensure_ascii=False)
    # Input may carry lone surrogates (valid in JSON escapes, not in UTF-8): escape rather than fail.
    sys.stdout.write(text.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")
    sys.stdout.flush()
