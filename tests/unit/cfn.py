"""Reading the CloudFormation template in tests: short tags (!Ref, !GetAtt, !Sub) in their long form."""

from __future__ import annotations

from typing import Any

import yaml


class CfnLoader(yaml.SafeLoader):
    """A safe loader that reads CloudFormation short tags as their long form (!Ref x -> {"Ref": x})."""


def _intrinsic(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(text: str) -> dict[str, Any]:
    document = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass
    assert isinstance(document, dict)
    return document
