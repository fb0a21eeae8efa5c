"""docs/openapi.json: generated from the models (propsync.openapi), valid
OpenAPI 3.1, current, and covering exactly the routes of template.yaml. That
every answer matches it is checked on every answer of the API tests
(tests/support/openapi_check.py); the checker itself is tested here."""

import json

import pytest
from openapi_spec_validator import validate

from propsync.openapi import document_text
from propsync_local.apigw import HttpResponse, routes
from tests.support.openapi_check import (
    OPENAPI_PATH,
    AnswerNotDocumented,
    OAS31Validator,
    check_answer,
    openapi_document,
)

TOKEN = "11111111-1111-1111-1111-111111111111"


def test_the_committed_document_is_the_generated_one():
    assert OPENAPI_PATH.read_text(encoding="utf-8") == document_text(), (
        "docs/openapi.json is stale: run `make openapi` and commit it"
    )


def test_the_document_is_valid_openapi_3_1():
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_it_documents_exactly_the_routes_of_the_template():
    documented = {
        (method.upper(), path)
        for path, operations in openapi_document()["paths"].items()
        for method in operations
    }
    assert documented == {(route.method, route.resource) for route in routes()}


@pytest.mark.parametrize("route", routes(), ids=lambda r: f"{r.method} {r.resource}")
def test_private_routes_need_the_api_key_and_tracking_routes_do_not(route):
    document = openapi_document()
    operation = document["paths"][route.resource][route.method.lower()]
    security = operation.get("security", document["security"])
    assert (security != []) == route.private


@pytest.mark.parametrize(
    "route", [r for r in routes() if r.method != "GET"], ids=lambda r: f"{r.method} {r.resource}"
)
def test_the_sample_request_of_each_route_matches_its_documented_body(route):
    document = openapi_document()
    schema = document["paths"][route.resource][route.method.lower()]["requestBody"]["content"]
    validator = OAS31Validator(
        {**schema["application/json"]["schema"], "components": document["components"]}
    )
    body = json.loads(json.loads(route.sample_path.read_text())["body"])
    assert list(validator.iter_errors(body)) == []


def answer(status, body):
    return HttpResponse(status, {"Content-Type": "application/json"}, json.dumps(body))


def test_the_checker_accepts_a_documented_answer():
    check_answer(
        "GET", f"/track/v2/projects/{TOKEN}/system/time", answer(200, {"success": True, "time": 1})
    )


@pytest.mark.parametrize(
    ("status", "body", "complaint"),
    [
        (200, {"success": True, "time": 1, "extra": 1}, "'extra' was unexpected"),
        (200, {"success": True}, "'time' is a required property"),
        (200, {"success": "yes", "time": 1}, "True was expected"),
        (418, {"success": False, "error": "teapot"}, "does not document"),
        (400, {"success": False}, "'error' is a required property"),
    ],
)
def test_the_checker_refuses_an_undocumented_answer(status, body, complaint):
    with pytest.raises(AnswerNotDocumented, match=complaint.replace("(", r"\(")):
        check_answer("GET", f"/track/v2/projects/{TOKEN}/system/time", answer(status, body))
