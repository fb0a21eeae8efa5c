"""Faults at the botocore layer: retried with backoff, reported per command
when they persist, and never leaving a state the merge rule would not give."""

import random

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from propsync.merge_rule import merge
from tests.conftest import PROJECT
from tests.support.builders import versions
from tests.support.faults import KINDS, FaultInjector
from tests.support.servers import dynamodb_client_for


@pytest.fixture
def faulty_store(dynamodb_endpoint, dynamodb_client, table_name):
    """A store whose client meets faults, with botocore's standard retry mode
    (as store_from_environment configures it) but no waiting between tries."""
    from propsync.store.customers import CustomerStore  # noqa: PLC0415

    client = dynamodb_client_for(
        dynamodb_endpoint,
        retries={"mode": "standard", "max_attempts": 8},
        connect_timeout=2,
        read_timeout=5,
    )
    return CustomerStore(client, table_name), client


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch):
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)


def test_every_kind_of_transient_fault_is_retried_and_the_state_is_the_rules(faulty_store):
    store, client = faulty_store
    # 20% of requests fail: botocore's retry quota (500 tokens) outlasts the run
    faults = FaultInjector(probability=0.2, seed=3).attach(client)
    rng = random.Random(5)
    sent, acknowledged = [], []
    for _ in range(100):
        customer = rng.choice(["01HFAULTA00000000000000000", "01HFAULTB00000000000000000"])
        command = versions(
            {n: rng.choice(["a", "b", None, 1]) for n in rng.sample(["x", "y", "z"], 2)},
            float(rng.randint(1, 5)),
        )
        result = store.write_properties(PROJECT, customer, command)
        sent += [(customer, n, v) for n, v in command.items()]
        acknowledged += [(customer, n, command[n]) for n in result.applied]

    assert set(faults.injected) == set(KINDS)  # every kind was met at least once
    for customer in {c for c, _, _ in sent}:
        final = store.read_customer(PROJECT, customer).properties
        assert final == merge({}, [(n, v) for c, n, v in sent if c == customer])
        for c, name, version in acknowledged:
            if c == customer:
                kept = final[name]
                assert (kept.timestamp, kept.order_key) >= (version.timestamp, version.order_key)


def test_a_write_whose_answer_was_lost_is_reported_applied(faulty_store):
    """The first UpdateItem lands but its answer is lost; botocore retries it,
    the condition now fails against the value already there, and the result
    still says applied: the value is stored."""
    store, client = faulty_store
    updates_seen = []

    def first_update_only(operation, _params):
        if operation == "UpdateItem":
            updates_seen.append(operation)
        return operation == "UpdateItem" and len(updates_seen) == 1

    faults = FaultInjector(
        probability=1.0, kinds=("lost-answer-timeout",), should_fail=first_update_only
    ).attach(client)

    result = store.write_properties(PROJECT, "01HLOST0000000000000000000", versions({"a": 1}, 5.0))

    assert faults.injected["lost-answer-timeout"] == 1
    assert (result.applied, result.stale) == (("a",), ())
    assert (
        store.read_customer(PROJECT, "01HLOST0000000000000000000").properties["a"].timestamp == 5.0
    )


def test_faults_that_do_not_stop_end_in_an_error_and_change_nothing(faulty_store):
    store, client = faulty_store
    customer = "01HDOWN0000000000000000000"
    store.write_properties(PROJECT, customer, versions({"a": "kept"}, 1.0))
    faults = FaultInjector(probability=1.0, kinds=("throttling", "internal", "reset")).attach(
        client
    )

    with pytest.raises((ClientError, ConnectionClosedError)):
        store.write_properties(PROJECT, customer, versions({"a": "new", "b": 1}, 2.0))

    assert sum(faults.injected.values()) >= 8  # botocore kept retrying before giving up
    faults.probability = 0.0
    assert store.read_customer(PROJECT, customer).properties == versions({"a": "kept"}, 1.0)
