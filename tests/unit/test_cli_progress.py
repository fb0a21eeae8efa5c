"""`propsync import` follows an execution with a progress bar that says the
pace the import achieves and the time its writes waited on throttling."""

import pytest

from propsync import cli
from propsync.store.imports import COUNTERS, ExecutionRecord


def record(**changes) -> ExecutionRecord:
    fields = {
        "execution_id": "e" * 32,
        "project": "p",
        "file_key": "imports/p/crm/people.csv",
        "status": "running",
        "started_at": 1000.0,
        "chunks_total": 4,
        "bytes_total": 4_000_000,
        "done_chunks": frozenset({0}),
        "counters": dict.fromkeys(COUNTERS, 0),
        "progress_rows": 24_000,
        "progress_bytes": 1_000_000,
        "plan": {},
        "problems": [],
        "finished_at": None,
        "progress_throttled_ms": 7_400,
        "running_since": 1000.0,
    }
    return ExecutionRecord(**{**fields, **changes})


def test_the_bar_says_rows_per_second_so_far_and_the_time_throttled(monkeypatch, capsys):
    monkeypatch.setattr(cli.time, "time", lambda: 1012.0)  # 12 s after the first chunk ran
    cli._progress(record())
    line = capsys.readouterr().err
    assert "24000 rows" in line
    assert "2,000 rows/s" in line  # 24,000 rows in 12 s
    assert "throttled 7 s" in line
    assert "running" in line


@pytest.mark.parametrize(("throttled_ms", "counted_ms", "shown"), [(0, 0, 0), (1_000, 61_200, 61)])
def test_a_finished_execution_shows_its_whole_pace_and_its_counted_throttling(
    monkeypatch, capsys, throttled_ms, counted_ms, shown
):
    monkeypatch.setattr(cli.time, "time", lambda: 5000.0)  # long after it finished
    counters = {**dict.fromkeys(COUNTERS, 0), "rows_read": 30_000, "throttled_ms": counted_ms}
    finished = record(
        status="succeeded",
        finished_at=1020.0,
        counters=counters,
        progress_rows=45_000,  # a redelivered chunk reported its rows twice
        progress_throttled_ms=throttled_ms,
    )
    cli._progress(finished)
    line = capsys.readouterr().err
    # the 30,000 rows counted in its 20 s: not the rows reported twice, nor
    # the hour since it finished
    assert "1,500 rows/s" in line
    assert f"throttled {shown} s" in line


def test_the_pace_is_measured_from_the_first_chunk_not_from_the_wait_in_the_queue(
    monkeypatch, capsys
):
    monkeypatch.setattr(cli.time, "time", lambda: 1612.0)
    # started at 1000, its first chunk ran at 1600 (10 minutes behind other imports)
    cli._progress(record(running_since=1600.0))
    assert "2,000 rows/s" in capsys.readouterr().err


def test_an_execution_no_chunk_of_which_ran_yet_says_it_waits(monkeypatch, capsys):
    monkeypatch.setattr(cli.time, "time", lambda: 1300.0)
    cli._progress(record(running_since=None, progress_rows=0, progress_bytes=0))
    line = capsys.readouterr().err
    assert "waiting in the chunk queue" in line
    assert "rows/s" not in line


@pytest.mark.parametrize(
    ("rows", "shown"),
    # as the console shows the API's figure (34.5 rows/s: 35, halves away from zero)
    [(2, "0.2 rows/s"), (95, "9.5 rows/s"), (120, "12 rows/s"), (345, "35 rows/s")],
)
def test_a_slow_pace_is_not_rounded_to_nothing(monkeypatch, capsys, rows, shown):
    monkeypatch.setattr(cli.time, "time", lambda: 1010.0)  # 10 s after the first chunk ran
    cli._progress(record(progress_rows=rows))
    assert shown in capsys.readouterr().err
