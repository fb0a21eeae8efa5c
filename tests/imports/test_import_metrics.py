"""The import figures on-call reads (docs/OPERATIONS.md, "Alarms"): the chunk
handler answers a failed chunk in ``batchItemFailures`` instead of raising,
so Lambda's Errors metric never shows it; the handler publishes
ImportChunksFailed (alarmed on) and the rows' counts as CloudWatch embedded
metric format documents on stdout, which the tests read as Powertools
documents it (capsys). Through the real handler and the moto queue, on both
DynamoDB engines."""

import dataclasses
import json
import os

import pytest

from propsync import imports as imports_module
from propsync.observability import metrics
from tests.imports.test_failing_chunks import ROWS, drop_chunked, fail_chunk_reads, pump


@pytest.fixture
def published(capsys):
    """Reads the metrics the handlers printed since the last read: {name:
    total}, checking that every document is in the stack's namespace with
    only the bounded `service` dimension (no execution, no project)."""
    metrics.clear_metrics()  # nothing left over from an earlier test
    capsys.readouterr()

    def read() -> dict[str, float]:
        totals: dict[str, float] = {}
        for line in capsys.readouterr().out.splitlines():
            document = json.loads(line) if line.startswith("{") else {}
            if "_aws" not in document:
                continue  # a log line
            [directive] = document["_aws"]["CloudWatchMetrics"]
            assert directive["Namespace"] == os.environ["POWERTOOLS_METRICS_NAMESPACE"]
            assert directive["Dimensions"] == [["service"]]
            assert document["service"] == os.environ.get("POWERTOOLS_SERVICE_NAME", "service")
            for metric in directive["Metrics"]:
                assert metric["Unit"] == "Count"
                value = document[metric["Name"]]
                values = value if isinstance(value, list) else [value]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(values)
        return totals

    return read


def small_chunks_of_numbers(imports, monkeypatch) -> None:
    """The import "rows": ids and a number column "n", in chunks of 60 bytes."""
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "60")
    imports.put_mapping(
        "rows",
        {
            "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
            "ids": [{"from_column": "id", "to_id": "registered"}],
        },
    )


def test_a_chunk_that_succeeds_publishes_its_rows_and_no_failure(
    environment, monkeypatch, published
):
    imports = environment
    record = drop_chunked(imports, monkeypatch)
    published()  # what planning published is not the chunks'
    deliveries = pump(imports)
    assert not any(failed for _, _, failed in deliveries)
    figures = published()
    assert "ImportChunksFailed" not in figures
    assert "ImportRowsFailed" not in figures
    assert figures["ImportRowsWritten"] == ROWS
    assert figures["ImportsFinished"] == 1
    assert imports.services.imports.get(record.execution_id).status == "succeeded"


def test_an_import_finalized_again_is_counted_once(environment, monkeypatch, published):
    """A copy of the last chunk's message (SQS delivers at least once) may
    finalize the execution again: it rewrites the same report, and counts
    no second import finished."""
    imports = environment
    record = drop_chunked(imports, monkeypatch)
    pump(imports)
    assert published()["ImportsFinished"] == 1
    imports_module._finalize(imports.services, record.execution_id)
    metrics.flush_metrics()
    assert "ImportsFinished" not in published()
    assert imports.services.imports.get(record.execution_id).status == "succeeded"


def test_a_finalize_that_lost_the_race_leaves_the_report_whole(environment, monkeypatch):
    """Two runs finalize at once (a copy of the last chunk's message): the
    one that read the record running, then the parts after the other
    finished and deleted them, must not rewrite the report without its
    rejected rows and errors."""
    imports = environment
    small_chunks_of_numbers(imports, monkeypatch)
    data = b"id,n\n" + b"".join(b"r%02d,%s\n" % (i, b"x" if i == 3 else b"1") for i in range(9))
    record, _ = imports.drop("rows", "f.csv", data, run_chunks=False)
    pump(imports)
    report = imports.report("rows", "f.csv")
    assert [error["line"] for error in report["errors"]] == [5]
    finished = imports.services.imports.get(record.execution_id)
    stale = dataclasses.replace(finished, status="running", finished_at=None)
    real_get, reads = imports.services.imports.get, []

    def read_before_the_other_finished(execution_id, **kwargs):
        reads.append(execution_id)
        return stale if len(reads) == 1 else real_get(execution_id, **kwargs)

    monkeypatch.setattr(imports.services.imports, "get", read_before_the_other_finished)
    imports_module._finalize(imports.services, record.execution_id)
    assert len(reads) == 2
    assert imports.report("rows", "f.csv") == report


def test_a_chunk_given_up_publishes_one_failed_chunk(environment, monkeypatch, published):
    """A chunk the data breaks is failed on its first receive: the handler's
    answer lists no failure (nothing for the queue to retry), Lambda sees a
    success, and only ImportChunksFailed says a chunk was lost."""
    imports = environment
    record = drop_chunked(imports, monkeypatch)
    published()
    fail_chunk_reads(monkeypatch, record, 1, EOFError("compressed file ended early"))
    deliveries = pump(imports)
    assert not any(failed for _, _, failed in deliveries)
    figures = published()
    assert figures["ImportChunksFailed"] == 1
    assert figures["ImportsFinished"] == 1
    assert imports.services.imports.get(record.execution_id).status == "incomplete"


def test_a_chunk_failing_on_every_receive_publishes_it_once_when_given_up(
    environment, monkeypatch, published
):
    """The receives before the last raise for the queue to retry (transient
    errors): only the receive that records the failure publishes it."""
    imports = environment
    record = drop_chunked(imports, monkeypatch)
    published()
    fail_chunk_reads(monkeypatch, record, 2, ConnectionError("connection reset"))
    deliveries = pump(imports)
    answers = [failed for message, _, failed in deliveries if message["chunk"] == 2]
    assert len(answers) > 1
    assert answers == [True] * (len(answers) - 1) + [False]
    assert published()["ImportChunksFailed"] == 1


def test_rejected_rows_are_published_as_failed_rows(environment, monkeypatch, published):
    imports = environment
    small_chunks_of_numbers(imports, monkeypatch)
    bad = {3, 7, 11}
    data = b"id,n\n" + b"".join(
        b"r%02d,%s\n" % (i, b"not a number" if i in bad else b"%d" % i) for i in range(ROWS)
    )
    imports.drop("rows", "f.csv", data, run_chunks=False)
    published()
    pump(imports)
    figures = published()
    assert figures["ImportRowsFailed"] == len(bad)
    assert figures["ImportRowsWritten"] == ROWS - len(bad)
    assert "ImportChunksFailed" not in figures
