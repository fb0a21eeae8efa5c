"""Read template.yaml and turn its resources into boto3 create calls, so that
tests and the local stack create exactly the tables the stack deploys."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

# CloudFormation short-form intrinsics (!Ref, !Sub, ...) as plain dicts.
_INTRINSICS = [
    "Ref", "Condition", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals",
    "Not", "And", "Or", "FindInMap", "Base64", "Cidr", "GetAZs", "ImportValue", "Transform",
]  # fmt: skip


class _TemplateLoader(yaml.SafeLoader):
    pass


def _intrinsic(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    key = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            assert isinstance(node, yaml.MappingNode)
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _tag in _INTRINSICS:
    _TemplateLoader.add_constructor(f"!{_tag}", _intrinsic(_tag))


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        template: dict[str, Any] = yaml.load(handle, Loader=_TemplateLoader)  # a SafeLoader
        return template


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def create_table_kwargs(
    template: dict[str, Any], logical_id: str, table_name: str
) -> dict[str, Any]:
    """Arguments for ``dynamodb.create_table`` from the template's own table.

    Only what shapes the data is copied (keys, indexes, billing, streams);
    settings that a local engine ignores, like point-in-time recovery, are left out.
    """
    properties = template["Resources"][logical_id]["Properties"]
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    for optional in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
        if optional in properties:
            kwargs[optional] = properties[optional]
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
    return kwargs
