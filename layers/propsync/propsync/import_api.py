"""The import routes (ImportsApiFunction): preview a mapping on the first
lines of a file, start an import (its mapping written, then a presigned form
to upload the file straight to S3 with), list a project's executions and read
one with its report.

Nothing here is a second validator: a preview and a start check with the
importer's own code (imports.mapping_check, then for a preview
import_rows.iter_records and imports.mapped_row, row by row as an execution
maps them), so a problem or a rejected row reads exactly as the import's
report would say it. An execution and its report are read as the importer
wrote them (the record's report_key). Every function takes the caller's
project: another project's imports do not exist for it.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import itertools
import json
import math
import os
import re
import time
from typing import Annotated, Any

from botocore.exceptions import ClientError
from pydantic import AfterValidator, ConfigDict, Field, SkipValidation

from propsync import canonical_json
from propsync.bucket import ImportBucket
from propsync.errors import (
    ExecutionNotFoundError,
    InvalidImportError,
    InvalidInputError,
    PropsyncError,
    shown,
)
from propsync.id_types import IdTypes
from propsync.import_mapping import DELIMITERS, MappingDocument
from propsync.import_rows import RowUpdate, iter_records
from propsync.imports import (
    EXECUTION_ID_CHARS,
    MAX_REPORTED_ERRORS,
    ImportFile,
    import_file,
    mapped_row,
    mapping_check,
    name_problem,
)
from propsync.limits import MAX_PREVIEW_ROWS, MAX_PREVIEW_SAMPLE_BYTES, MAX_UPLOAD_BYTES
from propsync.models import RequestModel, is_unicode
from propsync.store.imports import ExecutionPosition, ExecutionRecord, ImportStore

UPLOAD_FORM_SECONDS = 3600  # a form may be used for an hour after it was given
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
# A rejected row is shown by its first characters: a row may have up to 1 MiB,
# and 100 of them must fit one answer (Lambda's 6 MB).
MAX_ROW_TEXT_CHARS = 1000
_EXECUTION_ID = re.compile(f"[0-9a-f]{{{EXECUTION_ID_CHARS}}}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")
_STORED_NUMBER = re.compile(r"-?[0-9]{1,38}(\.[0-9]{1,38})?([eE][-+]?[0-9]{1,3})?")
_LIMIT = re.compile(r"[1-9][0-9]{0,2}")
# The days S3 keeps reports (template parameter ReportRetentionDays: the
# import bucket's lifecycle rule on reports/); unset where nothing deletes
# them (make run)
REPORT_RETENTION_ENV = "PROPSYNC_REPORT_RETENTION_DAYS"
_DAY_SECONDS = 86400


# ---------------------------------------------------------------- requests


class ImportRequestModel(RequestModel):
    """The import routes are propsync's own, not the original product's: a
    field they do not know is a mistake (a misspelt `header` would leave the
    header unchecked), so it is refused rather than ignored."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _sample_size(sample: str) -> str:
    size = len(sample.encode("utf-8", "surrogatepass"))
    if size > MAX_PREVIEW_SAMPLE_BYTES:
        raise InvalidInputError(
            f"sample is {size} bytes of UTF-8; at most {MAX_PREVIEW_SAMPLE_BYTES} bytes (64 KB) "
            "are allowed: send the first lines of the file only, whole lines"
        )
    return sample


# The importer checks the mapping itself (import_mapping.validate_mapping):
# any JSON value is taken here as it is (SkipValidation: the schema still
# shows the mapping's), and its problems are the importer's.
Mapping_ = Annotated[
    SkipValidation[MappingDocument],
    Field(
        description="The import's mapping.json, as the importer reads it; its problems are "
        "the importer's, each starting with its path."
    ),
]


