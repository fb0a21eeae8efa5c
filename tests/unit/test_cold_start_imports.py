"""What a handler module loads at cold start (make bench times it; this pins
it, without timing). Every function loads the AWS SDK at init; none loads the
X-Ray SDK unless asked, nor the libraries propsync stopped using on the hot
path for their import cost (docs/DECISIONS.md: "The X-Ray SDK is opt-in",
"Handlers route on API Gateway's resource", "The chunk handler reports its
failures itself"). pydantic, the schema language of request bodies, is loaded
by the handlers that validate a body and by no other: the authorizer reads
one header ("The cold-start bar is 1.8x `import boto3`")."""

import json
import os
import subprocess
import sys

import pytest

from propsync_local.cfn_template import REPO_ROOT, load_template

HEAVY = (
    "aws_xray_sdk",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.batch",
    "asyncio",
)
BODY_SCHEMAS = ("pydantic",)
# The functions whose events carry no body to validate: they must not pay for
# pydantic's import (about 100 ms) at every cold start.
WITHOUT_BODIES = {"functions/authorizer"}
# The web console serves files: it calls no AWS service and imports neither
# the SDK nor the layer ("The console is served by a function of its own").
WITHOUT_AWS = {"functions/console"}
# (folder, handler module) of every function: a folder may hold several
HANDLER_MODULES = sorted(
    {
        (resource["Properties"]["CodeUri"], resource["Properties"]["Handler"].split(".")[0])
        for resource in load_template()["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
)
FUNCTION_FOLDERS = sorted({folder for folder, _ in HANDLER_MODULES})


def forbidden(folder: str) -> tuple[str, ...]:
    return (*HEAVY, *BODY_SCHEMAS) if folder in WITHOUT_BODIES else HEAVY


def loaded_after_import(folder: str, module: str = "app", **environment: str) -> list[str]:
    watched = (*HEAVY, *BODY_SCHEMAS, "boto3")
    probe = (
        f"import json, sys, {module}; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({watched!r}))))"
    )
    env = {name: value for name, value in os.environ.items() if name != "PROPSYNC_XRAY_SDK"}
    paths = [REPO_ROOT / folder, REPO_ROOT / "layers" / "propsync"]
    env["PYTHONPATH"] = os.pathsep.join(str(path) for path in paths)
    env.update(PROPSYNC_TABLE_NAME="t", **environment)
    output = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(output.stdout)


@pytest.mark.parametrize(
    ("folder", "module"), [(f, m) for f, m in HANDLER_MODULES if f not in WITHOUT_AWS]
)
def test_a_handler_loads_boto3_at_init_and_nothing_heavy(folder, module):
    loaded = loaded_after_import(folder, module)
    assert "boto3" in loaded
    assert [name for name in loaded if name.startswith(forbidden(folder))] == []


def test_the_console_loads_no_sdk_and_nothing_of_the_layer():
    probe = "import json, sys, app; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "functions" / "console")},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(output.stdout)
    assert [m for m in loaded if m.startswith(("boto3", "botocore", "propsync", "pydantic"))] == []
    assert [m for m in loaded if m.startswith(HEAVY)] == []


def test_only_the_authorizer_is_kept_free_of_pydantic():
    # every other function that calls AWS validates a body (tracking commands,
    # customer edits and exports, import mappings) and may load it
    assert set(FUNCTION_FOLDERS) - WITHOUT_BODIES - WITHOUT_AWS == {
        "functions/tracking",
        "functions/customers",
        "functions/imports",
    }
    assert forbidden("functions/authorizer") == (*HEAVY, "pydantic")
    assert "pydantic" not in forbidden("functions/tracking")


def test_the_xray_sdk_is_loaded_when_asked_for():
    loaded = loaded_after_import("functions/tracking", PROPSYNC_XRAY_SDK="true")
    assert "aws_xray_sdk.core" in loaded


def test_the_template_leaves_the_xray_sdk_off_by_default():
    template = load_template()
    parameter = template["Parameters"]["XRaySdkTracing"]
    assert parameter["Default"] == "false"
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PROPSYNC_XRAY_SDK"] == {"Ref": "XRaySdkTracing"}
    assert template["Globals"]["Function"]["Tracing"] == "Active"
