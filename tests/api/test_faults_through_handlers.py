"""Faults meet the real tracking handler: a command that still fails after
botocore's retries reports its own error, the batch goes on, and the API
answers 5xx only when the failure is truly the server's.

In the queued mode the route writes nothing, so the store's faults meet the
worker instead: the client sees every command accepted, a message the worker
failed comes back (at once here: RETRY_BASE_SECONDS is 0), and every accepted
command is stored once the faults pass."""

import pytest
from botocore.exceptions import ConnectionClosedError

from propsync.store.dynamo import client_and_table_from_environment
from propsync.tracking import RETRY_LATER
from propsync.tracking_queue import queue_from_environment
from tests.support.faults import FaultInjector
from tests.support.tracking_modes import accepted, assert_all_applied


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch):
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    # a message the worker failed is visible again at once, not after seconds
    monkeypatch.setattr("propsync.tracking_queue.RETRY_BASE_SECONDS", 0)


def stored(api, registered):
    """The properties of the customer a registered id names; None if none does."""
    read = api.get_customer(registered, query={"id_type": "registered"})
    if read.status == 404:
        return None
    assert read.status == 200, read.body
    return read.json()["properties"]


def service_client():
    return client_and_table_from_environment()[0]


def test_a_command_whose_writes_keep_failing_fails_alone(api):
    api.batch([{"name": "system/time"}])  # the project is known, the client built
    faults = FaultInjector(
        probability=1.0,
        kinds=("throttling", "internal", "reset", "timeout"),
        should_fail=lambda op, params: op == "UpdateItem" and b"doomed" in params["body"],
    ).attach(service_client())
    commands = [
        {
            "name": "customers",
            "data": {"customer_ids": {"registered": f"ok-{i}"}, "properties": {"a": i}},
        }
        for i in range(5)
    ]
    commands.insert(
        2,
        {
            "name": "customers",
            "data": {"customer_ids": {"registered": "x"}, "properties": {"doomed": 1}},
        },
    )

    if api.queued:
        return _worker_retries_a_message_until_its_writes_pass(api, faults, commands)

    response = api.batch(commands)

    assert response.status == 200
    results = response.json()["results"]
    assert [r["success"] for r in results] == [True, True, False, True, True, True]
    assert results[2]["errors"] == [
        "temporary server error; the command was not completed, retry it"
    ]
    assert sum(faults.injected.values()) >= 3
    customer = api.track({"registered": "x"}, {}, None)["customer_id"]
    assert api.get_customer(customer).json() == {"properties": {}}  # nothing of it stored


def _worker_retries_a_message_until_its_writes_pass(api, faults, commands):
    """The queued mode: the request's one message carries all six commands."""
    with api.worker_stopped():
        response = api.batch(commands)
    assert response.status == 200
    assert response.json()["results"] == [accepted()] * 6  # no error reaches the client

    # each delivery applies the five (again: the merge rule makes that
    # harmless), fails the doomed one, and the message comes back
    assert api.queues.deliver(max_events=3) == 3
    assert sum(faults.injected.values()) >= 3 * 3
    for i in range(5):
        assert stored(api, f"ok-{i}") == {"a": i}
    assert stored(api, "x") == {}  # the customer, nothing of it stored
    assert api.queues.dead_letters() == []  # a passing fault is never given up on

    faults.probability = 0.0  # the store recovers
    assert api.queues.deliver(max_events=1) == 1
    assert stored(api, "x") == {"doomed": 1}
    assert_all_applied(api)


def test_transient_faults_are_invisible_to_the_client(api):
    api.batch([{"name": "system/time"}])
    # 30% of attempts fail, never more than 3 attempts of one request in a row:
    # transient, since botocore tries each request 5 times (without the cap,
    # 5 faults in a row on one of ~50 requests fail a command about 1 run in 8)
    faults = FaultInjector(probability=0.3, seed=11, max_in_a_row=3).attach(service_client())
    commands = [
        {
            "name": "customers",
            "data": {
                "customer_ids": {"registered": f"t-{i}"},
                "properties": {"n": i},
                "update_timestamp": 100,
            },
        }
        for i in range(20)
    ]
    results = api.batch(commands).json()["results"]
    assert all(r["success"] for r in results), results
    assert sum(faults.injected.values()) > 0
    if api.queued:
        # the worker met the faults (the route wrote nothing), and whatever it
        # failed came back until it was stored
        assert results == [accepted()] * 20
        assert_all_applied(api)
    faults.probability = 0.0
    for i in range(20):
        read = api.get_customer(f"t-{i}", query={"id_type": "registered"})
        assert read.json() == {"properties": {"n": i}}


