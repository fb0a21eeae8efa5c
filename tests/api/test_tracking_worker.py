"""TrackingWorkerFunction's handler on the real queues (moto SQS) and the
engine under test: what comes back, what is dead-lettered, and with what.

The queued routes put the messages on the queue (the `api` fixture in the
queued mode, the worker stopped), the test plays the event source mapping."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from propsync import tracking_queue
from propsync.id_type_cache import forget_id_types
from propsync.store.access import AccessStore
from propsync.store.dynamo import client_and_table_from_environment
from propsync.tracking import RETRY_LATER
from propsync.tracking_queue import worker_queues_from_environment
from propsync_local import triggers
from propsync_local.apigw import LambdaContext, load_handler
from tests.conftest import RequestLog
from tests.support.faults import FaultInjector


@pytest.fixture
def tracking_writes() -> str:
    return "queued"


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch):
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)


def customers(ids: dict[str, str], properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "customers", "data": {"customer_ids": ids, "properties": properties}, **extra}


def receive(queues) -> list[dict[str, Any]]:
    return queues.sqs.receive_message(
        QueueUrl=queues.url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=360,
        MessageSystemAttributeNames=["All"],
    ).get("Messages", [])


def run_worker(messages: list[dict[str, Any]]) -> dict[str, Any]:
    event = triggers.sqs_event(messages, "TrackingWorkerFunction")
    return load_handler("TrackingWorkerFunction")(event, LambdaContext("TrackingWorkerFunction"))


def test_a_command_that_can_never_succeed_goes_to_the_dead_letter_queue_at_once(
    api, dynamodb_client, table_name
):
    AccessStore(dynamodb_client, table_name).add_id_type(api.project, "email", hard=True)
    forget_id_types()
    api.track({"registered": "anna"}, {"name": "Anna"}, 100)
    api.track({"registered": "bob", "email": "bob@x"}, {"name": "Bob"}, 100)
    with api.worker_stopped() as queues:
        answer = api.batch(
            [
                customers({"registered": "anna", "email": "bob@x"}, {"name": "?"}, command_id="x"),
                customers({"registered": "carl"}, {"name": "Carl"}),
            ]
        )
        assert answer.json()["results"] == [{"success": True, "command_id": "x"}, {"success": True}]
        [message] = receive(queues)

        assert run_worker([message]) == {"batchItemFailures": []}  # done with

        [dead] = queues.dead_letters()
    assert dead["project"] == api.project
    assert dead["commands"] == [
        customers({"registered": "anna", "email": "bob@x"}, {"name": "?"}, command_id="x")
    ]
    [error] = dead["errors"]
    assert error["status"] == 409
    assert "customers with different hard ids are never merged" in error["errors"][0]
    # the other command was applied; the refused one changed nothing
    carl = api.get_customer("carl", query={"id_type": "registered"})
    assert carl.json() == {"properties": {"name": "Carl"}}
    anna = api.get_customer("anna", query={"id_type": "registered"})
    assert anna.json() == {"properties": {"name": "Anna"}}


def test_a_message_of_a_failing_store_comes_back_after_its_retry_delay(api):
    api.batch([{"name": "system/time"}])  # a warm container: the project is known
    visibility: list[dict[str, Any]] = []
    worker_sqs = worker_queues_from_environment()[0]
    worker_sqs.meta.events.register(
        "provide-client-params.sqs.ChangeMessageVisibility",
        lambda params, **_: visibility.append(params),
    )
    with api.worker_stopped() as queues:
        api.batch([customers({"registered": "dana"}, {"tier": "gold"})])
        [message] = receive(queues)
        faults = FaultInjector(probability=1.0, kinds=("throttling",)).attach(
            client_and_table_from_environment()[0]
        )

        answer = run_worker([message])

        faults.detach(client_and_table_from_environment()[0])
        assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
        [changed] = visibility
        assert changed["ReceiptHandle"] == message["ReceiptHandle"]
        # its first receive: half to all of the base delay
        base = tracking_queue.RETRY_BASE_SECONDS
        assert base / 2 <= changed["VisibilityTimeout"] <= base
        assert receive(queues) == []  # invisible meanwhile
        assert queues.dead_letters() == []


def test_a_body_the_routes_did_not_write_is_dead_lettered_as_it_is(api):
    queues = api.queues
    queues.sqs.send_message(QueueUrl=queues.url, MessageBody='{"hello": "world"}')
    [message] = receive(queues)

    assert run_worker([message]) == {"batchItemFailures": []}
    assert queues.dead_letters() == [{"hello": "world"}]


def test_a_message_of_a_project_that_does_not_exist_is_dead_lettered(api):
    queues = api.queues
    body = {
        "format": 1,
        "project": "11111111-1111-1111-1111-111111111111",
        "received_at": 1_800_000_000,
        "request_id": "r-1",
        "commands": [customers({"registered": "x"}, {"a": 1})],
    }
    queues.sqs.send_message(QueueUrl=queues.url, MessageBody=json.dumps(body))
    [message] = receive(queues)

    assert run_worker([message]) == {"batchItemFailures": []}
    [dead] = queues.dead_letters()
    assert dead["commands"] == body["commands"]
    [error] = dead["errors"]
    assert error["status"] == 400
    assert error["errors"][0].startswith("Invalid project id")


def test_a_message_whose_dead_lettering_fails_comes_back(api, monkeypatch):
    queues = api.queues
    monkeypatch.setenv("PROPSYNC_TRACKING_DEAD_LETTER_QUEUE_URL", queues.url + "-missing")
    from propsync.container import forget_container_state  # noqa: PLC0415

    forget_container_state()
    queues.sqs.send_message(QueueUrl=queues.url, MessageBody="not json")
    [message] = receive(queues)

    answer = run_worker([message])

    assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}


def test_the_worker_stamps_with_the_arrival_time_not_its_own(api):
    """A message applied an hour after the request: a command without
    update_timestamp carries the request's arrival time."""
    with api.worker_stopped() as queues:
        api.batch([customers({"registered": "late"}, {"seen": 1})])
        [message] = receive(queues)
        arrived = json.loads(message["Body"])["received_at"]
        run_worker([message])

    read = api.get_customer("late", query={"id_type": "registered", "include_timestamps": "1"})
    assert read.json()["properties"]["seen"]["last_update"] == arrived


