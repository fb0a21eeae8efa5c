"""Import executions: a CSV file dropped into the import bucket becomes
customer updates under the merge rule, with a report.

Keys (docs/ARCHITECTURE.md): the mapping is
``imports/<project>/<import>/mapping.json``; each data file beside it
(``<file>.csv`` or ``<file>.csv.gz``) starts one execution, which writes
``reports/<project>/<import>/<file>.json`` and, when rows were rejected,
``<file>.rejected.csv``, ``<file>`` being the data file's whole name
(``people.csv`` -> ``people.csv.json``). An execution whose file was uploaded again before
it finished writes them as ``<file>.replaced-<execution id>.json`` (and
``.rejected.csv``) instead, so that they never take the place of the newer
upload's report. A key whose parts would not make such report keys
(an import named ``..``, an empty part, ...) is refused with a failed report
under ``reports/<project>/refused-keys/``.

An execution is identified by the S3 PUT that created the file (bucket, key,
sequencer), so a redelivered event or a rerun after a crash finds the same
record and the same start time: the default timestamp of its rows. Every
read of the file is pinned to the version (ETag) the event announced: an
execution never reads a later upload under the same key. A file is cut into
byte ranges of whole rows (one range for a file of at most one chunk; a
gzipped file's ranges are of its decompressed bytes, and it may have at most
gzip_max_bytes() of them); each range is a queue message handled by its own invocation of
the chunk function, its counts added to the record once, and the invocation
that completes the last chunk writes the report. A chunk paces its writes to
its share of the stack's import ceiling (store.throttling.WritePacer).

Nothing a file holds leaves an execution running: a row that raises is a
rejected row, a file or mapping that cannot be planned is a failed report, and
a chunk that keeps failing is given up after a bounded number of receives and
named in the report. Only throttling and AWS's own faults (transient errors)
are retried.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Concatenate, ParamSpec, TypeVar, cast
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit

from propsync.bucket import ChunkQueue, ImportBucket, ObjectReplacedError
from propsync.container import per_container
from propsync.customer_updates import (
    lookup_ids,
    run_concurrently,
    same_customer_groups,
    with_owner,
    write_update,
)
from propsync.errors import InvalidMappingError, PropsyncError
from propsync.id_type_cache import id_types_of
from propsync.id_types import IdTypes
from propsync.import_mapping import (
    DELIMITERS,
    ImportMapping,
    mapping_document,
    parse_mapping,
    repeated_columns,
    validate_mapping,
)
from propsync.import_rows import (
    MAX_HEADER_BYTES,
    Chunk,
    FileLayout,
    RecordReader,
    RejectedRow,
    ResumePoint,
    RowUpdate,
    map_record,
    plan_chunks,
    read_layout,
    rejected_csv,
    skip_bytes,
)
from propsync.limits import MAX_KEY_BYTES, MAX_MAPPING_BYTES, MAX_PLAN_BYTES
from propsync.merge_rule import merge
from propsync.observability import metrics
from propsync.store.access import AccessStore
from propsync.store.customers import CustomerStore
from propsync.store.dynamo import is_transient_error
from propsync.store.imports import ExecutionRecord, ImportStore, encode_plan
from propsync.store.throttling import WritePacer

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

# template.yaml's parameter ImportChunkBytes on AWS; the environment of `make run`
CHUNK_BYTES_ENV = "PROPSYNC_IMPORT_CHUNK_BYTES"
# 16 MB is about 150,000 rows of ~100 bytes: a few minutes at 1,000 rows/s, well
# inside Lambda's 15-minute limit (a chunk paced slower checkpoints: run_chunk);
# a 1 GB file becomes 64 parallel chunks.
DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024
# four times that: the most a chunk downloads to /tmp (one that takes longer than
# an invocation at its pace checkpoints and goes on in another: run_chunk)
MAX_CHUNK_BYTES = 64 * 1024 * 1024
# template.yaml's parameter ImportGzipMaxBytes; the environment of `make run`
GZIP_MAX_BYTES_ENV = "PROPSYNC_IMPORT_GZIP_MAX_BYTES"
# A .csv.gz file is cut into chunks by decompressed offsets, and a chunk can
# reach its range only by decompressing the file from its start: the last
# chunk of a file at this limit decompresses 1 GiB first (a few seconds),
# and all the chunks together about (chunks / 2) times the file
# (docs/DECISIONS.md: "Gzipped files are cut into chunks, up to a limit").
DEFAULT_GZIP_MAX_BYTES = 1024 * 1024 * 1024
# planning must decompress a file at the most within ImportFunction's 15
# minutes, and a chunk reach its range well within its own (the figures are
# in that paragraph of docs/DECISIONS.md)
MAX_GZIP_MAX_BYTES = 8 * 1024 * 1024 * 1024
# A chunk stops between batches when its invocation has less than this left
# (and twice its slowest batch so far): time to upload its rejected rows,
# count the rows done, and send the rest of its range back to the queue.
CHECKPOINT_SECONDS = 60.0
# ... and a batch is sized to take at most this long at the chunk's pace
BATCH_SECONDS = 60.0
# template.yaml's parameters ImportWritesPerSecond (the ceiling of all imports'
# writes together) and ImportConcurrency (the chunk queue's maximum concurrency)
WRITES_PER_SECOND_ENV = "PROPSYNC_IMPORT_WRITES_PER_SECOND"
CONCURRENCY_ENV = "PROPSYNC_IMPORT_CONCURRENCY"
DEFAULT_WRITES_PER_SECOND = 2000
DEFAULT_CONCURRENCY = 2
MAX_WRITES_PER_SECOND = 1_000_000
MAX_CONCURRENCY = 1000  # SQS event sources' MaximumConcurrency: 2 to 1,000
ROWS_PER_BATCH = 500  # one batched identity lookup, then concurrent writes
# ... or fewer rows when they are large: a row may have up to 1 MiB
# (import_rows.MAX_ROW_BYTES), and 500 of those must not be held at once
BATCH_BYTES = 8 * 1024 * 1024
MAX_REPORTED_ERRORS = 100
MAX_STORED_PROBLEMS = 50  # problems of a failed execution kept in its record and report
MAX_PROBLEM_CHARS = 1000
MAX_ERROR_CHARS = 500  # of an unexpected error's text, in a rejected row or a failed chunk

# A chunk message comes back after every failed run (SQS's ApproximateReceiveCount
# counts its receives). A failure on the LAST_ATTEMPT_RECEIVE-th receive or later
# is recorded instead: the chunk is failed, counts as done, and the import
# finishes with a report naming it. From the GIVE_UP_RECEIVE-th receive on, the
# runs before ended without an answer (timed out, out of memory), so the chunk
# is failed without running again. template.yaml's maxReceiveCount is above
# both: the dead-letter queue only gets a message whose failure could not even
# be recorded, or one that names no import.
LAST_ATTEMPT_RECEIVE = 5
GIVE_UP_RECEIVE = 7

_DATA_SUFFIXES = (".csv", ".csv.gz")
REFUSED_FOLDER = "refused-keys"
EXECUTION_ID_CHARS = 32
# A piece of a chunk, in its part files' names: the last line done before it
# and its own last line (or "end"), each padded to 10 digits
PIECE_LABEL_CHARS = 10 + 1 + 10
# The longest key derived from a data key is a part file of an execution's,
# reports/<project>/<import>/.parts/<file>.<execution id>/000000.<piece>.rejected.csv;
# the rejected rows of a replaced execution,
# reports/<project>/<import>/<file>.replaced-<execution id>.rejected.csv, are shorter
_LONGEST_DERIVED_KEY = max(
    len(".parts/")
    + len(".")
    + EXECUTION_ID_CHARS
    + len("/000000.")
    + PIECE_LABEL_CHARS
    + len(".rejected.csv"),
    len(".replaced-") + EXECUTION_ID_CHARS + len(".rejected.csv"),
)
FILE_REPLACED = (
    "the file was replaced while it was imported (its ETag changed); "
    "the new upload is imported as its own execution"
)
MAX_DATA_KEY_BYTES = MAX_KEY_BYTES - _LONGEST_DERIVED_KEY


def _count(**counts: int) -> None:
    """Publish import figures as metrics (Powertools, EMF: the stack's
    namespace, its one ``service`` dimension, never an execution or a project),
    each where it is recorded once: ImportChunksFailed (a chunk given up, which
    ImportChunkFunction's Errors never shows: its handler reports failures to
    the queue instead of raising), ImportRowsFailed (rows rejected),
    ImportRowsWritten, ImportsFinished (with a report, any status). Only
    counts above 0: an alarm reads no datapoint as none. The handlers flush
    them (``metrics.log_metrics``); the only place imports publish metrics."""
    for name, value in counts.items():
        if value > 0:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


class UnknownChunkError(RuntimeError):
    """A chunk message that names no chunk of a planned execution (nothing to
    report on: the dead-letter queue keeps it)."""


def name_problem(what: str, name: str) -> str | None:
    """Why ``name`` cannot be one part of an import's keys (None if it can).
    Report keys are made of the same parts, so a part must not be able to
    lead them out of ``reports/<project token>/``: not empty, ``.`` or
    ``..``, no ``/`` or ``\\`` (a folder separator on some systems), no
    control characters."""
    if (
        name in {"", ".", ".."}
        or "/" in name
        or "\\" in name
        or any(unicodedata.category(char) == "Cc" for char in name)
    ):
        return (
            f"the {what} {name[:200]!r} is not allowed: it must not be empty, '.' or '..', "
            "nor contain '/', '\\' or control characters, so that its reports stay under "
            "reports/<project token>/"
        )
    return None


@dataclass(frozen=True)
class ImportFile:
    project: str
    import_name: str
    file_name: str
    key: str
    # Why the key cannot be imported (None if it can): its execution fails at
    # once, with its report at report_key, a key under reports/<project>/ that
    # no part of the data key takes part in.
    problem: str | None = None
    # The execution whose file was uploaded again before it finished: its
    # report and rejected rows get keys of their own (see replaced_by_newer_upload)
    replaced_execution: str | None = None

    @property
    def reportable(self) -> bool:
        """False when not even the project part is safe in a report key: the
        key is refused in the log only (there is no project folder to write to)."""
        if name_problem("project token", self.project) is not None:
            return False
        return len(self.report_key.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES

    @property
    def mapping_key(self) -> str:
        return f"imports/{self.project}/{self.import_name}/mapping.json"

    @property
    def report_key(self) -> str:
        if self.problem is not None:
            digest = hashlib.sha256(self.key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
            return f"reports/{self.project}/{REFUSED_FOLDER}/{digest}.json"
        return f"{self._report_stem}.json"

    @property
    def rejected_key(self) -> str:
        return f"{self._report_stem}.rejected.csv"

    @property
    def _report_stem(self) -> str:
        stem = f"reports/{self.project}/{self.import_name}/{self.file_name}"
        if self.replaced_execution is not None:
            return f"{stem}.replaced-{self.replaced_execution}"
        return stem

    def replaced_by_newer_upload(self, execution_id: str) -> ImportFile:
        """This file as an execution whose file was uploaded again reports it:
        a report of its own beside the newer upload's, which it must never
        overwrite (executions of two uploads may finish in any order)."""
        return dataclasses.replace(self, replaced_execution=execution_id)

    def parts_prefix(self, execution_id: str | None) -> str:
        """The folder of an execution's part files (its chunks' rejected
        rows, errors and failures until the report merges them): its own, as
        two uploads of one file may be imported at once. None: the file's
        folder, which executions planned before that shared."""
        folder = self.file_name if execution_id is None else f"{self.file_name}.{execution_id}"
        return f"reports/{self.project}/{self.import_name}/.parts/{folder}/"

    @property
    def compressed(self) -> bool:
        return self.file_name.endswith(".gz")


def import_file(key: str) -> ImportFile | None:
    """The data file an object key names, or None (a mapping, a report, ...).
    A data file whose key would not make safe report keys comes back with its
    ``problem``: the S3 notification fires for it all the same."""
    if not key.startswith("imports/") or not key.endswith(_DATA_SUFFIXES):
        return None
    parts = key.removeprefix("imports/").split("/")
    if len(parts) != 3:
        return ImportFile(
            parts[0] if len(parts) > 1 else "",
            "",
            parts[-1],
            key,
            f"the key {key[:300]!r} is not imports/<project token>/<import name>/<file>.csv "
            "(or .csv.gz): an import file sits in its import's folder, one level deep",
        )
    project, name, file_name = parts
    problem = (
        name_problem("project token", project)
        or name_problem("import name", name)
        or name_problem("file name", file_name)
    )
    size = len(key.encode("utf-8", "surrogatepass"))
    if problem is None and size > MAX_DATA_KEY_BYTES:
        problem = (
            f"the key is {size} bytes; its reports' keys would be over S3's "
            f"{MAX_KEY_BYTES}-byte limit: use at most {MAX_DATA_KEY_BYTES} bytes "
            "(a shorter import or file name)"
        )
    return ImportFile(project, name, file_name, key, problem)


def execution_id_for(bucket: str, key: str, sequencer: str) -> str:
    digest = hashlib.sha256(f"{bucket}\n{key}\n{sequencer}".encode()).hexdigest()
    return digest[:EXECUTION_ID_CHARS]


def chunk_bytes() -> int:
    """The chunk size the environment sets (DEFAULT_CHUNK_BYTES if unset or
    empty): a whole number of bytes from 1 to MAX_CHUNK_BYTES, else ValueError
    saying so. (The stack parameter allows 1 MiB and up; smaller values are for
    trying chunking locally.)"""
    return _whole_number(
        CHUNK_BYTES_ENV, DEFAULT_CHUNK_BYTES, 1, MAX_CHUNK_BYTES, "a chunk size", unit="of bytes "
    )


def gzip_max_bytes() -> int:
    """The most bytes a .csv.gz file may have, compressed and decompressed
    alike (GZIP_MAX_BYTES_ENV; DEFAULT_GZIP_MAX_BYTES if unset or empty): a
    whole number from 1 to MAX_GZIP_MAX_BYTES, else ValueError saying so. (The
    stack parameter allows 1 MiB and up; smaller values are for tests.)"""
    return _whole_number(
        GZIP_MAX_BYTES_ENV,
        DEFAULT_GZIP_MAX_BYTES,
        1,
        MAX_GZIP_MAX_BYTES,
        "a size of .csv.gz files",
        unit="of bytes ",
    )


def _whole_number(
    name: str, default: int, low: int, high: int, meaning: str, *, unit: str = ""
) -> int:
    """The environment variable ``name``: ``default`` if unset or empty, else
    a whole number from ``low`` to ``high``, or ValueError saying so."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ValueError(
            f"{name}={raw[:40]!r} is not {meaning}: set it to a whole number {unit}from {low} "
            f"to {high} (default {default}), or leave it unset"
        )
    return int(raw)


