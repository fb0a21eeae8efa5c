"""Faults meet the real tracking handler: a command that still fails after
botocore's retries reports its own error, the batch goes on, and the API
answers 5xx only when the failure is truly the server's."""

import pytest

from propsync.store.dynamo import client_and_table_from_environment
from tests.support.faults import FaultInjector


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch):
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)


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


def test_transient_faults_are_invisible_to_the_client(api):
    api.batch([{"name": "system/time"}])
    faults = FaultInjector(probability=0.3, seed=11).attach(service_client())
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
    faults.probability = 0.0
    for i in (0, 19):
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
    response = api.track_customer(
        {"customer_ids": {"registered": "busy"}, "properties": {"contended": 1}}
    )
    assert response.status == 503, response.json()
    body = response.json()
    assert body["success"] is False
    assert "retry the command" in body["errors"][0]
    assert body["applied"] == []
    assert faults.injected["condition-failed"] >= 2


def test_a_batch_reports_contention_on_the_command_alone(api):
    _contended(api, "contended")
    response = api.batch(
        [
            {
                "name": "customers",
                "data": {"customer_ids": {"registered": "busy"}, "properties": {"contended": 1}},
            },
            {
                "name": "customers",
                "data": {"customer_ids": {"registered": "calm"}, "properties": {"b": 1}},
            },
        ]
    )
    assert response.status == 200
    contended, calm = response.json()["results"]
    assert contended["success"] is False
    assert "retry the command" in contended["errors"][0]
    assert calm["success"] is True
