"""No row stalls an import, and no file leaves an execution without a report:
bad rows are rejected with their reason, bad files fail with a report, the
good rows around them are written (through the real execution code, S3 and
DynamoDB)."""

import builtins
import contextlib
import itertools
import json
from decimal import Decimal

import pytest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync import imports as imports_module
from propsync.customer_view import plain_properties
from propsync.identity import find_customer_id
from tests.conftest import PROJECT

MAPPING = {
    "properties": [
        {"from_column": "n", "to_property": "n", "type": "number"},
        {"from_column": "l", "to_property": "l", "type": "list"},
        {"from_column": "o", "to_property": "o", "type": "object"},
        {"from_column": "d", "to_property": "d", "type": "datetime"},
    ],
    "ids": [{"from_column": "id", "to_id": "registered"}],
    "update_timestamp": {"from_column": "ts"},
}
HEADER = ["id", "n", "l", "o", "d", "ts"]
GOOD = {"id": "bad", "n": "1", "l": "[1]", "o": "{}", "d": "2020-01-01", "ts": "1600000000"}
HUGE = "9" * 400


def csv_row(cells: dict[str, str]) -> bytes:
    """One row, every cell quoted (cells may hold commas, quotes, newlines)."""
    row = {**GOOD, **cells}
    return (",".join('"' + row[c].replace('"', '""') + '"' for c in HEADER) + "\n").encode()


def stored(imports, registered):
    store = imports.services.customers
    customer_id = find_customer_id(store, PROJECT, "registered", registered)
    return plain_properties(store.read_customer(PROJECT, customer_id)) if customer_id else None


