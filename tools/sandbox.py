"""Where the sandbox keeps its files (.sandbox/, or SANDBOX_DIR), and its stack outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(os.environ.get("PROJECT_ROOT") or Path(__file__).resolve().parents[1])
SANDBOX = Path(os.environ.get("SANDBOX_DIR") or ROOT / ".sandbox")
OUTPUTS = SANDBOX / "outputs.json"


def load_outputs() -> dict[str, str]:
    """The stack outputs written by the deploy hook; a clear exit when the sandbox is not deployed."""
    if not OUTPUTS.exists():
        raise SystemExit(f"no {OUTPUTS}: the sandbox is not deployed; run `make up`")
    outputs: dict[str, str] = json.loads(OUTPUTS.read_text("utf-8"))
    return outputs
