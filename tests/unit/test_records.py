"""tools/records.py: the stack outputs read once, checked at the boundary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from records import StackOutputs

FIELDS = [name for name, field in StackOutputs.model_fields.items() if field.is_required()]


def write(tmp_path: Path, outputs: dict[str, str]) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs), "utf-8")
    return path


def test_the_outputs_the_deploy_writes_read_back_with_any_extra_kept(tmp_path: Path) -> None:
    written = {name: f"value-of-{name}" for name in FIELDS} | {"Endpoint": "http://localhost:4566", "NewOutput": "x"}

    outputs = StackOutputs.read(write(tmp_path, written))

    assert outputs.OrdersTable == "value-of-OrdersTable"
    assert outputs["NewOutput"] == "x" and outputs["Endpoint"] == "http://localhost:4566"
    assert outputs.as_dict() == written
    with pytest.raises(KeyError):
        outputs["Region"]  # noqa: B018 (AWS outputs only)


def test_an_outputs_file_from_an_older_template_names_what_is_missing(tmp_path: Path) -> None:
    stale = {name: "x" for name in FIELDS if name != "SweeperFunctionName"}

    with pytest.raises(SystemExit, match=r"\(SweeperFunctionName\): run `make deploy`"):
        StackOutputs.read(write(tmp_path, stale))


def test_no_outputs_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"not deployed: run `make up`"):
        StackOutputs.read(tmp_path / "outputs.json")