class ImportPreviewRequest(ImportRequestModel):
    """A mapping and the first lines of a CSV file: what the importer would
    make of them."""

    mapping: Mapping_
    sample: Annotated[
        str,
        AfterValidator(_sample_size),
        Field(
            description="The first lines of the file as text (its header row first), whole "
            f"lines only, at most {MAX_PREVIEW_SAMPLE_BYTES} bytes of UTF-8; the first "
            f"{MAX_PREVIEW_ROWS} rows are previewed.",
            examples=["idecko,meno,update_timestamp\nu1,Ann,1767225600\n"],
        ),
    ]
    file_name: str = Field(
        default="preview.csv",
        description="The file's name, for the importer's sentences: a .csv name (a sample is "
        "text, never compressed).",
    )


class ImportStartRequest(ImportRequestModel):
    """An import to start: its mapping is written now, and the answer is the
    form to upload the file with, straight to S3."""

    import_name: str = Field(
        description="The import (a folder of the bucket; its mapping.json is replaced). Not "
        "empty, `.` or `..`, no `/`, `\\` or control characters.",
        examples=["crm"],
    )
    file_name: str = Field(
        description="The data file's name, ending in .csv or .csv.gz; the same rules.",
        examples=["people.csv"],
    )
    mapping: Mapping_
    header: list[str] | None = Field(
        default=None,
        description="The file's header row, if known: the mapping's columns are checked "
        "against it as the importer will check them.",
    )
    size: int | None = Field(
        default=None,
        description=f"The file's size in bytes, if known: 1 to {MAX_UPLOAD_BYTES} (5 GB, the "
        "most one upload may have).",
    )


# ---------------------------------------------------------------- preview


def preview(
    project: str, id_types: IdTypes, request: ImportPreviewRequest, now: float
) -> dict[str, Any]:
    """What the importer makes of ``request.sample`` with ``request.mapping``:
    the header, the problems that would fail the execution (then no rows), or
    the first rows as they would be written (each row's ids, properties typed
    as stored, update timestamp) or rejected (the importer's reason). Rows are
    stamped as an execution starting ``now`` stamps them."""
    target = _preview_file(project, request.file_name)
    raw_mapping = _mapping_bytes(request.mapping)
    sample = request.sample.encode("utf-8", "surrogatepass")
    checked = mapping_check(raw_mapping, io.BytesIO(sample), target, id_types)
    layout = checked.layout
    header = layout.header if layout is not None else None
    rows: list[dict[str, Any]] = []
    if not checked.problems and checked.mapping is not None and layout is not None:
        records = iter_records(
            io.BytesIO(sample[layout.data_start :]), layout.delimiter, layout.data_first_line
        )
        for record in itertools.islice(records, MAX_PREVIEW_ROWS):
            rows.append(
                _preview_row(
                    mapped_row(checked.mapping, layout.header, record, started_at=now, now=now)
                )
            )
    return {"success": True, "header": header, "problems": checked.problems, "rows": rows}


def _preview_row(row: Any) -> dict[str, Any]:
    if isinstance(row, RowUpdate):
        return {
            "line": row.line,
            "ids": row.ids,
            # as stored: canonical JSON read back (null: the cell was empty and
            # clears the property)
            "properties": {
                name: canonical_json.loads(version.encoded_value)
                for name, version in row.versions.items()
            },
            "update_timestamp": row.timestamp,
            "error": None,
        }
    return {
        "line": row.line,
        "ids": None,
        "properties": None,
        "update_timestamp": None,
        "error": row.reason,
    }


# ---------------------------------------------------------------- start


