"""Generate, from functions/orders/schema.json, the API Gateway model in infra/template.yaml and the Lambdas'
schema validator, functions/orders/order_schema.py (fastjsonschema's generated code).

`python -m sandbox.model` (`make model`) rewrites both; `--check` fails when either has drifted.

The validator is fastjsonschema's draft-4 code generator with `fast_fail=False` (every error, each with its rule,
path and definition), reading an order the way the API documents it (README, "Validation rules"):
- null is absent: a required field that is null is missing, an optional one that is null is left out;
- a number is an `int` or a `Decimal` (what `parse_json` returns, which refuses NaN and Infinity), never a float or
  a bool;
- every string holds only characters that SQS and DynamoDB accept (the rule `characters`);
- an object with fields the schema does not name, or null ones, gets a note (rule `unknown`, not an error): the
  order keeps a copy without them.
For speed, each property is read once, a text enum is one set lookup, and the bookkeeping of an object's keys that
fastjsonschema needs only for `additionalProperties` and `patternProperties` is left out: the order schema uses
neither (unknown fields are accepted, then dropped), and the generator refuses them.
The Lambda zip has no dependencies, so the generated module imports its two exception classes from
orders/schema_errors.py instead of from fastjsonschema.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
from fastjsonschema.draft04 import CodeGeneratorDraft04
from fastjsonschema.exceptions import JsonSchemaDefinitionException
from fastjsonschema.ref_resolver import RefResolver

from orders.schema_errors import UNKNOWN
from sandbox.aws import ROOT

SCHEMA = ROOT / "functions" / "orders" / "schema.json"
TEMPLATE = ROOT / "infra" / "template.yaml"
VALIDATOR = ROOT / "functions" / "orders" / "order_schema.py"
BEGIN = "Schema: # BEGIN GENERATED MODEL\n"
END = "# END GENERATED MODEL\n"

# What SQS and DynamoDB accept in a string: no control characters but tab and newlines, no lone UTF-16 surrogates.
FORBIDDEN_CHARACTERS = r"[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
_PYTHON_TYPES = {"object": "dict", "array": "list", "string": "str", "integer": "int", "number": "int, Decimal"}
_FASTJSONSCHEMA_IMPORT = "from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException\n"
_OUR_IMPORT = "from orders.schema_errors import JsonSchemaValueException, JsonSchemaValuesException\n"


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
    """The template with the model as one JSON line, under BEGIN's key, in place of the lines up to END's."""
    start = template.index(BEGIN) + len(BEGIN)
    key = template[:start].splitlines()[-1]
    indent = " " * (len(key) - len(key.lstrip()) + 2)
    end = template.rindex("\n", 0, template.index(END, start)) + 1
    return template[:start] + indent + json.dumps(model, ensure_ascii=False) + "\n" + template[end:]


class OrderCodeGenerator(CodeGeneratorDraft04):
    """fastjsonschema's draft-4 generator with this API's reading of null, numbers and characters."""

    def generate_type(self) -> None:
        expected = self._definition["type"]
        if expected not in _PYTHON_TYPES:
            raise JsonSchemaDefinitionException(f"type {expected!r}: one of {sorted(_PYTHON_TYPES)} expected")
        if expected in ("integer", "number"):
            # Kept, so that minimum and maximum need not ask again (fastjsonschema's own test would let floats in).
            self.l(
                "{variable}_is_number = isinstance({variable}, ({})) and not isinstance({variable}, bool)",
                _PYTHON_TYPES[expected],
            )
            with self.l("if not {variable}_is_number:"):
                self.exc("{name} must be {}", expected, rule="type")
            return
        with self.l("if not isinstance({variable}, ({})):", _PYTHON_TYPES[expected]):
            self.exc("{name} must be {}", expected, rule="type")
        if expected == "string":
            self._compile_regexps[FORBIDDEN_CHARACTERS] = re.compile(FORBIDDEN_CHARACTERS)
            # The same test as the next keywords' (minLength...), so fastjsonschema merges their blocks into this one.
            with self.l("if isinstance({variable}, str):"):
                # isprintable() is a fast C test that clears almost every string before the regular expression runs.
                with self.l(
                    "if not {variable}.isprintable() and REGEX_PATTERNS[{}].search({variable}):",
                    repr(FORBIDDEN_CHARACTERS),
                ):
                    self.exc("{name} must hold only characters SQS and DynamoDB accept", rule="characters")

    def generate_minimum(self) -> None:
        self._limit("minimum", "<", "bigger than or equal to")

    def generate_maximum(self) -> None:
        self._limit("maximum", ">", "smaller than or equal to")

    def _limit(self, rule: str, beyond: str, words: str) -> None:
        if self._definition.get("type") not in ("integer", "number") or self._definition.get(
            f"exclusive{rule.title()}"
        ):
            getattr(super(), f"generate_{rule}")()
            return
        with self.l("if {variable}_is_number:"):
            with self.l("if {variable} " + beyond + " {" + rule + "}:"):
                self.exc("{name} must be " + words + " {" + rule + "}", rule=rule)

    def generate_enum(self) -> None:
        choices = self._definition["enum"]
        if not all(isinstance(choice, str) for choice in choices):
            super().generate_enum()
            return
        # One lookup in a set of texts, rather than fastjsonschema's comparison with each choice in turn.
        with self.l("if not (isinstance({variable}, str) and {variable} in {}):", "{" + repr(choices)[1:-1] + "}"):
            self.exc("{name} must be one of {}", self.e(choices), rule="enum")

    def generate_required(self) -> None:
        properties = self._definition.get("properties", {})
        self.create_variable_is_dict()
        with self.l("if {variable}_is_dict:"):
            self._read_properties()
            missing = " or ".join(
                f"{self._property_variable(name)} is None"
                if name in properties
                else f"{self._variable}.get({name!r}) is None"
                for name in self._definition["required"]
            )
            with self.l("if {}:", missing):
                self.exc("{name} must contain {required} properties", rule="required")

    def generate_properties(self) -> None:
        if "additionalProperties" in self._definition or "patternProperties" in self._definition:
            raise JsonSchemaDefinitionException("additionalProperties and patternProperties are not generated")
        properties = self._definition["properties"]
        required = [key for key in properties if key in self._definition.get("required", ())]
        self.create_variable_is_dict()
        with self.l("if {variable}_is_dict:"):
            if "required" not in self._definition:  # else generate_required has read them
                self._read_properties()
            for key, definition in properties.items():
                with self.l("if {} is not None:", self._property_variable(key)):
                    name = "{}.{}".format(self._variable_name, self.e(key).replace("{", "{{").replace("}", "}}"))
                    self.generate_func_code_block(definition, self._property_variable(key), name, clear_variables=True)
            # Not an error: a note that the object holds fields the schema does not name, or null ones, which the
            # order it describes leaves out. Counting what was read costs less than a second look at the keys; an
            # object with every required property (the only kind whose notes are read) needs only its others counted.
            count = [str(len(required))] + [
                f"({self._property_variable(key)} is not None)" for key in properties if key not in required
            ]
            with self.l("if len({variable}) != {}:", " + ".join(count)):
                self.exc("{name} holds fields to leave out", rule=UNKNOWN)

    def _read_properties(self) -> None:
        """Each property into a variable of its own, once, for the required check and for the property's checks."""
        for key in self._definition.get("properties", {}):
            self.l("{} = {variable}.get({!r})", self._property_variable(key), key)

    def _property_variable(self, key: str) -> str:
        return "{}__{}".format(self._variable, re.sub(r"($[^a-zA-Z]|[^a-zA-Z0-9])", "", key))


