"""The `sandbox` command (placeholder until the CLI lands)."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("the sandbox CLI is being built; use the make targets meanwhile")
