"""Imports from the bucket through the real execution code, S3, SQS and DynamoDB (moto)."""

import tracemalloc
import zlib

import pytest

from propsync.customer_view import plain_properties, properties_with_timestamps
from propsync.identity import find_customer_id
from propsync.import_rows import ECHO_BYTES, MAX_ROW_BYTES
from tests.conftest import PROJECT

HOUR = 3600.0
MAPPING = {
    "properties": [
        {"from_column": "meno", "to_property": "first_name", "type": "string"},
        {"from_column": "email", "to_property": "email", "type": "string"},
        {"from_column": "age", "to_property": "age", "type": "number"},
    ],
    "ids": [{"from_column": "idecko", "to_id": "registered"}],
    "constant_columns": [],
    "timezone": "UTC",
}


def customer(imports, registered):
    store = imports.services.customers
    customer_id = find_customer_id(store, PROJECT, "registered", registered)
    return store.read_customer(PROJECT, customer_id) if customer_id else None


def test_a_file_is_imported_with_the_start_time_and_reported(imports):
    imports.put_mapping("crm", MAPPING)
    data = b"idecko,meno,email,age\nm1,Marian,m@example.com,42\nm2,Jana,j@example.com,31\n"
    record, _ = imports.drop("crm", "people.csv", data)

    assert record.status == "succeeded"
    report = imports.report("crm", "people.csv")
    assert report["status"] == "succeeded"
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (2, 2, 0)
    assert report["properties_applied"] == 6
    assert report["properties_ignored_as_stale"] == 0
    assert report["default_update_timestamp"] == 1_700_000_000.0
    assert report["update_timestamp_from"] == "the execution's start time"
    assert report["rejected_file"] is None
    assert report["errors"] == []
    assert properties_with_timestamps(customer(imports, "m1")) == {
        "first_name": {"value": "Marian", "last_update": 1_700_000_000},
        "email": {"value": "m@example.com", "last_update": 1_700_000_000},
        "age": {"value": 42, "last_update": 1_700_000_000},
    }
    assert not [k for k in imports.keys("reports/") if "/.parts/" in k]  # parts cleaned up


def test_the_product_documents_example(imports):
    """A snapshot taken at 8:00 is imported while tracking updates one of its
    customers at 9:00; the import's rows are written at 10:00."""
    eight = 1_700_000_000.0
    imports.put_mapping("snapshot", MAPPING)
    from propsync.customer_updates import update_customer  # noqa: PLC0415

    update_customer(
        imports.services.customers,
        PROJECT,
        {"registered": "m1"},
        {"email": "old@example.com", "first_name": "M"},
        update_timestamp=eight - HOUR,
        received_at=eight - HOUR,
    )
    data = b"idecko,meno,email,age\nm1,Marian,old@example.com,42\n"
    imports.clock.now = eight
    key = f"imports/{PROJECT}/snapshot/snap.csv"
    imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=data)
    # the execution starts at 8:00 ...
    execution = imports.services.imports.start("exec-8", PROJECT, key, eight)
    assert execution.started_at == eight
    # ... tracking changes the email at 9:00 ...
    update_customer(
        imports.services.customers,
        PROJECT,
        {"registered": "m1"},
        {"email": "new@example.com"},
        update_timestamp=None,
        received_at=eight + HOUR,
    )
    # ... and the rows are written at 10:00 (a redelivery of the same event
    # finds the 8:00 start time)
    imports.clock.now = eight + 2 * HOUR
    from propsync.imports import execution_id_for  # noqa: PLC0415

    imports.services.imports.start(
        execution_id_for(imports.bucket, key, "SEQ"), PROJECT, key, eight
    )
    record = imports.deliver(key, "SEQ")
    assert record.started_at == eight
    stored = properties_with_timestamps(customer(imports, "m1"))
    assert stored["email"] == {"value": "new@example.com", "last_update": eight + HOUR}
    assert stored["first_name"] == {"value": "Marian", "last_update": eight}
    assert stored["age"] == {"value": 42, "last_update": eight}
    report = imports.report("snapshot", "snap.csv")
    assert report["properties_ignored_as_stale"] == 1
    assert report["properties_applied"] == 2


