"""Tracking first: when DynamoDB throttles the API functions' writes, they
are retried within the request's time budget (store.throttling's
RetryWithinDeadline on the container's client, the budget set by
within_time_budget from the Lambda context), and never paced as an import's
writes are. Through the routes, the real handlers and both engines, with the
throttling injected at botocore's layer (tests.support.faults)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from propsync.store import throttling
from propsync.store.dynamo import client_and_table_from_environment, client_config
from propsync.store.throttling import WRITE_OPERATIONS, RetryWithinDeadline, WritePacer
from propsync.tracking import RETRY_LATER
from propsync_local import apigw
from propsync_local.triggers import ImportTriggers
from tests.conftest import PROJECT
from tests.support.faults import FaultInjector

TOTAL_ATTEMPTS = 6  # store.dynamo.client_config: botocore's first try and 5 retries
THROTTLED_ATTEMPTS = 12
MARK = "throttled-property"


@pytest.fixture
def tracking_writes() -> str:
    return "sync"  # the routes write (the queued mode's worker: test_queued_spikes.py)


@pytest.fixture(autouse=True)
def _short_waits(monkeypatch):
    # botocore's backoff, and the waits between the budget's retries (at most
    # a second each): a few milliseconds, so a dozen retries take no time.
    # Whether a throttle is retried is what these tests are about; the waits'
    # lengths are tests/unit/test_throttling.py's.
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    monkeypatch.setattr(RetryWithinDeadline, "MAX_DELAY", 0.005)


def service_client() -> Any:
    return client_and_table_from_environment()[0]


def marked_writes(count: int | None) -> Callable[[str, dict], bool]:
    """A ``should_fail`` picking the first ``count`` attempts (every one if
    None) of the writes that carry MARK: one command's, not the others'."""
    seen = itertools.count(1)

    def picks(operation: str, params: dict) -> bool:
        if operation not in WRITE_OPERATIONS or MARK.encode() not in (params["body"] or b""):
            return False
        return count is None or next(seen) <= count

    return picks


def throttle(count: int | None) -> FaultInjector:
    return FaultInjector(1.0, kinds=("throttling",), should_fail=marked_writes(count)).attach(
        service_client()
    )


def command(registered: str, value: int) -> dict[str, Any]:
    return {
        "name": "customers",
        "data": {"customer_ids": {"registered": registered}, "properties": {MARK: value}},
    }


def stored(api, registered: str) -> dict[str, Any] | None:
    read = api.get_customer(registered, query={"id_type": "registered"})
    return None if read.status == 404 else read.json()["properties"]


def test_a_write_throttled_past_botocores_attempts_is_retried_within_the_budget(api):
    api.batch([{"name": "system/time"}])  # a warm container: the project is known
    faults = throttle(THROTTLED_ATTEMPTS)

    response = api.batch([command("patient", 1), {"name": "system/time"}])

    assert response.status == 200
    first, second = response.json()["results"]
    assert first["success"] is True, first
    assert second["success"] is True
    assert faults.injected["throttling"] == THROTTLED_ATTEMPTS
    assert stored(api, "patient") == {MARK: 1}


def test_without_a_time_budget_the_same_write_fails_with_retry_later(api, monkeypatch):
    """The contrast, as before the budget: botocore's standard mode gives the
    throttled write up after its attempts and the command answers "retry"."""
    api.batch([{"name": "system/time"}])
    monkeypatch.setattr(throttling, "set_time_budget", lambda _seconds: None)
    faults = throttle(THROTTLED_ATTEMPTS)

    response = api.batch([command("impatient", 1)])

    assert response.status == 200
    assert response.json()["results"] == [{"success": False, "errors": [RETRY_LATER]}]
    assert faults.injected["throttling"] == TOTAL_ATTEMPTS  # one write, botocore's attempts
    assert stored(api, "impatient") in (None, {})  # nothing of it stored


# the longest one attempt of the API functions' DynamoDB client may take
ATTEMPT_SECONDS = throttling.attempt_seconds(client_config())


@pytest.mark.parametrize(
    ("remaining_ms", "attempted"),
    [((throttling.ANSWER_SECONDS + ATTEMPT_SECONDS) * 1000 + 300, True), (500, False)],
)
def test_throttling_that_never_ends_answers_retry_later_within_the_budget(
    api, monkeypatch, remaining_ms, attempted
):
    """A budget of 0.3 s beyond the time kept to answer and the longest an
    attempt may take: the throttled write is tried a bounded number of
    times, then given up in time, and the single route answers 503. Less
    time left than that (500 ms): no request is sent that could not end in
    time, and the route answers the same 503 at once."""
    api.batch([{"name": "system/time"}])
    monkeypatch.setattr(RetryWithinDeadline, "MAX_DELAY", 1.0)  # the real waits: few attempts
    with monkeypatch.context() as budget:
        budget.setattr(
            apigw.LambdaContext, "get_remaining_time_in_millis", lambda _self: remaining_ms
        )
        faults = throttle(None)

        response = api.track_customer(command("doomed", 1)["data"])

    assert (response.status, response.json()) == (503, {"success": False, "errors": [RETRY_LATER]})
    if attempted:
        assert 1 <= faults.injected["throttling"] <= 50
    else:
        assert faults.injected["throttling"] == 0
    faults.detach(service_client())
    assert stored(api, "doomed") in (None, {})


def test_a_customers_route_write_throttled_past_botocores_attempts_succeeds(api):
    customer = api.track({"registered": "edited"}, {"tier": "gold"})["customer_id"]
    faults = throttle(THROTTLED_ATTEMPTS)

    response = api.patch_customer(customer, {"properties": {MARK: 2}})

    assert response.status == 200, response.body
    assert faults.injected["throttling"] == THROTTLED_ATTEMPTS
    assert stored(api, "edited") == {"tier": "gold", MARK: 2}


# ----------------------------------------------- never paced as an import


def pacing_hooks(client: Any) -> list[Any]:
    """The handlers of a WritePacer among those the client would call before
    each attempt of a write. (botocore has no public way to list an event's
    handlers: this reads its emitter's table, as registered.)"""
    emitter = client.meta.events._emitter
    return [
        handler
        for operation in WRITE_OPERATIONS
        for handler in emitter._handlers.prefix_search(f"request-created.dynamodb.{operation}")
        if isinstance(getattr(handler, "__self__", None), WritePacer)
    ]


@pytest.mark.parametrize("tracking_writes", ["sync", "queued"])
def test_the_tracking_functions_client_waits_on_no_pacer(api, tracking_writes):
    """The routes' and the worker's writes go out as they come: the
    container's client has the time budget's retries and no pacer."""
    assert api.track({"registered": "fast"}, {"a": 1})["success"] is True
    assert api.get_customer("fast", query={"id_type": "registered"}).status == 200
    assert pacing_hooks(service_client()) == []


def test_after_an_import_ran_in_the_same_process_tracking_is_still_not_paced(
    api, imports, monkeypatch
):
    """make run (and these tests) run every function in one process: an
    import chunk's pacer must not end up on the client tracking uses."""
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", imports.bucket)
    monkeypatch.setenv("PROPSYNC_CHUNK_QUEUE_URL", imports.services.queue.url)
    imports.put_mapping(
        "crm",
        {
            "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
            "ids": [{"from_column": "id", "to_id": "registered"}],
        },
    )
    imports.s3.put_object(
        Bucket=imports.bucket, Key=f"imports/{PROJECT}/crm/f.csv", Body=b"id,n\nx,1\n"
    )
    ImportTriggers(imports.s3, imports.sqs, imports.bucket, imports.services.queue.url).poll_once()
    report = json.loads(
        imports.s3.get_object(Bucket=imports.bucket, Key=f"reports/{PROJECT}/crm/f.csv.json")[
            "Body"
        ].read()
    )
    assert report["rows_written"] == 1  # the chunk function ran

    assert api.track({"registered": "after-import"}, {"a": 1})["success"] is True
    assert pacing_hooks(service_client()) == []
