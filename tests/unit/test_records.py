"""sandbox.records: the tools' data read once, checked at the boundary (stack outputs, seed file, results)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.records import SeedError, SeedFile, StackOutputs
from sandbox.seed import DEFAULT_FILE, read_rows

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


def test_seed_file_reads_the_seed_file() -> None:
    products = SeedFile.read(DEFAULT_FILE).rows()

    assert {p["product_id"] for p in products} >= {"PRD-1001", "PRD-2002"}
    assert read_rows() == products, "the deploy hook seeds this file unchecked: it must be what the model reads"


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "",
        '{"product_id": "P1", "available": 1}',
        "[1]",
        '[{"available": 1}]',
        '[{"product_id": "", "available": 1}]',
        '[{"product_id": 7, "available": 1}]',
        '[{"product_id": "P1"}]',
        '[{"product_id": "P1", "available": -1}]',
        '[{"product_id": "P1", "available": 1.5}]',
        '[{"product_id": "P1", "available": "3"}]',
        '[{"product_id": "P1", "available": true}]',
        '[{"product_id": "P1", "available": null}]',
        '[{"product_id": "P1", "available": 2}, {"product_id": "P2", "available": -2}]',
    ],
)
def test_seed_file_rejects_bad_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "products.json"
    path.write_text(content, "utf-8")

    with pytest.raises(SeedError):
        SeedFile.read(path)


def test_seed_file_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SeedError):
        SeedFile.read(tmp_path / "absent.json")


def test_seed_file_accepts_zero_stock(tmp_path: Path) -> None:
    path = tmp_path / "products.json"
    path.write_text('[{"product_id": "P1", "available": 0, "description": "sem estoque"}]', "utf-8")

    assert SeedFile.read(path).rows() == [{"product_id": "P1", "available": 0, "description": "sem estoque"}]
