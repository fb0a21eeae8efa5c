"""The events/ samples are what `sam local invoke -e` sends: each one, as it is
on disk, runs through its real handler against the demo project and key."""

import json

import pytest

from propsync.access import Permission, create_api_key
from propsync_local.apigw import EVENTS_DIR, LambdaContext, load_handler, routes
from propsync_local.stack import DEFAULT_KEY_ID, DEFAULT_KEY_SECRET, DEFAULT_PROJECT_TOKEN


@pytest.fixture
def demo(api):
    api.access.create_project(DEFAULT_PROJECT_TOKEN, "demo")
    if api.access.get_api_key(DEFAULT_KEY_ID) is None:
        create_api_key(
            api.access,
            DEFAULT_PROJECT_TOKEN,
            frozenset(p.value for p in Permission),
            key_id=DEFAULT_KEY_ID,
            secret=DEFAULT_KEY_SECRET,
        )
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


def test_the_customers_samples_run(demo):
    invoke("TrackingFunction", "Batch")  # creates the customer "mgalik" the samples name
    export = invoke("CustomersReadFunction", "ExportOne")
    assert export["statusCode"] == 200
    assert json.loads(export["body"])["properties"] == {
        "first_name": "Marian",
        "last_name": "Galik",
    }
    # the sample's customer id is a placeholder: an unknown customer answers 404
    assert invoke("CustomersReadFunction", "GetCustomer")["statusCode"] == 404
    assert invoke("CustomersFunction", "PatchCustomer")["statusCode"] == 404


def test_the_authorizer_sample_allows_the_demo_key(demo):
    event = json.loads((EVENTS_DIR / "AuthorizerFunction.Request.json").read_text())
    answer = load_handler("AuthorizerFunction")(event, LambdaContext("AuthorizerFunction"))
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert answer["context"]["project"] == DEFAULT_PROJECT_TOKEN
