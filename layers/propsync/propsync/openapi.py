"""The OpenAPI 3.1 document of every route (docs/openapi.json), generated from
the request models (propsync.models) and the answer models below.

Handlers build their answers as plain dicts (a model per answer would cost
every cold start for nothing a client sees); the answer models are the
contract those dicts keep, and the API tests check every answer they receive
against this document, so neither can drift from the code unnoticed.
``make openapi`` writes the document; a test fails when the committed one is
stale. Run as ``python -m propsync.openapi`` it prints the document.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema, models_json_schema

from propsync.id_types import ID_TYPE_SCHEMA
from propsync.import_api import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    UPLOAD_FORM_SECONDS,
    ImportPreviewRequest,
    ImportStartRequest,
)
from propsync.import_mapping import MappingDocument
from propsync.limits import MAX_BATCH_COMMANDS, MAX_PREVIEW_ROWS, MAX_UPLOAD_BYTES
from propsync.models import (
    AnonymizeRequest,
    AttributesRequest,
    BatchRequest,
    CustomerPatch,
    CustomersCommandData,
    ExportOneRequest,
)

VERSION = "0.1.0"


class Answer(BaseModel):
    # Answers carry exactly the fields their model names: an undocumented
    # field in an answer fails the API tests.

    model_config = ConfigDict(extra="forbid")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def left_out(description: str | None = None) -> Any:
    """A field an answer leaves out when it does not apply; never null. Its
    annotation is ``T | SkipJsonSchema[None]``: None stands for "left out",
    and the document shows T alone, without a default."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


PropertyNames = Annotated[list[str], Field(description="Property names.")]


class ErrorAnswer(Answer):
    """A refused or failed request, in the original service's words."""

    success: Literal[False]
    error: str = Field(description="What was wrong and what is allowed.")
    applied: PropertyNames | SkipJsonSchema[None] = left_out(
        "Properties that were stored before the request failed part way (an edit that "
        "would outgrow the 400 KB item limit, or that other writers kept winning)."
    )
    problems: Annotated[list[str], Field(min_length=1)] | SkipJsonSchema[None] = left_out(
        "An import that cannot start: every problem of its names, size, mapping and header, "
        "each a sentence (mapping problems start with their path in the mapping)."
    )


class CommandFailure(Answer):
    """A tracking command that failed, or a batch refused whole (then with
    one error). Its `command_id` is repeated when the command had one."""

    success: Literal[False]
    errors: Annotated[list[str], Field(min_length=1)]
    command_id: str | SkipJsonSchema[None] = left_out("The command's `command_id`.")
    applied: PropertyNames | SkipJsonSchema[None] = left_out(
        "Properties stored before the command failed part way."
    )


class CustomersResult(Answer):
    """A `customers` command that ran: which properties were stored and
    which lost to a newer stored value."""

    success: Literal[True]
    customer_id: str = Field(description="propsync's internal id of the customer written.")
    applied: PropertyNames = Field(description="Properties stored by this command.")
    stale: PropertyNames = Field(
        description="Properties not stored: the stored value is newer (or as new, and wins "
        "the tie-break)."
    )
    merged: list[str] | SkipJsonSchema[None] = left_out(
        "Internal ids of customers this command's ids merged into `customer_id`; present "
        "only when it merged some."
    )
    moved_ids: dict[str, str] | SkipJsonSchema[None] = left_out(
        "Soft ids this command moved to `customer_id` from other customers (id type to "
        "value); present only when it moved some."
    )
    command_id: str | SkipJsonSchema[None] = left_out("The command's `command_id`.")


class ErasedResult(Answer):
    """A `customers` command that names an id erased (anonymize) at or after
    the command's time: it wrote nothing and created no customer, and every
    property it carried is reported stale."""

    success: Literal[True]
    applied: Annotated[list[str], Field(max_length=0)] = Field(description="Always empty.")
    stale: PropertyNames = Field(description="Every property of the command.")
    erased_id_types: Annotated[list[str], Field(min_length=1)] = Field(
        description="The command's id types whose value was erased at or after its time."
    )
    command_id: str | SkipJsonSchema[None] = left_out("The command's `command_id`.")


