"""An import keeps a window of its chunks on the chunk queue, so imports
share the queue's slots instead of taking turns, on both engines.

Each execution sends the first chunk of each of its lanes (as many lanes as
PROPSYNC_IMPORT_CONCURRENCY, fixed in its plan); each chunk done sends the
next chunk of its lane. A file dropped beside a large import therefore waits
for a chunk, not for the whole import. Crashes between "done" and "next
sent" are repaired by the message coming back; a message delivered twice
sends nothing twice. The pace is measured from the first chunk's start, and
the live progress moves while a slow batch is written."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync import imports as imports_module
from propsync.import_api import execution_view
from tests.conftest import PROJECT

MAPPING = {
    "properties": [{"from_column": "name", "to_property": "first_name", "type": "string"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}


def rows(prefix: str, count: int) -> bytes:
    return b"id,name\n" + b"".join(
        b"%s%03d,Name %d\n" % (prefix.encode(), i, i) for i in range(count)
    )


def take_one(imports) -> dict | None:
    """The next message of the chunk queue, taken off it (None: empty), as an
    event source with one slot and a batch size of 1 would receive it."""
    response = imports.sqs.receive_message(
        QueueUrl=imports.services.queue.url, MaxNumberOfMessages=1
    )
    messages = response.get("Messages", [])
    if not messages:
        return None
    imports.sqs.delete_message(
        QueueUrl=imports.services.queue.url, ReceiptHandle=messages[0]["ReceiptHandle"]
    )
    return json.loads(messages[0]["Body"])


def queued(imports) -> list[dict]:
    """The messages on the queue, left on it (visible again at once)."""
    response = imports.sqs.receive_message(
        QueueUrl=imports.services.queue.url, MaxNumberOfMessages=10, VisibilityTimeout=0
    )
    return [json.loads(message["Body"]) for message in response.get("Messages", [])]


@pytest.fixture
def chunked(imports, monkeypatch):
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "100")
    monkeypatch.setenv("PROPSYNC_IMPORT_CONCURRENCY", "2")
    imports.put_mapping("big", MAPPING)
    imports.put_mapping("small", MAPPING)
    return imports


def test_an_execution_has_at_most_its_window_of_chunks_queued_each_sent_once(chunked, monkeypatch):
    imports = chunked
    record, _ = imports.drop("big", "big.csv", rows("b", 60), run_chunks=False)
    assert record.chunks_total >= 8
    # the window is the execution's: a later change of the setting is for
    # executions planned after it
    monkeypatch.setenv("PROPSYNC_IMPORT_CONCURRENCY", "5")

    delivered = []
    while (message := take_one(imports)) is not None:
        waiting = queued(imports)
        assert len(waiting) + 1 <= 2, waiting  # this one running, the rest on the queue
        imports.deliver_messages([message])
        delivered.append(message["chunk"])

    assert sorted(delivered) == list(range(record.chunks_total))  # each once, none lost
    # lanes: chunk i follows chunk i - 2
    assert all(delivered.index(i) > delivered.index(i - 2) for i in range(2, len(delivered)))
    report = imports.report("big", "big.csv")
    assert (report["status"], report["rows_written"]) == ("succeeded", 60)


def test_a_small_file_dropped_beside_a_large_import_finishes_long_before_it(chunked):
    """The queue's slot runs one message at a time, oldest first: the small
    file's only chunk waits behind the large import's window, not behind its
    every chunk."""
    imports = chunked
    big, _ = imports.drop("big", "big.csv", rows("b", 60), run_chunks=False)
    imports.deliver_messages([take_one(imports)])  # the large import is under way
    small, _ = imports.drop("small", "small.csv", rows("s", 3), run_chunks=False)

    chunks_of_big_left_when_small_finished = None
    while (message := take_one(imports)) is not None:
        imports.deliver_messages([message])
        done = imports.services.imports.get(small.execution_id)
        if done.status != "running" and chunks_of_big_left_when_small_finished is None:
            big_now = imports.services.imports.get(big.execution_id)
            chunks_of_big_left_when_small_finished = big_now.chunks_total - big_now.chunks_done

    # behind the big one's window (its chunks 1 and 2), not behind its 8 or more
    assert chunks_of_big_left_when_small_finished == big.chunks_total - 3
    assert imports.report("small", "small.csv")["rows_written"] == 3
    assert imports.report("big", "big.csv")["rows_written"] == 60


def test_a_chunk_done_whose_next_was_not_sent_sends_it_when_its_message_comes_back(chunked):
    """The function stopped between counting a chunk and sending the next of
    its lane: the message comes back (it was not deleted), the chunk is done,
    and the next is sent then, once."""
    imports = chunked
    record, _ = imports.drop("big", "big.csv", rows("b", 60), run_chunks=False)
    first = take_one(imports)
    real_send = imports.services.queue.send
    sends = []

    def stopped(messages):
        sends.append(messages)
        raise ConnectionError("the function was stopped")

    imports.services.queue.send = stopped
    try:
        with pytest.raises(ConnectionError):
            imports.deliver_messages([first])
    finally:
        imports.services.queue.send = real_send
    assert [m["chunk"] for m in sends[0]] == [2]
    assert 0 in imports.services.imports.get(record.execution_id).done_chunks
    assert [m["chunk"] for m in queued(imports)] == [1]

    imports.deliver_messages([first], receive_count=2)  # the message comes back
    assert sorted(m["chunk"] for m in queued(imports)) == [1, 2]
    imports.deliver_messages([first], receive_count=3)  # and once more: nothing twice
    assert sorted(m["chunk"] for m in queued(imports)) == [1, 2]

    imports.run_queue()
    report = imports.report("big", "big.csv")
    assert (report["status"], report["chunks"], report["rows_written"]) == (
        "succeeded",
        record.chunks_total,
        60,
    )


def test_a_failed_chunk_sends_the_next_of_its_lane(chunked):
    """A chunk given up on (received too often) still hands its lane on:
    the execution finishes, with that chunk named in its report."""
    imports = chunked
    record, _ = imports.drop("big", "big.csv", rows("b", 60), run_chunks=False)
    first = take_one(imports)

    imports.deliver_messages([first], receive_count=imports_module.GIVE_UP_RECEIVE)
    assert sorted(m["chunk"] for m in queued(imports)) == [1, 2]
    imports.run_queue()

    report = imports.report("big", "big.csv")
    assert report["status"] == "incomplete"
    assert [failed["chunk"] for failed in report["failed_chunks"]] == [0]
    assert report["chunks"] == record.chunks_total


def test_the_pace_is_measured_from_the_first_chunk_and_the_wait_is_reported(chunked):
    imports = chunked
    record, _ = imports.drop("big", "big.csv", rows("b", 60), run_chunks=False)
    assert (
        execution_view(imports.services.imports.get(record.execution_id), 1_700_000_600.0)[
            "progress"
        ]["rows_per_second"]
        == 0
    )  # nothing has run yet
    imports.clock.now += 600  # ten minutes behind other imports' chunks
    ticking = imports.clock

    while (message := take_one(imports)) is not None:
        ticking.now += 1.0
        imports.deliver_messages([message])

    done = imports.services.imports.get(record.execution_id)
    report = imports.report("big", "big.csv")
    assert done.running_since == record.started_at + 600 + 1
    assert report["queued_seconds"] == pytest.approx(601)
    run_seconds = done.finished_at - done.running_since
    assert 0 < run_seconds < report["duration_seconds"]
    assert report["rows_per_second"] == round(60 / run_seconds, 1)
    assert (
        execution_view(done, done.finished_at + 3600)["progress"]["rows_per_second"]
        == (report["rows_per_second"])
    )


def test_live_progress_counts_rows_as_they_are_written_during_a_slow_batch(imports, monkeypatch):
    """A batch whose writes trickle (a low share, throttling): the record's
    rows follow the writes, reported every few seconds while the batch is
    still being written, not the whole batch at once when it is read."""
    monkeypatch.setattr(imports_module._Progress, "INTERVAL_SECONDS", 0.05)
    imports.put_mapping("slow", MAPPING)
    record, _ = imports.drop("slow", "slow.csv", rows("w", 40), run_chunks=False)
    allowed = threading.Semaphore(0)
    real_write = imports_module.write_update

    def slow_write(*args, **kwargs):
        assert allowed.acquire(timeout=30), "the test never let the write go"
        return real_write(*args, **kwargs)

    monkeypatch.setattr(imports_module, "write_update", slow_write)
    worker = threading.Thread(target=imports.run_queue)
    worker.start()
    try:
        for _ in range(5):
            allowed.release()  # five rows of the batch of 40 written
        seen = None
        for _ in range(600):
            seen = imports.services.imports.get(record.execution_id)
            if seen.progress.rows >= 5:
                break
            threading.Event().wait(0.05)
        assert seen.progress.rows == 5  # the rows written, not the 40 read
        assert seen.status == "running"
        assert seen.counters["rows_read"] == 0  # the batch has not ended
    finally:
        for _ in range(40):
            allowed.release()
        worker.join(60)
    assert not worker.is_alive()
    report = imports.report("slow", "slow.csv")
    assert (report["rows_read"], report["rows_written"]) == (40, 40)
    # the reports during the run and the final one add up to the rows once
    assert imports.services.imports.get(record.execution_id).progress_rows == 40


def test_the_chunk_functions_record_writes_never_wait_behind_its_rows(environment):
    """The chunk function's execution record is on a client of its own: its
    progress does not queue behind the rows' paced writes, nor does its time
    count as theirs; a throttled record write is still retried until it
    passes."""
    from propsync.imports import chunk_services_from_environment  # noqa: PLC0415
    from tests.support.faults import FaultInjector  # noqa: PLC0415

    services = chunk_services_from_environment()
    record_client = services.imports._client
    assert record_client is not services.customers._client
    assert services.pacer is not None
    before = services.pacer.figures()
    record, _ = environment.drop("p", "p.csv", rows("p", 1), run_chunks=False)
    twelve = iter(range(12))
    faults = FaultInjector(
        1.0,
        kinds=("throttling",),
        should_fail=lambda operation, _params: (
            operation == "UpdateItem" and next(twelve, None) is not None
        ),
    ).attach(record_client)
    try:
        services.imports.add_progress(record.execution_id, 3, 10, 0)
    finally:
        faults.detach(record_client)
    assert faults.injected["throttling"] == 12
    assert services.imports.get(record.execution_id).progress_rows == 3
    assert services.pacer.figures().writes == before.writes  # not the rows' pacer


def test_a_failing_progress_report_does_not_stop_the_chunk(imports, monkeypatch, caplog):
    monkeypatch.setattr(imports_module._Progress, "INTERVAL_SECONDS", 0.01)
    imports.put_mapping("p", MAPPING)
    imports.drop("p", "p.csv", rows("p", 40), run_chunks=False)
    real_add = imports.services.imports.add_progress
    calls = []

    def failing_then_working(*args, **kwargs):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise ConnectionError("network down for a moment")
        return real_add(*args, **kwargs)

    monkeypatch.setattr(imports.services.imports, "add_progress", failing_then_working)
    real_write = imports_module.write_update
    first_batch = threading.Event()

    def write_after_a_report(*args, **kwargs):
        first_batch.wait(5)  # the progress thread reports (and fails) meanwhile
        return real_write(*args, **kwargs)

    monkeypatch.setattr(imports_module, "write_update", write_after_a_report)
    threading.Timer(0.5, first_batch.set).start()
    imports.run_queue()

    assert calls[0] == "import-progress"
    assert "import progress not reported" in caplog.text
    report = imports.report("p", "p.csv")
    assert (report["status"], report["rows_written"]) == ("succeeded", 40)


class _Stopped(ConnectionError):
    """The function stopped right after a chunk was counted (before the next
    of its lane was sent): a transient error, so the message comes back."""


# what can happen to a message taken off the queue
_DELIVER, _DUPLICATE, _STOP_AFTER_COUNTING, _S3_EVENT_AGAIN = range(4)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 9),
            st.sampled_from([_DELIVER] * 3 + [_DUPLICATE, _STOP_AFTER_COUNTING, _S3_EVENT_AGAIN]),
        ),
        min_size=5,
        max_size=30,
    )
)
def test_any_delivery_order_duplicates_and_stops_import_every_chunk_once(chunked, steps):
    """The class of the cases above: messages taken in any order, delivered
    twice, functions stopped between counting and sending, S3 events again.
    Afterwards the queue drains to a finished import: every chunk was sent
    and counted once, every row read and written once in the counts."""
    imports = chunked
    imports.clock.now += 1
    sequencer = f"{int(imports.clock.now):016X}"
    record, _ = imports.drop("big", "big.csv", rows("b", 60), sequencer, run_chunks=False)
    key = record.file_key
    pending: list[dict] = []  # taken off the queue, not yet handled (in flight)
    receives: dict[int, int] = {}

    def pull() -> None:
        while (message := take_one(imports)) is not None:
            pending.append(message)

    real_send = imports.services.queue.send
    for position, what in steps:
        pull()
        if what == _S3_EVENT_AGAIN:
            imports.deliver(key, sequencer, run_chunks=False)
            continue
        if not pending:
            continue
        message = pending.pop(position % len(pending))
        chunk = message["chunk"]
        receives[chunk] = receives.get(chunk, 0) + 1
        if what == _STOP_AFTER_COUNTING:

            def stopped(_messages):
                raise _Stopped("stopped")

            imports.services.queue.send = stopped
            try:
                imports.deliver_messages([message], receives[chunk])
            except _Stopped:
                pending.append(message)  # not deleted: it comes back
            finally:
                imports.services.queue.send = real_send
        else:
            imports.deliver_messages([message], receives[chunk])
            if what == _DUPLICATE:
                pending.append(message)  # SQS delivers it once more
    for message in pending:
        imports.deliver_messages([message], 1)
    imports.run_queue()

    done = imports.services.imports.get(record.execution_id)
    assert done.status == "succeeded", done
    assert done.done_chunks == set(range(done.chunks_total))
    assert done.sent_chunks == set(range(done.chunks_total))  # every chunk went out
    assert (done.counters["rows_read"], done.counters["rows_written"]) == (60, 60)


def test_an_execution_planned_before_windows_and_part_folders_still_finishes(chunked):
    """A plan stored by the previous version (no window, part files in the
    file's folder, no chunks recorded as sent): each chunk is its own lane,
    so the chunks it sent all at once send nothing more, and its report is
    merged from the file's folder."""
    imports = chunked
    imports.put_mapping(
        "big",
        {
            **MAPPING,
            "properties": [
                *MAPPING["properties"],
                {"from_column": "age", "to_property": "age", "type": "number"},
            ],
        },
    )
    data = b"id,name,age\n" + b"".join(
        b"b%03d,Name %d,%s\n" % (i, i, b"x" if i % 9 == 4 else b"%d" % i) for i in range(40)
    )
    record, _ = imports.drop("big", "big.csv", data, run_chunks=False)
    imports.messages()  # (the new version's first lanes, dropped: sent again below as of old)
    old_plan = {
        key: value
        for key, value in record.plan.items()
        if key not in {"window", "parts_by_execution"}
    }
    imports.services.imports.set_plan(
        record.execution_id, old_plan, record.chunks_total, record.bytes_total
    )
    imports.services.queue.send(
        [{"execution_id": record.execution_id, "chunk": i} for i in range(record.chunks_total)]
    )

    delivered = imports.run_queue()

    assert sorted(m["chunk"] for m in delivered) == list(range(record.chunks_total))
    report = imports.report("big", "big.csv")
    bad = [i for i in range(40) if i % 9 == 4]
    assert (report["rows_written"], report["rows_rejected"]) == (40 - len(bad), len(bad))
    assert [error["line"] for error in report["errors"]] == [i + 2 for i in bad]
    assert not [key for key in imports.keys("reports/") if "/.parts/" in key]


def test_make_runs_trigger_starts_an_upload_while_a_chunk_of_another_runs(environment, monkeypatch):
    """make run's trigger (its thread, as `make run` starts it): an upload
    made while a long chunk of another import runs gets its execution at
    once, so its wait in the queue is measured from its upload, as on AWS."""
    from propsync_local.triggers import ImportTriggers  # noqa: PLC0415

    imports = environment
    imports.put_mapping("big", MAPPING)
    imports.put_mapping("small", MAPPING)
    release = threading.Event()
    real_write = imports_module.write_update

    def held(store, project, ids, *args, **kwargs):
        if ids["registered"].startswith("b"):
            assert release.wait(30), "the test never let the big import go on"
        return real_write(store, project, ids, *args, **kwargs)

    monkeypatch.setattr(imports_module, "write_update", held)
    monkeypatch.setattr("propsync_local.triggers.POLL_SECONDS", 0.05)
    triggers = ImportTriggers(imports.s3, imports.sqs, imports.bucket, imports.services.queue.url)
    triggers.start()
    try:
        big_key = f"imports/{PROJECT}/big/big.csv"
        imports.s3.put_object(Bucket=imports.bucket, Key=big_key, Body=rows("b", 5))
        big = wait_for(lambda: imports.services.imports.latest_for_file(big_key))
        wait_for(lambda: imports.services.imports.get(big.execution_id).running_since)
        small_key = f"imports/{PROJECT}/small/small.csv"
        imports.s3.put_object(Bucket=imports.bucket, Key=small_key, Body=rows("s", 2))

        small = wait_for(lambda: imports.services.imports.latest_for_file(small_key))

        assert imports.services.imports.get(big.execution_id).status == "running"  # still held
        assert small.status == "running"
        release.set()
        wait_for(lambda: imports.services.imports.get(small.execution_id).finished_at)
        wait_for(lambda: imports.services.imports.get(big.execution_id).finished_at)
    finally:
        release.set()
        triggers.stop()
        triggers.join(30)
    assert imports.report("small", "small.csv")["rows_written"] == 2
    assert imports.report("big", "big.csv")["rows_written"] == 5


def wait_for(found):
    """``found()`` once it is truthy (a thread of the test's makes it so)."""
    for _ in range(600):
        value = found()
        if value:
            return value
        threading.Event().wait(0.05)
    raise AssertionError("never happened")
