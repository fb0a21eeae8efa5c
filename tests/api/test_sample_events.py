"""The events/ samples are what `sam local invoke -e` sends: each one, as it is
on disk, runs through its real handler against the demo project and key."""

import json

import pytest

from propsync_local.apigw import EVENTS_DIR, LambdaContext, load_handler, routes
from propsync_local.cfn_template import load_template, resources_of_type
from propsync_local.stack import (
    DEFAULT_KEY_ID,
    DEFAULT_KEY_SECRET,
    DEFAULT_PROJECT_TOKEN,
    SAMPLE_CUSTOMER_ID,
    SAMPLE_CUSTOMER_IDS,
    SAMPLE_CUSTOMER_PROPERTIES,
    SAMPLE_CUSTOMER_UPDATED,
    create_demo_access,
    create_sample_customer,
)

SAM_ENV_VARS = EVENTS_DIR / "sam-local-env.json"


@pytest.fixture
def demo(api):
    """What a fresh `make run` creates: the demo project and key, and the
    customer the samples name."""
    create_demo_access(DEFAULT_PROJECT_TOKEN, DEFAULT_KEY_ID, DEFAULT_KEY_SECRET)
    create_sample_customer(DEFAULT_PROJECT_TOKEN)
    return api


def invoke(function: str, sample: str) -> dict:
    event = json.loads((EVENTS_DIR / f"{function}.{sample}.json").read_text())
    return load_handler(function)(event, LambdaContext(function))


def test_every_api_route_of_the_template_has_a_sample_event():
    for route in routes():
        assert route.sample_path.is_file(), f"missing {route.sample_path.name}"
        sample = json.loads(route.sample_path.read_text())
        assert sample["resource"] == route.resource
        assert sample["httpMethod"] == route.method
        assert ("authorizer" in sample["requestContext"]) == route.private


def test_the_tracking_samples_run(demo):
    batch = invoke("TrackingFunction", "Batch")
    assert batch["statusCode"] == 200
    assert [r["success"] for r in json.loads(batch["body"])["results"]] == [True, True, True]
    assert invoke("TrackingFunction", "Customers")["statusCode"] == 200
    assert invoke("TrackingFunction", "SystemTime")["statusCode"] == 200


def test_the_customers_samples_run_against_what_make_run_creates(demo):
    read = invoke("CustomersReadFunction", "GetCustomer")
    assert read["statusCode"] == 200, read["body"]
    assert json.loads(read["body"])["properties"] == {
        name: {"value": value, "last_update": SAMPLE_CUSTOMER_UPDATED}
        for name, value in SAMPLE_CUSTOMER_PROPERTIES.items()
    }

    edited = invoke("CustomersFunction", "PatchCustomer")
    assert edited["statusCode"] == 200, edited["body"]
    assert json.loads(edited["body"])["applied"] == ["loyalty_tier"]

    export = invoke("CustomersReadFunction", "ExportOne")
    assert export["statusCode"] == 200, export["body"]
    exported = json.loads(export["body"])
    assert exported["ids"] == SAMPLE_CUSTOMER_IDS
    assert exported["properties"] == {**SAMPLE_CUSTOMER_PROPERTIES, "loyalty_tier": "gold"}


def test_the_sample_customer_is_created_once_and_never_reset(demo):
    """`make run` again on a persistent engine keeps what was written since."""
    invoke("CustomersFunction", "PatchCustomer")
    newer = demo.track(SAMPLE_CUSTOMER_IDS, {"first_name": "Janka"}, SAMPLE_CUSTOMER_UPDATED + 1)
    assert newer["customer_id"] == SAMPLE_CUSTOMER_ID

    create_sample_customer(DEFAULT_PROJECT_TOKEN)

    read = json.loads(invoke("CustomersReadFunction", "GetCustomer")["body"])
    assert read["properties"]["loyalty_tier"]["value"] == "gold"
    assert read["properties"]["first_name"]["value"] == "Janka"


def declared_environment(function: str) -> set[str]:
    """The variables template.yaml gives a function (Globals and its own)."""
    template = load_template()
    names = set(template["Globals"]["Function"]["Environment"]["Variables"])
    own = template["Resources"][function]["Properties"].get("Environment") or {}
    return names | set(own.get("Variables") or {})


def test_the_sam_env_vars_file_names_exactly_what_each_function_declares():
    """`sam local invoke --env-vars` passes a function only the variables the
    template declares: a name the file adds is silently dropped (an endpoint
    would not apply, and the function would call AWS), a name it misses keeps
    the template's value, which names no local resource."""
    variables = json.loads(SAM_ENV_VARS.read_text())
    functions = resources_of_type(load_template(), "AWS::Serverless::Function")
    assert set(variables) - {"Parameters"} <= set(functions)
    for function in functions:
        given = set(variables["Parameters"]) | set(variables.get(function, {}))
        assert given == declared_environment(function), function
    assert "AWS_ENDPOINT_URL" in variables["Parameters"]


def test_the_authorizer_sample_allows_the_demo_key(demo):
    event = json.loads((EVENTS_DIR / "AuthorizerFunction.Request.json").read_text())
    answer = load_handler("AuthorizerFunction")(event, LambdaContext("AuthorizerFunction"))
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert answer["context"]["project"] == DEFAULT_PROJECT_TOKEN