class QueuedResult(Answer):
    """A `customers` command accepted by a deployment with queued tracking
    writes (TrackingWrites=queued): it passed every check and waits in the
    queue; the worker applies it, usually within a second, with the same
    merge rule (reads lag by as much)."""

    success: Literal[True]
    command_id: str | SkipJsonSchema[None] = left_out("The command's `command_id`.")


class SystemTimeResult(Answer):
    success: Literal[True]
    time: float = Field(description="The server's time in UNIX seconds.")
    command_id: str | SkipJsonSchema[None] = left_out("The command's `command_id`.")


class SystemCookieResult(Answer):
    success: Literal[True]
    cookie: str = Field(description="A new random cookie id (a UUID).")
    command_id: str | SkipJsonSchema[None] = left_out("The command's `command_id`.")


class BatchAnswer(Answer):
    """One result per command, in the order sent."""

    results: list[
        CustomersResult
        | ErasedResult
        | QueuedResult
        | SystemTimeResult
        | SystemCookieResult
        | CommandFailure
    ]
    start_time: float = Field(description="When the request arrived, UNIX seconds.")
    end_time: float = Field(description="When the answer was written, UNIX seconds.")
    success: Literal[True]


class SystemTimeAnswer(Answer):
    success: Literal[True]
    time: float = Field(description="The server's time in UNIX seconds.")


class TimestampedValue(Answer):
    value: Any = Field(description="The property's value: any JSON value.")
    last_update: float = Field(
        description="UNIX seconds of the update that wrote it; -1 when it was never timestamped."
    )


CustomerIds = Annotated[
    dict[str, str | list[str]],
    Field(
        description="Every id of the customer: a hard id type's one value, a soft id "
        "type's list of values."
    ),
]


class CustomerAnswer(Answer):
    """`properties`: name to value, or with `include_timestamps=1` name to
    value and last update; with `include_ids=1`, `customer_id` and `ids` too."""

    properties: dict[str, Any] | dict[str, TimestampedValue]
    customer_id: str | SkipJsonSchema[None] = left_out(
        "With `include_ids=1`: the customer's internal id (of the customer it was merged "
        "into, for one merged away)."
    )
    ids: CustomerIds | SkipJsonSchema[None] = left_out(
        "With `include_ids=1`: every id of the customer, as export-one lists them (a hard id "
        "type's one value, a soft id type's list of values)."
    )


class EditAnswer(Answer):
    success: Literal[True]
    customer_id: str = Field(
        description="The customer edited: the one the path names, or the customer it was "
        "merged into."
    )
    applied: PropertyNames
    stale: PropertyNames = Field(
        description="Properties not stored because the stored value is newer (a source with "
        "a clock ahead wrote it)."
    )
    properties: dict[str, TimestampedValue] | SkipJsonSchema[None] = left_out(
        "The customer as it now is; only for a key that may also read customers."
    )


class ExportOneAnswer(Answer):
    success: Literal[True]
    ids: CustomerIds
    properties: dict[str, Any]
    events: list[Any] = Field(description="Always empty: propsync stores no events.")


class AttributeValue(Answer):
    """A property's value (null where the customer has none), or the
    customer's ids of an id type (a hard id type's value, a soft id type's
    list of values; null where it has none)."""

    success: Literal[True]
    value: Any = Field(description="Any JSON value; null where the customer has none.")
    last_update: float | SkipJsonSchema[None] = left_out(
        "With `include_timestamps=1`, beside a property's value: UNIX seconds of the update "
        "that wrote it; -1 when it was never timestamped. Left out where there is no value."
    )


class AttributeFailure(Answer):
    """An attribute propsync cannot answer (an attribute type it does not
    have, an id type the project does not have), in its place."""

    success: Literal[False]
    error: str = Field(description="Why, e.g. `consents are not supported: ...`.")


class AttributesAnswer(Answer):
    """One result per requested attribute, in the order asked."""

    success: Literal[True]
    results: list[AttributeValue | AttributeFailure]


class AnonymizeAnswer(Answer):
    """The customer is erased (or was already: a repeated request answers
    the same)."""

    success: Literal[True]


