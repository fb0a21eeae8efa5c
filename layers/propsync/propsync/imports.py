"""Import executions: a CSV file dropped into the import bucket becomes
customer updates under the merge rule, with a report.

Keys (docs/ARCHITECTURE.md): the mapping is
``imports/<project>/<import>/mapping.json``; each data file beside it
(``<file>.csv`` or ``<file>.csv.gz``) starts one execution, which writes
``reports/<project>/<import>/<file>.json`` and, when rows were rejected,
``<file>.rejected.csv``.

An execution is identified by the S3 PUT that created the file (bucket, key,
sequencer), so a redelivered event or a rerun after a crash finds the same
record and the same start time: the default timestamp of its rows. Files
larger than one chunk are cut into byte ranges of whole rows; each range is a
queue message handled by its own invocation, its counts added to the record
once, and the invocation that completes the last chunk writes the report.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, cast

from propsync.bucket import ChunkQueue, ImportBucket
from propsync.customer_updates import lookup_owners, run_concurrently, write_update
from propsync.errors import PropsyncError
from propsync.import_mapping import (
    InvalidMappingError,
    check_columns,
    mapping_document,
    parse_mapping,
)
from propsync.import_rows import (
    MAX_HEADER_BYTES,
    Chunk,
    FileLayout,
    RejectedRow,
    RowUpdate,
    iter_records,
    map_record,
    plan_chunks,
    read_layout,
    rejected_csv,
)
from propsync.merge_rule import merge
from propsync.store import AccessStore, CustomerStore, ExecutionRecord, ImportStore

logger = logging.getLogger(__name__)

CHUNK_BYTES_ENV = "PROPSYNC_IMPORT_CHUNK_BYTES"
# 16 MB is about 150,000 rows of ~100 bytes: a few minutes at 1,000 rows/s, well
# inside Lambda's 15-minute limit; a 1 GB file becomes 64 parallel chunks.
DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024
ROWS_PER_BATCH = 500  # one batched identity lookup, then concurrent writes
# ... or fewer rows when they are large: a row may have up to 1 MiB
# (import_rows.MAX_ROW_BYTES), and 500 of those must not be held at once
BATCH_BYTES = 8 * 1024 * 1024
MAX_REPORTED_ERRORS = 100
_DATA_KEY = re.compile(r"imports/(?P<project>[^/]+)/(?P<name>[^/]+)/(?P<file>[^/]+\.csv(?:\.gz)?)")


@dataclass(frozen=True)
class ImportFile:
    project: str
    import_name: str
    file_name: str
    key: str

    @property
    def mapping_key(self) -> str:
        return f"imports/{self.project}/{self.import_name}/mapping.json"

    @property
    def report_key(self) -> str:
        return f"reports/{self.project}/{self.import_name}/{self.file_name}.json"

    @property
    def rejected_key(self) -> str:
        return f"reports/{self.project}/{self.import_name}/{self.file_name}.rejected.csv"

    def part_key(self, chunk_index: int, suffix: str) -> str:
        return f"{self.parts_prefix}{chunk_index:06d}.{suffix}"

    @property
    def parts_prefix(self) -> str:
        return f"reports/{self.project}/{self.import_name}/.parts/{self.file_name}/"

    @property
    def compressed(self) -> bool:
        return self.file_name.endswith(".gz")


def import_file(key: str) -> ImportFile | None:
    """The data file an object key names, or None (a mapping, a report, ...)."""
    found = _DATA_KEY.fullmatch(key)
    if not found:
        return None
    return ImportFile(found["project"], found["name"], found["file"], key)


def execution_id_for(bucket: str, key: str, sequencer: str) -> str:
    return hashlib.sha256(f"{bucket}\n{key}\n{sequencer}".encode()).hexdigest()[:32]


def chunk_bytes() -> int:
    return int(os.environ.get(CHUNK_BYTES_ENV) or DEFAULT_CHUNK_BYTES)


@dataclass
class Services:
    """Everything an execution talks to (the real ones, or test doubles of the
    same classes over moto)."""

    customers: CustomerStore
    access: AccessStore
    imports: ImportStore
    bucket: ImportBucket
    queue: ChunkQueue | None
    clock: Any = time.time


def services_from_environment() -> Services:
    from propsync.bucket import bucket_from_environment, queue_from_environment  # noqa: PLC0415
    from propsync.store import (  # noqa: PLC0415
        access_store_from_environment,
        import_store_from_environment,
        store_from_environment,
    )

    return Services(
        customers=store_from_environment(),
        access=access_store_from_environment(),
        imports=import_store_from_environment(),
        bucket=bucket_from_environment(),
        queue=queue_from_environment(),
    )


# ---------------------------------------------------------------- start


def start_execution(services: Services, key: str, sequencer: str) -> ExecutionRecord | None:
    """Handle one S3 "object created" for ``key``: plan the execution and run
    it inline (one chunk) or enqueue its chunks. Idempotent."""
    target = import_file(key)
    if target is None:
        logger.info("ignoring object that is not an import data file", extra={"key": key})
        return None
    execution_id = execution_id_for(services.bucket.name, key, sequencer)
    record = services.imports.start(execution_id, target.project, key, services.clock())
    if record.status != "running":
        logger.info("execution already finished", extra={"execution_id": execution_id})
        return record
    if not record.plan:
        try:
            mapping_document, layout = _prepare(services, target)
        except InvalidMappingError as error:
            _fail(services, record, target, error.problems)
            return services.imports.get(execution_id)
        size = services.bucket.size(key)
        if target.compressed or size - layout.data_start <= chunk_bytes():
            chunks = [Chunk(layout.data_start, None, layout.data_first_line)]
            if not target.compressed and size <= layout.data_start:
                chunks = []  # only a header: nothing to write
        else:
            chunks = plan_chunks(services.bucket.open(key), layout, chunk_bytes())
        plan = {
            "mapping": mapping_document,
            "header": layout.header,
            "delimiter": layout.delimiter,
            "chunks": [[c.start, c.end, c.first_line] for c in chunks],
        }
        services.imports.set_plan(execution_id, plan, len(chunks), size)
        record = services.imports.get(execution_id) or record
    # A rerun (crash, redelivered event) resumes with the chunks not done yet.
    pending = [i for i in range(record.chunks_total) if i not in record.done_chunks]
    if record.chunks_total == 0:
        _finalize(services, execution_id)
    elif record.chunks_total == 1:
        if pending:
            run_chunk(services, execution_id, 0)
    else:
        if services.queue is None:
            raise RuntimeError("a chunked import needs the chunk queue")
        chunk_specs = record.plan["chunks"]
        services.queue.send(
            [
                {
                    "execution_id": execution_id,
                    "chunk": i,
                    # for people reading the queue (or its dead letters); the
                    # execution record's plan is what run_chunk follows
                    "start": chunk_specs[i][0],
                    "end": chunk_specs[i][1],
                    "first_line": chunk_specs[i][2],
                }
                for i in pending
            ]
        )
    return services.imports.get(execution_id)


def _prepare(services: Services, target: ImportFile) -> tuple[Any, FileLayout]:
    if not services.access.project_exists(target.project):
        raise InvalidMappingError([f"Invalid project id: no project {target.project!r}"])
    raw_mapping = services.bucket.read(target.mapping_key)
    if raw_mapping is None:
        raise InvalidMappingError([f"no mapping: upload {target.mapping_key} first"])
    document = mapping_document(raw_mapping)
    mapping = parse_mapping(document)
    with _data_stream(services.bucket, target) as stream:
        head = stream.read(MAX_HEADER_BYTES)
    # (for a .gz file, offsets count bytes of the decompressed stream)
    layout = read_layout(head, mapping.delimiter)
    check_columns(mapping, layout.header)
    return document, layout


def _data_stream(bucket: ImportBucket, target: ImportFile) -> IO[bytes]:
    """The data from its first byte (decompressed for .gz), streamed."""
    stream = bucket.open(target.key)
    if target.compressed:
        return cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb"))
    return stream


def _downloaded(bucket: ImportBucket, target: ImportFile, start: int, end: int | None) -> IO[bytes]:
    """The chunk's bytes copied to a temporary file first (8 MB in memory, the
    rest on disk), then read from there. Rows are written for minutes; an S3
    download held open that long while it is read row by row can be cut by S3,
    and blocks a single-threaded local engine that must answer the writes
    meanwhile. Downloading first takes about a second per 16 MB chunk."""
    spooled = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - returned open
    compressed = (
        bucket.open(target.key) if target.compressed else bucket.open(target.key, start, end)
    )
    with compressed:
        shutil.copyfileobj(compressed, spooled, 1 << 20)
    spooled.seek(0)
    if not target.compressed:
        return cast(IO[bytes], spooled)
    stream = cast(IO[bytes], gzip.GzipFile(fileobj=spooled, mode="rb"))
    if start:
        _skip(stream, start)
    return stream


def _skip(stream: IO[bytes], count: int) -> None:
    while count > 0:
        skipped = len(stream.read(min(count, 1 << 20)))
        if not skipped:
            return
        count -= skipped


def _fail(
    services: Services, record: ExecutionRecord, target: ImportFile, problems: list[str]
) -> None:
    now = services.clock()
    failed = dataclasses.replace(record, status="failed", problems=problems, finished_at=now)
    # the report first: whoever sees the record finished must find it
    services.bucket.put(
        target.report_key, _json(_report(failed, target, [], None, now)), "application/json"
    )
    services.imports.finish(record.execution_id, "failed", now, problems)
    logger.info("import failed before any row", extra={"execution_id": record.execution_id})


# ---------------------------------------------------------------- chunks


@dataclass
class _ChunkOutcome:
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "rows_read": 0,
            "rows_written": 0,
            "rows_rejected": 0,
            "properties_applied": 0,
            "properties_ignored": 0,
            "bytes_done": 0,
        }
    )
    errors: list[dict[str, Any]] = field(default_factory=list)


def run_chunk(services: Services, execution_id: str, index: int) -> None:
    """Import chunk ``index`` of an execution (a byte range of whole rows);
    count it once; finalize the execution if it was the last.

    A chunk that crashes part way is simply run again (the queue redelivers
    it): every write is idempotent under the merge rule (same timestamps, same
    sequences), and the counts are added only when the chunk completes."""
    record = services.imports.get(execution_id)
    if record is None:
        raise RuntimeError(f"no import execution {execution_id}")
    if index in record.done_chunks:
        return  # a redelivered message of a chunk already counted
    target = import_file(record.file_key)
    if target is None:
        raise RuntimeError(f"execution {execution_id} names no data file")
    mapping = parse_mapping(record.plan["mapping"])
    header, delimiter = record.plan["header"], record.plan["delimiter"]
    start, end, first_line = record.plan["chunks"][index]

    outcome = _ChunkOutcome()
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as rejected:
        with _downloaded(services.bucket, target, start, end) as stream:
            counting = _CountingReader(stream)
            buffered = io.BufferedReader(counting, 1 << 16)
            progress = _Progress(services, execution_id)
            for batch in _batches(iter_records(buffered, delimiter, first_line)):
                progress.update(len(batch), counting.count)
                mapped = [
                    RejectedRow(line, cells, problem)
                    if problem
                    else map_record(
                        mapping,
                        header,
                        line,
                        cells,
                        default_timestamp=record.started_at,
                        now=services.clock(),
                    )
                    for line, cells, problem in batch
                ]
                refused = _write_batch(services, record.project, mapped, outcome)
                if refused:
                    rejected.write(rejected_csv(refused, header, delimiter, with_header=False))
            outcome.counters["bytes_done"] = counting.count
            progress.flush(counting.count)
        if outcome.counters["rows_rejected"]:
            rejected.seek(0)  # uploaded as a stream: a chunk's rejects are never all in memory
            services.bucket.put(target.part_key(index, "rejected.csv"), rejected, "text/csv")
    services.bucket.put(
        target.part_key(index, "errors.json"), _json(outcome.errors), "application/json"
    )
    after = services.imports.complete_chunk(execution_id, index, outcome.counters)
    logger.info(
        "import chunk done",
        extra={"execution_id": execution_id, "chunk": index, **outcome.counters},
    )
    if after is not None and after.chunks_done >= after.chunks_total:
        _finalize(services, execution_id)


def _batches(records: Iterator[tuple[int, list[str], str | None]]) -> Iterator[list[Any]]:
    """ROWS_PER_BATCH records, or fewer that hold BATCH_BYTES of cells."""
    batch: list[Any] = []
    size = 0
    for record in records:
        batch.append(record)
        size += sum(map(len, record[1]))
        if len(batch) >= ROWS_PER_BATCH or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _write_batch(
    services: Services, project: str, rows: list[RowUpdate | RejectedRow], outcome: _ChunkOutcome
) -> list[RejectedRow]:
    """Write the batch's updates and return the rows rejected (by the mapping
    or by the store). Rows naming the same ids are merged first with the merge
    rule itself, which gives the same result as writing them one by one (the
    rule is order-independent), in one write instead of several racing for
    the same item. Ids are looked up together; writes run concurrently."""
    refused = [row for row in rows if isinstance(row, RejectedRow)]
    groups: dict[tuple[tuple[str, str], ...], list[RowUpdate]] = {}
    for row in rows:
        if isinstance(row, RowUpdate):
            groups.setdefault(tuple(sorted(row.ids.items())), []).append(row)
    known = (
        lookup_owners(services.customers, project, (dict(k) for k in groups)) if groups else None
    )

    def write(group: list[RowUpdate]) -> tuple[list[RowUpdate], int, int, str | None]:
        versions = merge({}, ((n, v) for row in group for n, v in row.versions.items()))
        try:
            result = write_update(services.customers, project, group[0].ids, versions, known)
        except PropsyncError as error:  # identity conflict, customer too large, ...
            return group, 0, 0, str(error)
        return group, len(result.applied), len(result.ignored), None

    # counted here, on one thread, from what the writers returned
    for group, applied, ignored, problem in run_concurrently(list(groups.values()), write):
        if problem is None:
            outcome.counters["rows_written"] += len(group)
            outcome.counters["properties_applied"] += applied
            outcome.counters["properties_ignored"] += ignored
        else:
            refused += [RejectedRow(row.line, row.cells, problem) for row in group]
    outcome.counters["rows_read"] += len(rows)
    outcome.counters["rows_rejected"] += len(refused)
    refused.sort(key=lambda row: row.line)
    room = MAX_REPORTED_ERRORS - len(outcome.errors)
    outcome.errors += [{"line": r.line, "reason": r.reason} for r in refused[: max(room, 0)]]
    return refused


class _Progress:
    """Reports rows and bytes read to the execution record every few seconds."""

    INTERVAL_SECONDS = 2.0

    def __init__(self, services: Services, execution_id: str):
        self._services = services
        self._execution_id = execution_id
        self._rows = 0
        self._reported_bytes = 0
        self._last = time.monotonic()

    def update(self, rows: int, bytes_read: int) -> None:
        self._rows += rows
        if time.monotonic() - self._last >= self.INTERVAL_SECONDS:
            self.flush(bytes_read)

    def flush(self, bytes_read: int) -> None:
        if self._rows or bytes_read > self._reported_bytes:
            self._services.imports.add_progress(
                self._execution_id, self._rows, bytes_read - self._reported_bytes
            )
        self._rows, self._reported_bytes = 0, bytes_read
        self._last = time.monotonic()


class _CountingReader(io.RawIOBase):
    """Counts the bytes read through it (the progress of a chunk)."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


