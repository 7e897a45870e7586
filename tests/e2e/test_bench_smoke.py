"""`python -m sandbox.bench --quick` runs against the sandbox and writes every section; its speed is not judged here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import reduce
from operator import getitem
from pathlib import Path

from e2e_support import ROOT

from sandbox.records import BenchResult

SECTIONS = ("api", "datalake", "floors", "in_process", "ratios")
PNG = b"\x89PNG\r\n\x1a\n"
POSITIVE = [
    "api.accept.throughput",
    "api.accept.latency_ms.p99",
    "api.e2e.throughput",
    "api.e2e.latency_s.p99",
    "datalake.seconds",
    "datalake.rate",
    "floors.api.accept.throughput",
    "floors.api.accept.latency_ms.p99",
    "floors.api.e2e.throughput",
    "floors.processing.rate",
    "in_process.json_loads_per_s",
    "in_process.validate_per_s",
    "in_process.parse_json_validate_per_s",
    "ratios.api_e2e_throughput.value",
    "ratios.api_accept_p99.value",
    "ratios.datalake_vs_processing_floor.value",
    "ratios.validator_vs_json_loads.value",
]


def test_the_quick_bench_writes_every_section(outputs: dict[str, str], tmp_path: Path) -> None:
    # Given the running sandbox (the outputs fixture fails clearly without one)
    env = dict(os.environ, COLUMNS="120")

    # When the quick bench runs, writing into a folder of its own
    run = subprocess.run(
        [sys.executable, "-m", "sandbox.bench", "--quick", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    # Then it succeeds and leaves a timestamped result and latest.json, the same document
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    written = sorted(p.name for p in tmp_path.glob("*.json"))
    assert "latest.json" in written and len(written) == 2, written
    result = json.loads((tmp_path / "latest.json").read_text("utf-8"))
    stamped = next(p for p in tmp_path.glob("*.json") if p.name != "latest.json")
    assert json.loads(stamped.read_text("utf-8")) == result

    # And every section is there, with the numbers measured (any speed will do)
    assert all(section in result for section in SECTIONS), sorted(result)
    for path in POSITIVE:
        value = reduce(getitem, path.split("."), result)
        assert isinstance(value, int | float) and value > 0, (path, value)
    assert all(isinstance(ratio["met"], bool) for name, ratio in result["ratios"].items() if ratio["target"])
    assert result["machine"]["nproc"] >= 1 and result["machine"]["python"]
    assert "bench failed" not in run.stdout
    assert BenchResult.read(tmp_path / "latest.json").run_id == result["run_id"], "the model reads what it wrote"

    # And it drew the run beside its JSON: a PNG, the same picture as latest.png
    pictures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pictures == sorted(["latest.png", stamped.with_suffix(".png").name]), pictures
    picture = (tmp_path / "latest.png").read_bytes()
    assert picture.startswith(PNG) and picture == stamped.with_suffix(".png").read_bytes()

    # And the picture can be drawn again from the results file alone, and written where the docs keep theirs
    again = tmp_path / "docs" / "bench-latest.png"
    plot = [sys.executable, "-m", "sandbox.bench", "--plot", str(stamped), "--picture-to", str(again)]
    redrawn = subprocess.run(plot, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert redrawn.returncode == 0, redrawn.stdout[-3000:] + redrawn.stderr[-3000:]
    assert again.read_bytes().startswith(PNG)