class IdTypeEntry(Answer):
    name: str = Field(description="The id type, e.g. `registered`.")
    kind: Literal["hard", "soft"] = Field(
        description="`hard`: one value per customer; `soft`: many (a cookie of each browser)."
    )


class KeyAnswer(Answer):
    """The calling API key: what a client needs to know what to offer."""

    success: Literal[True]
    key_id: str = Field(description="The key's id (never its secret).")
    project: str = Field(description="The token of the key's project (a UUID).")
    permissions: list[str] = Field(
        description="The key's permissions, sorted: `customer_properties:get`, "
        "`customer_properties:set`, `customers:anonymize`, `customers:import`."
    )
    id_types: list[IdTypeEntry] = Field(description="The project's id types, sorted by name.")


class PreviewRow(Answer):
    """One data row of the sample as the importer maps it: its update, or the
    importer's reason for rejecting it (then `ids`, `properties` and
    `update_timestamp` are null)."""

    line: int = Field(description="The row's line in the file (the header is line 1).")
    ids: dict[str, str] | None = Field(description="The row's customer ids: id type to value.")
    properties: dict[str, Any] | None = Field(
        description="Property to value, typed as the import stores it (a number column's "
        "cells as numbers, a date as UNIX seconds, ...); null where the cell is empty, which "
        "clears the property."
    )
    update_timestamp: float | None = Field(
        description="The row's update time, UNIX seconds: its update_timestamp column's, or "
        "the import's start (here: the preview's time)."
    )
    error: str | None = Field(description="Why the importer rejects the row.")


class PreviewAnswer(Answer):
    """What the importer makes of the sample with the mapping."""

    success: Literal[True]
    header: list[str] | None = Field(
        description="The file's columns as the importer reads them; null if the header row "
        "cannot be read."
    )
    problems: list[str] = Field(
        description="What would fail the whole execution (the mapping's problems, its columns "
        "against the header, a header that cannot be read), in the importer's words; empty "
        "when the mapping fits."
    )
    rows: list[PreviewRow] = Field(
        description=f"The first {MAX_PREVIEW_ROWS} data rows of the sample; empty when "
        "`problems` is not."
    )


class UploadForm(Answer):
    """A presigned POST: send `multipart/form-data` to `url` with every field
    of `fields`, then the file as the field `file`, last."""

    url: str = Field(
        description="Where to POST: the bucket's regional origin on AWS "
        "(`https://<bucket>.s3.<region>.amazonaws.com/`); under make run the local "
        "endpoint, path-style (`http://127.0.0.1:4566/<bucket>`)."
    )
    fields: dict[str, str] = Field(
        description="The form fields, the signed policy among them (the exact key, 1 to "
        "`max_bytes` bytes, the expiry)."
    )


class StartAnswer(Answer):
    """The mapping is written; the file is to be uploaded with the form.
    S3's event for the upload starts the execution."""

    success: Literal[True]
    file_key: str = Field(description="The data file's key: `imports/<project>/<import>/<file>`.")
    import_name: str
    file_name: str
    upload: UploadForm
    expires_at: int = Field(
        description=f"UNIX seconds after which S3 refuses the form ({UPLOAD_FORM_SECONDS} s "
        "after it was given)."
    )
    max_bytes: int = Field(
        description=f"The largest file the form uploads: {MAX_UPLOAD_BYTES} bytes (5 GB)."
    )


class ImportProgress(Answer):
    rows: int = Field(
        description="Rows done so far (written, rejected or held back by an erasure), as the "
        "running chunks report them every few seconds."
    )
    bytes: int = Field(description="Bytes of the file read so far.")
    bytes_total: int = Field(description="The file's size (0 until the execution is planned).")
    fraction: float = Field(description="bytes / bytes_total, 0.0 to 1.0; 1.0 once finished.")
    rows_per_second: float = Field(
        description="Rows read per second since the execution's first chunk started to run (to "
        "its end, once finished); 0.0 while its chunks wait in the queue behind other imports'."
    )
    throttled_seconds: float = Field(
        description="Seconds the execution's writes waited on DynamoDB's throttling, summed over "
        "the chunks running at once (0.0 when the table kept up)."
    )


