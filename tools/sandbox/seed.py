"""Set product stock: `available` becomes the file's value, `reserved` is kept (or only add missing products).

Standard library and boto3 only: the deploy hook seeds the checked-in `seed/products.json` from inside the
emulator containers, where pydantic is not installed. The one check of a seed file is `records.SeedFile`; the hook
reads only that committed file, which the unit suite holds to the model (`tests/unit/test_records.py`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import boto3

from sandbox.aws import ROOT
from service.keys import product_key

DEFAULT_FILE = ROOT / "seed" / "products.json"


def read_rows() -> list[dict[str, Any]]:
    """The checked-in seed file as it is (for the deploy hook, which has no pydantic; see the module's docstring)."""
    rows: list[dict[str, Any]] = json.loads(DEFAULT_FILE.read_text("utf-8"))
    return rows


def seed(session: Any, table: str, products: Iterable[Mapping[str, Any]], only_missing: bool = False) -> int:
    """Upsert each product; with only_missing, leave products that already exist untouched."""
    db = session.client("dynamodb")
    written = 0
    for product in products:
        request: dict[str, Any] = {
            "TableName": table,
            "Key": product_key(product["product_id"]),
            "UpdateExpression": "SET #e = :e, #p = :p, #d = :d, #a = :a, #r = if_not_exists(#r, :zero)",
            "ExpressionAttributeNames": {
                "#a": "available",
                "#r": "reserved",
                "#d": "description",
                "#e": "entity",
                "#p": "product_id",
            },
            "ExpressionAttributeValues": {
                ":a": {"N": str(product["available"])},
                ":zero": {"N": "0"},
                ":d": {"S": str(product.get("description", ""))},
                ":e": {"S": "product"},
                ":p": {"S": product["product_id"]},
            },
        }
        if only_missing:
            request["ConditionExpression"] = "attribute_not_exists(PK)"
        with contextlib.suppress(db.exceptions.ConditionalCheckFailedException):  # only_missing: it is there
            db.update_item(**request)
            written += 1
    return written


def main() -> int:
    from sandbox.records import SeedError, SeedFile, StackOutputs  # the venv's path: pydantic is there

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", nargs="?", type=Path, default=Path(os.environ.get("SEED_FILE") or DEFAULT_FILE))
    parser.add_argument("--only-missing", action="store_true", help="keep products that already exist")
    args = parser.parse_args()
    table = StackOutputs.read().OrdersTable
    try:
        products = SeedFile.read(args.file).rows()
    except SeedError as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return 2
    written = seed(boto3.session.Session(), table, products, only_missing=args.only_missing)
    print(f"seed: {written} of {len(products)} products written from {args.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