def import_concurrency() -> int:
    """The chunks that may run at once (CONCURRENCY_ENV, the chunk queue's
    maximum concurrency on AWS), which is also how many of one execution's
    chunks are on the queue or running at a time (its window). 1 is allowed
    here, for make run, which runs one chunk at a time; the stack's parameter
    starts at 2, the least MaximumConcurrency SQS event sources take."""
    return _whole_number(
        CONCURRENCY_ENV, DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY, "a number of chunks at once"
    )


def chunk_write_share() -> float:
    """The writes per second one running chunk may send: the ceiling of all
    imports together (WRITES_PER_SECOND_ENV) over the chunks that may run at
    once (import_concurrency)."""
    ceiling = _whole_number(
        WRITES_PER_SECOND_ENV,
        DEFAULT_WRITES_PER_SECOND,
        1,
        MAX_WRITES_PER_SECOND,
        "a number of writes per second",
    )
    return ceiling / import_concurrency()


@dataclass
class Services:
    """Everything an execution talks to (the real ones, or test doubles of the
    same classes over moto). ``pacer`` paces the customers store's writes
    (attached to its client); a chunk reports the time it spent throttled."""

    customers: CustomerStore
    access: AccessStore
    imports: ImportStore
    bucket: ImportBucket
    queue: ChunkQueue | None
    clock: Any = time.time
    pacer: WritePacer | None = None


@per_container
def _chunk_stores() -> tuple[CustomerStore, AccessStore, ImportStore, WritePacer]:
    """The chunk function's stores, on a client of their own whose writes
    are paced to the chunk's share (store.dynamo.import_client_and_table_from_environment),
    and the execution record's on another: its progress written every few
    seconds must not wait its turn behind a batch of rows (nor its time
    throttled count as the rows'), and it too is retried until it passes."""
    from propsync.store.dynamo import (  # noqa: PLC0415
        import_client_and_table_from_environment,
        import_record_client_and_table_from_environment,
    )

    share = chunk_write_share()
    client, table = import_client_and_table_from_environment()
    pacer = WritePacer(share).attach(client)
    record_client, _ = import_record_client_and_table_from_environment()
    WritePacer(share).attach(record_client)
    return (
        CustomerStore(client, table),
        AccessStore(client, table),
        ImportStore(record_client, table),
        pacer,
    )