class ImportCounts(Answer):
    """The counts of the chunks done (the report's, once finished)."""

    rows_read: int
    rows_written: int
    rows_rejected: int
    properties_applied: int
    properties_stale: int = Field(description="Properties not written: the stored one is newer.")
    rows_ignored_as_erased: int = Field(
        description="Rows held back: their ids were erased after the row's update time."
    )


class Execution(Answer):
    """An import execution: one upload of one data file."""

    execution_id: str
    import_name: str
    file_name: str
    file_key: str
    status: str = Field(
        description="`running`, then `succeeded`, `partially_succeeded`, `failed` or "
        "`incomplete` (docs/API.md, Imports)."
    )
    started_at: float = Field(description="UNIX seconds; the default update timestamp of rows.")
    finished_at: float | None = Field(description="UNIX seconds; null while running.")
    report_kept_until: float | None = Field(
        description="UNIX seconds: S3 keeps the report and its rejected rows at least until "
        "then (midnight UTC, ReportRetentionDays after the end), then deletes them and the "
        "execution's `report` is null; null while running, or where reports are not deleted "
        "(`make run`)."
    )
    progress: ImportProgress
    counts: ImportCounts


class ExecutionsAnswer(Answer):
    success: Literal[True]
    executions: list[Execution] = Field(description="Newest first.")
    next: str | None = Field(
        description="Pass as `next` for the following page; null after the last page."
    )


class RejectedRowEntry(Answer):
    line: int
    reason: str = Field(description="The importer's reason, as in the report.")
    row: str = Field(
        description="The row's cells as the rejected file holds them, joined with the file's "
        "delimiter (at most 1,000 characters; a cell a spreadsheet would run as a formula has "
        "a ' in front); empty if the rejected file has no such row."
    )


class ExecutionAnswer(Answer):
    success: Literal[True]
    execution: Execution
    report: dict[str, Any] | None = Field(
        description="The report the execution wrote (docs/API.md, Imports); null while it "
        "runs, and once S3 deleted it (after the execution's `report_kept_until`)."
    )
    rejected_rows: list[RejectedRowEntry] = Field(
        description="The first 100 rejected rows (the report's `errors`) with their cells."
    )


# ---------------------------------------------------------------- the document

_MODELS: tuple[type[BaseModel], ...] = (
    BatchRequest,
    CustomersCommandData,
    CustomerPatch,
    ExportOneRequest,
    AttributesRequest,
    AnonymizeRequest,
    ErrorAnswer,
    CommandFailure,
    CustomersResult,
    ErasedResult,
    QueuedResult,
    BatchAnswer,
    SystemTimeAnswer,
    CustomerAnswer,
    EditAnswer,
    ExportOneAnswer,
    AttributesAnswer,
    AnonymizeAnswer,
    KeyAnswer,
    ImportPreviewRequest,
    ImportStartRequest,
    PreviewAnswer,
    StartAnswer,
    ExecutionsAnswer,
    ExecutionAnswer,
    # not a request body (yet): the mapping.json of imports, for anyone who
    # writes one (docs/API.md, Imports)
    MappingDocument,
)

