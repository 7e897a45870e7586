"""The two exception classes that fastjsonschema's generated code raises (orders/order_schema.py).

They stand in for fastjsonschema's own, with the same constructors and attributes, so that the Lambda zip needs
no fastjsonschema: tools/sandbox/model.py points the generated import here.
"""

from __future__ import annotations

from typing import Any

# Not a rule broken: the rule of the note the generated code adds for an object that holds fields the schema does not
# name, or null ones. The order stands; the copy it keeps leaves them out.
UNKNOWN = "unknown"


class JsonSchemaValueException(ValueError):
    """One broken rule: `rule` (a schema keyword), `name` (the path, like data.items[0].quantity), the `definition`
    of the value that breaks it (so its x-message is at hand) and the `value` itself."""

    def __init__(
        self, message: str, value: Any = None, name: str = "data", definition: Any = None, rule: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.value = value
        self.name = name
        self.definition: dict[str, Any] = definition or {}
        self.rule = rule


class JsonSchemaValuesException(ValueError):
    """Every broken rule of one document (the generated code runs with fast_fail=False)."""

    def __init__(self, errors: list[JsonSchemaValueException]) -> None:
        super().__init__("; ".join(error.message for error in errors))
        self.errors = errors
