"""template.yaml is the one description of what gets deployed; these checks pin
the choices the rest of the code relies on."""

import json
import os
import subprocess
import tomllib

import pytest

from propsync_local.cfn_template import (
    REPO_ROOT,
    create_table_kwargs,
    load_template,
    resources_of_type,
)

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]


def test_functions_run_python_3_13_on_arm64():
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Layers"] == [{"Ref": "PropsyncLayer"}]
    assert function_globals["Environment"]["Variables"]["PROPSYNC_TABLE_NAME"] == {
        "Ref": "PropsyncTable"
    }


def test_the_shared_layer_is_built_from_the_propsync_package():
    layer = RESOURCES["PropsyncLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    content = REPO_ROOT / layer["Properties"]["ContentUri"]
    assert (content / "propsync" / "__init__.py").is_file()
    assert (content / "requirements.txt").is_file()
    # the layer's Makefile installs arm64 wheels and compiles hash-checked
    # bytecode (make sam-check builds it and runs scripts/check-layer-bytecode.py)
    makefile = (content / "Makefile").read_text()
    assert "build-PropsyncLayer:" in makefile
    assert "--platform manylinux2014_aarch64" in makefile
    assert "--invalidation-mode checked-hash" in makefile


def test_pytest_imports_the_layer_from_the_same_folder_the_template_deploys():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert (
        RESOURCES["PropsyncLayer"]["Properties"]["ContentUri"]
        in (pyproject["tool"]["pytest"]["ini_options"]["pythonpath"])
    )


def test_the_table_is_keyed_by_pk_with_recovery_and_encryption():
    table = RESOURCES["PropsyncTable"]
    assert table["DeletionPolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


def test_create_table_arguments_come_from_the_template():
    kwargs = create_table_kwargs(TEMPLATE, "PropsyncTable", "name")
    assert kwargs == {
        "TableName": "name",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def test_functions_bound_by_the_sdks_cpu_get_a_whole_vcpu():
    # Lambda allocates CPU in proportion to memory, one vCPU at 1,769 MB;
    # make bench shows a batch's writes and an import's rows are CPU-bound.
    for name in ("TrackingFunction", "ImportFunction", "ImportChunkFunction"):
        assert RESOURCES[name]["Properties"]["MemorySize"] >= 1769, name


def test_a_failing_chunk_is_recorded_before_the_dead_letter_queue_could_take_it():
    from propsync import imports  # noqa: PLC0415

    redrive = RESOURCES["ChunkQueue"]["Properties"]["RedrivePolicy"]
    # the receive that gives up without running, and spares for when recording
    # the failure itself fails, all come before the DLQ
    assert imports.LAST_ATTEMPT_RECEIVE < imports.GIVE_UP_RECEIVE < redrive["maxReceiveCount"]
    # AWS advises at least 5: the Lambda service's own throttling uses up receives
    assert imports.LAST_ATTEMPT_RECEIVE >= 5
    chunks = RESOURCES["ImportChunkFunction"]["Properties"]["Events"]["Chunks"]["Properties"]
    assert chunks["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert chunks["BatchSize"] == 1


# ------------------------------------------------------------------ SnapStart
# docs/DECISIONS.md: "SnapStart is opt-in, for the API functions".

SNAPSTART_FUNCTIONS = {
    "TrackingFunction",
    "CustomersReadFunction",
    "CustomersFunction",
    "AuthorizerFunction",
}
SAM_PYTHON = REPO_ROOT / ".venv-sam" / "bin" / "python"


def references(node, parameter: str, path: str = ""):
    """The paths at which ``parameter`` is used (Ref or ${} in Fn::Sub)."""
    if isinstance(node, dict):
        if node.get("Ref") == parameter or (
            isinstance(node.get("Fn::Sub"), str) and f"${{{parameter}}}" in node["Fn::Sub"]
        ):
            yield path
        for key, value in node.items():
            yield from references(value, parameter, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from references(value, parameter, f"{path}[{index}]")


def test_snapstart_is_a_parameter_off_by_default():
    parameter = TEMPLATE["Parameters"]["SnapStart"]
    assert parameter["AllowedValues"] == ["None", "PublishedVersions"]
    assert parameter["Default"] == "None"


def test_snapstart_applies_to_the_api_functions_and_their_published_versions():
    functions = resources_of_type(TEMPLATE, "AWS::Serverless::Function")
    assert {name for name, f in functions.items() if "SnapStart" in f["Properties"]} == (
        SNAPSTART_FUNCTIONS
    )
    for name, function in functions.items():
        properties = function["Properties"]
        if name not in SNAPSTART_FUNCTIONS:  # the import functions: no alias either
            assert "AutoPublishAlias" not in properties, name
            continue
        assert properties["SnapStart"] == {"ApplyOn": {"Ref": "SnapStart"}}
        # SnapStart applies to published versions only: events reach the alias
        assert properties["AutoPublishAlias"] == "live"
        # a new version, and so a new snapshot, whenever anything of the
        # function changes (with PublishLambdaVersion: its layer too) ...
        assert properties["AutoPublishAliasAllProperties"] is True
        # ... and whenever SnapStart is switched (a version's description
        # cannot change: the version is replaced, that is published again)
        assert "${SnapStart}" in properties["VersionDescription"]["Fn::Sub"]
    assert RESOURCES["PropsyncLayer"]["Properties"]["PublishLambdaVersion"] is True


def test_api_gateway_calls_the_authorizer_through_its_alias():
    authorizers = RESOURCES["PropsyncApi"]["Properties"]["Auth"]["Authorizers"]
    assert authorizers["ApiKeyAuthorizer"]["FunctionArn"] == {"Ref": "AuthorizerFunction.Alias"}


def test_the_parameter_reaches_only_the_snapstart_setting_and_the_versions_description():
    """So with SnapStart=None (Lambda's own default for ApplyOn) nothing else
    of the stack depends on it."""
    assert sorted(references(TEMPLATE, "SnapStart")) == sorted(
        f"Resources.{name}.Properties.{setting}"
        for name in SNAPSTART_FUNCTIONS
        for setting in ("SnapStart.ApplyOn", "VersionDescription")
    )


TRANSLATE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from propsync_local.cfn_template import load_template
from samtranslator.translator.transform import transform

class Policies:
    def load(self):
        return {}

out = []
for params, layer in json.loads(sys.argv[2]):
    template = load_template()
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":  # what sam package writes
            properties["CodeUri"] = "s3://artifacts/" + properties["CodeUri"].replace("/", "-")
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = "s3://artifacts/" + layer
    out.append(transform(template, params, Policies(), feature_toggle=None))
print(json.dumps(out))
"""


def translated(*deployments: tuple[dict[str, str], str]) -> list[dict]:
    """template.yaml as the SAM transform turns it into CloudFormation, once
    per (parameter values, layer zip), with the SAM translator of .venv-sam."""
    if not SAM_PYTHON.exists():
        pytest.skip("the SAM CLI virtualenv (make sam-check) is not installed")
    output = subprocess.run(
        [str(SAM_PYTHON), "-c", TRANSLATE, str(REPO_ROOT / "local"), json.dumps(deployments)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"},
        cwd=REPO_ROOT,
    )
    return json.loads(output.stdout)


def versions(resources: dict) -> dict[str, str]:
    return {
        resource["Properties"]["FunctionName"]["Ref"]: logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::Version"
    }


def test_deployed_api_gateway_and_the_authorizer_call_the_alias_of_a_published_version():
    off, on, new_layer = (
        deployment["Resources"]
        for deployment in translated(
            ({}, "layer-1.zip"),
            ({"SnapStart": "PublishedVersions"}, "layer-1.zip"),
            ({}, "layer-2.zip"),
        )
    )
    for name in SNAPSTART_FUNCTIONS:
        alias = off[f"{name}Aliaslive"]["Properties"]
        assert alias["FunctionVersion"] == {"Fn::GetAtt": [versions(off)[name], "Version"]}
    # every route's integration and the authorizer invoke an alias, never $LATEST
    body = off["PropsyncApi"]["Properties"]["Body"]
    for methods in body["paths"].values():
        for method in methods.values():
            uri = json.dumps(method["x-amazon-apigateway-integration"]["uri"])
            assert "Aliaslive" in uri, uri
    authorizer = body["securityDefinitions"]["ApiKeyAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert "AuthorizerFunctionAliaslive" in json.dumps(authorizer["authorizerUri"])
    api_permissions = [
        resource["Properties"]
        for resource in off.values()
        if resource["Type"] == "AWS::Lambda::Permission"
        and resource["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert len(api_permissions) == 7  # six routes and the authorizer
    assert all("Aliaslive" in json.dumps(p["FunctionName"]) for p in api_permissions)
    # switching SnapStart on publishes new versions (their description differs)
    assert versions(on) == versions(off)
    for name in SNAPSTART_FUNCTIONS:
        assert off[versions(off)[name]]["Properties"]["Description"] == {
            "Fn::Sub": "SnapStart: ${SnapStart}"
        }
    for name in SNAPSTART_FUNCTIONS:
        assert on[name]["Properties"]["SnapStart"] == {"ApplyOn": {"Ref": "SnapStart"}}
    # a new layer alone publishes new versions: the alias never keeps old code
    assert set(versions(new_layer).values()).isdisjoint(versions(off).values())
    assert set(versions(new_layer)) == SNAPSTART_FUNCTIONS