_STATUS_WORDS = {
    200: "OK",
    201: "Created",
    400: "The request breaks a rule; nothing was stored",
    401: "No API key, or a malformed one",
    403: "The key may not do this, or its secret is wrong",
    404: "Not found in the key's project: no such customer (customer routes) or import "
    "execution (import routes)",
    409: "The ids belong to customers that never merge",
    413: "The body is larger than 6 MB (API Gateway refuses more than 10 MB on any route)",
    429: "Too many requests: the stage's throttling (retry with backoff), or on the routes "
    "that take an API key, a key locked after too many wrong secrets (the message names "
    "when the lock ends)",
    500: "The server failed; retry",
    503: "Not completed, worth a retry: the store too slow or throttled to answer in time "
    "(any route), failing part way, other writers winning every attempt, or a customer at "
    "the end of too many merges",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


Schema = dict[str, Any]


def _responses(
    ok: type[BaseModel],
    errors: dict[int, dict[str, Any]],
    ok_schema: Schema | None = None,
    ok_status: int = 200,
) -> dict[str, Any]:
    responses = {
        str(ok_status): {"description": _STATUS_WORDS[ok_status], **_json(ok_schema or _ref(ok))}
    }
    for status, schema in sorted(errors.items()):
        responses[str(status)] = {"description": _STATUS_WORDS[status], **_json(schema)}
    return responses


_ERROR: Schema = _ref(ErrorAnswer)
_EITHER_ERROR: Schema = {"oneOf": [_ref(ErrorAnswer), _ref(CommandFailure)]}
# every route: API Gateway's 413 (over 10 MB, any method) and 429, a 500, and
# a 503 when the store did not answer in time (api.error_response)
_GATEWAY: dict[int, Schema] = {413: _ERROR, 429: _ERROR, 500: _ERROR, 503: _ERROR}
_PRIVATE: dict[int, Schema] = {401: _ERROR, 403: _ERROR, **_GATEWAY}

_PROJECT_TOKEN = {
    "name": "project_token",
    "in": "path",
    "required": True,
    "description": "The project's token (a UUID): on the tracking routes, the credential.",
    "schema": {"type": "string", "format": "uuid"},
}
_KEYS_PROJECT_TOKEN = {
    **_PROJECT_TOKEN,
    "description": "The project's token (a UUID): the API key's own project.",
}
_CUSTOMER_ID = {
    "name": "customer_id",
    "in": "path",
    "required": True,
    "description": "propsync's internal customer id, or with `id_type` one of the customer's "
    "ids of that type.",
    "schema": {"type": "string"},
}
_ID_TYPE = {
    "name": "id_type",
    "in": "query",
    "required": False,
    "description": "Read `customer_id` as an id of this id type (e.g. registered).",
    "schema": ID_TYPE_SCHEMA,
}
_INCLUDE_TIMESTAMPS = {
    "name": "include_timestamps",
    "in": "query",
    "required": False,
    "description": "1: each property as its value and last update; 0 or absent: plain values.",
    "schema": {"type": "string", "enum": ["0", "1"]},
}

_INCLUDE_IDS = {
    "name": "include_ids",
    "in": "query",
    "required": False,
    "description": "1: the answer has the customer's `ids` too (as export-one lists them); "
    "0 or absent: properties only.",
    "schema": {"type": "string", "enum": ["0", "1"]},
}

_ATTRIBUTE_TIMESTAMPS = {
    **_INCLUDE_TIMESTAMPS,
    "description": "1: each property's result has its last update beside its value; 0 or "
    "absent: values only.",
}


_EXECUTION_ID = {
    "name": "execution_id",
    "in": "path",
    "required": True,
    "description": "An import execution's id (32 hex digits), as listed.",
    "schema": {"type": "string"},
}
_FILE_KEY = {
    "name": "file_key",
    "in": "query",
    "required": False,
    "description": "Only the newest execution of this data file (0 or 1; read consistently, "
    "so an upload's execution shows as soon as it started): a key the start route answered.",
    "schema": {"type": "string"},
}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": f"Executions per page, 1 to {MAX_LIST_LIMIT} (default {DEFAULT_LIST_LIMIT}).",
    "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,2}$"},
}
_NEXT = {
    "name": "next",
    "in": "query",
    "required": False,
    "description": "The previous page's `next`, as it was answered.",
    "schema": {"type": "string"},
}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, **_json(_ref(model))}


