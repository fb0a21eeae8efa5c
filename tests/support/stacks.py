"""A deployed propsync stack as the CLI finds one: a CloudFormation stack
on the moto server whose outputs name the resources."""

from __future__ import annotations

import json
import uuid

import boto3


def create_stack(moto_endpoint: str, outputs: dict[str, str]) -> str:
    """A CloudFormation stack on the moto server with these outputs; its name."""
    name = f"propsync-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation = boto3.client(
        "cloudformation", endpoint_url=moto_endpoint, region_name="eu-west-1"
    )
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name