def test_a_store_that_cannot_be_reached_is_a_500_that_clients_retry(api):
    from propsync.id_type_cache import forget_id_types  # noqa: PLC0415

    forget_id_types()  # the project must be read again
    FaultInjector(probability=1.0, kinds=("internal", "reset")).attach(service_client())
    response = api.batch([{"name": "system/time"}])
    assert response.status == 500
    assert response.json() == {"success": False, "error": "internal server error; retry"}


def _contended(api, name):
    """Every write of a property called ``name`` meets another writer's change."""
    api.batch([{"name": "system/time"}])  # the project is known, the client built
    return FaultInjector(
        probability=1.0,
        kinds=("condition-failed",),
        should_fail=lambda op, params: (
            op == "UpdateItem" and name.encode() in params["body"] and b"SET" in params["body"]
        ),
    ).attach(service_client())


def test_the_single_route_answers_contention_with_a_retry_status(api):
    """Other writers winning every attempt is worth a retry: 503, as the store
    failing is, with what was stored; a command's own fault stays a 400."""
    faults = _contended(api, "contended")
    command = {"customer_ids": {"registered": "busy"}, "properties": {"contended": 1}}
    if api.queued:
        with api.worker_stopped():
            response = api.track_customer(command)
        assert (response.status, response.json()) == (200, accepted())
        assert api.queues.deliver(max_events=2) == 2  # failed, came back, failed
        assert faults.injected["condition-failed"] >= 2 * 2
        assert stored(api, "busy") == {}
        assert api.queues.dead_letters() == []
        faults.probability = 0.0
        assert api.queues.deliver(max_events=1) == 1
        assert stored(api, "busy") == {"contended": 1}
        assert_all_applied(api)
        return
    response = api.track_customer(command)
    assert response.status == 503, response.json()
    body = response.json()
    assert body["success"] is False
    assert "retry the command" in body["errors"][0]
    assert body["applied"] == []
    assert faults.injected["condition-failed"] >= 2


def test_a_batch_reports_contention_on_the_command_alone(api):
    faults = _contended(api, "contended")
    commands = [
        {
            "name": "customers",
            "data": {"customer_ids": {"registered": "busy"}, "properties": {"contended": 1}},
        },
        {
            "name": "customers",
            "data": {"customer_ids": {"registered": "calm"}, "properties": {"b": 1}},
        },
    ]
    if api.queued:
        with api.worker_stopped():
            response = api.batch(commands)
        assert response.json()["results"] == [accepted(), accepted()]
        assert api.queues.deliver(max_events=2) == 2
        assert stored(api, "calm") == {"b": 1}  # applied on the first delivery
        assert stored(api, "busy") == {}
        faults.probability = 0.0
        assert api.queues.deliver(max_events=1) == 1
        assert stored(api, "busy") == {"contended": 1}
        assert_all_applied(api)
        return
    response = api.batch(commands)
    assert response.status == 200
    contended, calm = response.json()["results"]
    assert contended["success"] is False
    assert "retry the command" in contended["errors"][0]
    assert calm["success"] is True


def test_a_queue_that_cannot_be_reached_answers_retry_and_stores_nothing(api):
    """The queued routes' own dependency: a command SQS never took is
    answered "retry" (503 on the single route), never "success"; a command
    that needs no write is answered all the same."""
    if not api.queued:
        pytest.skip("the synchronous routes use no queue")
    api.batch([{"name": "system/time"}])  # the project is known, the queue client built
    queue_client = queue_from_environment().client
    refused = []

    def unreachable(request, **_kwargs):
        refused.append(request.url)
        raise ConnectionClosedError(endpoint_url=request.url)

    queue_client.meta.events.register("before-send.sqs", unreachable)
    command = {"customer_ids": {"registered": "unqueued"}, "properties": {"a": 1}}
    results = api.batch([{"name": "customers", "data": command}, {"name": "system/time"}]).json()[
        "results"
    ]
    single = api.track_customer(command)

    assert results[0] == {"success": False, "errors": [RETRY_LATER]}
    assert results[1]["success"] is True
    assert (single.status, single.json()) == (503, {"success": False, "errors": [RETRY_LATER]})
    assert len(refused) >= 2
    assert stored(api, "unqueued") is None
    assert_all_applied(api)  # nothing was queued

    queue_client.meta.events.unregister("before-send.sqs", unreachable)
    assert api.track_customer(command).json() == accepted()
    assert stored(api, "unqueued") == {"a": 1}