def test_a_retry_of_the_message_stores_nothing_new_and_fails_nothing(api):
    """At-least-once delivery: the same message twice leaves what once left."""
    with api.worker_stopped() as queues:
        api.batch([customers({"registered": "twice"}, {"v": i}) for i in range(3)])
        [message] = receive(queues)
        run_worker([message])
        once = api.get_customer("twice", query={"id_type": "registered", "include_timestamps": "1"})
        assert run_worker([message]) == {"batchItemFailures": []}

    again = api.get_customer("twice", query={"id_type": "registered", "include_timestamps": "1"})
    assert again.json() == once.json()
    assert queues.dead_letters() == []


def test_retry_later_is_the_answer_when_sqs_refuses_the_message(api, monkeypatch):
    monkeypatch.setenv("PROPSYNC_TRACKING_QUEUE_URL", api.queues.url + "-missing")
    from propsync.container import forget_container_state  # noqa: PLC0415

    forget_container_state()
    answer = api.batch([customers({"registered": "lost"}, {"a": 1}), {"name": "system/time"}])

    results = answer.json()["results"]
    assert results[0] == {"success": False, "errors": [RETRY_LATER]}
    assert results[1]["success"] is True
    single = api.track_customer({"customer_ids": {"registered": "lost"}, "properties": {}})
    assert single.status == 503
    assert single.json() == {"success": False, "errors": [RETRY_LATER]}


def test_the_messages_of_one_event_run_together_each_with_its_own_arrival(api):
    """Three requests' messages in one SQS event: one identity lookup for
    them all, and each command stamped with its own request's arrival."""
    with api.worker_stopped() as queues:
        for name in ("first", "second", "third"):
            api.batch([customers({"registered": name}, {"seen": name})])
            time.sleep(0.002)  # arrivals are in milliseconds: three different ones
        messages = receive(queues)
        assert len(messages) == 3
        arrivals = {
            json.loads(m["Body"])["commands"][0]["data"]["customer_ids"]["registered"]: json.loads(
                m["Body"]
            )["received_at"]
            for m in messages
        }
        assert len(set(arrivals.values())) == 3  # three requests, three arrivals
        request_log = RequestLog()
        client_and_table_from_environment()[0].meta.events.register(
            "provide-client-params.dynamodb", request_log.record
        )

        assert run_worker(messages) == {"batchItemFailures": []}

    assert request_log.counts["BatchGetItem"] == 1
    for name, arrived in arrivals.items():
        read = api.get_customer(name, query={"id_type": "registered", "include_timestamps": "1"})
        assert read.json()["properties"]["seen"] == {"value": name, "last_update": arrived}


def test_an_id_type_added_a_moment_ago_is_known_to_the_worker(api, dynamodb_client, table_name):
    """The route that accepted a command knew the project's new id type; a
    worker container that cached the id types before it was added must not
    refuse (and dead-letter) what was accepted."""
    from propsync import id_type_cache  # noqa: PLC0415

    access = AccessStore(dynamodb_client, table_name)
    before = access.project_id_types(api.project)
    access.add_id_type(api.project, "email", hard=True)
    forget_id_types()  # the route's container reads the new id type
    with api.worker_stopped() as queues:
        answer = api.batch([customers({"email": "new@x"}, {"tier": "gold"})])
        assert answer.json()["results"] == [{"success": True}]
        [message] = receive(queues)
        # the worker's container read the id types before email was added
        id_type_cache._cached[api.project] = (time.monotonic() + 60, before)

        assert run_worker([message]) == {"batchItemFailures": []}

        assert queues.dead_letters() == []
    forget_id_types()  # the reading container knows email too
    assert api.export_one({"email": "new@x"}).json()["properties"] == {"tier": "gold"}