def test_a_redelivered_event_changes_nothing_and_counts_once(imports):
    imports.put_mapping("crm", MAPPING)
    data = b"idecko,meno,email,age\nm1,Marian,m@example.com,42\n"
    first, sequencer = imports.drop("crm", "again.csv", data)
    imports.clock.now += 500  # later delivery of the same event
    second = imports.deliver(f"imports/{PROJECT}/crm/again.csv", sequencer)
    assert second.execution_id == first.execution_id
    assert second.started_at == first.started_at
    assert second.counters == first.counters
    assert imports.report("crm", "again.csv")["rows_read"] == 1
    last_update = properties_with_timestamps(customer(imports, "m1"))["age"]["last_update"]
    assert last_update == first.started_at


def test_a_new_upload_of_the_same_file_is_a_new_execution(imports):
    imports.put_mapping("crm", MAPPING)
    data = b"idecko,meno,email,age\nm1,Marian,m@example.com,42\n"
    first, _ = imports.drop("crm", "daily.csv", data)
    imports.clock.now += 86400
    second, _ = imports.drop("crm", "daily.csv", data.replace(b"42", b"43"))
    assert second.execution_id != first.execution_id
    assert plain_properties(customer(imports, "m1"))["age"] == 43


def test_empty_cells_clear_and_bad_rows_are_rejected_without_stopping(imports):
    imports.put_mapping("crm", MAPPING)
    imports.drop("crm", "one.csv", b"idecko,meno,email,age\nm1,Marian,m@example.com,42\n")
    imports.clock.now += 10
    data = (
        b"idecko,meno,email,age\n"
        b"m1,,m@example.com,43\n"  # empty first name: cleared
        b"m2,Jana,j@example.com,old\n"  # not a number: rejected
        b",Nobody,n@example.com,1\n"  # no id: rejected
        b"m3,Short\n"  # missing cells: rejected
        b"m4,Eva,e@example.com,25\n"
    )
    record, _ = imports.drop("crm", "two.csv", data)
    assert record.status == "partially_succeeded"
    report = imports.report("crm", "two.csv")
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (5, 2, 3)
    assert [e["line"] for e in report["errors"]] == [3, 4, 5]
    assert "'old' is not a number" in report["errors"][0]["reason"]
    assert plain_properties(customer(imports, "m1")) == {"email": "m@example.com", "age": 43}
    assert customer(imports, "m2") is None
    assert imports.rejected("crm", "two.csv").decode().splitlines() == [
        '"line","reason","idecko","meno","email","age"',
        '"3","\'old\' is not a number (column \'age\')","m2","Jana","j@example.com","old"',
        '"4","no id: the id column(s) \'idecko\' are empty","","Nobody","n@example.com","1"',
        '"5","the row has 2 cells; the header has 4","m3","Short"',
    ]


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        ({**MAPPING, "colour": "red"}, "colour: unknown key"),
        ({**MAPPING, "ids": []}, "ids: must have at least 1 entry, not 0"),
        ({**MAPPING, "timezone": "Nowhere/City"}, "timezone: unknown timezone 'Nowhere/City'"),
        (
            {
                **MAPPING,
                "properties": [{"from_column": "meno", "to_property": "x", "type": "blob"}],
            },
            "properties[0].type: 'blob' is not one of string,",
        ),
        (
            {**MAPPING, "ids": [{"from_column": "missing", "to_id": "registered"}]},
            "ids[0].from_column: 'missing' is neither a column of the file",
        ),
    ],
)
def test_an_invalid_mapping_fails_before_any_row_is_written(imports, mapping, problem):
    imports.put_mapping("bad", mapping)
    record, _ = imports.drop("bad", "x.csv", b"idecko,meno,email,age\nm1,Marian,m@example.com,42\n")
    assert record.status == "failed"
    report = imports.report("bad", "x.csv")
    assert report["status"] == "failed"
    assert any(problem in p for p in report["problems"]), report["problems"]
    assert report["rows_read"] == 0
    assert customer(imports, "m1") is None


