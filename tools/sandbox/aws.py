"""The tools' settings, read once into one typed object: the project, .sandbox/, the stack, the endpoint.

Standard library only: the deploy hook imports it inside the emulator containers, and the emulator's start/stop
and `make url` run it before the virtualenv exists (so a frozen dataclass here, not a pydantic model).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ENDPOINT = "http://localhost:4566"
DEFAULT_REGION = "us-east-1"
DEFAULT_STACK = "order-pipeline"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}  # noqa: S105 (the emulator's)


@dataclass(frozen=True)
class Settings:
    """Where the sandbox lives and which AWS endpoint it talks to; None for real AWS."""

    root: Path
    sandbox: Path
    stack: str
    endpoint: str | None

    @property
    def outputs(self) -> Path:
        return self.sandbox / "outputs.json"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        root = Path(environ.get("PROJECT_ROOT") or Path(__file__).resolve().parents[2])
        return cls(
            root=root,
            sandbox=Path(environ.get("SANDBOX_DIR") or root / ".sandbox"),
            stack=environ.get("STACK_NAME") or DEFAULT_STACK,
            endpoint=(environ.get("AWS_ENDPOINT_URL") or "").rstrip("/") or None,
        )


SETTINGS = Settings.from_environment()
ROOT, SANDBOX, OUTPUTS = SETTINGS.root, SETTINGS.sandbox, SETTINGS.outputs


def default_environment() -> None:
    """The sandbox's AWS, as the Makefile exports it (whatever the user set wins)."""
    os.environ.setdefault("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT)
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION") or DEFAULT_REGION)
    if not os.environ.get("AWS_PROFILE"):
        for name, value in DUMMY_CREDENTIALS.items():
            os.environ.setdefault(name, value)


def load_outputs() -> dict[str, str]:
    """The stack outputs as the deploy hook wrote them, for `make url` (a bare python3: no pydantic there).

    Every tool that runs in the venv reads them through `records.StackOutputs`, which checks them."""
    if not OUTPUTS.exists():
        raise SystemExit(f"no {OUTPUTS}: the sandbox is not deployed; run `make up`")
    outputs: dict[str, str] = json.loads(OUTPUTS.read_text("utf-8"))
    return outputs
