"""Issue 17: an API function answers before API Gateway's 29 s, so a client
never gets a 504 while the function goes on writing. Its Timeout leaves room
for a cold start's init; within it, RetryWithinDeadline starts no attempt of
a request (a first one or a retry, whatever failed before) that could not end
before the answer is due, so the function answers in time, however its
requests fail (docs/DECISIONS.md: "API functions answer before API Gateway's
29 s")."""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync import bucket
from propsync.store import throttling
from propsync.store.dynamo import client_and_table_from_environment, client_config
from propsync.store.throttling import RetryWithinDeadline, TimeBudgetSpent, set_time_budget
from propsync_local.apigw import function_timeout, routes
from propsync_local.cfn_template import REPO_ROOT, load_template
from tests.unit.test_throttling import needs_retry, offline_client

API_GATEWAY_TIMEOUT = 29.0  # REST API integration timeout, seconds
LAMBDA_INIT_LIMIT = 10.0  # a cold start's init phase, at most (then it is retried)

TEMPLATE = load_template()
API_FUNCTIONS = sorted({route.function for route in routes()})
# the console serves files and calls nothing (test_template: stdlib only)
CALLING_AWS = [function for function in API_FUNCTIONS if function != "ConsoleFunction"]
# the clients the API functions send AWS requests with, and their configs
API_CLIENT_CONFIGS = {"DynamoDB": client_config(), "S3 (import API)": bucket.api_client_config()}


@pytest.fixture
def no_deadline() -> Iterator[None]:
    set_time_budget(None)
    yield
    set_time_budget(None)


def test_the_api_functions_are_the_ones_with_api_events():
    assert API_FUNCTIONS == [
        "ConsoleFunction",
        "CustomersEraseFunction",
        "CustomersFunction",
        "CustomersReadFunction",
        "ImportsApiFunction",
        "TrackingFunction",
    ]


@pytest.mark.parametrize("function", API_FUNCTIONS)
def test_a_cold_api_function_still_ends_before_api_gateways_timeout(function):
    """API Gateway waits 29 s for a function, its init included: a cold
    start's init (at most 10 s) and the whole Timeout fit in it."""
    assert function_timeout(function) + LAMBDA_INIT_LIMIT < API_GATEWAY_TIMEOUT


def test_the_import_and_worker_functions_keep_their_own_timeouts():
    resources = TEMPLATE["Resources"]
    timeouts = {name: resources[name]["Properties"]["Timeout"] for name in resources if name in {
        "ImportFunction", "ImportChunkFunction", "TrackingWorkerFunction"}}  # fmt: skip
    assert timeouts == {
        "ImportFunction": 900,
        "ImportChunkFunction": 900,
        "TrackingWorkerFunction": 60,
    }


@pytest.mark.parametrize("function", CALLING_AWS)
@pytest.mark.parametrize("client", sorted(API_CLIENT_CONFIGS))
def test_every_api_function_has_time_for_an_attempt_of_each_client(function, client):
    """The longest attempt (connect and read timeouts) and the time kept to
    answer fit in the Timeout, with room for the requests before it."""
    attempt = throttling.attempt_seconds(API_CLIENT_CONFIGS[client])
    assert 2 * attempt + throttling.ANSWER_SECONDS <= function_timeout(function)


def handler_decorators(function: str) -> list[str]:
    """The decorators of the function's handler, by name, read from its code."""
    properties = TEMPLATE["Resources"][function]["Properties"]
    module, name = properties["Handler"].split(".")
    tree = ast.parse((REPO_ROOT / properties["CodeUri"] / f"{module}.py").read_text())
    [handler] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    return [ast.unparse(d).split("(")[0].split(".")[-1] for d in handler.decorator_list]


@pytest.mark.parametrize("function", CALLING_AWS)
def test_every_api_function_that_calls_aws_sets_its_time_budget(function):
    assert "within_time_budget" in handler_decorators(function)