def test_the_mappings_problems_and_its_headers_fail_the_import_in_one_report(imports):
    """Before, the header was read only once the mapping's own shape passed:
    whoever fixed the shape problems met the column ones on the next upload."""
    mapping = {
        **MAPPING,
        "properties": [
            {"from_column": "Meno", "to_property": "first_name", "type": "string"},
            {"from_column": "age", "to_property": "age", "type": "numbr"},
        ],
        "ids": [{"from_column": "idecko", "to_id": "registred"}],
        "timezone": "Europe/Bratislav",
        "update_timestamp": {"from_column": "updated"},
    }
    imports.put_mapping("both", mapping)
    record, _ = imports.drop("both", "x.csv", b"idecko,meno,age,meno\nm1,Marian,42,M\n")
    assert record.status == "failed"
    report = imports.report("both", "x.csv")
    header = "('idecko', 'meno', 'age', 'meno')"
    assert report["problems"] == [
        f"properties[0].from_column: 'Meno' is neither a column of the file {header} "
        "nor a constant column",
        "properties[1].type: 'numbr' is not one of string, long text, number, boolean, date, "
        "datetime, list, object",
        UNKNOWN_ID_TYPE,
        "timezone: unknown timezone 'Europe/Bratislav'; use an IANA name such as 'UTC' or "
        "'Europe/Bratislava'",
        f"update_timestamp.from_column: 'updated' is neither a column of the file {header} "
        "nor a constant column",
        "header: the file's header repeats the column(s) 'meno'; every column needs a name of "
        "its own",
    ]
    assert record.problems == report["problems"]
    assert report["rows_read"] == 0
    assert customer(imports, "m1") is None


@pytest.mark.parametrize(
    ("mapping_text", "data", "problems"),
    [
        (
            b'{"ids": [{"from_column": "x", "to_id": "registered"}], "timezone": NaN}',
            b"id,id\nm1,m2\n",
            [
                "mapping.json: NaN is not JSON (JSON has no NaN or Infinity): write a number or "
                "text",
                "header: the file's header repeats the column(s) 'id'; every column needs a name "
                "of its own",
            ],
        ),
        (
            b'{"ids": [{"from_column": "id", "to_id": "registered"}], "delimiter": ":"}',
            b"\n",
            ["delimiter: ':' is not one of ',', ';', '\\t', '|'", "the file has no header row"],
        ),
    ],
)
def test_a_mapping_that_cannot_be_read_and_a_header_that_cannot_be_read_are_reported_together(
    imports, mapping_text, data, problems
):
    imports.s3.put_object(
        Bucket=imports.bucket, Key=f"imports/{PROJECT}/unread/mapping.json", Body=mapping_text
    )
    record, _ = imports.drop("unread", "x.csv", data)
    assert record.status == "failed"
    assert imports.report("unread", "x.csv")["problems"] == problems


UNKNOWN_ID_TYPE = (
    "ids[0].to_id: id type 'registred' is not known to this project; known id types: "
    "cookie (soft), registered (hard); an administrator adds id types with "
    "`propsync set-id-type`"
)


def project_items(dynamodb_client, table_name):
    """Every customer and identity item of the project (their keys start with it)."""
    return dynamodb_client.scan(
        TableName=table_name,
        FilterExpression="begins_with(pk, :p)",
        ExpressionAttributeValues={":p": {"S": f"{PROJECT}#"}},
        ConsistentRead=True,
    )["Items"]