def start(
    project: str, id_types: IdTypes, bucket: ImportBucket, request: ImportStartRequest
) -> dict[str, Any]:
    """Check the names, the size and the mapping (against ``request.header``
    when given) as the importer will, then write the import's mapping.json and
    answer a presigned POST for exactly the data file's key. On any problem,
    InvalidImportError with every one of them, and nothing is written."""
    problems = [
        problem
        for what, name in (("import name", request.import_name), ("file name", request.file_name))
        if (problem := _part_problem(what, name))
    ]
    key = f"imports/{project}/{request.import_name}/{request.file_name}"
    target = import_file(key) if not problems else None
    if target is None:  # (the names' problems say why)
        target = ImportFile(project, request.import_name, request.file_name, key)
    elif target.problem:  # the key as a whole: its length
        problems.append(target.problem)
    if request.size is not None and not 1 <= request.size <= MAX_UPLOAD_BYTES:
        problems.append(
            f"size: {request.size} bytes is not allowed: a file of 1 to {MAX_UPLOAD_BYTES} bytes "
            "(5 GB) can be uploaded"
        )
    header = None
    if request.header is not None:
        header = [cell.strip() for cell in request.header]  # as the importer reads a header
        if not header or header == [""]:
            problems.append("header: the file has no header row")
    raw_mapping = _mapping_bytes(request.mapping)
    problems += mapping_check(raw_mapping, None, target, id_types, header).problems
    if problems:
        raise InvalidImportError(problems)
    bucket.put(target.mapping_key, raw_mapping, "application/json")
    upload = bucket.upload_form(key, MAX_UPLOAD_BYTES, UPLOAD_FORM_SECONDS)
    return {
        "success": True,
        "file_key": key,
        "import_name": request.import_name,
        "file_name": request.file_name,
        "upload": upload,
        "expires_at": int(time.time()) + UPLOAD_FORM_SECONDS,
        "max_bytes": MAX_UPLOAD_BYTES,
    }


def _part_problem(what: str, name: str) -> str | None:
    """Why ``name`` cannot be the import's or data file's part of the key:
    the importer's rules (imports.name_problem), text an S3 key can hold, and
    for a file name the suffixes the importer reads."""
    if not is_unicode(name):
        return f"the {what} must be valid unicode text; it contains a lone UTF-16 surrogate"
    problem = name_problem(what, name)
    if problem is None and what == "file name" and not name.endswith((".csv", ".csv.gz")):
        problem = (
            f"the file name {name[:200]!r} does not end in .csv or .csv.gz: the importer "
            "reads those"
        )
    return problem


def _preview_file(project: str, file_name: str) -> ImportFile:
    """The data file a preview stands for, or 400 saying why its name cannot
    be one (a sample is text: never a .csv.gz)."""
    problem = _part_problem("file name", file_name)
    if problem is None and not file_name.endswith(".csv"):
        problem = f"the file name {file_name[:200]!r} does not end in .csv: a sample is text"
    target = import_file(f"imports/{project}/preview/{file_name}") if problem is None else None
    if target is not None and target.problem:
        problem = target.problem  # the key's length
    if target is None or problem:
        raise InvalidInputError(f"file_name: {problem}")
    return target


def _mapping_bytes(mapping: Any) -> bytes:
    """The mapping as mapping.json holds it: the JSON of the request, numbers
    digit for digit, which the importer reads as it reads any mapping.json."""
    try:
        return canonical_json.dumps(mapping).encode("utf-8")
    except PropsyncError as error:  # a lone surrogate, or nesting beyond any mapping's
        raise InvalidInputError(f"mapping: {error}") from None


# ---------------------------------------------------------------- executions


def list_executions(
    store: ImportStore,
    project: str,
    *,
    file_key: str | None,
    limit: str | None,
    next_token: str | None,
) -> dict[str, Any]:
    """The project's executions, newest first, a page at a time (``next``:
    the token of the next page, None after the last); with ``file_key``, the
    newest execution of that file alone (0 or 1), read consistently."""
    count = _limit(limit)
    after = _position(next_token) if next_token is not None else None
    if file_key is not None:
        record = store.latest_for_file(_own_file_key(project, file_key), with_plan=False)
        found = [record] if record is not None and record.project == project else []
        return {"success": True, "executions": [execution_view(r) for r in found], "next": None}
    page = store.list_for_project(project, count, after)
    return {
        "success": True,
        "executions": [execution_view(record) for record in page.executions],
        "next": _token(page.last) if page.last is not None else None,
    }


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIST_LIMIT
    if not _LIMIT.fullmatch(value) or int(value) > MAX_LIST_LIMIT:
        raise InvalidInputError(
            f"limit={shown(value)} is not allowed; use a whole number from 1 to {MAX_LIST_LIMIT} "
            f"(default {DEFAULT_LIST_LIMIT})"
        )
    return int(value)