def validator_code(schema: dict[str, Any]) -> str:
    """The source of functions/orders/order_schema.py: `validate(document)` raises JsonSchemaValuesException."""
    resolver = RefResolver.from_schema(schema, store={})
    generator = OrderCodeGenerator(schema, resolver=resolver, use_formats=False, fast_fail=False)
    code = generator.global_state_code + "\n" + generator.func_code + "\n"
    if code.count(_FASTJSONSCHEMA_IMPORT) != 1:
        raise RuntimeError(f"fastjsonschema {fastjsonschema.VERSION} no longer writes {_FASTJSONSCHEMA_IMPORT!r}")
    header = (
        f"# GENERATED from functions/orders/schema.json by tools/sandbox/model.py (`make model`) with fastjsonschema "
        f"{fastjsonschema.VERSION}; do not edit by hand.\n"
    )
    return header + code.replace(_FASTJSONSCHEMA_IMPORT, _OUR_IMPORT)


def regenerate(outputs: dict[Path, Callable[[], str]], description: str | None, command: str) -> int:
    """The main of a generator of committed files: write each output, or with `--check` exit 1 when one differs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file differs from its source")
    check = parser.parse_args().check
    drifted = 0
    for output, generate in outputs.items():
        wanted = generate()
        if (output.read_text("utf-8") if output.exists() else "") == wanted:
            continue
        if check:
            shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
            print(f"{shown} differs from what is generated; run `{command}`")
            drifted += 1
        else:
            output.write_text(wanted, "utf-8")
    return 1 if drifted else 0


def main() -> int:
    schema = json.loads(SCHEMA.read_text("utf-8"))
    return regenerate(
        {
            TEMPLATE: lambda: render(TEMPLATE.read_text("utf-8"), api_model(schema)),
            VALIDATOR: lambda: validator_code(schema),
        },
        __doc__,
        "make model",
    )


if __name__ == "__main__":
    sys.exit(main())