# (cells of the bad row, the reason its rejection gives)
BAD_ROWS = {
    # ids: the tracking validator's sentences (one validator for both)
    "id over DynamoDB's 2,048-byte key limit": (
        {"id": "x" * 3000},
        "customer_ids.registered is 3000 bytes; at most 1024 are allowed",
    ),
    "id over the tracking limit, under DynamoDB's": (
        {"id": "x" * 1025},
        "customer_ids.registered is 1025 bytes; at most 1024 are allowed",
    ),
    "id with a control character": (
        {"id": "a\x01b"},
        "customer_ids.registered contains a control character",
    ),
    "id with a newline inside": (
        {"id": "a\nb"},
        "customer_ids.registered contains a control character",
    ),
    # numbers that no Decimal holds, anywhere in a cell
    "number with a huge exponent": ({"n": "1e9999999999999999999"}, "is not a number"),
    "number with a huge negative exponent": ({"n": "-1e-9999999999999999999"}, "is not a number"),
    "number with more digits than Python converts": (
        {"n": "9" * 5000},
        "at most 4300 digits are allowed",
    ),
    "list element with a huge exponent": ({"l": "[1e9999999999999999999]"}, "number out of range"),
    "object value with a huge exponent": (
        {"o": '{"a": [-1E-9999999999999999999]}'},
        "number out of range",
    ),
    "list nested 100,000 deep": ({"l": "[" * 100_000 + "]" * 100_000}, "is not JSON"),
    "datetime of 400 digits": ({"d": HUGE}, "out of range"),
    "negative datetime of 400 digits": ({"d": "-" + HUGE}, "out of range"),
    "update timestamp of 400 digits": ({"ts": HUGE}, "out of range"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_a_bad_row_is_rejected_with_its_reason_and_the_rows_around_it_are_written(imports, case):
    cells, reason = BAD_ROWS[case]
    imports.put_mapping("bad", MAPPING)
    data = (
        ",".join(HEADER).encode()
        + b"\n"
        + csv_row({"id": "before"})
        + csv_row(cells)
        + csv_row({"id": "after"})
    )
    record, _ = imports.drop("bad", "rows.csv", data)

    assert record.status == "partially_succeeded"
    report = imports.report("bad", "rows.csv")
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (3, 2, 1)
    [error] = report["errors"]
    assert error["line"] == 3
    assert reason in error["reason"], error["reason"]
    assert len(error["reason"]) < 1000  # a reason, not an echo of the cell
    assert (
        stored(imports, "before")
        == stored(imports, "after")
        == {
            "n": 1,
            "l": [1],
            "o": {},
            "d": 1577836800,
        }
    )


# Cells that look hostile but are values propsync stores exactly (as tracking would).
ODD_BUT_VALID = {
    "id of exactly 1,024 bytes": ({"id": "é" * 512}, "id", "é" * 512),
    "number with an exponent a Decimal holds": (
        {"n": "1e9999999999"},
        "n",
        Decimal("1e9999999999"),
    ),
    "number of 400 digits": ({"n": HUGE}, "n", int(HUGE)),
    "list element of 400 digits": ({"l": f"[{HUGE}]"}, "l", [int(HUGE)]),
}


@pytest.mark.parametrize("case", list(ODD_BUT_VALID))
def test_odd_but_valid_cells_are_written(imports, case):
    cells, column, expected = ODD_BUT_VALID[case]
    imports.put_mapping("odd", MAPPING)
    row = csv_row({"id": "odd", **cells})
    record, _ = imports.drop("odd", "odd.csv", ",".join(HEADER).encode() + b"\n" + row)
    assert record.status == "succeeded", imports.report("odd", "odd.csv")["errors"]
    if column == "id":
        assert stored(imports, expected) is not None
    else:
        assert stored(imports, "odd")[column] == expected


def assert_failed_before_any_row(imports, name, file_name, record, *expected):
    """The execution finished as failed, with a report that says why, and wrote nothing."""
    assert record.status == "failed"
    assert imports.services.imports.get(record.execution_id).status == "failed"
    report = imports.report(name, file_name)
    assert report["status"] == "failed"
    problems = " ".join(report["problems"])
    for text in expected:
        assert text in problems, report["problems"]
    assert report["rows_read"] == report["rows_written"] == 0
    assert stored(imports, "m1") is None
    return report


SIMPLE = {
    "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}


def test_a_header_too_wide_for_the_execution_record_fails_with_a_report(imports):
    """100,000 columns (700 KB): the plan stored in the execution record would
    be over DynamoDB's 400 KB item limit."""
    imports.put_mapping("wide", SIMPLE)
    header = ",".join(["id", "n"] + [f"c{i}" for i in range(99_998)])
    row = "m1,1" + ",x" * 99_998
    record, _ = imports.drop("wide", "wide.csv", f"{header}\n{row}\n".encode())
    assert_failed_before_any_row(
        imports, "wide", "wide.csv", record, "100000 columns", "at most 204800 bytes"
    )


def test_a_missing_column_of_a_very_wide_header_fails_with_a_bounded_report(imports):
    imports.put_mapping("wide", {**SIMPLE, "ids": [{"from_column": "nope", "to_id": "registered"}]})
    header = ",".join(["id", "n"] + [f"c{i}" for i in range(99_998)])
    record, _ = imports.drop("wide", "w.csv", f"{header}\nm1,1{',x' * 99_998}\n".encode())
    report = assert_failed_before_any_row(
        imports, "wide", "w.csv", record, "ids[0].from_column: 'nope' is neither a column"
    )
    assert len(json.dumps(report["problems"])) < 10_000


def test_too_many_chunks_for_the_execution_record_fails_with_a_report(imports, monkeypatch):
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "1")
    imports.put_mapping("many", SIMPLE)
    data = b"id,n\n" + b"".join(b"m%d,1\n" % i for i in range(20_000))
    record, _ = imports.drop("many", "many.csv", data)
    assert_failed_before_any_row(
        imports, "many", "many.csv", record, "20000 chunks", "PROPSYNC_IMPORT_CHUNK_BYTES"
    )
    assert imports.messages() == []


def test_a_huge_mapping_fails_with_a_report_naming_the_limit(imports):
    properties = [
        {"from_column": "n", "to_property": f"property number {i:06d}", "type": "number"}
        for i in range(3000)
    ]
    imports.put_mapping("huge", {**SIMPLE, "properties": properties})
    record, _ = imports.drop("huge", "h.csv", b"id,n\nm1,1\n")
    assert_failed_before_any_row(
        imports, "huge", "h.csv", record, "mapping.json is larger than 131072 bytes"
    )


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # refused by size
        '{"ids": ' + "[" * 30_000 + "]" * 30_000 + "}",  # small enough, too deep for json
    ],
    ids=["100,000 deep", "30,000 deep"],
)
def test_a_deeply_nested_mapping_fails_with_a_report(imports, text):
    key = f"imports/{PROJECT}/deep/mapping.json"
    imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=text.encode())
    record, _ = imports.drop("deep", "d.csv", b"id,n\nm1,1\n")
    assert_failed_before_any_row(imports, "deep", "d.csv", record, "mapping.json")


