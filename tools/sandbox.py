"""Where the sandbox keeps its files (.sandbox/, or SANDBOX_DIR), and its stack outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(os.environ.get("PROJECT_ROOT") or Path(__file__).resolve().parents[1])
SANDBOX = Path(os.environ.get("SANDBOX_DIR") or ROOT / ".sandbox")
OUTPUTS = SANDBOX / "outputs.json"


def default_environment() -> None:
    """The sandbox's AWS, as the Makefile exports it; whatever the user set wins."""
    os.environ.setdefault("AWS_ENDPOINT_URL", "http://localhost:4566")
    if not (os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")):
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    if not os.environ.get("AWS_PROFILE"):
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")  # noqa: S105 (the emulator's dummy credentials)


def load_outputs() -> dict[str, str]:
    """The stack outputs written by the deploy hook; a clear exit when the sandbox is not deployed."""
    if not OUTPUTS.exists():
        raise SystemExit(f"no {OUTPUTS}: the sandbox is not deployed; run `make up`")
    outputs: dict[str, str] = json.loads(OUTPUTS.read_text("utf-8"))
    return outputs
