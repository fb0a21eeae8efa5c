"""A chunk that keeps failing is given up after a bounded number of receives,
recorded, and the execution still finishes with a report that names it: the
dead-letter queue is not where an import ends. Delivered through the real
chunk handler from the real (moto) queue, the receive count rising as SQS
counts it."""

import json

from propsync import imports as imports_module
from propsync.customer_view import plain_properties
from propsync.identity import find_customer_id
from propsync_local import triggers
from propsync_local.apigw import LambdaContext, load_handler
from tests.conftest import PROJECT

MAPPING = {
    "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
ROWS = 30


def pump(imports, *, skip_receives: int = 0) -> list[tuple[dict, int, bool]]:
    """Deliver the queue's messages to ImportChunkFunction one at a time, as
    the event source mapping does (BatchSize 1), until the queue is empty. A
    message the answer names as failed becomes visible again at once (a
    visibility timeout of 0 stands for the real one's expiry). The first
    ``skip_receives`` receives of each message reach no function: runs that
    ended without an answer (timed out). Returns (message, receive count,
    failed) for every delivery."""
    handler = load_handler("ImportChunkFunction")
    deliveries = []
    for _ in range(500):
        response = imports.sqs.receive_message(
            QueueUrl=imports.services.queue.url,
            MaxNumberOfMessages=1,
            VisibilityTimeout=0,
            MessageSystemAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return deliveries
        [message] = messages
        receives = int(message["Attributes"]["ApproximateReceiveCount"])
        if receives <= skip_receives:
            continue
        answer = handler(triggers.sqs_event(messages), LambdaContext("ImportChunkFunction"))
        failed = bool(answer["batchItemFailures"])
        deliveries.append((json.loads(message["Body"]), receives, failed))
        if not failed:
            imports.sqs.delete_message(
                QueueUrl=imports.services.queue.url, ReceiptHandle=message["ReceiptHandle"]
            )
    raise AssertionError("the queue never emptied")


def drop_chunked(imports, monkeypatch, name="chunks"):
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "60")
    imports.put_mapping(name, MAPPING)
    data = b"id,n\n" + b"".join(b"r%02d,%d\n" % (i, i) for i in range(ROWS))
    record, _ = imports.drop(name, "f.csv", data, run_chunks=False)
    assert record.status == "running"
    assert record.chunks_total > 3
    return record


def written(imports) -> dict[str, int]:
    store = imports.services.customers
    values = {}
    for i in range(ROWS):
        customer_id = find_customer_id(store, PROJECT, "registered", f"r{i:02d}")
        if customer_id:
            values[f"r{i:02d}"] = plain_properties(store.read_customer(PROJECT, customer_id))["n"]
    return values


def fail_chunk_reads(monkeypatch, record, chunk: int, error: Exception) -> list[int]:
    """Every read of ``chunk``'s bytes raises ``error``; returns the list its
    attempts are counted in."""
    start = record.plan["chunks"][chunk][0]
    real = imports_module._downloaded
    attempts = []

    def downloaded(bucket, target, chunk_start, end, etag):
        if chunk_start == start:
            attempts.append(1)
            raise error
        return real(bucket, target, chunk_start, end, etag)

    monkeypatch.setattr(imports_module, "_downloaded", downloaded)
    return attempts


def rows_of(record, chunk: int) -> list[str]:
    """The ids of a chunk's rows (each row is one line here)."""
    chunks = record.plan["chunks"]
    first = chunks[chunk][2]
    last = chunks[chunk + 1][2] - 1 if chunk + 1 < len(chunks) else ROWS + 1
    return [f"r{line - 2:02d}" for line in range(first, last + 1)]


def test_a_chunk_that_fails_on_every_receive_is_given_up_and_named_in_the_report(
    environment, monkeypatch
):
    imports = environment
    record = drop_chunked(imports, monkeypatch)
    attempts = fail_chunk_reads(monkeypatch, record, 2, ConnectionError("connection reset"))

    deliveries = pump(imports)

    counts = [receives for message, receives, _ in deliveries if message["chunk"] == 2]
    assert counts == list(range(1, imports_module.LAST_ATTEMPT_RECEIVE + 1))
    assert len(attempts) == imports_module.LAST_ATTEMPT_RECEIVE
    assert [failed for message, _, failed in deliveries if message["chunk"] == 2] == [True] * (
        imports_module.LAST_ATTEMPT_RECEIVE - 1
    ) + [False]  # the last receive records the failure: nothing is left for the DLQ
    report = imports.report("chunks", "f.csv")
    assert report["status"] == "incomplete"
    start, end, first_line = record.plan["chunks"][2]
    assert report["failed_chunks"] == [
        {
            "chunk": 2,
            "start_byte": start,
            "end_byte": end,
            "first_line": first_line,
            "last_line": record.plan["chunks"][3][2] - 1,
            "receives": imports_module.LAST_ATTEMPT_RECEIVE,
            "error": "ConnectionError: connection reset",
        }
    ]
    assert any("failed_chunks" in problem for problem in report["problems"])
    lost = rows_of(record, 2)
    assert report["rows_read"] == report["rows_written"] == ROWS - len(lost)
    assert written(imports) == {f"r{i:02d}": i for i in range(ROWS) if f"r{i:02d}" not in lost}
    stored = imports.services.imports.get(record.execution_id)
    assert stored.status == "incomplete"
    assert stored.failed_chunks == {2}
    assert not [key for key in imports.keys("reports/") if "/.parts/" in key]


def test_a_chunk_the_data_breaks_is_failed_on_its_first_receive(environment, monkeypatch):
    """Retrying cannot help a chunk whose bytes cannot be read (a damaged
    gzip stream, a defect): it is failed at once, not after five receives."""
    imports = environment
    record = drop_chunked(imports, monkeypatch)
    last = record.chunks_total - 1
    fail_chunk_reads(monkeypatch, record, last, EOFError("compressed file ended early"))

    deliveries = pump(imports)

    assert [receives for m, receives, _ in deliveries if m["chunk"] == last] == [1]
    [failure] = imports.report("chunks", "f.csv")["failed_chunks"]
    assert failure["chunk"] == last
    assert failure["last_line"] is None  # to the end of the file
    assert failure["error"] == "EOFError: compressed file ended early"


def test_a_chunk_whose_runs_end_without_an_answer_is_given_up_without_running(
    environment, monkeypatch
):
    """Receives that reach no answer (the function timed out or ran out of
    memory) count too: from GIVE_UP_RECEIVE on the chunk is failed unread."""
    imports = environment
    record = drop_chunked(imports, monkeypatch)
    attempts = fail_chunk_reads(monkeypatch, record, 0, AssertionError("must not run"))

    deliveries = pump(imports, skip_receives=imports_module.GIVE_UP_RECEIVE - 1)

    assert attempts == []
    assert len(deliveries) == record.chunks_total  # each delivered once, none failed
    report = imports.report("chunks", "f.csv")
    assert report["status"] == "incomplete"
    assert [f["chunk"] for f in report["failed_chunks"]] == list(range(record.chunks_total))
    assert "without finishing" in report["failed_chunks"][0]["error"]
    assert report["rows_read"] == 0


def test_a_chunk_that_fails_and_then_succeeds_counts_once(environment, monkeypatch):
    imports = environment
    record = drop_chunked(imports, monkeypatch)
    real = imports_module._downloaded
    failures = iter([True, True])

    def flaky(bucket, target, start, end, etag):
        if start == record.plan["chunks"][1][0] and next(failures, False):
            raise ConnectionError("reset")
        return real(bucket, target, start, end, etag)

    monkeypatch.setattr(imports_module, "_downloaded", flaky)
    pump(imports)

    report = imports.report("chunks", "f.csv")
    assert report["status"] == "succeeded"
    assert report["failed_chunks"] == []
    assert report["rows_written"] == ROWS
    assert written(imports) == {f"r{i:02d}": i for i in range(ROWS)}


def test_a_one_chunk_file_that_keeps_failing_ends_with_a_report(environment, monkeypatch):
    """A small file's one chunk goes to the queue like any other (ImportFunction
    only plans: its S3 event, retried twice by Lambda and then handed to
    ImportFailureFunction, never carries the writes), where the bounded
    receives end it either way."""
    imports = environment
    imports.put_mapping("small", MAPPING)

    def unreachable(*_args):
        raise ConnectionError("S3 unreachable")

    monkeypatch.setattr(imports_module, "_downloaded", unreachable)
    record, _ = imports.drop("small", "s.csv", b"id,n\nr00,0\n", run_chunks=False)
    assert record.status == "running"
    assert record.chunks_total == 1

    deliveries = pump(imports)

    assert [receives for _, receives, _ in deliveries] == list(
        range(1, imports_module.LAST_ATTEMPT_RECEIVE + 1)
    )
    report = imports.report("small", "s.csv")
    assert report["status"] == "incomplete"
    assert report["failed_chunks"][0]["error"] == "ConnectionError: S3 unreachable"


def test_a_report_lost_after_the_last_chunk_counted_is_written_on_redelivery(
    environment, monkeypatch
):
    imports = environment
    drop_chunked(imports, monkeypatch)
    real_put = imports_module.ImportBucket.put
    lost = []

    def put(bucket, key, body, content_type):
        if key.endswith("f.csv.json") and not lost:
            lost.append(key)
            raise ConnectionError("reset while writing the report")
        return real_put(bucket, key, body, content_type)

    monkeypatch.setattr(imports_module.ImportBucket, "put", put)
    pump(imports)

    assert lost
    report = imports.report("chunks", "f.csv")
    assert report["status"] == "succeeded"
    assert report["rows_written"] == ROWS
