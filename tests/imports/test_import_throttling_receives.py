"""A chunk DynamoDB throttles is no poison message, on both engines.

The chunk queue's dead-letter threshold (maxReceiveCount), and the chunk
function's own give-up receives (imports.LAST_ATTEMPT_RECEIVE and
GIVE_UP_RECEIVE), count receives of a message. Throttling must never use
one: the chunk function's pacer retries a throttled request, read or
write, for as long as it takes, so the chunk slows down and completes on
the receive it started on. Here the chunk function runs through its real
handler, with the clients it makes for itself, on the real (moto) chunk
queue, with most of its DynamoDB requests throttled: every message is
received once, answered without a batch item failure, and deleted."""

from __future__ import annotations

import functools

import pytest

from propsync import imports as imports_module
from propsync.store.dynamo import (
    import_client_and_table_from_environment,
    import_record_client_and_table_from_environment,
)
from propsync.store.throttling import WritePacer
from propsync_local import triggers
from propsync_local.apigw import LambdaContext, load_handler
from tests.support.faults import FaultInjector

MAPPING = {
    "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
ROWS = 60
THROTTLED_SHARE = 0.7  # of every request of the chunk function's clients, every attempt


@pytest.fixture(autouse=True)
def _no_waits(monkeypatch):
    """No real waits: botocore's backoff, and the pacer's jittered retry
    delay and turns (the throttling injected is a share of requests, not a
    capacity a rate could find; how the rate follows throttling is the unit
    tests' subject). What is counted is receives, not time."""
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    monkeypatch.setattr(
        imports_module,
        "WritePacer",
        functools.partial(WritePacer, rng=lambda: 0.0, sleep=lambda _seconds: None),
    )


def receive_one(imports) -> dict | None:
    """One message of the chunk queue, with its receive count. Visible again
    at once if it is not deleted: a chunk that failed would come straight
    back, with its count raised."""
    messages = imports.sqs.receive_message(
        QueueUrl=imports.services.queue.url,
        MaxNumberOfMessages=1,
        VisibilityTimeout=0,
        MessageSystemAttributeNames=["All"],
    ).get("Messages", [])
    return messages[0] if messages else None


def test_a_heavily_throttled_chunk_completes_on_its_first_receive(environment, monkeypatch):
    imports = environment
    monkeypatch.setenv(imports_module.CHUNK_BYTES_ENV, "100")  # several chunks, several lanes
    monkeypatch.setenv(imports_module.WRITES_PER_SECOND_ENV, "100000")
    imports.put_mapping("thr", MAPPING)
    data = b"id,n\n" + b"".join(b"t%02d,%d\n" % (i, i) for i in range(ROWS))
    record, _ = imports.drop("thr", "f.csv", data, run_chunks=False)
    assert record.chunks_total >= 4
    # the chunk function's own clients (the rows', and its execution record's)
    faults = [
        FaultInjector(THROTTLED_SHARE, seed=seed, kinds=("throttling",)).attach(client)
        for seed, (client, _table) in enumerate(
            (
                import_client_and_table_from_environment(),
                import_record_client_and_table_from_environment(),
            )
        )
    ]
    handler = load_handler("ImportChunkFunction")

    receives = []
    while message := receive_one(imports):
        receives.append(message["Attributes"]["ApproximateReceiveCount"])
        answer = handler(triggers.sqs_event([message]), LambdaContext("ImportChunkFunction"))
        assert answer == {"batchItemFailures": []}
        imports.sqs.delete_message(
            QueueUrl=imports.services.queue.url, ReceiptHandle=message["ReceiptHandle"]
        )

    throttled = sum(fault.injected["throttling"] for fault in faults)
    assert throttled > 2 * ROWS  # heavy: most requests were throttled, many more than once
    assert receives == ["1"] * record.chunks_total  # each chunk's message, received once
    done = imports.services.imports.get(record.execution_id)
    assert done.status == "succeeded"
    assert done.failed_chunks == set()
    report = imports.report("thr", "f.csv")
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (ROWS, ROWS, 0)
    assert report["failed_chunks"] == []
    assert report["throttled_seconds"] >= 0