def test_the_clients_of_the_api_functions_keep_to_the_budget(no_deadline, monkeypatch):
    """Both clients the API routes use refuse to send a request that could
    not end in time, before any connection is made (nothing listens on
    127.0.0.1:9)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", "budget-table")
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", "budget-bucket")
    client_and_table_from_environment.cache_clear()
    bucket.api_bucket_from_environment.cache_clear()
    try:
        dynamodb, table = client_and_table_from_environment()
        imports_bucket = bucket.api_bucket_from_environment()
        set_time_budget(throttling.ANSWER_SECONDS + 0.5)  # less than one attempt
        with pytest.raises(TimeBudgetSpent, match="GetItem not sent"):
            dynamodb.get_item(TableName=table, Key={"pk": {"S": "x"}})
        with pytest.raises(TimeBudgetSpent, match="GetObject not sent"):
            imports_bucket.read("reports/x.json")
    finally:
        client_and_table_from_environment.cache_clear()
        bucket.api_bucket_from_environment.cache_clear()


def test_a_spent_budget_is_transient_for_the_routes():
    from propsync.store.dynamo import is_transient_error  # noqa: PLC0415

    assert is_transient_error(TimeBudgetSpent(operation="PutItem"))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


OUTCOMES = ("ok", "ThrottlingException", "ProvisionedThroughputExceededException",
            "InternalServerError", None)  # fmt: skip  # None: the connection was lost


def one_request(client: Any, clock: Clock, attempts: list[tuple[float, float]], draw: Any) -> None:
    """One call of the client: its attempts, each taking up to the longest
    an attempt may, failing as ``draw`` decides, retried as the client's
    hooks decide; (start, end) of each attempt into ``attempts``."""
    model = client.meta.service_model.operation_model("PutItem")
    try:
        client.meta.events.emit_until_response(
            "before-call.dynamodb.PutItem",
            model=model,
            params={"headers": {}, "body": b"", "url": "http://127.0.0.1:9/", "context": {}},
            request_signer=None,
            context={},
        )
    except TimeBudgetSpent:
        return
    call: dict[str, Any] = {}
    limit = throttling.attempt_seconds(client.meta.config)
    for attempt in range(1, 1000):
        start = clock.now
        clock.now += draw(st.floats(0, limit))
        attempts.append((start, clock.now))
        outcome = draw(st.sampled_from(OUTCOMES))
        if outcome == "ok":
            return
        delay = needs_retry(client, "PutItem", attempt, outcome, call)
        if delay is None or delay is False:
            return
        clock.now += delay
    pytest.fail("a request was retried a thousand times")


@settings(max_examples=200, deadline=None)
@given(data=st.data(), remaining=st.floats(0, 40))
def test_every_attempt_ends_before_the_answer_is_due_whatever_fails(data, remaining):
    """An invocation with ``remaining`` seconds: requests one after another
    (a route's reads and writes), each attempt hanging up to its connect and
    read timeouts or failing at once, throttled, refused with a 500 or its
    connection lost, retried by botocore's standard mode or the throttling
    policy. No attempt ends after the answer is due (the time left less
    ANSWER_SECONDS): the handler answers before its Timeout."""
    set_time_budget(remaining)
    try:
        deadline = throttling._deadline.at
        assert deadline is not None
        clock = Clock(deadline - (remaining - throttling.ANSWER_SECONDS))
        client = offline_client()
        RetryWithinDeadline(clock=clock, rng=lambda: data.draw(st.floats(0, 1))).attach(client)
        attempts: list[tuple[float, float]] = []
        for _ in range(data.draw(st.integers(1, 8), label="requests")):
            clock.now += data.draw(st.floats(0, 2), label="work between requests")
            one_request(client, clock, attempts, data.draw)
        assert all(end <= deadline for _start, end in attempts)
    finally:
        set_time_budget(None)


def test_within_a_budget_a_failing_request_is_still_retried(no_deadline):
    """The budget takes away only the retries that could not end in time:
    with time left, a 500 and a lost connection are retried as botocore's
    standard mode retries them."""
    client = offline_client()
    RetryWithinDeadline().attach(client)
    set_time_budget(17.0)
    for code in ("InternalServerError", None):
        delay = needs_retry(client, "PutItem", 1, code)
        assert isinstance(delay, float), code
        assert delay >= 0, code


def test_a_retry_that_could_not_end_in_time_is_not_made(no_deadline):
    client = offline_client()
    later = 100.0
    clock = Clock(time.monotonic() + later)
    RetryWithinDeadline(clock=clock).attach(client)
    set_time_budget(later)  # due in ANSWER_SECONDS less than ``later`` from now
    for code in ("InternalServerError", None, "ThrottlingException"):
        assert needs_retry(client, "PutItem", 1, code) is False, code


def test_a_throttle_of_the_s3_client_is_retried_within_the_budget(no_deadline):
    """The policy is the same on the import API's S3 client."""
    client = boto3.client(
        "s3",
        config=bucket.api_client_config(),
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
    )
    RetryWithinDeadline(rng=lambda: 1.0).attach(client)
    set_time_budget(17.0)
    from botocore.hooks import first_non_none_response  # noqa: PLC0415

    from tests.unit.test_throttling import AWSResponse  # noqa: PLC0415

    model = client.meta.service_model.operation_model("GetObject")
    parsed = {"Error": {"Code": "SlowDown", "Message": "SlowDown"}, "ResponseMetadata": {}}
    responses = client.meta.events.emit(
        "needs-retry.s3.GetObject",
        response=(AWSResponse("http://127.0.0.1:9", 503, {}, None), parsed),
        endpoint=None,
        operation=model,
        attempts=9,  # past botocore's attempts: the policy's retry
        caught_exception=None,
        request_dict={"context": {}},
    )
    delay = first_non_none_response(responses)
    assert isinstance(delay, float)
    assert 0 < delay <= RetryWithinDeadline.MAX_DELAY