def chunk_services_from_environment() -> Services:
    """The services of the chunk function: its writes paced to its share."""
    from propsync.bucket import bucket_from_environment, queue_from_environment  # noqa: PLC0415

    customers, access, imports, pacer = _chunk_stores()
    return Services(
        customers=customers,
        access=access,
        imports=imports,
        bucket=bucket_from_environment(),
        queue=queue_from_environment(),
        pacer=pacer,
    )


def services_from_environment(*, with_queue: bool = True) -> Services:
    """The import function's services; ``with_queue=False``: without the
    chunk queue (ImportFailureFunction, which queues no chunk)."""
    from propsync.bucket import bucket_from_environment, queue_from_environment  # noqa: PLC0415
    from propsync.store.access import access_store_from_environment  # noqa: PLC0415
    from propsync.store.customers import store_from_environment  # noqa: PLC0415
    from propsync.store.imports import import_store_from_environment  # noqa: PLC0415

    return Services(
        customers=store_from_environment(),
        access=access_store_from_environment(),
        imports=import_store_from_environment(),
        bucket=bucket_from_environment(),
        queue=queue_from_environment() if with_queue else None,
    )


# ---------------------------------------------------------------- start


@dataclass(frozen=True)
class Upload:
    """One upload as an S3 "object created" record names it."""

    bucket: str
    key: str  # decoded (S3 event keys arrive URL-encoded)
    sequencer: str  # with the bucket and key, the execution's identity
    etag: str | None  # the version every read of the execution is pinned to
    event_time: float | None  # when S3 made the upload (None: not given)


def upload_of(record: Mapping[str, Any]) -> Upload:
    """The upload an S3 event record names (KeyError if it names none)."""
    s3 = record["s3"]
    etag = s3["object"].get("eTag")
    return Upload(
        bucket=s3["bucket"]["name"],
        key=unquote_plus(s3["object"]["key"]),
        sequencer=s3["object"].get("sequencer") or etag or "",
        etag=etag,
        event_time=_event_time(record.get("eventTime")),
    )


