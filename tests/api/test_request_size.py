"""Issue 17: bodies over Lambda's 6 MB get the same clear 413 as over the
documented limit. Lambda takes an event of at most 6 MB: the body inside it,
as a JSON string (a quote or a backslash escaped, so counted twice), with the
request's headers and context. A request whose event is larger never reaches
the function: API Gateway answers it, with the REQUEST_TOO_LARGE gateway
response (propsync's shape), as `make run` does; with the optional web ACL,
WAF answers the same for a Content-Length over 6 MB before API Gateway
(tests/unit/test_template_protection.py). On every route that reads a body,
whatever makes the event large, never a 5xx (docs/DECISIONS.md: "Bodies over
6 MB")."""

import json

import pytest

from propsync.limits import MAX_REQUEST_BYTES
from propsync_local import apigw
from tests.api.test_documented_answers import WITH_BODY, customer, routes  # noqa: F401
from tests.conftest import PROJECT

GATEWAY_413 = {"success": False, "error": "Request too large: at most 6 MB"}


def spaces(size: int) -> str:
    """A JSON body of ``size`` bytes that every route parses (an object)."""
    return "{}" + " " * (size - 2)


def quotes(size: int) -> str:
    """A JSON body of ``size`` bytes, most of them quotes inside a string:
    each takes two bytes of the body and four of the event."""
    inner = '\\"' * ((size - 12) // 2)
    body = json.dumps({"p": "x"}).replace('"x"', f'"{inner}"')
    return body + " " * (size - len(body))


# The gateway answers before any function runs: what stores the data, and
# how tracking writes, cannot change the answer, so one of each is enough
# (132 cases took 5 minutes of the suite on both engines and modes).
@pytest.mark.parametrize("engine", ["moto"], indirect=True)
@pytest.mark.parametrize("tracking_writes", ["sync"])
@pytest.mark.parametrize("route", WITH_BODY)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(spaces(MAX_REQUEST_BYTES), id="6-MB-of-body"),
        pytest.param(quotes(MAX_REQUEST_BYTES // 2 + 1024), id="3-MB-of-quotes"),
        pytest.param(spaces(MAX_REQUEST_BYTES + 1), id="over-6-MB"),
    ],
)
def test_a_request_whose_event_lambda_cannot_take_is_the_gateways_413(
    api,
    customer,  # noqa: F811
    route,
    body,
):
    """Within the function's own limit or not: the event is over 6 MB."""
    method, path = routes(api, customer)[route]
    assert len(body.encode()) > MAX_REQUEST_BYTES // 2
    response = api.request(method, path, body=body)
    assert response.status == 413
    assert response.json() == GATEWAY_413


def test_the_functions_own_limit_still_answers_what_calls_it_directly(api):
    """`sam local invoke`, or anything that hands the function an event
    itself: a body over 6 MB is the function's own 413, saying its size."""
    route = apigw.route("TrackingFunction", "Batch")
    for size, status in ((MAX_REQUEST_BYTES + 1, 413), (MAX_REQUEST_BYTES, 200)):
        body = json.dumps({"commands": [{"name": "system/time"}]})
        event = apigw.rest_event(
            route,
            path_parameters={"project_token": PROJECT},
            headers={"Content-Type": "application/json"},
            body=body + " " * (size - len(body)),
        )
        answer = apigw.load_handler("TrackingFunction")(
            event, apigw.LambdaContext("TrackingFunction")
        )
        assert answer["statusCode"] == status, answer["body"][:300]
        if status == 413:
            assert json.loads(answer["body"]) == {
                "success": False,
                "error": f"request body is {size} bytes; at most 6291456 bytes (6 MB) are "
                "allowed: split the batch",
            }