def _token(position: ExecutionPosition) -> str:
    text = json.dumps([position.execution_id, position.started_at], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _position(token: str) -> ExecutionPosition:
    """The position a ``next`` token of this route names, or 400: a token
    is only ever passed on as it was given."""
    refused = InvalidInputError(
        f"next={shown(token)} is not a token this route gave: pass the previous answer's "
        '"next" as it is, or leave it out for the first page'
    )
    if not _TOKEN.fullmatch(token):
        raise refused
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):  # (bad JSON and bad UTF-8 are ValueErrors)
        raise refused from None
    if (
        not isinstance(decoded, list)
        or len(decoded) != 2
        or not all(isinstance(part, str) for part in decoded)
        or not _EXECUTION_ID.fullmatch(decoded[0])
        or not _STORED_NUMBER.fullmatch(decoded[1])
    ):
        raise refused
    return ExecutionPosition(execution_id=decoded[0], started_at=decoded[1])


def _own_file_key(project: str, file_key: str) -> str:
    """``file_key`` if it is a data file's key of the caller's project (as
    the start route answers it), else 400."""
    target = import_file(file_key) if is_unicode(file_key) else None
    if target is None or target.problem is not None or target.project != project:
        raise InvalidInputError(
            f"file_key={shown(file_key)} is not the key of an import file of this key's project: "
            f"use imports/{project}/<import name>/<file>.csv (or .csv.gz), as the start of an "
            "import answers it"
        )
    return file_key


def report_kept_until(finished_at: float | None, retention_days: int | None) -> float | None:
    """Until when S3 keeps the report of an execution that finished at
    ``finished_at`` (None: running, or reports are never deleted): S3 expires
    an object at the first midnight UTC after its creation plus the rule's
    days, and the report is written once the execution's end time is taken,
    so it is kept at least until the first midnight UTC after
    ``finished_at`` plus the days."""
    if finished_at is None or retention_days is None:
        return None
    expires = finished_at + retention_days * _DAY_SECONDS
    return float(math.ceil(expires / _DAY_SECONDS) * _DAY_SECONDS)


def report_retention_days() -> int | None:
    """ReportRetentionDays as the stack gives it to this function."""
    raw = os.environ.get(REPORT_RETENTION_ENV, "").strip()
    return int(raw) if raw else None


def execution_view(record: ExecutionRecord, now: float | None = None) -> dict[str, Any]:
    """An execution as the routes show it (its pace measured to ``now``,
    the time of the answer, while it runs)."""
    now = time.time() if now is None else now
    target = import_file(record.file_key)
    progress = record.progress
    counters = record.counters
    return {
        "execution_id": record.execution_id,
        "import_name": target.import_name if target else "",
        "file_name": target.file_name if target else "",
        "file_key": record.file_key,
        "status": record.status,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "report_kept_until": report_kept_until(record.finished_at, report_retention_days()),
        "progress": {
            "rows": progress.rows,
            "bytes": progress.bytes,
            "bytes_total": progress.bytes_total,
            "fraction": progress.fraction,
            "rows_per_second": round(record.rows_per_second(now), 1),
            "throttled_seconds": round(record.throttled_seconds, 1),
        },
        "counts": {
            "rows_read": counters["rows_read"],
            "rows_written": counters["rows_written"],
            "rows_rejected": counters["rows_rejected"],
            "properties_applied": counters["properties_applied"],
            "properties_stale": counters["properties_stale"],
            "rows_ignored_as_erased": counters["rows_erased"],
        },
    }