def _event_time(text: Any) -> float | None:
    """An S3 event's eventTime (ISO 8601, ``2026-11-29T08:00:00.000Z``) in seconds."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None


def start_execution(
    services: Services, key: str, sequencer: str, etag: str | None = None
) -> ExecutionRecord | None:
    """Handle one S3 "object created" for ``key``: plan the execution and
    enqueue its chunks (a small file's one chunk too). Idempotent.

    ``etag`` is the event's ``s3.object.eTag``: every read of the execution is
    of that version (without it, of the version the planning read finds). If
    the key holds another one by then, the execution fails with FILE_REPLACED.

    Whatever the file, the mapping or the key hold, the execution ends with a
    report: what cannot be planned fails it with the reason. Only transient
    errors (throttling, AWS faults) are raised, for Lambda to retry the event."""
    target = import_file(key)
    if target is None:
        logger.info("ignoring object that is not an import data file", extra={"key": key})
        return None
    execution_id = execution_id_for(services.bucket.name, key, sequencer)
    with execution_logged(execution_id):
        return _start(services, target, execution_id, etag)


def _start(
    services: Services, target: ImportFile, execution_id: str, etag: str | None
) -> ExecutionRecord | None:
    if not target.reportable:
        # no project folder to write a report in: refused in the log only
        logger.warning(
            "import key refused", extra={"key": target.key[:300], "problem": target.problem}
        )
        return None
    record = services.imports.start(execution_id, target.project, target.key, services.clock())
    if record.status != "running":
        logger.info("execution already finished")
        return record
    if not record.plan:
        try:
            if target.problem is not None:
                raise InvalidMappingError([target.problem])
            plan, size = _plan(services, target, etag)
            services.imports.set_plan(execution_id, plan, len(plan["chunks"]), size)
        except InvalidMappingError as error:
            _fail(services, record, target, error.problems, etag)
            return services.imports.get(execution_id)
        except ObjectReplacedError:
            _fail(services, record, target, [FILE_REPLACED], etag)
            return services.imports.get(execution_id)
        except Exception as error:
            if is_transient_error(error):
                raise
            logger.exception("import could not be planned")
            problem = f"the import could not be started: {_describe(error)}"
            _fail(services, record, target, [problem], etag)
            return services.imports.get(execution_id)
        record = services.imports.get(execution_id) or record
    # Every chunk, a small file's only one too, is run by the chunk queue's
    # function: the queue's maximum concurrency times each chunk's share is
    # the ceiling of all imports' writes (docs/DECISIONS.md: "Imports are paced").
    # Only the first chunk of each lane is sent now; each chunk done sends the
    # next of its lane (_hand_on). A rerun (crash, redelivered event) sends
    # whichever lane's next chunk is not on the queue yet.
    if record.chunks_total == 0:
        _finalize(services, execution_id)
    else:
        _send(services, record, range(min(_window(record), record.chunks_total)))
    return services.imports.get(execution_id)


@contextmanager
def execution_logged(execution_id: str) -> Iterator[None]:
    """Every line logged while an execution (or one of its chunks) is handled
    carries its id, whichever module or write thread logs it."""
    # imported here, not with this module: the admin command imports this
    # module, and the functions' logger would print its lines as JSON
    from propsync.observability import keys_logged  # noqa: PLC0415

    with keys_logged(execution_id=execution_id):
        yield


def _logged_as_its_execution(
    handle: Callable[Concatenate[Services, str, P], R],
) -> Callable[Concatenate[Services, str, P], R]:
    """``handle(services, execution_id, ...)`` inside execution_logged."""

    @functools.wraps(handle)
    def logged(services: Services, execution_id: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with execution_logged(execution_id):
            return handle(services, execution_id, *args, **kwargs)

    return logged


def _plan(services: Services, target: ImportFile, etag: str | None) -> tuple[dict[str, Any], int]:
    """What every chunk of the execution needs (with the ETag of the file's
    version, which all its reads are pinned to), and the file's size; a plan
    the execution record cannot hold is refused (InvalidMappingError)."""
    # the project's id types, read afresh: an id type added a moment ago is known
    id_types = services.access.project_id_types(target.project)
    if id_types is None:
        raise InvalidMappingError([f"Invalid project id: no project {target.project!r}"])
    size, etag = services.bucket.version(target.key, etag)
    if target.compressed and size > gzip_max_bytes():
        raise InvalidMappingError([_gzip_limit_problem(target, f"is {size} bytes compressed")])
    mapping_document, layout = _prepare(services, target, etag, id_types)
    if target.compressed:
        chunks, size = _plan_compressed(services, target, etag, layout)
    elif size - layout.data_start <= chunk_bytes():
        chunks = [Chunk(layout.data_start, None, layout.data_first_line)]
        if size <= layout.data_start:
            chunks = []  # only a header: nothing to write
    else:
        chunks = plan_chunks(services.bucket.open(target.key, etag=etag), layout, chunk_bytes())
    plan = {
        "etag": etag,
        "mapping": mapping_document,
        "header": layout.header,
        "delimiter": layout.delimiter,
        "chunks": [[c.start, c.end, c.first_line] for c in chunks],
        # fixed per execution: a stack update mid-import keeps its lanes whole
        "window": import_concurrency(),
        # its part files in a folder of its own (ImportFile.parts_prefix)
        "parts_by_execution": True,
    }
    problem = _plan_size_problem(plan)
    if problem:
        raise InvalidMappingError([problem])
    return plan, size


def _plan_compressed(
    services: Services, target: ImportFile, etag: str, layout: FileLayout
) -> tuple[list[Chunk], int]:
    """A .csv.gz file cut into chunks as a .csv file is, by offsets in its
    decompressed bytes, in one pass that decompresses it as a stream; and its
    decompressed size (what its chunks read, and the progress counts). A file
    that decompresses to more than gzip_max_bytes() is refused as soon as
    the pass reads past it (a gzip bomb included), and one damaged after its
    header as one damaged in it."""
    with services.bucket.open(target.key, etag=etag) as compressed:
        decompressed = _WithinLimit(_decompressed(compressed), gzip_max_bytes(), target)
        try:
            chunks = plan_chunks(cast(IO[bytes], decompressed), layout, chunk_bytes())
        except _GZIP_ERRORS as error:
            raise InvalidMappingError([_damaged_gzip(target, error)]) from None
    return chunks, decompressed.count


def _gzip_limit_problem(target: ImportFile, size: str) -> str:
    """Why a .csv.gz file is refused for its size (``size`` says what it has)."""
    limit = gzip_max_bytes()
    return (
        f"{target.file_name[:200]!r} {size}; a .csv.gz file may have at most {limit} bytes, "
        f"compressed and decompressed alike (the stack parameter ImportGzipMaxBytes, "
        f"{GZIP_MAX_BYTES_ENV} for make run): split it into .csv.gz files of at most "
        f"{limit} bytes each, or upload it uncompressed as .csv, which has no such limit"
    )


class _WithinLimit(io.RawIOBase):
    """The decompressed bytes of a .csv.gz file, counted (``count``), until
    more than ``limit`` have come: then InvalidMappingError, having read one
    byte past it and no more."""

    def __init__(self, stream: IO[bytes], limit: int, target: ImportFile):
        self._stream = stream
        self._limit = limit
        self._target = target
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(min(len(buffer), self._limit + 1 - self.count))
        self.count += len(data)
        if self.count > self._limit:
            size = f"decompresses to more than {self._limit} bytes"
            raise InvalidMappingError([_gzip_limit_problem(self._target, size)])
        buffer[: len(data)] = data
        return len(data)


def _plan_size_problem(plan: dict[str, Any]) -> str | None:
    """The plan is stored in the execution record, one DynamoDB item of at
    most 400 KB (see limits.MAX_PLAN_BYTES): say which part makes it too large."""
    size = len(encode_plan(plan))
    if size <= MAX_PLAN_BYTES:
        return None
    parts = {part: len(encode_plan({part: plan[part]})) for part in ("mapping", "header", "chunks")}
    advice = {
        "mapping": "map fewer columns",
        "header": "remove the columns the mapping does not use from the file",
        "chunks": (
            f"set the stack parameter ImportChunkBytes ({CHUNK_BYTES_ENV} for make run) "
            f"higher, up to {MAX_CHUNK_BYTES}, for fewer and larger chunks"
        ),
    }
    return (
        f"the import's plan is {size} bytes (the mapping {parts['mapping']} bytes; the header, "
        f"{len(plan['header'])} columns, {parts['header']} bytes; {len(plan['chunks'])} chunks, "
        f"{parts['chunks']} bytes); at most {MAX_PLAN_BYTES} bytes fit the execution record: "
        + advice[max(parts, key=parts.__getitem__)]
    )


def _window(record: ExecutionRecord) -> int:
    """How many of the execution's chunks are on the chunk queue or running
    at once: its lanes. Chunk i is in lane i mod window, and a lane's chunks
    run one after another, so an execution holds at most ``window`` of the
    queue's messages and a file dropped later waits for at most that many of
    its chunks, not for the whole import (docs/DECISIONS.md: "A window of chunks per import").
    Executions planned before windows sent every chunk at once: one lane each."""
    return int(record.plan.get("window") or record.chunks_total or 1)


def _lane_head(record: ExecutionRecord, lane: int) -> int | None:
    """The lane's first chunk not done yet (None: the lane is finished)."""
    for index in range(lane, record.chunks_total, _window(record)):
        if index not in record.done_chunks:
            return index
    return None


def _send(services: Services, record: ExecutionRecord, lanes: Iterable[int]) -> None:
    """Send the next chunk of each of ``lanes`` that is not on the queue yet."""
    heads = [_lane_head(record, lane) for lane in lanes]
    unsent = [i for i in heads if i is not None and i not in record.sent_chunks]
    if unsent:
        _enqueue(services, record, unsent)
        services.imports.mark_sent(record.execution_id, unsent)


def _hand_on(services: Services, record: ExecutionRecord, index: int) -> None:
    """Chunk ``index`` is done or given up on (``record`` says so): send the
    next chunk of its lane and, if it was the last, write the report. Also
    what a message of a chunk already done does: the run that counted it may
    have stopped before either."""
    _send(services, record, [index % _window(record)])
    _finalize_if_complete(services, record)


def _enqueue(services: Services, record: ExecutionRecord, indexes: list[int]) -> None:
    if services.queue is None:
        raise RuntimeError("an import needs the chunk queue")
    chunk_specs = record.plan["chunks"]
    services.queue.send(
        [
            {
                "execution_id": record.execution_id,
                "chunk": i,
                # for people reading the queue (or its dead letters); the
                # execution record's plan is what run_chunk follows
                "start": chunk_specs[i][0],
                "end": chunk_specs[i][1],
                "first_line": chunk_specs[i][2],
            }
            for i in indexes
        ]
    )


def _prepare(
    services: Services, target: ImportFile, etag: str, id_types: IdTypes
) -> tuple[Any, FileLayout]:
    """The mapping document and the file's layout, or InvalidMappingError
    with every problem of both in one round (check_mapping_and_header)."""
    raw_mapping = services.bucket.read(target.mapping_key, limit=MAX_MAPPING_BYTES)
    if raw_mapping is None:
        raise InvalidMappingError([f"no mapping: upload {target.mapping_key} first"])
    with services.bucket.open(target.key, etag=etag) as stream:
        return check_mapping_and_header(raw_mapping, stream, target, id_types)


def check_mapping_and_header(
    raw_mapping: bytes, data: IO[bytes], target: ImportFile, id_types: IdTypes
) -> tuple[Any, FileLayout]:
    """The mapping document and the layout of ``data`` (the file's bytes from
    its first, compressed as ``target`` says), or InvalidMappingError with
    every problem of both in one round (mapping_check). The importer and the
    ``propsync import`` command (before it uploads anything) both call it."""
    checked = mapping_check(raw_mapping, data, target, id_types)
    if checked.problems or checked.layout is None:
        raise InvalidMappingError(checked.problems)
    return checked.document, checked.layout


@dataclass(frozen=True)
class MappingCheck:
    """What mapping_check found: the mapping document (None if it is not
    JSON), the mapping as the importer uses it (None on any problem), the
    file's layout (None if its header cannot be read), and every problem."""

    document: Any
    mapping: ImportMapping | None
    layout: FileLayout | None
    problems: list[str]


def mapping_check(
    raw_mapping: bytes,
    data: IO[bytes] | None,
    target: ImportFile,
    id_types: IdTypes,
    header: Sequence[str] | None = None,
) -> MappingCheck:
    """Every problem of a mapping.json and of the file's header against it,
    in one round: the mapping's own, its columns against the header, and a
    header that cannot be read. The header is read from ``data`` (the file's
    bytes from its first, compressed as ``target`` says); without ``data``,
    ``header`` is the header (None: the columns are not checked). The
    importer, ``propsync import`` and the import routes (a preview, a start)
    all check with it."""
    if len(raw_mapping) > MAX_MAPPING_BYTES:
        return MappingCheck(
            None,
            None,
            None,
            [f"mapping.json is larger than {MAX_MAPPING_BYTES} bytes, the most a mapping may have"],
        )
    document: Any = None
    problems: list[str] = []
    try:
        document = mapping_document(raw_mapping)
    except InvalidMappingError as error:
        problems = error.problems
    layout: FileLayout | None = None
    header_problems: list[str] = []
    if data is not None:
        try:
            layout = _read_layout(data, target, _declared_delimiter(document))
        except InvalidMappingError as error:
            header_problems = error.problems
        header = layout.header if layout is not None else None
    mapping = None
    if not problems:  # the mapping, with its columns against the header when it was read
        try:
            mapping = validate_mapping(document, header, id_types)
        except InvalidMappingError as error:
            problems = error.problems
    elif header is not None:  # not JSON: nothing of it to check; the header still is
        problems += repeated_columns(header)
    return MappingCheck(document, mapping, layout, problems + header_problems)


def _declared_delimiter(document: Any) -> str | None:
    """The mapping's delimiter, to read the header with, if it is one (if it
    is not, validate_mapping says so, and the header is read as if it were
    left out)."""
    delimiter = document.get("delimiter") if isinstance(document, dict) else None
    return delimiter if isinstance(delimiter, str) and delimiter in DELIMITERS else None


# what reading a damaged gzip stream (or one that is none) raises
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def _read_layout(data: IO[bytes], target: ImportFile, delimiter: str | None) -> FileLayout:
    try:
        head = (_decompressed(data) if target.compressed else data).read(MAX_HEADER_BYTES)
    except _GZIP_ERRORS as error:
        raise InvalidMappingError([_damaged_gzip(target, error)]) from None
    # (for a .gz file, offsets count bytes of the decompressed stream)
    return read_layout(head, delimiter)


def _damaged_gzip(target: ImportFile, error: Exception) -> str:
    return (
        f"{target.file_name[:200]!r} is not a gzip file, or a damaged one "
        f"({_describe(error)}): a .csv.gz file must be gzip-compressed CSV"
    )


def _decompressed(stream: IO[bytes]) -> IO[bytes]:
    return cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb"))


def _downloaded(
    bucket: ImportBucket, target: ImportFile, start: int, end: int | None, etag: str | None
) -> IO[bytes]:
    """The chunk's bytes [start, end) copied to a temporary file first (8 MB
    in memory, the rest on disk), then read from there. Rows are written for
    minutes; an S3 download held open that long while it is read row by row
    can be cut by S3, and blocks a single-threaded local engine that must
    answer the writes meanwhile. Downloading first takes about a second per
    16 MB chunk. The version is the planned one (``etag``; None only in a plan
    stored before plans had it): ObjectReplacedError if the key now holds
    another.

    A .csv.gz file's offsets are of its decompressed bytes, which cannot be
    reached without decompressing all those before them: the file is read
    from its start, as a stream, up to ``end``, and only the chunk's range is
    kept, so a chunk's temporary file holds its range alone, as for a .csv."""
    spooled = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - returned open
    if target.compressed:
        with bucket.open(target.key, etag=etag) as compressed:
            stream = _decompressed(compressed)
            skip_bytes(stream, start)
            _copy_range(stream, spooled, None if end is None else end - start)
    else:
        with bucket.open(target.key, start, end, etag=etag) as stream:
            shutil.copyfileobj(stream, spooled, 1 << 20)
    spooled.seek(0)
    return cast(IO[bytes], spooled)


def _copy_range(source: IO[bytes], target: IO[bytes], size: int | None) -> None:
    """Copy ``size`` bytes of ``source`` (all that is left: None), a block at a time."""
    while size is None or size > 0:
        block = source.read(1 << 20 if size is None else min(1 << 20, size))
        if not block:
            return
        target.write(block)
        if size is not None:
            size -= len(block)


def _fail(
    services: Services,
    record: ExecutionRecord,
    target: ImportFile,
    problems: list[str],
    etag: str | None,
    *,
    unless_queued: bool = False,
    late: bool = False,
) -> bool:
    """Fail the execution before any row, with its report. ``unless_queued``:
    only if none of its chunks was queued meanwhile (ImportStore.finish);
    False if one was, and the record was left to its chunks. ``late``: a
    planning given up on, recorded minutes after its upload: its report goes
    beside the file's if another execution is the file's newest by then."""
    target = _report_target(
        services, target, record.execution_id, etag, unless_another_is_newest=late
    )
    now = services.clock()
    problems = _bounded(problems)  # they are stored in the execution record too
    failed = dataclasses.replace(record, status="failed", problems=problems, finished_at=now)
    # the report first: whoever sees the record finished must find it
    services.bucket.put(
        target.report_key, _json(_report(failed, target, [], None, now)), "application/json"
    )
    if not services.imports.finish(
        record.execution_id,
        "failed",
        now,
        problems,
        report_key=target.report_key,
        unless_queued=unless_queued,
    ):
        # its planning went on meanwhile (a copy of the S3 event) and queued
        # its chunks, which write the report again when they finish; or
        # (not unless_queued) another run had finished it already
        logger.warning("import planned or finished meanwhile: left as it is")
        return False
    logger.info("import failed before any row")
    _count(ImportsFinished=1)
    return True


def _report_target(
    services: Services,
    target: ImportFile,
    execution_id: str,
    etag: str | None,
    *,
    unless_another_is_newest: bool = False,
) -> ImportFile:
    """Where the execution's report goes: beside the newer upload's, under
    keys of its own, when the key holds another version than the execution's
    (``etag``) by now; at the file's report keys otherwise. Checked just before
    the report is written, whatever the execution read, because executions of
    two uploads may finish in any order. ``unless_another_is_newest``: beside
    too when the file's newest execution is another one (a failed planning
    recorded minutes late, while an upload of the same bytes, with the same
    ETag, was imported meanwhile)."""
    if target.problem is not None:
        return target
    if unless_another_is_newest:
        newest = services.imports.latest_for_file(target.key, with_plan=False)
        if newest is not None and newest.execution_id != execution_id:
            return target.replaced_by_newer_upload(execution_id)
    if etag is None:
        return target
    try:
        services.bucket.version(target.key, etag)
    except ObjectReplacedError:
        return target.replaced_by_newer_upload(execution_id)
    except Exception as error:
        if is_transient_error(error):
            raise
        # deleted since (404): no newer upload whose report could be overwritten
    return target


def _failure_reason(error: Exception) -> str:
    """Why a chunk failed, for its report."""
    if isinstance(error, ObjectReplacedError):
        return FILE_REPLACED
    return _describe(error)


def _bounded(problems: list[str]) -> list[str]:
    kept = [
        problem if len(problem) <= MAX_PROBLEM_CHARS else problem[:MAX_PROBLEM_CHARS] + "..."
        for problem in problems[:MAX_STORED_PROBLEMS]
    ]
    if len(problems) > MAX_STORED_PROBLEMS:
        kept.append(f"... and {len(problems) - MAX_STORED_PROBLEMS} more problems")
    return kept


def _describe(error: BaseException) -> str:
    """An unexpected error in a report: its type and the start of its text."""
    text = str(error)
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# ------------------------------------------------------ planning that failed

# What Lambda's on-failure destination record says of why it gave up on an
# asynchronous invocation (requestContext.condition)
_GIVE_UP_CONDITIONS = {
    "RetriesExhausted": "ImportFunction failed on each of its {attempts} attempt(s)",
    "EventAgeExceeded": (
        "the S3 event waited longer than ImportFunction's maximum event age to be handled"
    ),
}


def record_failed_planning(
    services: Services, invocation: Mapping[str, Any]
) -> list[ExecutionRecord | None]:
    """ImportFunction's on-failure destination record (``invocation``: Lambda
    gave up on an S3 event after its retries, or the event grew too old):
    each upload its S3 event names gets a failed execution with a report
    saying why, as fail_unplanned does. ValueError if ``invocation`` holds
    no S3 event: nothing to record (the failure queue's dead-letter queue
    keeps it)."""
    payload = invocation.get("requestPayload")
    records = payload.get("Records") if isinstance(payload, Mapping) else None
    if not isinstance(records, list) or not records:
        raise ValueError("not an on-failure record of an S3 event: no requestPayload.Records")
    reason = _gave_up_reason(invocation)
    executions = []
    for record in records:
        upload = upload_of(record)
        if upload.bucket != services.bucket.name:
            logger.warning("failure of another bucket ignored", extra={"bucket": upload.bucket})
            continue
        executions.append(fail_unplanned(services, upload, reason))
    return executions


def _gave_up_reason(invocation: Mapping[str, Any]) -> str:
    """Why Lambda gave up, in the report's words: the condition and the last
    error's type and message (the stack trace left out), at most
    MAX_ERROR_CHARS of it, control characters removed."""
    context = invocation.get("requestContext") or {}
    condition = _printable(str(context.get("condition") or "unknown"), 100)
    attempts = context.get("approximateInvokeCount", "?")
    reason = _GIVE_UP_CONDITIONS.get(
        condition, "ImportFunction gave up on the S3 event ({condition})"
    ).format(attempts=attempts, condition=condition)
    response = invocation.get("responsePayload")
    if isinstance(response, Mapping):
        kind, message = response.get("errorType"), response.get("errorMessage")
        error = _printable(": ".join(str(part) for part in (kind, message) if part))
        if error:
            reason += f", the last with {error}"
    return reason


def _printable(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` without control characters, at most ``limit`` of it."""
    text = "".join(char for char in text if unicodedata.category(char) != "Cc")
    return text if len(text) <= limit else text[:limit] + "..."


def fail_unplanned(services: Services, upload: Upload, reason: str) -> ExecutionRecord | None:
    """The execution of ``upload``, failed with a report saying its planning
    failed and ``reason``, unless it finished or its chunks were queued (they
    finish it). Created if its planning failed before it existed (it is
    then the file's newest execution only if no later upload has one).
    Idempotent: a copy of the failure finds the execution finished. Never
    touches another upload's execution: the upload's identity (bucket, key,
    sequencer) names this one, and its report goes beside a newer upload's
    (.replaced-<execution id>), as any execution's does."""
    target = import_file(upload.key)
    if target is None:
        return None
    execution_id = execution_id_for(services.bucket.name, upload.key, upload.sequencer)
    with execution_logged(execution_id):
        if not target.reportable:
            logger.warning("import key refused", extra={"key": target.key[:300]})
            return None
        record = services.imports.get(execution_id) or services.imports.start(
            execution_id,
            target.project,
            target.key,
            upload.event_time or services.clock(),
            unless_newer=True,
        )
        if record.status != "running":
            logger.info("execution already finished")
            return record
        if record.sent_chunks:
            logger.info("execution's chunks were queued: they finish it")
            return record
        problems = [] if target.problem is None else [target.problem]
        problems.append(
            f"the import could not be planned: {reason}; upload the file again to import it"
        )
        _fail(services, record, target, problems, upload.etag, unless_queued=True, late=True)
        return services.imports.get(execution_id)


# ---------------------------------------------------------------- chunks


@dataclass
class _ChunkOutcome:
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "rows_read": 0,
            "rows_written": 0,
            "rows_rejected": 0,
            "properties_applied": 0,
            "properties_stale": 0,
            "rows_erased": 0,
            "bytes_done": 0,
            "throttled_ms": 0,
        }
    )
    errors: list[dict[str, Any]] = field(default_factory=list)


@_logged_as_its_execution
def run_chunk(
    services: Services,
    execution_id: str,
    index: int,
    time_left: Callable[[], float] | None = None,
) -> None:
    """Import chunk ``index`` of an execution (a byte range of whole rows),
    from where it goes on (its planned start, or its last checkpoint); count
    it once; finalize the execution if it was the last.

    ``time_left`` says the seconds the invocation has left (None: no limit).
    When the next batch might not finish with CHECKPOINT_SECONDS to spare,
    the chunk stops between batches: the rows so far are counted as a piece
    and the rest of the range goes back to the queue (_checkpoint); batches
    are sized to BATCH_SECONDS at the chunk's pace (_rows_per_batch), so a
    chunk runs into Lambda's timeout only if throttling holds its rate near
    its floor for most of an invocation in the middle of a batch.

    A chunk that crashes part way is simply run again (the queue redelivers
    it) from the same point: every write is idempotent under the merge rule
    (same timestamps, same sequences), and the counts are added only when a
    piece completes, once (conditional on the point it started from)."""
    record = _planned(services, execution_id, index)
    if index in record.done_chunks:  # a redelivered message of a chunk already counted
        _hand_on(services, record, index)
        return
    if _failed_before_its_chunks(record, index):
        return
    services.imports.mark_running(execution_id, services.clock())
    target = _target(record)
    mapping = parse_mapping(record.plan["mapping"])
    header, delimiter = record.plan["header"], record.plan["delimiter"]
    planned_start, end, first_line = record.plan["chunks"][index]
    resumed = record.resume_points.get(index)
    point = ResumePoint(*resumed) if resumed else ResumePoint(planned_start, first_line)

    outcome = _ChunkOutcome()
    stop: ResumePoint | None = None
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as rejected:
        with _downloaded(
            services.bucket, target, point.start, end, record.plan.get("etag")
        ) as stream:
            counting = _CountingReader(stream)
            reader = RecordReader(io.BufferedReader(counting, 1 << 16), delimiter, point)
            slowest = 0.0
            with _Progress(services, execution_id) as progress:
                for batch in _batches(iter(reader), lambda: _rows_per_batch(services.pacer)):
                    began = time.monotonic()
                    progress.read(counting.count)
                    mapped = [
                        mapped_row(
                            mapping,
                            header,
                            read,
                            started_at=record.started_at,
                            now=services.clock(),
                        )
                        for read in batch
                    ]
                    refused = _write_batch(
                        services, record.project, mapped, outcome, progress.rows_done
                    )
                    if refused:
                        rejected.write(rejected_csv(refused, header, delimiter, with_header=False))
                    slowest = max(slowest, time.monotonic() - began)
                    if time_left is not None and time_left() < CHECKPOINT_SECONDS + 2 * slowest:
                        stop = reader.resume_after(batch[-1][0])
                        break
                progress.read(counting.count)
            progress.flush()
            # bytes of the range this piece read (when it stops, to its resume point)
            outcome.counters["bytes_done"] = (
                stop.start if stop else point.start + counting.count
            ) - point.start
            outcome.counters["throttled_ms"] = progress.throttled_ms()
        # the piece's rows: after line done_through, to the stop's (or the end);
        # padded, so the part files of a chunk sort in file order
        piece = f"{point.done_through:010d}_" + (f"{stop.done_through:010d}" if stop else "end")
        if outcome.counters["rows_rejected"]:
            rejected.seek(0)  # uploaded as a stream: a chunk's rejects are never all in memory
            services.bucket.put(
                _part_key(record, target, index, f"{piece}.rejected.csv"), rejected, "text/csv"
            )
    services.bucket.put(
        _part_key(record, target, index, f"{piece}.errors.json"),
        _json(outcome.errors),
        "application/json",
    )
    if stop is not None:
        _checkpoint(
            services, record, index, outcome=outcome, resumed=resumed, stop=stop, piece=piece
        )
        return
    after = services.imports.complete_chunk(
        execution_id, index, outcome.counters, resumed_from=resumed, piece=piece
    )
    logger.info(
        "import chunk done",
        extra={"chunk": index, **outcome.counters},
    )
    if after is not None:  # (None: a run at the same time counted it, and goes on)
        _count_rows(outcome)
        _hand_on(services, after, index)


def _checkpoint(
    services: Services,
    record: ExecutionRecord,
    index: int,
    *,
    outcome: _ChunkOutcome,
    resumed: tuple[int, int, int] | None,
    stop: ResumePoint,
    piece: str,
) -> None:
    """Count the rows of the piece done, record where the chunk goes on, and
    send the chunk again for the rest: a new message, so the rest gets the
    queue's receives afresh. A crash after the count and before the send
    leaves this run's message to come back, and it goes on from the point
    recorded."""
    counted = services.imports.checkpoint_chunk(
        record.execution_id,
        index,
        outcome.counters,
        resumed_from=resumed,
        resume_at=dataclasses.astuple(stop),
        piece=piece,
    )
    if not counted:  # a copy of this message run at the same time got there first
        logger.info("import chunk piece counted by another run", extra={"chunk": index})
        return
    _count_rows(outcome)
    logger.info(
        "import chunk checkpointed",
        extra={
            "chunk": index,
            "resume_byte": stop.start,
            "after_line": stop.done_through,
            **outcome.counters,
        },
    )
    _enqueue(services, record, [index])


def _count_rows(outcome: _ChunkOutcome) -> None:
    """A piece's rows, once it is counted in the execution record."""
    _count(
        ImportRowsWritten=outcome.counters["rows_written"],
        ImportRowsFailed=outcome.counters["rows_rejected"],
    )


def _planned(services: Services, execution_id: str, index: int) -> ExecutionRecord:
    record = services.imports.get(execution_id)
    if record is None:
        raise UnknownChunkError(f"no import execution {execution_id}")
    if not 0 <= index < record.chunks_total:
        raise UnknownChunkError(f"import execution {execution_id} has no chunk {index}")
    return record


def _part_key(record: ExecutionRecord, target: ImportFile, index: int, suffix: str) -> str:
    return f"{_parts_prefix(record, target)}{index:06d}.{suffix}"


def _parts_prefix(record: ExecutionRecord, target: ImportFile) -> str:
    return target.parts_prefix(
        record.execution_id if record.plan.get("parts_by_execution") else None
    )


def _target(record: ExecutionRecord) -> ImportFile:
    target = import_file(record.file_key)
    if target is None or target.problem is not None:  # never planned, so never here
        raise UnknownChunkError(f"execution {record.execution_id} names no data file")
    return target


@_logged_as_its_execution
def deliver_chunk(
    services: Services,
    execution_id: str,
    index: int,
    receive_count: int = 1,
    time_left: Callable[[], float] | None = None,
) -> None:
    """Handle the ``receive_count``-th delivery of a chunk message: run the
    chunk (checkpointing before ``time_left`` runs out: run_chunk), and
    raise only for the queue to deliver it again. A failure the
    data causes, any failure from the LAST_ATTEMPT_RECEIVE-th receive on, and
    every receive from GIVE_UP_RECEIVE on fail the chunk instead: recorded,
    counted as done, named in the report. AWS faults and the network are what
    the receives before the last are for (botocore has retried each request
    five times already); throttling does not end a run where the chunk
    function's pacer is attached (Services.pacer): it slows the chunk down."""
    if receive_count >= GIVE_UP_RECEIVE:
        fail_chunk(
            services,
            execution_id,
            index,
            receive_count,
            f"the chunk was received {receive_count} times without finishing: its last runs "
            "ended without an answer (the function timed out, ran out of memory or was stopped)",
        )
        return
    try:
        run_chunk(services, execution_id, index, time_left)
    except UnknownChunkError:
        raise
    except Exception as error:
        if is_transient_error(error) and receive_count < LAST_ATTEMPT_RECEIVE:
            raise
        logger.exception(
            "import chunk failed",
            extra={"chunk": index, "receives": receive_count},
        )
        fail_chunk(services, execution_id, index, receive_count, _failure_reason(error))


@_logged_as_its_execution
def fail_chunk(
    services: Services, execution_id: str, index: int, receive_count: int, error: str
) -> None:
    """Give up on a chunk: its byte range, lines and error go to a part file,
    it counts as done (once), and if it was the last the report is written.
    Rows it wrote before it failed stay written (each write is a valid update
    under the merge rule); none of its rows is counted."""
    record = _planned(services, execution_id, index)
    if index in record.done_chunks:
        _hand_on(services, record, index)
        return
    if _failed_before_its_chunks(record, index):
        return
    target = _target(record)
    services.bucket.put(
        _part_key(record, target, index, "failed.json"),
        _json(_chunk_failure(record, index, receive_count, error)),
        "application/json",
    )
    after = services.imports.fail_chunk(execution_id, index)
    logger.warning("import chunk given up", extra={"chunk": index})
    if after is not None:  # (None: already done or given up, and counted then)
        _count(ImportChunksFailed=1)
        _hand_on(services, after, index)


def _failed_before_its_chunks(record: ExecutionRecord, index: int) -> bool:
    """Whether the execution of a chunk not done is finished: only one whose
    planning was recorded as failed (record_failed_planning) after its chunks
    were sent and before they were marked sent is. Its report says nothing
    was written: the chunk is not run."""
    if record.status == "running":
        return False
    logger.warning(
        "import chunk of an execution that failed before its chunks not run",
        extra={"chunk": index, "status": record.status},
    )
    return True


def _chunk_failure(
    record: ExecutionRecord, index: int, receive_count: int | None, error: str
) -> dict[str, Any]:
    """Where a failed chunk lies in the file (bytes [start, end) and lines,
    None: to the end) and why it failed: the rows to upload again."""
    chunks = record.plan["chunks"]
    start, end, first_line = chunks[index]
    if index in record.resume_points:  # the pieces before it were imported and counted
        start, _, done_through = record.resume_points[index]
        first_line = done_through + 1
    return {
        "chunk": index,
        "start_byte": start,
        "end_byte": end,
        "first_line": first_line,
        "last_line": chunks[index + 1][2] - 1 if index + 1 < len(chunks) else None,
        "receives": receive_count,
        "error": error,
    }


def _finalize_if_complete(services: Services, record: ExecutionRecord) -> None:
    if record.status == "running" and record.chunks_done >= record.chunks_total:
        _finalize(services, record.execution_id)


def mapped_row(
    mapping: ImportMapping,
    header: list[str],
    read: tuple[int, list[str], str | None],
    *,
    started_at: float,
    now: float,
) -> RowUpdate | RejectedRow:
    """One record as read (line, cells, problem) mapped to an update, or
    rejected with the reason its import gives (an import's rows, and the rows
    of a preview: propsync.import_api)."""
    line, cells, problem = read
    if problem:
        return RejectedRow(line, cells, problem)
    try:
        return map_record(mapping, header, line, cells, default_timestamp=started_at, now=now)
    except Exception as error:  # whatever a row raises rejects that row, never the chunk
        return RejectedRow(line, cells, _rejection(error, line))


def _rejection(error: Exception, line: int) -> str:
    """Why a row is rejected for ``error`` raised while it was imported, or
    ``error`` raised again when it is not the row's doing (throttling, AWS
    faults): then the chunk is tried again, as the queue's receives allow."""
    if is_transient_error(error):
        raise error
    if isinstance(error, PropsyncError):
        return str(error)
    # not a refusal propsync words itself: a defect to look at, or a limit of
    # DynamoDB or Python nobody has met yet
    logger.warning("row rejected by an unexpected error", extra={"line": line}, exc_info=error)
    return f"the row could not be imported: {_describe(error)}"


def _batches(
    records: Iterator[tuple[int, list[str], str | None]],
    rows_per_batch: Callable[[], int] | None = None,
) -> Iterator[list[Any]]:
    """ROWS_PER_BATCH records (or ``rows_per_batch()``, asked at the start of
    each batch), or fewer that hold BATCH_BYTES of cells."""
    next_limit = rows_per_batch or (lambda: ROWS_PER_BATCH)
    batch: list[Any] = []
    size, limit = 0, next_limit()
    for record in records:
        batch.append(record)
        size += sum(map(len, record[1]))
        if len(batch) >= limit or size >= BATCH_BYTES:
            yield batch
            batch, size, limit = [], 0, next_limit()
    if batch:
        yield batch


def _rows_per_batch(pacer: WritePacer | None) -> int:
    """ROWS_PER_BATCH, or fewer when the chunk's pace is so slow that a batch
    would take longer than BATCH_SECONDS (a row is up to two writes): a
    checkpoint falls between batches, so a batch must fit well inside an
    invocation, at a share of a write a second or a rate throttling cut."""
    if pacer is None:
        return ROWS_PER_BATCH
    return max(1, min(ROWS_PER_BATCH, int(pacer.rate * BATCH_SECONDS / 2)))


def _write_batch(
    services: Services,
    project: str,
    rows: list[RowUpdate | RejectedRow],
    outcome: _ChunkOutcome,
    rows_done: Callable[[int], None] = lambda _count: None,
) -> list[RejectedRow]:
    """Write the batch's updates and return the rows rejected (by the mapping or
    by the store); ``rows_done`` hears of the rows as each is done (from the
    writers' threads), for the live progress. Rows naming the same ids are
    merged first with the merge rule itself, which gives the same result as
    writing them one by one (the rule is order-independent), in one write
    instead of several racing for the same item. Ids are looked up together.
    Updates that may meet on one customer (ids shared or owned by one known
    customer: a cookie row, then the row that adds its registered id) are
    written one after another in file order, as tracking writes one customer's
    commands; the others concurrently."""
    refused = [row for row in rows if isinstance(row, RejectedRow)]
    rows_done(len(refused))
    by_ids: dict[tuple[tuple[str, str], ...], list[RowUpdate]] = {}
    for row in rows:
        if isinstance(row, RowUpdate):
            by_ids.setdefault(tuple(sorted(row.ids.items())), []).append(row)
    updates = list(by_ids.values())  # in file order of their first rows
    id_sets = {index: same_ids[0].ids for index, same_ids in enumerate(updates)}
    known, erased = (
        lookup_ids(services.customers, project, id_sets.values()) if updates else (None, None)
    )
    # rows, applied, stale, held back by an erasure, problem
    Written = tuple[list[RowUpdate], int, int, bool, str | None]
    written: list[Written] = []
    hard_id_types = id_types_of(services.access, project).hard if updates else frozenset()

    def write(group: list[int]) -> list[Written]:
        owners: Mapping[tuple[str, str], str | None] | None = known
        results: list[Written] = []
        for index in group:
            same_ids = updates[index]
            ids = same_ids[0].ids
            try:
                versions = merge({}, ((n, v) for row in same_ids for n, v in row.versions.items()))
                result = write_update(
                    services.customers,
                    project,
                    ids,
                    versions,
                    owners,
                    timestamp=max(row.timestamp for row in same_ids),
                    known_erasures=erased,
                    hard_id_types=hard_id_types,
                )
            except Exception as error:  # identity conflict, customer too large, ...
                results.append((same_ids, 0, 0, False, _rejection(error, same_ids[0].line)))
                rows_done(len(same_ids))
                continue
            rows_done(len(same_ids))
            held = result.customer_id is None  # older than an erasure of its ids
            if result.customer_id is not None:
                owners = with_owner(owners, ids, result.customer_id)
            results.append((same_ids, len(result.applied), len(result.stale), held, None))
        return results

    for results in run_concurrently(same_customer_groups(id_sets, known), write):
        written += results
    # counted here, on one thread, from what the writers returned
    for group, applied, stale, held, problem in written:
        if problem is None:
            outcome.counters["rows_erased" if held else "rows_written"] += len(group)
            outcome.counters["properties_applied"] += applied
            outcome.counters["properties_stale"] += stale
        else:
            refused += [RejectedRow(row.line, row.cells, problem) for row in group]
    outcome.counters["rows_read"] += len(rows)
    outcome.counters["rows_rejected"] += len(refused)
    refused.sort(key=lambda row: row.line)
    room = MAX_REPORTED_ERRORS - len(outcome.errors)
    outcome.errors += [{"line": r.line, "reason": r.reason} for r in refused[: max(room, 0)]]
    return refused


class _Progress:
    """Reports the rows done (written, rejected or held back) and the bytes
    read, and the time the chunk's writes waited on throttling, to the
    execution record every INTERVAL_SECONDS while the chunk runs: from a
    thread of its own, so a batch that writes slowly (a low share,
    throttling) shows its rows as they are written and the time it is
    throttled, instead of freezing the bar until the batch ends."""

    INTERVAL_SECONDS = 2.0

    def __init__(self, services: Services, execution_id: str):
        self._services = services
        self._execution_id = execution_id
        self._lock = threading.Lock()
        self._rows = 0  # done and not reported yet
        self._bytes_read = 0
        self._reported_bytes = 0
        self._reported_throttled_ms = 0
        self._pacer = services.pacer
        self._throttled_before = self._pacer.figures().throttled_seconds if self._pacer else 0.0
        self._stopped = threading.Event()
        # the thread logs with the chunk's keys (execution_logged)
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._report_until_stopped,), name="import-progress"
        )

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        self._thread.join()

    def throttled_ms(self) -> int:
        """Milliseconds the chunk's writes waited on throttling so far."""
        if self._pacer is None:
            return 0
        return round((self._pacer.figures().throttled_seconds - self._throttled_before) * 1000)

    def read(self, bytes_read: int) -> None:
        """``bytes_read`` of the chunk's range so far."""
        with self._lock:
            self._bytes_read = bytes_read

    def rows_done(self, rows: int) -> None:
        """``rows`` more rows were written, rejected or held back (from any thread)."""
        with self._lock:
            self._rows += rows

    def _report_until_stopped(self) -> None:
        while not self._stopped.wait(self.INTERVAL_SECONDS):
            try:
                self.flush()
            except Exception:  # progress is informational: the chunk goes on
                logger.warning("import progress not reported", exc_info=True)

    def flush(self) -> None:
        """Add what was done and throttled since the last report. Called by
        the reporting thread only, and once more after it stopped, so the
        record is never written by two flushes at once; the lock is held to
        read the figures only, so the rows' writers never wait on a report."""
        throttled_ms = self.throttled_ms()
        with self._lock:
            rows, bytes_read = self._rows, self._bytes_read
        new_bytes = bytes_read - self._reported_bytes
        new_throttled_ms = throttled_ms - self._reported_throttled_ms
        if not (rows or new_bytes > 0 or new_throttled_ms > 0):
            return
        self._services.imports.add_progress(self._execution_id, rows, new_bytes, new_throttled_ms)
        with self._lock:
            self._rows -= rows
        self._reported_bytes = bytes_read
        self._reported_throttled_ms = throttled_ms


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
    record. Safe to run twice, at once too: a run that finds the record
    finished once it has read the parts writes nothing."""
    record = services.imports.get(execution_id)
    if record is None:
        return
    target = import_file(record.file_key)
    if target is None:
        return
    target = _report_target(services, target, execution_id, record.plan.get("etag"))
    parts = _read_parts(services, record, _parts_prefix(record, target))
    now_running = services.imports.get(execution_id, with_plan=False)
    if now_running is None or now_running.status != "running":
        # Another run (a copy of the last chunk's message) finalized it since
        # the record was read, and may have deleted the parts read above: its
        # report stands. A run that still finds the record running after
        # reading the parts read them all (they are deleted only once it is
        # finished), so a second report is the same as the first.
        return
    errors, rejected_parts, failures = parts.errors, parts.rejected, parts.failures
    rejected_key = None
    if rejected_parts:
        header = record.plan["header"]
        delimiter = record.plan["delimiter"]
        # joined in S3 a part at a time: an import's rejected rows may be
        # many times its file ("x" rejected is its line, reason and quotes),
        # more than the function's /tmp or one PutObject holds
        services.bucket.put_joined(
            target.rejected_key,
            rejected_csv([], header, delimiter, with_header=True),
            rejected_parts,
            "text/csv",
        )
        rejected_key = target.rejected_key
    counters = record.counters
    if record.failed_chunks:
        status = "incomplete"  # some rows were neither written nor rejected for sure
    elif counters["rows_rejected"] == 0:
        status = "succeeded"
    elif counters["rows_written"] > 0:
        status = "partially_succeeded"
    else:
        status = "failed"
    now = services.clock()
    final = dataclasses.replace(record, status=status, finished_at=now)
    failed_chunks = [failures[i] for i in sorted(failures)]
    report = _report(
        final, target, errors[:MAX_REPORTED_ERRORS], rejected_key, now, failed_chunks=failed_chunks
    )
    # the report first: whoever sees the record finished must find it
    services.bucket.put(target.report_key, _json(report), "application/json")
    first = services.imports.finish(execution_id, status, now, report_key=target.report_key)
    services.bucket.delete(parts.keys)
    logger.info("import finished", extra={"status": status})
    if first:  # a copy of the last chunk's message finalizing again counts nothing
        _count(ImportsFinished=1)


@dataclass
class _Parts:
    """What an execution's part files hold: the errors (sorted by line) and
    rejected-rows files of the pieces counted, the failure of each chunk
    given up on, and every part's key (to delete once the report is written)."""

    keys: list[str]
    errors: list[dict[str, Any]]
    rejected: list[str]
    failures: dict[int, dict[str, Any]]


def _read_parts(services: Services, record: ExecutionRecord, prefix: str) -> _Parts:
    keys = sorted(services.bucket.keys(prefix))  # chunk by chunk, piece by piece
    parts = _Parts(keys, [], [], {})
    parts.failures = {i: _chunk_failure(record, i, None, "unknown") for i in record.failed_chunks}
    for key in keys:
        name = key.removeprefix(prefix)
        index = int(name.split(".", 1)[0])
        if key.endswith(".failed.json"):
            if index in parts.failures:  # (not if the chunk completed on a later receive)
                stored = json.loads(services.bucket.read(key) or b"{}")
                parts.failures[index] = stored or parts.failures[index]
        elif not _counted_part(record, index, name):
            continue  # parts of a run that was not counted: its rows are not in the counts
        elif key.endswith(".errors.json"):
            parts.errors += json.loads(services.bucket.read(key) or b"[]")
        elif key.endswith(".rejected.csv"):
            parts.rejected.append(key)
    parts.errors.sort(key=lambda error: error["line"])
    return parts


def _counted_part(record: ExecutionRecord, index: int, name: str) -> bool:
    """Whether a part file (``<chunk>.<piece>.<kind>``) holds rows the
    record's counts include: its piece was counted (a run that lost the race
    to count it, or stopped uncounted, may have left one with another end).
    A part named without a piece is of a record from before pieces: counted
    unless its chunk failed."""
    piece = name.split(".", 1)[1].rsplit(".", 2)[0]
    if "_" not in piece:  # <chunk>.errors.json, <chunk>.rejected.csv
        return index not in record.failed_chunks
    return f"{index}:{piece}" in record.counted_pieces


def _report(
    record: ExecutionRecord,
    target: ImportFile,
    errors: list[dict[str, Any]],
    rejected_key: str | None,
    now: float,
    *,
    failed_chunks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    mapping = record.plan.get("mapping") or {}
    timestamp_column = (mapping.get("update_timestamp") or {}).get("from_column")
    problems = list(record.problems)
    if target.replaced_execution is not None and FILE_REPLACED not in problems:
        problems.append(
            "the file was uploaded again before this import finished: this report and its "
            "rejected rows have keys of their own (.replaced-<execution id>), so that they do "
            "not take the place of the newer upload's"
        )
    if failed_chunks:
        problems.append(
            f"{len(failed_chunks)} of {record.chunks_total} chunk(s) failed (failed_chunks): "
            "their rows are not counted and may be written in part; import their lines again"
        )
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
        "properties_ignored_as_stale": record.counters["properties_stale"],
        "rows_ignored_as_erased": record.counters["rows_erased"],
        "started_at": record.started_at,
        "default_update_timestamp": record.started_at,
        "update_timestamp_from": (
            f"column {timestamp_column!r}" if timestamp_column else "the execution's start time"
        ),
        "finished_at": now,
        "duration_seconds": round(now - record.started_at, 3),
        # the wait in the chunk queue before its first chunk ran, the pace it
        # achieved from then on, and the time its chunks' writes waited on
        # DynamoDB's throttling (summed over chunks running at once)
        "queued_seconds": round(record.queued_seconds, 3),
        "rows_per_second": round(record.rows_per_second(now), 1),
        "throttled_seconds": round(record.throttled_seconds, 1),
        "chunks": record.chunks_total,
        "failed_chunks": failed_chunks or [],
        "problems": problems,
        "errors": errors,
        "rejected_file": rejected_key,
    }


def _json(value: Any) -> bytes:
    # backslashreplace: a reason quoting a cell's undecodable bytes (surrogates)
    # must not make the report itself fail to be written
    return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8", "backslashreplace")
