"""Every line the Logger writes while a function handles an API request carries
that request's API Gateway id (``requestContext.requestId``) as
``correlation_id``, the authorizer's lines included (a REQUEST authorizer's
event has it too): one request's lines are found together across functions,
and a container's next request never carries the last one's id.

Each sample of events/ runs through its real handler, twice in one container
with two request ids, and once more against a table that does not exist, so
that the error lines are checked too."""

import io
import json

import pytest

from propsync.container import forget_container_state
from propsync.observability import logger
from propsync_local.apigw import EVENTS_DIR, LambdaContext, load_handler
from propsync_local.stack import (
    DEFAULT_KEY_ID,
    DEFAULT_KEY_SECRET,
    DEFAULT_PROJECT_TOKEN,
    create_demo_access,
    create_sample_customer,
)

API_SAMPLES = [
    ("TrackingFunction", "Batch"),
    ("TrackingFunction", "Customers"),
    ("TrackingFunction", "SystemTime"),
    ("CustomersReadFunction", "GetCustomer"),
    ("CustomersReadFunction", "ExportOne"),
    ("CustomersFunction", "PatchCustomer"),
    ("AuthorizerFunction", "Request"),
]


@pytest.fixture
def demo(api):
    create_demo_access(DEFAULT_PROJECT_TOKEN, DEFAULT_KEY_ID, DEFAULT_KEY_SECRET)
    create_sample_customer(DEFAULT_PROJECT_TOKEN)
    return api


def invoke(function: str, sample: str, request_id: str) -> None:
    event = json.loads((EVENTS_DIR / f"{function}.{sample}.json").read_text())
    event["requestContext"]["requestId"] = request_id
    try:
        load_handler(function)(event, LambdaContext(function))
    except Exception:  # the authorizer raises what the table's absence makes it
        assert function == "AuthorizerFunction"


class LogLines:
    """What the Logger writes (to stdout on Lambda), one JSON line each. Read
    from its own handler: Metrics' EMF documents, printed beside them, are
    metrics, not log lines."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def read(self) -> list[dict]:
        text = self.stream.getvalue()
        self.stream.seek(0)
        self.stream.truncate()
        return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def logged():
    lines = LogLines()
    previous = logger.registered_handler.setStream(lines.stream)
    yield lines
    logger.registered_handler.setStream(previous)


def test_the_authorizer_sample_has_a_request_id_as_api_gateway_sends_it():
    event = json.loads((EVENTS_DIR / "AuthorizerFunction.Request.json").read_text())
    assert event["type"] == "REQUEST"
    assert event["requestContext"]["requestId"]


@pytest.mark.parametrize(("function", "sample"), API_SAMPLES)
def test_every_line_of_a_request_carries_its_request_id(demo, logged, function, sample):
    for request_id in (f"{function}-{sample}-first", f"{function}-{sample}-second"):
        invoke(function, sample, request_id)
        lines = logged.read()
        assert [line.get("correlation_id") for line in lines] == [request_id] * len(lines)


@pytest.mark.parametrize(("function", "sample"), API_SAMPLES)
def test_the_error_lines_of_a_request_carry_its_request_id(
    demo, logged, monkeypatch, function, sample
):
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", "no-such-table")
    forget_container_state()  # a container of a stack whose table is gone
    request_id = f"{function}-{sample}-failing"
    invoke(function, sample, request_id)
    lines = logged.read()
    if function != "AuthorizerFunction":  # the handlers log what they answer 5xx for
        assert any(line["level"] == "ERROR" for line in lines), lines
    assert [line.get("correlation_id") for line in lines] == [request_id] * len(lines)


def test_an_answer_names_the_request_id_its_log_lines_carry(demo, logged):
    """As API Gateway's x-amzn-RequestId does: a client's answer leads to the
    log lines of its request (authorizer and function)."""
    api = demo
    response = api.get_customer(
        "nobody-here", query={"id_type": "registered"}, authorization=api.authorization
    )
    assert response.status == 404
    request_id = response.headers["x-amzn-RequestId"]
    lines = logged.read()
    assert lines, "the authorizer logs the credential it accepted"
    assert {line.get("correlation_id") for line in lines} == {request_id}


def test_every_answer_names_a_request_id_even_api_gateways_own(api):
    refused = api.request("GET", "/no/such/route")
    assert refused.status == 404
    unauthenticated = api.get_customer("x", authorization=None)
    assert unauthenticated.status == 401
    answers = [refused, unauthenticated, api.batch([{"name": "system/time"}])]
    ids = [answer.headers["x-amzn-RequestId"] for answer in answers]
    assert all(ids)
    assert len(set(ids)) == 3