def test_a_gz_file_that_is_not_gzip_fails_with_a_report(imports):
    imports.put_mapping("gz", SIMPLE)
    key = f"imports/{PROJECT}/gz/plain.csv.gz"
    imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=b"id,n\nm1,1\n")
    record = imports.deliver(key, "00F1")
    assert_failed_before_any_row(imports, "gz", "plain.csv.gz", record, "is not a gzip file")


# ---------------------------------------------------------------- the class


def _instances() -> list[Exception]:
    """One instance of every builtin exception that takes a message, and the
    errors AWS answers with: what per-row code or planning could raise."""
    errors: list[Exception] = []
    for cls in vars(builtins).values():
        if isinstance(cls, type) and issubclass(cls, Exception):
            with contextlib.suppress(TypeError):
                errors.append(cls("boom"))
    return [
        *errors,
        aws_error("ValidationException", "Item size has exceeded the maximum allowed size"),
        aws_error("ThrottlingException", "Rate exceeded"),
        aws_error("ProvisionedThroughputExceededException", "throughput exceeded"),
        aws_error("InternalServerError", "internal error"),
        aws_error("AccessDeniedException", "not allowed"),
        EndpointConnectionError(endpoint_url="http://dynamodb"),
        ReadTimeoutError(endpoint_url="http://dynamodb"),
    ]


def aws_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "UpdateItem")


def transient(error: Exception) -> bool:
    """Throttling, AWS's faults and the network: the chunk is tried again."""
    if isinstance(error, ClientError):
        return error.response["Error"]["Code"] != "ValidationException"
    return isinstance(error, ConnectionError | TimeoutError | BotoCoreError)


ERRORS = _instances()
CLASS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
files = itertools.count()


@CLASS
@given(error=st.sampled_from(ERRORS), where=st.sampled_from(["map_record", "write_update"]))
def test_whatever_a_row_raises_rejects_that_row_unless_it_is_transient(imports, error, where):
    imports.put_mapping("raise", MAPPING)
    real = getattr(imports_module, where)

    def raising(*args, **kwargs):
        row_names_bad = "bad" in (args[3] if where == "map_record" else args[2].values())
        if row_names_bad:
            raise error
        return real(*args, **kwargs)

    data = (
        ",".join(HEADER).encode()
        + b"\n"
        + b"".join(csv_row({"id": registered}) for registered in ("before", "bad", "after"))
    )
    file_name = f"r{next(files)}.csv"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imports_module, where, raising)
        record, _ = imports.drop("raise", file_name, data, run_chunks=False)
        [message] = imports.messages()
        if transient(error):  # raised for the queue to deliver the chunk again, not rejected
            with pytest.raises(type(error)):
                imports.deliver_messages([message])
            assert imports.services.imports.get(record.execution_id).status == "running"
            return
        imports.deliver_messages([message])

    record = imports.services.imports.get(record.execution_id)
    assert record.status == "partially_succeeded"
    [rejected] = imports.report("raise", file_name)["errors"]
    assert rejected["line"] == 3
    assert type(error).__name__ in rejected["reason"] or str(error) in rejected["reason"]
    assert stored(imports, "before") is not None
    assert stored(imports, "after") is not None


@CLASS
@given(error=st.sampled_from(ERRORS))
def test_whatever_planning_raises_fails_the_execution_with_a_report_unless_transient(
    imports, error
):
    imports.put_mapping("plan", SIMPLE)
    file_name = f"p{next(files)}.csv"

    def raising(*_args, **_kwargs):
        raise error

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imports_module, "read_layout", raising)
        if transient(error):  # Lambda retries the S3 event
            with pytest.raises(type(error)):
                imports.drop("plan", file_name, b"id,n\nm1,1\n")
            return
        record, _ = imports.drop("plan", file_name, b"id,n\nm1,1\n")
    expected = f"the import could not be started: {type(error).__name__}"
    assert_failed_before_any_row(imports, "plan", file_name, record, expected)
