"""What a handler module loads at cold start (make bench times it; this pins
it, without timing). Every function loads the AWS SDK at init; none loads the
X-Ray SDK unless asked, nor the libraries propsync stopped using on the hot
path for their import cost (docs/DECISIONS.md: "The X-Ray SDK is opt-in",
"Handlers route on API Gateway's resource", "Request envelopes are checked by
hand")."""

import json
import os
import subprocess
import sys

import pytest

from propsync_local.cfn_template import REPO_ROOT, load_template

HEAVY = (
    "aws_xray_sdk",
    "pydantic",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.batch",
    "asyncio",
)
FUNCTION_FOLDERS = sorted(
    {
        resource["Properties"]["CodeUri"]
        for resource in load_template()["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
)


def loaded_after_import(folder: str, **environment: str) -> list[str]:
    watched = (*HEAVY, "boto3")
    probe = (
        "import json, sys, app; "
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


# What a function loads on purpose although it is heavy elsewhere: the import
# function validates mappings with their pydantic model (docs/DECISIONS.md:
# "The import mapping is a pydantic model"; make bench times its cold start).
LOADED_ON_PURPOSE = {"functions/imports": ("pydantic",)}


@pytest.mark.parametrize("folder", FUNCTION_FOLDERS)
def test_a_handler_loads_boto3_at_init_and_nothing_heavy(folder):
    loaded = loaded_after_import(folder)
    assert "boto3" in loaded
    heavy = tuple(name for name in HEAVY if name not in LOADED_ON_PURPOSE.get(folder, ()))
    assert [name for name in loaded if name.startswith(heavy)] == []


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
