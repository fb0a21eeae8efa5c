"""The queued mode absorbs what the synchronous mode passes on to clients:
with DynamoDB throttling every request during a burst, clients see no error,
the worker's messages fail and come back, and once the throttling ends every
accepted command is applied, once: nothing acknowledged is lost (the fault
injector of tests.support.faults, at botocore's level)."""

from __future__ import annotations

import pytest

from propsync.store.dynamo import client_and_table_from_environment
from tests.support.faults import FaultInjector

BATCHES = 12
COMMANDS = 5


@pytest.fixture
def tracking_writes() -> str:
    return "queued"  # this module is about the queued mode alone


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    # botocore's backoff between attempts, and the worker's delay before a
    # failed message comes back: both real, both made instant for the test
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    monkeypatch.setattr("propsync.tracking_queue.RETRY_BASE_SECONDS", 0.0)


def burst() -> list[list[dict]]:
    return [
        [
            {
                "name": "customers",
                "command_id": f"{b}-{c}",
                "data": {
                    "customer_ids": {"registered": f"spike-{b}-{c}"},
                    "properties": {"batch": b, "command": c},
                    "update_timestamp": 1_700_000_000 + b,
                },
            }
            for c in range(COMMANDS)
        ]
        for b in range(BATCHES)
    ]


def test_sustained_throttling_during_a_burst_reaches_no_client_and_loses_nothing(api):
    api.batch([{"name": "system/time"}])  # a warm container: the project is known
    throttling = FaultInjector(probability=1.0, kinds=("throttling",)).attach(
        client_and_table_from_environment()[0]
    )
    with api.worker_stopped() as queues:
        answers = [api.batch(batch) for batch in burst()]

        # every client: 200, every command accepted
        assert [answer.status for answer in answers] == [200] * BATCHES
        for b, answer in enumerate(answers):
            assert answer.json()["results"] == [
                {"success": True, "command_id": f"{b}-{c}"} for c in range(COMMANDS)
            ]

        # the worker meets the throttling: every message it takes fails and stays queued
        delivered = queues.deliver(max_events=3)
        assert delivered >= 10
        assert throttling.injected["throttling"] > 0
        assert queues.dead_letters() == []

        throttling.detach(client_and_table_from_environment()[0])
        for b in range(BATCHES):  # nothing was written while it lasted
            assert api.export_one({"registered": f"spike-{b}-0"}).status == 404
        queues.deliver()  # throttling over: everything comes back and is applied

    for b in range(BATCHES):
        for c in range(COMMANDS):
            read = api.get_customer(f"spike-{b}-{c}", query={"id_type": "registered"})
            assert read.status == 200
            assert read.json() == {"properties": {"batch": b, "command": c}}
    assert queues.deliver() == 0  # no message left
    assert queues.dead_letters() == []