def execution_with_report(
    store: ImportStore, bucket: ImportBucket, project: str, execution_id: str
) -> dict[str, Any]:
    """One execution of the project, its report (None while it runs) and its
    first rejected rows (line, reason, and the row's cells as the rejected
    file holds them); ExecutionNotFoundError for an id of no execution of
    the project."""
    record = (
        store.get(execution_id, with_plan=False) if _EXECUTION_ID.fullmatch(execution_id) else None
    )
    if record is None or record.project != project:
        raise ExecutionNotFoundError()
    report = _report(bucket, record)
    return {
        "success": True,
        "execution": execution_view(record),
        "report": report,
        "rejected_rows": _rejected_rows(bucket, project, report) if report else [],
    }


def _report(bucket: ImportBucket, record: ExecutionRecord) -> dict[str, Any] | None:
    """The report the execution wrote, where its record says it wrote it;
    for an execution finished before records said so, the file's report if
    it is this execution's."""
    if record.status == "running":
        return None  # its report is written just before it finishes
    key = record.report_key
    if key is None:
        target = import_file(record.file_key)
        if target is None:
            return None
        key = target.report_key
    try:
        raw = bucket.read(key)
    except ClientError as error:
        # without s3:ListBucket S3 answers a missing key with 403: no report there
        if error.response.get("Error", {}).get("Code") != "AccessDenied":
            raise
        return None
    report = json.loads(raw) if raw is not None else None
    if not isinstance(report, dict) or report.get("execution_id") != record.execution_id:
        return None  # (an older record's file now holds a newer upload's report)
    return report


def _rejected_rows(bucket: ImportBucket, project: str, report: dict[str, Any]) -> list[Any]:
    """The report's first rejected rows (its ``errors``: line and reason),
    each with its cells from the rejected file, read only as far as those
    rows: the file may hold millions."""
    errors = [e for e in report.get("errors") or [] if isinstance(e, dict)][:MAX_REPORTED_ERRORS]
    key = report.get("rejected_file")
    cells_by_line: dict[int, str] = {}
    if errors and isinstance(key, str) and key.startswith(f"reports/{project}/"):
        cells_by_line = _rejected_file_rows(bucket, key, len(errors))
    return [
        {
            "line": error.get("line"),
            "reason": error.get("reason"),
            "row": cells_by_line.get(error.get("line"), ""),  # type: ignore[arg-type]
        }
        for error in errors
    ]


def _rejected_file_rows(bucket: ImportBucket, key: str, count: int) -> dict[int, str]:
    """Line -> the row's cells as CSV text (cut to MAX_ROW_TEXT_CHARS), of
    the first ``count`` rows of a rejected file (import_rows.rejected_csv:
    every cell quoted, ``"line"`` first, then the file's delimiter)."""
    with bucket.open(key, 0, 7) as head:
        delimiter = head.read()[6:7].decode("ascii", "replace")
    if delimiter not in DELIMITERS:
        return {}
    rows: dict[int, str] = {}
    with bucket.open(key) as stream:
        records = iter_records(stream, delimiter, 1)
        next(records, None)  # its header: line, reason, the file's columns
        for _, cells, _problem in itertools.islice(records, count):
            if len(cells) < 2 or not (cells[0].isascii() and cells[0].isdigit()):
                continue
            text = io.StringIO()
            csv.writer(text, delimiter=delimiter, lineterminator="").writerow(cells[2:])
            shown_text = text.getvalue()
            if len(shown_text) > MAX_ROW_TEXT_CHARS:
                shown_text = shown_text[:MAX_ROW_TEXT_CHARS] + "..."
            # bytes that were not UTF-8 (kept as surrogates) shown as U+FFFD
            rows[int(cells[0])] = shown_text.encode("utf-8", "surrogateescape").decode(
                "utf-8", "replace"
            )
    return rows
