"""The promise that makes the queued tracking mode safe: a queue may deliver
the commands late, out of order, more than once and in parallel, and the
stored customers are the same as the synchronous mode's.

The same requests run twice on the engine under test, into two projects of
one table: through the synchronous path in the order sent, and through the
queued routes, whose messages are then delivered shuffled, some of them
twice, to the real worker handler. Each customer's ids and properties, with
their timestamps, must be equal (internal ids aside: they are made when a
customer is first written).

Inputs: a few people, each with a registered id and cookies of their own,
named by their registered id, a cookie, or both (anonymous customers, merges
when a cookie meets its registered id), properties set and deleted, with and
without update_timestamp (then stamped with the request's arrival). One thing
is left out on purpose: a cookie shared by two registered people moves to
whichever command is applied last, in either mode (docs/DECISIONS.md,
"Tracking writes: sync or queued").
"""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync.container import forget_container_state
from propsync.id_types import DEFAULT_ID_TYPES
from propsync.identity import find_customer_id
from propsync.merging import read_following_merges
from propsync.store.access import AccessStore
from propsync.store.customers import CustomerStore
from propsync.tracking import run_commands
from propsync.tracking_queue import CommandQueue, accept_commands, apply_batches, read_message
from propsync_local.apigw import LambdaContext, load_handler

PEOPLE = 3
COOKIES_PER_PERSON = 2
ARRIVAL = 1_800_000_000.0
EQUIVALENCE = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PARALLEL = settings(EQUIVALENCE, max_examples=10)
APPLIERS = 4  # threads applying the messages at once


def ids_of(person: int, form: str, cookie: int) -> dict[str, str]:
    registered = {"registered": f"person-{person}"}
    cookie_id = {"cookie": f"cookie-{person}-{cookie}"}
    return {"registered": registered, "cookie": cookie_id, "both": {**registered, **cookie_id}}[
        form
    ]


command = st.builds(
    lambda person, form, cookie, properties, timestamp: {
        "name": "customers",
        "data": {
            "customer_ids": ids_of(person, form, cookie),
            "properties": properties,
            **({} if timestamp is None else {"update_timestamp": timestamp}),
        },
    },
    person=st.integers(0, PEOPLE - 1),
    form=st.sampled_from(["registered", "cookie", "both"]),
    cookie=st.integers(0, COOKIES_PER_PERSON - 1),
    properties=st.dictionaries(
        st.sampled_from(["tier", "email", "score"]),
        st.sampled_from(["gold", "silver", 1, 2.5, None]),
        max_size=3,
    ),
    # None: stamped with the request's arrival, which is later than all of these
    timestamp=st.sampled_from([None, 100, 200, "200", 300.5]),
)
requests = st.lists(st.lists(command, min_size=1, max_size=6), min_size=1, max_size=5)


class RecordingSqs:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send_message(self, **request: Any) -> dict[str, Any]:
        self.bodies.append(request["MessageBody"])
        return {"MessageId": str(len(self.bodies))}


def stored_state(store: CustomerStore, project: str) -> set[tuple[Any, ...]]:
    """Every customer any of the ids names: its ids and its properties with
    their versions (value, timestamp, sequence), without its internal id."""
    every_id = [
        (id_type, value)
        for person in range(PEOPLE)
        for id_type, value in [("registered", f"person-{person}")]
        + [("cookie", f"cookie-{person}-{c}") for c in range(COOKIES_PER_PERSON)]
    ]
    customers = {}
    for id_type, value in every_id:
        found = find_customer_id(store, project, id_type, value)
        if found is None:
            continue
        record = read_following_merges(store, project, found)
        assert record is not None
        customers[record.customer_id] = (
            frozenset((t, v) for t, values in record.ids.items() for v in values),
            frozenset(record.properties.items()),
        )
    return set(customers.values())


def new_project(dynamodb_client: Any, table_name: str) -> str:
    project = str(uuid.uuid4())
    AccessStore(dynamodb_client, table_name).create_project(project, "equivalence")
    return project


