"""Real concurrency: many threads against each engine (a single-threaded moto
server and dynalite), where each item write is atomic as in DynamoDB."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from propsync.identity import resolve_customer
from propsync.merge_rule import merge
from propsync.store.customers import CustomerStore
from tests.conftest import PROJECT
from tests.support.builders import versions

WRITERS = 8


@pytest.fixture
def server_store(store) -> CustomerStore:
    """The store on the engine under test (both are servers where each item
    write is atomic, as in DynamoDB)."""
    return store


def test_concurrent_first_sightings_of_the_same_ids_create_one_customer(server_store):
    for round_number in range(5):
        start = threading.Barrier(WRITERS)

        def sight(writer: int, round_number=round_number, start=start):
            start.wait()
            return resolve_customer(
                server_store,
                PROJECT,
                {"registered": f"new-{round_number}", "cookie": f"cookie-{round_number}-{writer}"},
            )

        with ThreadPoolExecutor(WRITERS) as pool:
            results = list(pool.map(sight, range(WRITERS)))

        assert len({r.customer_id for r in results}) == 1
        assert sum(r.created for r in results) == 1
        record = server_store.read_customer(PROJECT, results[0].customer_id)
        assert record.ids["registered"] == [f"new-{round_number}"]
        assert len(record.ids["cookie"]) == WRITERS


def test_concurrent_conflicting_writers_lose_no_acknowledged_update(server_store):
    customers = ["01HCUSTOMERA0000000000000A", "01HCUSTOMERB0000000000000B"]
    names = ["first_name", "email", "tier"]
    start = threading.Barrier(WRITERS)

    def writer(seed: int):
        rng = random.Random(seed)
        sent, acknowledged = [], []
        start.wait()
        for _ in range(25):
            customer = rng.choice(customers)
            properties = {
                name: rng.choice([None, "a", "b", "c", 1, 2])
                for name in rng.sample(names, rng.randint(1, 3))
            }
            command = versions(properties, float(rng.randint(1, 6)))  # many ties
            result = server_store.write_properties(PROJECT, customer, command)
            sent += [(customer, name, version) for name, version in command.items()]
            acknowledged += [(customer, name, command[name]) for name in result.applied]
        return sent, acknowledged

    with ThreadPoolExecutor(WRITERS) as pool:
        outcomes = list(pool.map(writer, range(WRITERS)))

    for customer in customers:
        sent = [(n, v) for c, n, v in (u for s, _ in outcomes for u in s) if c == customer]
        final = server_store.read_customer(PROJECT, customer).properties
        assert final == merge({}, sent)
        for c, name, version in (a for _, acked in outcomes for a in acked):
            if c == customer:  # nothing acknowledged is lost: final >= every ack
                kept = final[name]
                assert (kept.timestamp, kept.encoded_value) >= (
                    version.timestamp,
                    version.encoded_value,
                )