# ---------------------------------------------------------------- report


def _finalize(services: Services, execution_id: str) -> None:
    """Merge the chunks' rejected rows and errors, write the report, close the
    record. Safe to run twice (it rewrites the same files)."""
    record = services.imports.get(execution_id)
    if record is None:
        return
    target = import_file(record.file_key)
    if target is None:
        return
    part_keys = sorted(services.bucket.keys(target.parts_prefix))
    errors: list[dict[str, Any]] = []
    rejected_parts = []
    for key in part_keys:
        if key.endswith(".errors.json"):
            errors += json.loads(services.bucket.read(key) or b"[]")
        elif key.endswith(".rejected.csv"):
            rejected_parts.append(key)
    errors.sort(key=lambda error: error["line"])
    rejected_key = None
    if rejected_parts:
        header = record.plan["header"]
        delimiter = record.plan["delimiter"]
        with tempfile.SpooledTemporaryFile(max_size=1 << 20) as merged:
            merged.write(rejected_csv([], header, delimiter, with_header=True))
            for key in rejected_parts:
                with services.bucket.open(key) as part:
                    shutil.copyfileobj(part, merged, 1 << 20)
            merged.seek(0)
            services.bucket.put(target.rejected_key, merged, "text/csv")
        rejected_key = target.rejected_key
    counters = record.counters
    if counters["rows_rejected"] == 0:
        status = "succeeded"
    elif counters["rows_written"] > 0:
        status = "partially_succeeded"
    else:
        status = "failed"
    now = services.clock()
    final = dataclasses.replace(record, status=status, finished_at=now)
    report = _report(final, target, errors[:MAX_REPORTED_ERRORS], rejected_key, now)
    # the report first: whoever sees the record finished must find it
    services.bucket.put(target.report_key, _json(report), "application/json")
    services.imports.finish(execution_id, status, now)
    services.bucket.delete(part_keys)
    logger.info("import finished", extra={"execution_id": execution_id, "status": status})


def _report(
    record: ExecutionRecord,
    target: ImportFile,
    errors: list[dict[str, Any]],
    rejected_key: str | None,
    now: float,
) -> dict[str, Any]:
    mapping = record.plan.get("mapping") or {}
    timestamp_column = (mapping.get("update_timestamp") or {}).get("from_column")
    return {
        "status": record.status,
        "execution_id": record.execution_id,
        "project_token": target.project,
        "import_name": target.import_name,
        "file": target.key,
        "rows_read": record.counters["rows_read"],
        "rows_written": record.counters["rows_written"],
        "rows_rejected": record.counters["rows_rejected"],
        "properties_applied": record.counters["properties_applied"],
        "properties_ignored_as_stale": record.counters["properties_ignored"],
        "started_at": record.started_at,
        "default_update_timestamp": record.started_at,
        "update_timestamp_from": (
            f"column {timestamp_column!r}" if timestamp_column else "the execution's start time"
        ),
        "finished_at": now,
        "duration_seconds": round(now - record.started_at, 3),
        "chunks": record.chunks_total,
        "problems": record.problems,
        "errors": errors,
        "rejected_file": rejected_key,
    }


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8")