def test_a_mapping_to_an_id_type_the_project_does_not_know_fails_before_any_row_is_written(
    imports, dynamodb_client, table_name
):
    """A typo in to_id would import every row as a customer of its own."""
    mapping = {
        **MAPPING,
        "ids": [{"from_column": "idecko", "to_id": "registred"}],
    }
    imports.put_mapping("typo", mapping)
    record, _ = imports.drop("typo", "x.csv", b"idecko,meno,email,age\nm1,Marian,m@x.com,42\n")
    assert record.status == "failed"
    report = imports.report("typo", "x.csv")
    assert (report["status"], report["problems"]) == ("failed", [UNKNOWN_ID_TYPE])
    assert report["rows_read"] == 0
    assert project_items(dynamodb_client, table_name) == []


def test_an_id_type_added_to_the_project_is_known_to_the_next_import(imports):
    mapping = {**MAPPING, "ids": [{"from_column": "idecko", "to_id": "crm.id"}]}
    imports.put_mapping("crm", mapping)
    record, _ = imports.drop("crm", "a.csv", b"idecko,meno,email,age\nc1,Marian,m@x.com,42\n")
    assert record.status == "failed"
    assert imports.services.access.add_id_type(PROJECT, "crm.id", hard=True)
    record, _ = imports.drop("crm", "b.csv", b"idecko,meno,email,age\nc1,Marian,m@x.com,42\n")
    assert record.status == "succeeded"
    store = imports.services.customers
    assert find_customer_id(store, PROJECT, "crm.id", "c1") is not None


def test_every_mapping_problem_is_listed(imports):
    imports.put_mapping(
        "bad",
        {
            "properties": [{"from_column": "nope", "to_property": "x", "type": "string"}],
            "ids": [{"from_column": "missing", "to_id": "registered"}],
            "update_timestamp": {"from_column": "also_missing"},
        },
    )
    imports.drop("bad", "x.csv", b"a,b\n1,2\n")
    assert len(imports.report("bad", "x.csv")["problems"]) == 3


def test_a_missing_mapping_or_project_fails_with_a_report(imports):
    record, _ = imports.drop("nomapping", "x.csv", b"a\n1\n")
    assert record.status == "failed"
    assert "upload imports/" in imports.report("nomapping", "x.csv")["problems"][0]


def test_the_timestamp_column_may_be_a_constant_or_a_data_column(imports):
    imports.put_mapping(
        "ts",
        {
            **MAPPING,
            "update_timestamp": {"from_column": "snapshot"},
            "constant_columns": [{"name": "snapshot", "value": "2023-11-14T20:00:00+01:00"}],
        },
    )
    imports.drop("ts", "c.csv", b"idecko,meno,email,age\nm1,Marian,m@example.com,42\n")
    assert properties_with_timestamps(customer(imports, "m1"))["age"]["last_update"] == 1699988400
    imports.put_mapping(
        "ts2",
        {**MAPPING, "update_timestamp": {"from_column": "when"}, "timezone": "Europe/Bratislava"},
    )
    imports.drop(
        "ts2", "d.csv", b"idecko,meno,email,age,when\nm2,Jana,j@x.com,3,2023-11-14 21:00\n"
    )
    assert properties_with_timestamps(customer(imports, "m2"))["age"]["last_update"] == 1699992000
    assert imports.report("ts2", "d.csv")["update_timestamp_from"] == "column 'when'"


def test_gzip_semicolons_bom_and_quoted_newlines(imports):
    imports.put_mapping("gz", MAPPING)
    data = '\ufeffidecko;meno;email;age\nm1;"Mar;ian\nsecond line";m@x.com;1\n'.encode()
    record, _ = imports.drop("gz", "people.csv.gz", data)
    assert record.status == "succeeded"
    assert plain_properties(customer(imports, "m1"))["first_name"] == "Mar;ian\nsecond line"


def test_at_equal_timestamps_the_later_row_wins(imports):
    imports.put_mapping("dups", {**MAPPING, "update_timestamp": {"from_column": "ts"}})
    rows = b"".join(b"m1,v%03d,m@x.com,%d,1600000000\n" % (i, i) for i in range(300))
    # every row has the same timestamp; only the line can decide, not the value
    imports.drop("dups", "d.csv", b"idecko,meno,email,age,ts\n" + rows)
    assert plain_properties(customer(imports, "m1"))["age"] == 299


