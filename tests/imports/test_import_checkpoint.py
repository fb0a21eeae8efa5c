"""A chunk never runs into Lambda's timeout: it checkpoints, on both engines.

When its invocation has too little time left for another batch, a chunk
counts the rows it has done as a piece, records where it goes on, and sends
itself to the queue again. These tests give chunks no time at all (each run
does one batch, the least it does) and check that every row is written and
counted once, the rejected rows and errors of every piece reach the report
once, and that copies of a message, a crash between counting and sending,
and a chunk failed after some pieces keep all of that true."""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter
from unittest import mock

import pytest

from propsync import import_rows
from propsync import imports as imports_module
from propsync_local.apigw import LambdaContext, function_timeout, load_handler
from tests.support.import_harness import chunk_sqs_event as sqs_event

MAPPING = {
    "properties": [
        {"from_column": "name", "to_property": "first_name", "type": "string"},
        {"from_column": "age", "to_property": "age", "type": "number"},
    ],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
ROWS = 60
BAD = {7, 8, 23, 41, 59}  # rows whose age is not a number


def the_file() -> bytes:
    """ROWS rows; some names are quoted over two lines, so lines and rows differ."""
    lines = [b"id,name,age"]
    for i in range(ROWS):
        name = b'"two\nlines %d"' % i if i % 5 == 0 else b"Name %d" % i
        age = b"x%d" % i if i in BAD else b"%d" % i
        lines.append(b"k%02d,%s,%s" % (i, name, age))
    return b"\n".join(lines) + b"\n"


NO_TIME_LEFT = lambda: 0.0  # noqa: E731 - every run stops after its first batch


@pytest.fixture
def small_batches(imports, monkeypatch):
    monkeypatch.setattr(imports_module, "ROWS_PER_BATCH", 4)
    imports.put_mapping("ck", MAPPING)
    return imports


def assert_imported_once(imports, report, counted_writes) -> None:
    good = ROWS - len(BAD)
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (
        ROWS,
        good,
        len(BAD),
    )
    assert counted_writes == Counter({f"k{i:02d}": 1 for i in range(ROWS) if i not in BAD})
    rejected = list(csv.reader(io.StringIO(imports.rejected("ck", "f.csv").decode())))
    assert [row[2] for row in rejected[1:]] == [f"k{i:02d}" for i in sorted(BAD)]
    assert [error["line"] for error in report["errors"]] == sorted(line_of(i) for i in BAD)


def line_of(row: int) -> int:
    """The line row ``row`` starts on (the header is line 1; every fifth row
    before it took two lines)."""
    return 2 + row + len([i for i in range(row) if i % 5 == 0])


@pytest.mark.parametrize("block", [import_rows._BLOCK, 64], ids=["one-run", "many-runs"])
def test_a_chunk_without_time_checkpoints_after_every_batch_and_imports_each_row_once(
    small_batches, counted_writes, block
):
    imports = small_batches
    with mock.patch.object(import_rows, "_BLOCK", block):
        record, _ = imports.drop("ck", "f.csv", the_file(), run_chunks=False)
        delivered = imports.run_queue(time_left=NO_TIME_LEFT)

    assert record.chunks_total == 1
    assert len(delivered) == ROWS // 4 + 1  # a batch per run, and the last finds no row left
    done = imports.services.imports.get(record.execution_id)
    assert done.status == "partially_succeeded"  # the BAD rows rejected, the others written
    assert done.counters["bytes_done"] == len(the_file()) - len(b"id,name,age\n")
    report = imports.report("ck", "f.csv")
    assert_imported_once(imports, report, counted_writes)
    assert not [key for key in imports.keys("reports/") if "/.parts/" in key]  # merged, removed


@pytest.mark.parametrize("pieces_before", [0, 2], ids=["from-the-start", "from-a-checkpoint"])
def test_a_copy_of_the_message_run_at_the_same_time_counts_nothing_twice(
    small_batches, counted_writes, pieces_before
):
    """Two runs of one message from the same point (the chunk's planned
    start, or a checkpoint): the copy read the record before the other
    counted its piece; it stops at another row and its count is refused (the
    point moved), so it sends nothing and its part files stay out of the
    report. Its writes happened: each is idempotent."""
    imports = small_batches
    record, _ = imports.drop("ck", "f.csv", the_file(), run_chunks=False)
    for _ in range(pieces_before):
        imports.deliver_messages(imports.messages(), 1, NO_TIME_LEFT)
    [message] = imports.messages()
    real_mark = imports.services.imports.mark_running
    copy_may_go_on = threading.Event()

    def paused_for_the_copy(*args, **kwargs):
        if threading.current_thread().name == "copy":
            assert copy_may_go_on.wait(30)
        return real_mark(*args, **kwargs)

    imports.services.imports.mark_running = paused_for_the_copy
    batches_of_the_copy = iter([99.0, 0.0])  # two batches, then no time left
    copy = threading.Thread(
        name="copy",
        target=imports.deliver_messages,
        args=([message], 1, lambda: next(batches_of_the_copy, 0.0)),
    )
    copy.start()
    imports.deliver_messages([message], 1, NO_TIME_LEFT)  # counts a batch, sends the rest
    copy_may_go_on.set()
    copy.join(60)
    assert not copy.is_alive()
    imports.services.imports.mark_running = real_mark
    counted_writes.clear()  # the copy wrote two batches again: the same values, the same times

    queued = imports.messages()
    assert len(queued) == 1  # the first run's rest; the copy sent nothing
    imports.deliver_messages(queued, 1, NO_TIME_LEFT)
    imports.run_queue(time_left=NO_TIME_LEFT)

    report = imports.report("ck", "f.csv")
    assert (report["rows_read"], report["rows_rejected"]) == (ROWS, len(BAD))
    rejected = list(csv.reader(io.StringIO(imports.rejected("ck", "f.csv").decode())))
    assert [row[2] for row in rejected[1:]] == [f"k{i:02d}" for i in sorted(BAD)]
    assert imports.services.imports.get(record.execution_id).status == "partially_succeeded"


def test_a_crash_between_counting_a_piece_and_sending_the_rest_goes_on_from_the_piece(
    small_batches, counted_writes
):
    imports = small_batches
    record, _ = imports.drop("ck", "f.csv", the_file(), run_chunks=False)
    [message] = imports.messages()
    real_send = imports.services.queue.send

    def stopped(_messages):
        raise ConnectionError("the function was stopped")

    imports.services.queue.send = stopped
    with pytest.raises(ConnectionError):
        imports.deliver_messages([message], 1, NO_TIME_LEFT)
    imports.services.queue.send = real_send
    assert imports.messages() == []
    assert imports.services.imports.get(record.execution_id).resume_points  # counted

    imports.deliver_messages([message], 2)  # the message comes back, with time enough
    report = imports.report("ck", "f.csv")
    assert_imported_once(imports, report, counted_writes)


def test_a_chunk_failed_after_some_pieces_names_only_the_rows_not_imported(
    small_batches, counted_writes
):
    imports = small_batches
    imports.drop("ck", "f.csv", the_file(), run_chunks=False)
    for _ in range(3):  # rows 0-11: three pieces counted
        imports.deliver_messages(imports.messages(), 1, NO_TIME_LEFT)
    [rest] = imports.messages()

    imports.deliver_messages([rest], imports_module.GIVE_UP_RECEIVE)

    report = imports.report("ck", "f.csv")
    assert report["status"] == "incomplete"
    [failed] = report["failed_chunks"]
    assert failed["first_line"] == line_of(12)  # the first row not imported
    assert failed["start_byte"] <= the_file().index(b"k12,")
    # the pieces counted are in the report, their rejected rows too
    assert (report["rows_read"], report["rows_rejected"]) == (12, 2)
    rejected = list(csv.reader(io.StringIO(imports.rejected("ck", "f.csv").decode())))
    assert [row[2] for row in rejected[1:]] == ["k07", "k08"]


def test_the_chunk_handler_checkpoints_when_its_invocation_has_little_time_left(
    environment, small_batches
):
    imports = small_batches
    record, _ = imports.drop("ck", "f.csv", the_file(), run_chunks=False)
    messages = imports.messages()
    context = LambdaContext("ImportChunkFunction")
    context.get_remaining_time_in_millis = lambda: 30_000  # under a minute left

    answer = load_handler("ImportChunkFunction")(sqs_event(messages), context)

    assert answer == {"batchItemFailures": []}
    done = imports.services.imports.get(record.execution_id)
    assert done.status == "running"
    assert done.counters["rows_read"] == 4
    [again] = imports.messages()
    assert again["chunk"] == 0
    load_handler("ImportChunkFunction")(
        sqs_event([again]), LambdaContext("ImportChunkFunction")
    )  # a full invocation's time: the rest in one run
    assert imports.report("ck", "f.csv")["rows_read"] == ROWS


def test_make_run_gives_each_function_its_templates_time():
    """The local context counts down from the function's Timeout: a chunk
    there has its 900 s, an API route its 18 (under API Gateway's 29 s with a
    cold start: tests/unit/test_time_budget.py)."""
    assert function_timeout("ImportChunkFunction") == 900
    assert function_timeout("TrackingFunction") == 18
    left = LambdaContext("ImportChunkFunction").get_remaining_time_in_millis()
    assert 890_000 < left <= 900_000


@pytest.mark.parametrize(("share", "rows"), [(1.0, 30), (2.0, 60), (10_000.0, 500)])
def test_a_slow_chunk_writes_smaller_batches_so_one_fits_well_inside_an_invocation(
    imports, dynamodb_client, share, rows
):
    """A checkpoint falls between batches: at a share of a write a second a
    batch of 500 rows (up to 1,000 counted_writes) would outlast the invocation, so
    a batch is sized to BATCH_SECONDS at the chunk's pace."""
    import dataclasses  # noqa: PLC0415

    from propsync.store.throttling import WritePacer  # noqa: PLC0415

    pacer = WritePacer(share, sleep=lambda _seconds: None).attach(dynamodb_client)
    imports.services = dataclasses.replace(imports.services, pacer=pacer)
    imports.put_mapping("ck", MAPPING)
    big = b"id,name,age\n" + b"".join(b"s%04d,N,%d\n" % (i, i) for i in range(600))
    record, _ = imports.drop("ck", "f.csv", big, run_chunks=False)

    imports.deliver_messages(imports.messages(), 1, NO_TIME_LEFT)  # one batch, then a checkpoint

    assert imports.services.imports.get(record.execution_id).counters["rows_read"] == rows
