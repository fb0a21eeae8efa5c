"""docs/openapi.json: generated from the models (propsync.openapi), valid
OpenAPI 3.1, current, and covering exactly the API routes of template.yaml
(all but the web console's pages, which serve HTML, script and style). That
every answer matches it is checked on every answer of the API tests
(tests/support/openapi_check.py); the checker itself is tested here."""

import json

import pytest
from openapi_spec_validator import validate

from propsync.openapi import document_text
from propsync_local.apigw import HttpResponse, api_routes
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
    assert documented == {(route.method, route.resource) for route in api_routes()}


@pytest.mark.parametrize("route", api_routes(), ids=lambda r: f"{r.method} {r.resource}")
def test_private_routes_need_the_api_key_and_tracking_routes_do_not(route):
    document = openapi_document()
    operation = document["paths"][route.resource][route.method.lower()]
    security = operation.get("security", document["security"])
    assert (security != []) == route.private


@pytest.mark.parametrize(
    "route",
    [r for r in api_routes() if r.method != "GET"],
    ids=lambda r: f"{r.method} {r.resource}",
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


def _answer_schemas():
    """The component schemas the responses use, and those they use in turn."""
    document = openapi_document()
    schemas = document["components"]["schemas"]
    found, pending = set(), [document["paths"]]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            name = ref.rsplit("/", 1)[-1]
            if ref and name not in found:
                found.add(name)
                pending.append(schemas[name])
            pending.extend(v for k, v in node.items() if k not in ("requestBody", "parameters"))
        elif isinstance(node, list):
            pending.extend(node)
    return {name: schemas[name] for name in sorted(found)}


@pytest.mark.parametrize(
    ("name", "field"),
    [
        (name, field)
        for name, schema in _answer_schemas().items()
        for field in schema.get("properties", {})
        if field not in schema.get("required", [])
    ],
)
def test_an_optional_field_of_an_answer_is_left_out_never_null(name, field):
    """Handlers leave a field out when it does not apply (no command_id, no
    merge): a client generated from the document must not expect null."""
    schema = openapi_document()["components"]["schemas"][name]["properties"][field]
    validator = OAS31Validator({**schema, "components": openapi_document()["components"]})
    assert not validator.is_valid(None), f"{name}.{field} is documented as nullable"


def _gateway_responses():
    from propsync_local.cfn_template import load_template  # noqa: PLC0415

    api = load_template()["Resources"]["PropsyncApi"]["Properties"]
    return api["GatewayResponses"]


SAMPLE_PATH = {
    "project_token": TOKEN,
    "customer_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "execution_id": "0123456789abcdef0123456789abcdef",
}


@pytest.mark.parametrize("kind", sorted(_gateway_responses()))
@pytest.mark.parametrize("route", api_routes(), ids=lambda r: f"{r.method} {r.resource}")
def test_every_answer_of_api_gateway_a_route_can_meet_is_documented(kind, route):
    """The gateway's own answers (template.yaml's GatewayResponses): 429 and
    413 on every route, 401 on the private ones (404 is for paths no route
    serves). No local test can make API Gateway throttle, so its answer is
    checked here."""
    response = _gateway_responses()[kind]
    if kind == "MISSING_AUTHENTICATION_TOKEN" or (kind == "UNAUTHORIZED" and not route.private):
        return
    path = route.resource.format(**SAMPLE_PATH)
    body = json.loads(response["ResponseTemplates"]["application/json"])
    check_answer(route.method, path, answer(response["StatusCode"], body))