def test_a_large_file_is_cut_into_chunks_run_by_separate_invocations(imports, monkeypatch):
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "120")
    # a window wider than the file: every chunk is on the queue at once, so
    # they can run in any order
    monkeypatch.setenv("PROPSYNC_IMPORT_CONCURRENCY", "1000")
    imports.put_mapping("big", {**MAPPING, "update_timestamp": {"from_column": "ts"}})
    lines = [b"idecko,meno,email,age,ts"]
    for i in range(60):
        note = b'"multi\nline"' if i % 7 == 0 else b"plain"
        lines.append(b"c%02d,%s,x%d@x.com,%d,1600000000" % (i % 20, note, i, i))
    lines.append(b"bad,row")
    data = b"\n".join(lines) + b"\n"
    record, _ = imports.drop("big", "big.csv", data, run_chunks=False)
    assert record.status == "running"
    messages = imports.messages()
    assert len(messages) == record.chunks_total > 5
    assert messages[0]["first_line"] == 2
    assert [m["start"] for m in messages[1:]] == [m["end"] for m in messages[:-1]]
    assert messages[-1]["end"] is None
    # chunks run out of order, one of them twice (a redelivered message)
    imports.run_messages(list(reversed(messages)) + messages[:1])

    report = imports.report("big", "big.csv")
    assert report["chunks"] == len(messages)
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (61, 60, 1)
    assert report["rows_read"] == report["rows_written"] + report["rows_rejected"]
    assert report["errors"][0]["line"] == 71  # after the header, 60 rows and 9 quoted newlines
    # the later row of each customer wins, although its chunk ran first or last
    for n in range(20):
        assert plain_properties(customer(imports, f"c{n:02d}"))["age"] == 40 + n
    first_name = plain_properties(customer(imports, "c00"))["first_name"]
    assert first_name == "plain"  # row 40 (i=40, not a multiple of 7)


def test_a_chunk_that_crashes_half_way_and_runs_again_counts_once(imports, monkeypatch):
    """The store fails on the 3rd write of the first attempt (after earlier
    writes landed); the queue delivers the chunk again and it completes."""
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "60")
    monkeypatch.setattr("propsync.imports.ROWS_PER_BATCH", 2)
    imports.put_mapping("crash", MAPPING)
    rows = b"".join(b"k%d,Name,k%d@x.com,%d\n" % (i, i, i) for i in range(12))
    record, _ = imports.drop("crash", "c.csv", b"idecko,meno,email,age\n" + rows, run_chunks=False)
    messages = imports.messages()
    store = imports.services.customers
    real_write = store.write_properties
    calls = []

    def flaky_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise ConnectionError("connection reset by peer")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(store, "write_properties", flaky_write)
    with pytest.raises(ConnectionError):
        imports.run_messages(messages)
    assert imports.services.imports.get(record.execution_id).status == "running"

    imports.run_messages(messages)  # the queue delivers them again
    imports.run_queue()  # and the next chunks of their lanes

    report = imports.report("crash", "c.csv")
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (12, 12, 0)
    assert report["started_at"] == record.started_at
    assert [plain_properties(customer(imports, f"k{i}"))["age"] for i in range(12)] == list(
        range(12)
    )


def test_a_file_under_one_projects_prefix_never_writes_another_project(imports):
    other = "44444444-4444-4444-4444-444444444444"
    imports.services.access.create_project(other, "other")
    from propsync.customer_updates import update_customer  # noqa: PLC0415

    theirs = update_customer(
        imports.services.customers,
        other,
        {"registered": "same-id"},
        {"tier": "theirs"},
        update_timestamp=1.0,
        received_at=1.0,
    )
    imports.put_mapping("crm", MAPPING)
    imports.drop("crm", "mine.csv", b"idecko,meno,email,age\nsame-id,Mine,m@x.com,1\n")

    mine = customer(imports, "same-id")
    assert mine.customer_id != theirs.customer_id
    stored = imports.services.customers.read_customer(other, theirs.customer_id)
    assert plain_properties(stored) == {"tier": "theirs"}
    assert imports.services.customers.read_customer(other, mine.customer_id) is None


