"""Load product stock: `[{"product_id", "description", "available"}]`, setting `available` to the file's value."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from sandbox import ROOT, load_outputs


class SeedError(ValueError):
    pass


def load_products(path: Path) -> list[dict[str, Any]]:
    try:
        products = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise SeedError(f"{path}: {exc}") from exc
    if not isinstance(products, list):
        raise SeedError(f"{path}: expected a JSON list of products")
    for index, product in enumerate(products):
        if not (
            isinstance(product, dict)
            and isinstance(product.get("product_id"), str)
            and product["product_id"]
            and isinstance(product.get("available"), int)
            and not isinstance(product.get("available"), bool)
            and product["available"] >= 0
        ):
            raise SeedError(f"{path}[{index}]: needs product_id (text) and available (integer >= 0)")
    return products


def seed(session: Any, table: str, products: list[dict[str, Any]], only_missing: bool = False) -> int:
    """Upsert each product; with only_missing, leave products that already exist untouched."""
    db = session.client("dynamodb")
    written = 0
    for product in products:
        names = {"#a": "available", "#r": "reserved", "#d": "description", "#e": "entity", "#p": "product_id"}
        values = {
            ":a": {"N": str(product["available"])},
            ":zero": {"N": "0"},
            ":d": {"S": str(product.get("description", ""))},
            ":e": {"S": "product"},
            ":p": {"S": product["product_id"]},
        }
        request = {
            "TableName": table,
            "Key": {"PK": {"S": f"PRODUCT#{product['product_id']}"}, "SK": {"S": "STOCK"}},
            "UpdateExpression": "SET #e = :e, #p = :p, #d = :d, #a = :a, #r = if_not_exists(#r, :zero)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if only_missing:
            request["ConditionExpression"] = "attribute_not_exists(PK)"
        try:
            db.update_item(**request)
            written += 1
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", nargs="?", default=os.environ.get("SEED_FILE") or str(ROOT / "seed" / "products.json"))
    parser.add_argument("--only-missing", action="store_true", help="keep products that already exist")
    args = parser.parse_args()
    table = load_outputs()["OrdersTable"]
    try:
        products = load_products(Path(args.file))
    except SeedError as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return 2
    written = seed(boto3.session.Session(), table, products, only_missing=args.only_missing)
    print(f"seed: {written} of {len(products)} products written from {args.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
