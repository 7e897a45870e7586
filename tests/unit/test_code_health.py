"""ruff lint and format, the same checks a contributor runs (`make lint`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(args: list[str]) -> None:
    result = subprocess.run(
        [str(RUFF), *args, "functions", "tools", "tests"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_every_function_package() -> None:
    result = subprocess.run(
        [str(RUFF.with_name("mypy")), "--strict", "-p", "orders", "-p", "service", "-p", "handlers"],
        cwd=ROOT / "functions",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