def test_an_execution_started_twice_sends_what_is_not_known_to_be_queued_and_counts_once(
    imports, monkeypatch
):
    """ImportFunction killed after it sent the first chunks, before it
    recorded them sent; then the S3 event delivered again (twice): the chunks
    not recorded are sent again, those recorded are not; each chunk is
    counted once however often it runs."""
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "50")
    imports.put_mapping("twice", MAPPING)
    rows = b"".join(b"t%d,N,t%d@x.com,%d\n" % (i, i, i) for i in range(20))
    record_sent = imports.services.imports.mark_sent

    def killed(*_args, **_kwargs):
        raise ConnectionError("the function was stopped")

    monkeypatch.setattr(imports.services.imports, "mark_sent", killed)
    with pytest.raises(ConnectionError):
        imports.drop("twice", "t.csv", b"idecko,meno,email,age\n" + rows, "00A1", run_chunks=False)
    monkeypatch.setattr(imports.services.imports, "mark_sent", record_sent)
    first = imports.messages()
    assert [m["chunk"] for m in first] == [0, 1]
    imports.run_messages(first[:1])  # chunk 0 ran before the event came again: it sent chunk 2
    key = f"imports/{PROJECT}/twice/t.csv"

    again = imports.deliver(key, "00A1", run_chunks=False)
    second = imports.messages()
    assert sorted(m["chunk"] for m in second) == [1, 2]  # 1 sent again, 2 by chunk 0
    assert imports.deliver(key, "00A1", run_chunks=False).execution_id == again.execution_id
    assert imports.messages() == []  # everything sent is recorded now: nothing twice

    imports.run_messages(first + second)  # chunk 0 twice, chunk 1 twice
    imports.run_queue()

    report = imports.report("twice", "t.csv")
    assert again.chunks_total > 4
    assert report["chunks"] == again.chunks_total
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (20, 20, 0)


# (the cell as written in the file, the value csv reads from it): each one
# makes quote parity disagree with the parser, or hides a newline in a value
AWKWARD_CELLS = [
    (b'O"Brien', 'O"Brien'),  # a stray quote in an unquoted field
    (b'"multi\nline"', "multi\nline"),
    (b'"say ""hi""\r\nbye"', 'say "hi"\r\nbye'),
    (b'"ab"c"d', 'abc"d'),  # text after a closing quote, with a quote in it
    (b'"lone\rcr"', "lone\rcr"),
    (b'"a,b"', "a,b"),
    (b"plain", "plain"),
]


AWKWARD_ROWS = 35
AWKWARD_CHUNK_BYTES = (23, 64)


@pytest.mark.parametrize("chunk_bytes", AWKWARD_CHUNK_BYTES)
def test_quotes_anywhere_never_move_a_row_across_a_chunk_boundary(
    imports, monkeypatch, chunk_bytes
):
    """Chunks of a few rows each, so a boundary is looked for after nearly
    every row: each row is read once, whole, and its customer written."""
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", str(chunk_bytes))
    imports.put_mapping("quotes", MAPPING)
    rows, expected = [], {}
    for i in range(AWKWARD_ROWS):
        written, value = AWKWARD_CELLS[i % len(AWKWARD_CELLS)]
        ending = b"\r\n" if i % 3 == 0 else b"\n"
        rows.append(b"q%02d,%s,q%d@x.com,%d%s" % (i, written, i, i, ending))
        expected[f"q{i:02d}"] = value
    record, _ = imports.drop(
        "quotes", "q.csv", b"idecko,meno,email,age\n" + b"".join(rows), run_chunks=False
    )
    delivered = imports.run_queue()
    assert len(delivered) == record.chunks_total > 5

    report = imports.report("quotes", "q.csv")
    counts = (report["rows_read"], report["rows_written"], report["rows_rejected"])
    assert counts == (AWKWARD_ROWS, AWKWARD_ROWS, 0)
    for registered, value in expected.items():
        assert plain_properties(customer(imports, registered))["first_name"] == value