def _paths() -> dict[str, Any]:
    track = "/track/v2/projects/{project_token}"
    return {
        f"{track}/batch": {
            "post": {
                "operationId": "trackBatch",
                "tags": ["tracking"],
                "summary": f"Run 1 to {MAX_BATCH_COMMANDS} commands; one result per command",
                "description": "One bad command fails alone: its result says why. The batch is "
                "refused whole (`errors`) only when it is not a batch. A deployment with "
                "queued tracking writes (TrackingWrites=queued) answers a `customers` command "
                "that passed every check with `QueuedResult` and applies it shortly after.",
                "security": [],
                "parameters": [_PROJECT_TOKEN],
                "requestBody": _body(BatchRequest),
                "responses": _responses(BatchAnswer, {400: _EITHER_ERROR, **_GATEWAY}),
            }
        },
        f"{track}/customers": {
            "post": {
                "operationId": "trackCustomer",
                "tags": ["tracking"],
                "summary": "One customers command; its result with the error's own status",
                "security": [],
                "parameters": [_PROJECT_TOKEN],
                "requestBody": _body(CustomersCommandData),
                "responses": _responses(
                    CustomersResult,
                    _GATEWAY | {400: _EITHER_ERROR, 409: _ref(CommandFailure), 503: _EITHER_ERROR},
                    ok_schema={
                        "oneOf": [_ref(CustomersResult), _ref(ErasedResult), _ref(QueuedResult)]
                    },
                ),
            }
        },
        f"{track}/system/time": {
            "get": {
                "operationId": "systemTime",
                "tags": ["tracking"],
                "summary": "The server's time, to estimate a device's clock skew",
                "security": [],
                "parameters": [_PROJECT_TOKEN],
                "responses": _responses(SystemTimeAnswer, {400: _ERROR, **_GATEWAY}),
            }
        },
        "/api/key": {
            "get": {
                "operationId": "getKey",
                "tags": ["customers"],
                "summary": "The calling key: its project, permissions and the project's id types",
                "description": "Any valid key may call it, whatever its permissions: a client "
                "(the web console) signs in with it and offers only what `permissions` allow.",
                "responses": _responses(KeyAnswer, dict(_PRIVATE)),
            }
        },
        "/api/customers/{customer_id}": {
            "get": {
                "operationId": "getCustomer",
                "tags": ["customers"],
                "summary": "A customer's properties (a customer merged away reads as the one "
                "it was merged into)",
                "parameters": [_CUSTOMER_ID, _INCLUDE_TIMESTAMPS, _INCLUDE_IDS, _ID_TYPE],
                "responses": _responses(CustomerAnswer, {400: _ERROR, 404: _ERROR, **_PRIVATE}),
            },
            "patch": {
                "operationId": "editCustomer",
                "tags": ["customers"],
                "summary": "Edit properties, stamped with the time the request arrived",
                "parameters": [_CUSTOMER_ID, _ID_TYPE],
                "requestBody": _body(CustomerPatch),
                "responses": _responses(EditAnswer, {400: _ERROR, 404: _ERROR, **_PRIVATE}),
            },
        },
        "/data/v2/projects/{project_token}/customers/export-one": {
            "post": {
                "operationId": "exportOne",
                "tags": ["customers"],
                "summary": "A customer's ids and properties, found by its ids",
                "parameters": [_KEYS_PROJECT_TOKEN],
                "requestBody": _body(ExportOneRequest),
                "responses": _responses(ExportOneAnswer, {400: _ERROR, 404: _ERROR, **_PRIVATE}),
            }
        },
        "/data/v2/projects/{project_token}/customers/attributes": {
            "post": {
                "operationId": "customerAttributes",
                "tags": ["customers"],
                "summary": "Some of a customer's properties and ids, found by its ids; one "
                "result per attribute asked",
                "description": "Attribute types propsync does not have (segmentation, "
                "expression, aggregate, prediction, consent) and id types the project does not "
                "have answer `AttributeFailure` in their place; the others still answer. A "
                "malformed attribute refuses the whole request (400).",
                "parameters": [_KEYS_PROJECT_TOKEN, _ATTRIBUTE_TIMESTAMPS],
                "requestBody": _body(AttributesRequest),
                "responses": _responses(AttributesAnswer, {400: _ERROR, 404: _ERROR, **_PRIVATE}),
            }
        },
        "/data/v2/projects/{project_token}/customers/anonymize": {
            "post": {
                "operationId": "anonymizeCustomer",
                "tags": ["customers"],
                "summary": "Erase a customer for good: every property and id; later updates "
                "older than the erasure are dropped",
                "description": "Needs the `customers:anonymize` permission. What stays is, for "
                "each erased id, a salted hash and the erasure time: an update naming the id "
                "that is not newer than the erasure writes nothing (reported stale), a newer "
                "one starts a new customer.",
                "parameters": [_KEYS_PROJECT_TOKEN],
                "requestBody": _body(AnonymizeRequest),
                "responses": _responses(AnonymizeAnswer, {400: _ERROR, 404: _ERROR, **_PRIVATE}),
            }
        },
        "/api/imports/preview": {
            "post": {
                "operationId": "previewImport",
                "tags": ["imports"],
                "summary": "What the importer makes of a mapping and the first lines of a file",
                "description": "Needs `customers:import`. The importer's own checks and row "
                "mapping, on the sample: the mapping's problems (then no rows), or the first "
                f"{MAX_PREVIEW_ROWS} rows as they would be written or rejected. Writes nothing.",
                "requestBody": _body(ImportPreviewRequest),
                "responses": _responses(PreviewAnswer, {400: _ERROR, **_PRIVATE}),
            }
        },
        "/api/imports": {
            "post": {
                "operationId": "startImport",
                "tags": ["imports"],
                "summary": "Write an import's mapping and get a form to upload its file to S3",
                "description": "Needs `customers:import`. Names, size and mapping (against the "
                "header, if given) are checked as the importer checks them; on any problem, 400 "
                "with every one in `problems` and nothing written. Then the mapping is written "
                "and the answer is a presigned POST for exactly the data file's key: S3's event "
                "for the upload starts the execution.",
                "requestBody": _body(ImportStartRequest),
                "responses": _responses(StartAnswer, {400: _ERROR, **_PRIVATE}, ok_status=201),
            },
            "get": {
                "operationId": "listImports",
                "tags": ["imports"],
                "summary": "The project's import executions, newest first, a page at a time",
                "description": "Needs `customers:import`. With `file_key`, the newest execution "
                "of that file only: poll it after an upload until one started after the form "
                "was given appears, and until its status is no longer `running`.",
                "parameters": [_FILE_KEY, _LIMIT, _NEXT],
                "responses": _responses(ExecutionsAnswer, {400: _ERROR, **_PRIVATE}),
            },
        },
        "/api/imports/{execution_id}": {
            "get": {
                "operationId": "getImport",
                "tags": ["imports"],
                "summary": "One import execution with its report and first rejected rows",
                "description": "Needs `customers:import`. Another project's execution does not "
                "exist for the key (404).",
                "parameters": [_EXECUTION_ID],
                "responses": _responses(ExecutionAnswer, {404: _ERROR, **_PRIVATE}),
            }
        },
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    _, schemas = models_json_schema(
        [(model, "validation") for model in _MODELS],
        ref_template="#/components/schemas/{model}",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "propsync",
            "version": VERSION,
            "summary": "Customer properties that only newer updates overwrite",
            "description": "The tracking API (public: the project token in the path is the "
            "credential) and the customers API (an API key id and secret as HTTP Basic "
            'credentials). Errors are `{"success": false, "error": "..."}`; tracking '
            "commands fail one by one, with `errors`. [API.md](API.md), beside this document, "
            "describes every rule and every error sentence.",
        },
        "servers": [
            {"url": "http://127.0.0.1:3000", "description": "`make run` on this machine"},
            {
                "url": "https://{api_id}.execute-api.{region}.amazonaws.com/v1",
                "description": "A deployed stack (its ApiUrl output)",
                "variables": {
                    "api_id": {"default": "abcdef1234", "description": "the API's id"},
                    "region": {"default": "eu-west-1"},
                },
            },
        ],
        "security": [{"apiKey": []}],
        "tags": [
            {"name": "tracking", "description": "Writes from SDKs and servers"},
            {"name": "customers", "description": "Reads and edits with an API key"},
            {"name": "imports", "description": "CSV imports: preview, start, follow"},
        ],
        "paths": _paths(),
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The API key's id as the user name, its secret as the "
                    "password (`propsync create-key` prints both).",
                }
            },
        },
    }


def document_text() -> str:
    """The document as committed: stable key order, one trailing newline."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(document_text())
