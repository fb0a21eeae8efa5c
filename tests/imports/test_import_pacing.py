"""Sustained throttling meets an import's paced writes, on both engines.

First the WritePacer on a real botocore client (propsync's client_config,
throttling injected by tests.support.faults at botocore's layer): a request
throttled for more attempts than botocore's standard mode makes still
succeeds, written once, where the same client without the pacer raises;
and the throttles the pacer answers leave botocore's own retries of other
errors as they were.

Then whole imports: a multi-chunk file whose writes are throttled most of
the time completes every chunk on its first receive, each row written once,
the time spent throttled reported; without the pacer the same faults fail
chunks."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from propsync.customer_view import plain_properties
from propsync.identity import find_customer_id
from propsync.import_api import execution_view
from propsync.imports import deliver_chunk
from propsync.store.dynamo import client_config, is_transient_error
from propsync.store.throttling import WRITE_OPERATIONS, WritePacer
from tests.conftest import PROJECT
from tests.support.faults import FaultInjector, nth_request

TOTAL_ATTEMPTS = 6  # client_config's max_attempts=5: botocore's first try and 5 retries
THROTTLED_ATTEMPTS = 12


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch):
    # botocore's own backoff between attempts (a second and more for a throttle
    # in standard mode): made instant, as the other fault tests do
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)


def no_retry_wait() -> float:
    """The pacer's jitter draw: no wait before a retry. The tests are about
    whether a throttled request is retried and how the rate and the
    throttled time follow, not about how long the jittered waits are (the
    unit tests check those), and a dozen real waits per request would take
    seconds."""
    return 0.0


def no_sleep(_seconds: float) -> None:
    """The pacer's sleep until a write's turn, skipped where the test is
    about the retries alone (a rate lowered by dozens of throttles would
    space the writes a second apart)."""


def propsync_client(endpoint: str) -> Any:
    """A client configured as propsync's functions' (store.dynamo.client_config)."""
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="eu-west-1", config=client_config()
    )


def first_attempts(count: int, operations: Iterable[str]) -> Callable[[str, dict], bool]:
    """A ``should_fail`` that picks the first ``count`` attempts of these operations."""
    wanted, seen = set(operations), itertools.count(1)
    return lambda operation, _params: operation in wanted and next(seen) <= count


def throttle(client: Any, should_fail: Callable[[str, dict], bool]) -> FaultInjector:
    return FaultInjector(1.0, kinds=("throttling",), should_fail=should_fail).attach(client)


def attempts_of(client: Any) -> list[str]:
    """The operation of every attempt the client makes from now on
    (request-created: once per attempt)."""
    sent: list[str] = []
    client.meta.events.register(
        "request-created.dynamodb", lambda operation_name, **_: sent.append(operation_name)
    )
    return sent


def put_once(client: Any, table: str, key: str) -> None:
    """A write that fails if an earlier attempt of it already landed."""
    client.put_item(
        TableName=table,
        Item={"pk": {"S": key}, "n": {"N": "1"}},
        ConditionExpression="attribute_not_exists(pk)",
    )


# --------------------------------------------- the pacer on a real client


def test_a_write_throttled_past_botocores_attempts_succeeds_once_with_the_pacer(
    dynamodb_client, dynamodb_endpoint, table_name
):
    client = propsync_client(dynamodb_endpoint)
    pacer = WritePacer(1000, rng=no_retry_wait).attach(client)
    sent = attempts_of(client)
    faults = throttle(client, first_attempts(THROTTLED_ATTEMPTS, {"PutItem"}))

    put_once(client, table_name, "paced")

    assert faults.injected["throttling"] == THROTTLED_ATTEMPTS
    assert sent == ["PutItem"] * (THROTTLED_ATTEMPTS + 1)  # one attempt reached the table
    item = dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": "paced"}})["Item"]
    assert item["n"] == {"N": "1"}
    figures = pacer.figures()
    assert (figures.writes, figures.throttled) == (THROTTLED_ATTEMPTS + 1, THROTTLED_ATTEMPTS)
    assert figures.throttled_seconds > 0
    assert pacer.rate < pacer.ceiling  # the throttles slowed it down


def test_the_same_write_without_the_pacer_fails(dynamodb_client, dynamodb_endpoint, table_name):
    client = propsync_client(dynamodb_endpoint)
    sent = attempts_of(client)
    throttle(client, first_attempts(THROTTLED_ATTEMPTS, {"PutItem"}))

    with pytest.raises(ClientError, match="ThrottlingException"):
        put_once(client, table_name, "unpaced")
    assert len(sent) == TOTAL_ATTEMPTS
    assert "Item" not in dynamodb_client.get_item(
        TableName=table_name, Key={"pk": {"S": "unpaced"}}
    )


def seed(dynamodb_client: Any, table: str, keys: list[str]) -> None:
    for key in keys:
        dynamodb_client.put_item(TableName=table, Item={"pk": {"S": key}, "n": {"N": "7"}})


def read_both_ways(client: Any, table: str, keys: list[str]) -> list[dict]:
    got = [client.get_item(TableName=table, Key={"pk": {"S": keys[0]}})["Item"]]
    batch = client.batch_get_item(
        RequestItems={table: {"Keys": [{"pk": {"S": key}} for key in keys]}}
    )
    return got + batch["Responses"][table]


def test_reads_throttled_past_botocores_attempts_pass_with_the_pacer(
    dynamodb_client, dynamodb_endpoint, table_name
):
    seed(dynamodb_client, table_name, ["a", "b"])
    client = propsync_client(dynamodb_endpoint)
    pacer = WritePacer(1000, rng=no_retry_wait).attach(client)
    faults = throttle(client, first_attempts(2 * THROTTLED_ATTEMPTS, {"GetItem", "BatchGetItem"}))
    read = read_both_ways(client, table_name, ["a", "b"])

    assert faults.injected["throttling"] == 2 * THROTTLED_ATTEMPTS
    assert sorted(item["pk"]["S"] for item in read) == ["a", "a", "b"]
    assert pacer.rate == pacer.ceiling  # a throttled read slows no write
    assert pacer.figures().throttled == 2 * THROTTLED_ATTEMPTS


def test_the_same_reads_without_the_pacer_fail(dynamodb_client, dynamodb_endpoint, table_name):
    seed(dynamodb_client, table_name, ["a", "b"])
    client = propsync_client(dynamodb_endpoint)
    throttle(client, first_attempts(THROTTLED_ATTEMPTS, {"GetItem", "BatchGetItem"}))
    with pytest.raises(ClientError, match="ThrottlingException"):
        client.get_item(TableName=table_name, Key={"pk": {"S": "a"}})
    with pytest.raises(ClientError, match="ThrottlingException"):  # the other 6 attempts
        client.batch_get_item(RequestItems={table_name: {"Keys": [{"pk": {"S": "a"}}]}})


def test_throttles_the_pacer_answers_leave_botocores_other_retries_as_they_were(
    dynamodb_client, dynamodb_endpoint, table_name
):
    """botocore's standard mode spends a quota on each retry it decides (a
    circuit breaker: 500 in all, 5 a throttle, 14 another error). The
    throttles the pacer retries are its own: were they charged to the quota
    too, a long spell of throttling would leave none, and a single 500 or a
    reset connection would then fail the chunk."""
    client = propsync_client(dynamodb_endpoint)
    WritePacer(1000, rng=no_retry_wait, sleep=no_sleep).attach(client)
    calls = 40
    # each call: throttled on botocore's 6 attempts, then passes
    pattern = itertools.cycle([True] * TOTAL_ATTEMPTS + [False])
    faults = throttle(client, lambda operation, _params: next(pattern))
    for i in range(calls):
        client.put_item(TableName=table_name, Item={"pk": {"S": f"k{i}"}})
    assert faults.injected["throttling"] == calls * TOTAL_ATTEMPTS
    faults.detach(client)

    FaultInjector(1.0, kinds=("internal",), should_fail=nth_request(1)).attach(client)
    client.put_item(TableName=table_name, Item={"pk": {"S": "after"}})  # the 500 retried
    assert "Item" in dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": "after"}})


def test_a_500_after_a_dozen_throttles_is_retried_as_botocore_would(
    dynamodb_client, dynamodb_endpoint, table_name
):
    """botocore counts a call's attempts against its 6: the throttles the
    pacer retried are not counted, or any other error of a call throttled
    as long would fail the chunk at once."""
    client = propsync_client(dynamodb_endpoint)
    WritePacer(1000, rng=no_retry_wait, sleep=no_sleep).attach(client)
    throttle(client, first_attempts(THROTTLED_ATTEMPTS, {"PutItem"}))
    # every injector sees every attempt (botocore calls all before-send
    # handlers, the first answer wins): the 13th attempt meets a 500
    failing = FaultInjector(
        1.0, kinds=("internal",), should_fail=nth_request(THROTTLED_ATTEMPTS + 1)
    ).attach(client)

    put_once(client, table_name, "after-a-500")

    assert failing.injected["internal"] == 1
    item = dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": "after-a-500"}})
    assert item["Item"]["n"] == {"N": "1"}


def test_a_pacer_attached_again_replaces_the_first_on_every_hook(
    dynamodb_client, dynamodb_endpoint, table_name
):
    """The pacer attached last has all the hooks (a hook left to the first
    would take the writes' turns from it and end its throttled spells)."""
    client = propsync_client(dynamodb_endpoint)
    first = WritePacer(1000, rng=no_retry_wait).attach(client)
    second = WritePacer(500, rng=no_retry_wait).attach(client)
    throttle(client, first_attempts(3, {"PutItem"}))
    put_once(client, table_name, "replaced")

    assert first.figures() == type(first.figures())(0, 0, 0.0)
    figures = second.figures()
    assert (figures.writes, figures.throttled) == (4, 3)
    assert figures.throttled_seconds > 0
    client.put_item(TableName=table_name, Item={"pk": {"S": "later"}})
    assert second.figures().throttled_seconds == figures.throttled_seconds  # the spell ended


# ------------------------------------------------- imports under throttling

MAPPING = {
    "properties": [
        {"from_column": "n", "to_property": "n", "type": "number"},
        {"from_column": "name", "to_property": "name", "type": "string"},
    ],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
ROWS = 60
CHUNK_BYTES = 200  # about 16 rows a chunk: 4 chunks
THROTTLED_SHARE = 0.7  # of every write on the chunk's client, every attempt


def the_file() -> bytes:
    return b"id,n,name\n" + b"".join(b"r%02d,%d,row %d\n" % (i, i, i) for i in range(ROWS))


def throttle_writes(client: Any, seed: int) -> FaultInjector:
    return FaultInjector(
        THROTTLED_SHARE,
        seed=seed,
        kinds=("throttling",),
        should_fail=lambda operation, _params: operation in WRITE_OPERATIONS,
    ).attach(client)


def started(imports, monkeypatch, name: str) -> str:
    """The execution of the file, planned and its chunks queued, none run."""
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", str(CHUNK_BYTES))
    imports.put_mapping(name, MAPPING)
    record, _ = imports.drop(name, "f.csv", the_file(), run_chunks=False)
    assert record.chunks_total >= 4
    return record.execution_id


def stored_values(imports) -> dict[str, dict]:
    store = imports.services.customers
    values = {}
    for i in range(ROWS):
        customer_id = find_customer_id(store, PROJECT, "registered", f"r{i:02d}")
        if customer_id:
            values[f"r{i:02d}"] = plain_properties(store.read_customer(PROJECT, customer_id))
    return values


@pytest.fixture
def with_real_time(imports):
    """The harness's executions at the real time, so the pace is measured."""
    imports.services = dataclasses.replace(imports.services, clock=time.time)
    return imports


def test_a_paced_import_under_sustained_throttling_completes_every_chunk_on_its_first_receive(
    with_real_time, dynamodb_client, monkeypatch
):
    imports = with_real_time
    # the chunk function's pacer on the client of its stores; a ceiling far
    # above what the engines take, and no sleep for a turn: the injected
    # throttling is a share of requests, not a capacity a rate could find
    # (AIMD would take the rate to its floor of 1 write a second), and how
    # the rate follows throttling is the unit tests' subject
    pacer = WritePacer(100_000, rng=no_retry_wait, sleep=no_sleep).attach(dynamodb_client)
    imports.services = dataclasses.replace(imports.services, pacer=pacer)
    execution_id = started(imports, monkeypatch, "paced")
    faults = throttle_writes(dynamodb_client, seed=16)

    imports.run_queue(receive_count=1)  # each chunk's first receive: nothing raised
    faults.detach(dynamodb_client)

    writes = pacer.figures().writes
    assert faults.injected["throttling"] > writes * (THROTTLED_SHARE - 0.15)
    record = imports.services.imports.get(execution_id)
    assert record.status == "succeeded"
    assert record.failed_chunks == set()
    assert record.done_chunks == set(range(record.chunks_total))
    report = imports.report("paced", "f.csv")
    assert report["status"] == "succeeded"
    assert report["failed_chunks"] == []
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (ROWS, ROWS, 0)
    assert report["properties_applied"] == 2 * ROWS
    assert report["properties_ignored_as_stale"] == 0
    assert stored_values(imports) == {
        f"r{i:02d}": {"n": i, "name": f"row {i}"} for i in range(ROWS)
    }
    assert report["throttled_seconds"] > 0
    assert report["rows_per_second"] > 0
    # what the API shows of the execution agrees with the report
    assert round(record.throttled_seconds, 1) == report["throttled_seconds"]
    assert execution_view(record)["progress"]["throttled_seconds"] == report["throttled_seconds"]
    assert record.throttled_seconds <= pacer.figures().throttled_seconds + 1e-3


def test_the_same_import_without_the_pacer_fails_chunks(
    with_real_time, dynamodb_client, monkeypatch
):
    """The contrast: the same throttling on the same file, botocore's
    standard retries alone. Chunks raise the throttling for the queue to
    deliver them again."""
    imports = with_real_time
    execution_id = started(imports, monkeypatch, "unpaced")
    throttle_writes(dynamodb_client, seed=16)

    raised = []
    for message in imports.messages():
        try:
            deliver_chunk(imports.services, message["execution_id"], message["chunk"], 1)
        except ClientError as error:
            raised.append(error)

    assert raised
    assert all(is_transient_error(error) for error in raised)
    assert {error.response["Error"]["Code"] for error in raised} == {"ThrottlingException"}
    record = imports.services.imports.get(execution_id)
    assert record.status == "running"
    assert len(record.done_chunks) < record.chunks_total
