"""Every line the Logger writes while a function handles an API request carries
that request's API Gateway id (``requestContext.requestId``) as
``correlation_id``, the authorizer's lines included (a REQUEST authorizer's
event has it too): one request's lines are found together across functions,
and a container's next request never carries the last one's id.

Each sample of events/ runs through its real handler, twice in one container
with two request ids, and once more against a table that does not exist, so
that the error lines are checked too.

The tracking worker (TrackingWrites=queued) handles no API request, but each
message names the request that queued its commands: the worker's lines about
a message carry that request's id, so a command's lines are found together
from the API's answer to the worker's writes."""

import io
import json

import pytest

from propsync.container import forget_container_state
from propsync.id_type_cache import forget_id_types
from propsync.observability import logger
from propsync_local.apigw import EVENTS_DIR, LambdaContext, load_handler
from propsync_local.stack import (
    DEFAULT_KEY_ID,
    DEFAULT_KEY_SECRET,
    DEFAULT_PROJECT_TOKEN,
    create_demo_access,
    create_sample_customer,
)
from tests.support.tracking_modes import accepted

API_SAMPLES = [
    ("TrackingFunction", "Batch"),
    ("TrackingFunction", "Customers"),
    ("TrackingFunction", "SystemTime"),
    ("CustomersReadFunction", "GetCustomer"),
    ("CustomersReadFunction", "ExportOne"),
    ("CustomersReadFunction", "Attributes"),
    ("CustomersReadFunction", "Key"),
    ("ImportsApiFunction", "Preview"),
    ("ImportsApiFunction", "Start"),
    ("ImportsApiFunction", "List"),
    ("ImportsApiFunction", "Get"),
    ("CustomersFunction", "PatchCustomer"),
    ("CustomersEraseFunction", "Anonymize"),
    ("AuthorizerFunction", "Request"),
]


@pytest.fixture
def demo(api, imports, monkeypatch):
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", imports.bucket)  # the import routes'
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


def invoke_worker(request_id: str) -> dict:
    """The worker's sample event, its message naming ``request_id``."""
    event = json.loads((EVENTS_DIR / "TrackingWorkerFunction.SQS.json").read_text())
    [record] = event["Records"]
    message = json.loads(record["body"])
    record["body"] = json.dumps({**message, "request_id": request_id})
    return load_handler("TrackingWorkerFunction")(event, LambdaContext("TrackingWorkerFunction"))


def test_every_line_of_the_worker_carries_the_request_id_its_message_names(demo, logged):
    for request_id in ("worker-first", "worker-second"):
        assert invoke_worker(request_id) == {"batchItemFailures": []}
        lines = logged.read()
        assert any(line["message"] == "tracking message applied" for line in lines), lines
        assert [line.get("correlation_id") for line in lines] == [request_id] * len(lines)


def _worker_fails_the_sample(monkeypatch) -> list[dict]:
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", "no-such-table")
    forget_container_state()  # a container of a stack whose table is gone
    return invoke_worker("worker-failing")["batchItemFailures"]


def test_the_worker_logs_why_a_message_comes_back_with_its_request_id(demo, logged, monkeypatch):
    assert len(_worker_fails_the_sample(monkeypatch)) == 1
    errors = [line for line in logged.read() if line["level"] == "ERROR"]
    assert [line["message"] for line in errors] == ["tracking message failed; it comes back"]
    assert errors[0]["correlation_id"] == "worker-failing"


def test_every_line_of_a_failed_message_carries_its_request_id(demo, logged, monkeypatch):
    """The sample's receipt handle is no real one, so setting its retry delay
    fails too (as it does when a handle expired): that line is about the
    message as much as the error before it."""
    assert len(_worker_fails_the_sample(monkeypatch)) == 1
    lines = logged.read()
    assert [line.get("correlation_id") for line in lines] == ["worker-failing"] * len(lines)


def test_a_tracking_requests_lines_carry_its_request_id_the_workers_included(api, logged):
    """In the queued mode the worker applies the request's command (the test
    client delivers the queue within the request, as soon as it may): its
    lines carry the request's id, as the route's do."""
    for person in ("first", "second"):
        response = api.track_customer(
            {"customer_ids": {"registered": person}, "properties": {"a": 1}}
        )
        assert response.status == 200, response.body
        request_id = response.headers["x-amzn-RequestId"]
        lines = logged.read()
        worker_lines = [
            line for line in lines if line.get("function_name") == "TrackingWorkerFunction"
        ]
        if api.queued:
            assert [line["message"] for line in worker_lines] == ["tracking message applied"]
            assert worker_lines[0]["applied"] == 1
        else:
            assert worker_lines == []
        assert [line.get("correlation_id") for line in lines] == [request_id] * len(lines)


def test_each_message_of_a_worker_event_logs_the_id_of_its_own_request(api, logged):
    """Two requests' messages in one SQS event: each message's lines carry
    its request's id, the error line of a command that is dead-lettered too."""
    if not api.queued:
        pytest.skip("the synchronous mode has no worker")
    api.access.add_id_type(api.project, "email", hard=True)
    forget_id_types()  # a new container: the id type is known at once
    api.track({"registered": "anna"}, {"a": 1}, 100)
    api.track({"registered": "bob", "email": "bob@x"}, {"a": 1}, 100)
    logged.read()

    with api.worker_stopped():
        plain = api.batch(
            [
                {
                    "name": "customers",
                    "data": {"customer_ids": {"registered": "c"}, "properties": {}},
                },
                {
                    "name": "customers",
                    "data": {"customer_ids": {"registered": "d"}, "properties": {}},
                },
            ]
        )
        conflict = api.track_customer(
            {"customer_ids": {"registered": "anna", "email": "bob@x"}, "properties": {"a": 2}}
        )
    assert plain.json()["results"] == [accepted(), accepted()]
    assert conflict.json() == accepted()
    request_of = {2: plain.headers["x-amzn-RequestId"], 1: conflict.headers["x-amzn-RequestId"]}
    logged.read()

    assert api.queues.deliver(max_events=1) == 2  # both messages in one event
    lines = logged.read()
    applied = {
        line["commands"]: line for line in lines if line["message"] == "tracking message applied"
    }
    assert set(applied) == {1, 2}
    for commands, request_id in request_of.items():
        message_lines = [
            line for line in lines if line.get("message_id") == applied[commands]["message_id"]
        ]
        assert {line["correlation_id"] for line in message_lines} == {request_id}
    [dead] = [line for line in lines if line["level"] == "ERROR"]
    assert dead["message"] == "tracking command can never be applied: dead-lettered"
    assert (dead["message_id"], dead["correlation_id"]) == (applied[1]["message_id"], request_of[1])
    assert {line.get("correlation_id") for line in lines} == set(request_of.values())
    [letter] = api.queues.dead_letters()
    assert letter["request_id"] == request_of[1]