def queued_messages(project: str, batches: list[list[Any]]) -> list[str]:
    sqs = RecordingSqs()
    for number, batch in enumerate(batches):
        outcomes = accept_commands(
            CommandQueue(sqs, "https://sqs/tracking"),  # type: ignore[arg-type]
            project,
            batch,
            received_at=ARRIVAL + number,
            request_id=f"request-{number}",
            id_types=DEFAULT_ID_TYPES,
        )
        assert all(status == 200 for status, _ in outcomes), outcomes
    return sqs.bodies


def run_synchronously(store: CustomerStore, project: str, batches: list[list[Any]]) -> None:
    for number, batch in enumerate(batches):
        outcomes = run_commands(store, project, batch, received_at=ARRIVAL + number)
        assert all(status == 200 for status, _ in outcomes), outcomes


def ran_synchronously(
    dynamodb_client: Any, table_name: str, monkeypatch: Any, batches: list[list[Any]]
) -> tuple[CustomerStore, str, str]:
    """The store (as a new container finds it), a project where ``batches``
    ran through the synchronous path, and an empty one for the queued mode."""
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", table_name)
    forget_container_state()
    store = CustomerStore(dynamodb_client, table_name)
    sync_project = new_project(dynamodb_client, table_name)
    queued_project = new_project(dynamodb_client, table_name)
    run_synchronously(store, sync_project, batches)
    return store, sync_project, queued_project


def sqs_record(body: str, number: int) -> dict[str, Any]:
    return {
        "messageId": f"m-{number}",
        "receiptHandle": f"r-{number}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
    }


@EQUIVALENCE
@given(batches=requests, seed=st.integers(0, 2**32 - 1))
def test_shuffled_and_duplicated_delivery_stores_what_the_synchronous_mode_stores(
    dynamodb_client, table_name, monkeypatch, batches, seed
):
    store, sync_project, queued_project = ran_synchronously(
        dynamodb_client, table_name, monkeypatch, batches
    )

    bodies = queued_messages(queued_project, batches)
    shuffle = random.Random(seed)
    deliveries = bodies + shuffle.sample(bodies, k=shuffle.randint(0, len(bodies)))
    shuffle.shuffle(deliveries)
    worker = load_handler("TrackingWorkerFunction")
    records = [sqs_record(body, n) for n, body in enumerate(deliveries)]
    while records:  # SQS events of 1 to 10 messages, as the event source mapping sends
        size = shuffle.randint(1, 10)
        event, records = records[:size], records[size:]
        answer = worker({"Records": event}, LambdaContext("TrackingWorkerFunction"))
        assert answer == {"batchItemFailures": []}

    assert stored_state(store, queued_project) == stored_state(store, sync_project)


@PARALLEL
@given(batches=requests)
def test_messages_applied_in_parallel_store_what_the_synchronous_mode_stores(
    dynamodb_client, table_name, monkeypatch, batches
):
    """Every message applied twice, by APPLIERS threads at once, as concurrent
    worker invocations would: first sightings race to claim ids, merges race
    with writes, and the result is still the synchronous one."""
    store, sync_project, queued_project = ran_synchronously(
        dynamodb_client, table_name, monkeypatch, batches
    )

    messages = [read_message(body) for body in queued_messages(queued_project, batches)] * 2
    dead: list[Any] = []
    again: list[Any] = []  # messages a 503 (contention) sends back to the queue

    def apply(part: list[Any]) -> None:
        for message in part:
            [applied] = apply_batches(store, [message], DEFAULT_ID_TYPES)
            dead.extend(applied.dead)
            if applied.must_retry:
                again.append(message)

    threads = [
        threading.Thread(target=apply, args=(messages[i::APPLIERS],)) for i in range(APPLIERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for message in again:  # as SQS delivers them again, one at a time now
        [applied] = apply_batches(store, [message], DEFAULT_ID_TYPES)
        assert not applied.must_retry

    assert dead == []
    assert stored_state(store, queued_project) == stored_state(store, sync_project)