GZIPPED_LINE_MB = 50
IMPORT_PEAK_MIB = 16  # bound on the traced peak of the whole execution


def test_a_gzipped_file_with_a_50_mb_line_rejects_it_in_constant_memory(imports):
    """50 MB of one line, 50 KB compressed: read, decompressed and scanned a
    block at a time; the line becomes one rejected row showing its first
    bytes, and the rows around it are written."""
    imports.put_mapping("long", MAPPING)
    compressor = zlib.compressobj(wbits=31)  # gzip, built without 50 MB in memory
    parts = [compressor.compress(b"idecko,meno,email,age\nm1,Marian,m@x.com,1\nm2,")]
    parts += [compressor.compress(b"x" * (1 << 20)) for _ in range(GZIPPED_LINE_MB)]
    parts += [compressor.compress(b",j@x.com,2\nm3,Eva,e@x.com,3\n"), compressor.flush()]
    key = f"imports/{PROJECT}/long/long.csv.gz"
    imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=b"".join(parts))

    tracemalloc.start()
    try:
        record = imports.deliver(key, "LONG")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert record.status == "partially_succeeded"
    report = imports.report("long", "long.csv.gz")
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (3, 2, 1)
    row_bytes = len(b"m2,") + (GZIPPED_LINE_MB << 20) + len(b",j@x.com,2\n")
    reason = f"the row has {row_bytes} bytes; at most {MAX_ROW_BYTES} are allowed"
    assert report["errors"] == [{"line": 3, "reason": reason}]
    rejected = imports.rejected("long", "long.csv.gz").decode().splitlines()
    assert rejected[1] == f'"3","{reason}","m2,' + "x" * (ECHO_BYTES - 3) + '"'
    assert plain_properties(customer(imports, "m3"))["first_name"] == "Eva"
    assert peak < IMPORT_PEAK_MIB << 20, peak  # the line alone is 50 MB


OVERLAPPING_MAPPING = {
    "properties": [{"from_column": "p", "to_property": "p", "type": "string"}],
    "ids": [
        {"from_column": "cookie", "to_id": "cookie"},
        {"from_column": "reg", "to_id": "registered"},
    ],
}
OVERLAPPING_PAIRS = 40


def test_rows_whose_ids_overlap_make_one_customer_as_if_written_one_by_one(imports):
    """An anonymous row and a later row that adds a registered id to the same
    cookie (a login) are one person: the rows of one batch that can meet on one
    customer are written one after another in file order, never racing to claim
    the ids (which split the person into two customers, for good)."""
    imports.put_mapping("login", OVERLAPPING_MAPPING)
    lines = ["cookie,reg,p"]
    for i in range(OVERLAPPING_PAIRS):
        lines += [f"dk{i},,first{i}", f"dk{i},dg{i},second{i}"]
        lines += [f",dg{i},third{i}"]  # the registered id alone: the same person
    record, _ = imports.drop("login", "people.csv", ("\n".join(lines) + "\n").encode())

    report = imports.report("login", "people.csv")
    assert report["errors"] == []
    assert record.status == "succeeded"
    assert report["rows_written"] == 3 * OVERLAPPING_PAIRS
    store = imports.services.customers
    for i in range(OVERLAPPING_PAIRS):
        by_cookie = find_customer_id(store, PROJECT, "cookie", f"dk{i}")
        assert by_cookie == find_customer_id(store, PROJECT, "registered", f"dg{i}")
        # equal timestamps: the later row wins
        assert plain_properties(store.read_customer(PROJECT, by_cookie)) == {"p": f"third{i}"}
