"""Generate the API Gateway request model from functions/orders/schema.json into infra/template.yaml.

`python tools/model.py` rewrites the generated block; `--check` fails when the template has drifted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "functions" / "orders" / "schema.json"
TEMPLATE = ROOT / "infra" / "template.yaml"
BEGIN = "Schema: # BEGIN GENERATED MODEL\n"
END = "# END GENERATED MODEL\n"


def api_model(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with local $refs inlined and our own keywords (x-*) dropped."""
    definitions = schema.get("definitions", {})

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return convert(definitions[node["$ref"].removeprefix("#/definitions/")])
            return {k: convert(v) for k, v in node.items() if not k.startswith("x-") and k != "definitions"}
        if isinstance(node, list):
            return [convert(v) for v in node]
        return node

    model: dict[str, Any] = convert(schema)
    return model


def render(template: str, model: dict[str, Any]) -> str:
    start = template.index(BEGIN) + len(BEGIN)
    end = template.index(END, start)
    indent = " " * (len(template[:start].splitlines()[-1]) - len(template[:start].splitlines()[-1].lstrip()) + 2)
    block = indent + json.dumps(model, ensure_ascii=False, sort_keys=False) + "\n"
    end_line_start = template.rindex("\n", 0, end) + 1
    return template[:start] + block + template[end_line_start:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the template's model differs")
    args = parser.parse_args()
    model = api_model(json.loads(SCHEMA.read_text("utf-8")))
    current = TEMPLATE.read_text("utf-8")
    wanted = render(current, model)
    if args.check:
        if wanted != current:
            print("infra/template.yaml: the API model differs from functions/orders/schema.json; run `make model`")
            return 1
        return 0
    TEMPLATE.write_text(wanted, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
