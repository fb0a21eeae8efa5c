"""The importer under arbitrary files and mappings: it never crashes on a
row, every row read is written or rejected, a refused mapping writes nothing,
and no file leaves its execution without a report."""

import csv
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MAPPING = {
    "properties": [
        {"from_column": "n", "to_property": "n", "type": "number"},
        {"from_column": "b", "to_property": "b", "type": "boolean"},
        {"from_column": "d", "to_property": "d", "type": "datetime"},
        {"from_column": "l", "to_property": "l", "type": "list"},
        {"from_column": "s", "to_property": "s", "type": "string"},
    ],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
HOSTILE = [
    "1e9999999999999999999",  # no Decimal holds it
    "-1e-9999999999999999999",
    "[1e9999999999999999999]",
    '{"a": 1E+9999999999999999999}',
    "9" * 400,
    "9" * 5000,  # more digits than Python converts
    "-" + "9" * 400,
    "[" * 5000 + "]" * 5000,  # deeper than json recurses
    "x" * 1025,  # an id over tracking's limit
    "x" * 2100,  # an id over DynamoDB's key limit
    "a\x00b",
    "a\x1fb",
    "\u2028",
]
cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", "1", "yes", "2018-8-5 12:20:25", "[1,2]", "1570001049000", '"', "\r", "\n", *HOSTILE]
    ),
)
sequences = iter(range(10**9))


def column(*valid: str) -> st.SearchStrategy[str]:
    """A cell of one column: often a value its type accepts (so the row gets
    as far as the next column), else anything, hostile values included."""
    return st.one_of(st.sampled_from(valid), cells)


# a row as wide as MAPPING's header: id, n, b, d, l, s
full_rows = st.tuples(
    column("m1", "m2", " m3 ", "é" * 512),
    column("1", "-2.5", "1e5", "9" * 400, ""),
    column("yes", "0", ""),
    column("2018-8-5 12:20:25", "1570001049", ""),
    column("[1,2]", "[]", ""),
    column("text", ""),
).map(list)
# a row of valid cells but one, which is hostile
hostile_rows = st.tuples(full_rows, st.integers(0, 5), st.sampled_from(HOSTILE)).map(
    lambda drawn: [*drawn[0][: drawn[1]], drawn[2], *drawn[0][drawn[1] + 1 :]]
)


def counts_add_up(report):
    assert report["rows_read"] == report["rows_written"] + report["rows_rejected"]


def finished_with_a_report(imports, record, name):
    """The execution is over (never left running) and its report says so."""
    assert record.status in {"succeeded", "partially_succeeded", "failed"}
    assert imports.services.imports.get(record.execution_id).status == record.status
    report = imports.report(name, record.file_key.rsplit("/", 1)[1])
    assert report["status"] == record.status
    counts_add_up(report)
    return report


@FUZZ
@given(
    rows=st.lists(
        # mostly rows as wide as the header, whose cells are parsed
        st.one_of(full_rows, hostile_rows, st.lists(cells, max_size=7)),
        max_size=12,
    )
)
def test_arbitrary_rows_of_a_valid_mapping(imports, rows):
    imports.put_mapping("fuzz", MAPPING)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "n", "b", "d", "l", "s"])
    writer.writerows(rows)
    record, _ = imports.drop("fuzz", f"f{next(sequences)}.csv", buffer.getvalue().encode())
    report = finished_with_a_report(imports, record, "fuzz")
    assert report["rows_read"] == sum(1 for row in rows if row not in ([], [""]))


@FUZZ
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(imports, data):
    imports.put_mapping("bytes", MAPPING)
    record, _ = imports.drop("bytes", f"b{next(sequences)}.csv", b"id,n,b,d,l,s\n" + data)
    finished_with_a_report(imports, record, "bytes")


@FUZZ
@given(
    header=st.lists(st.sampled_from(["id", "n", "s", "", " ", '"', "x" * 300]), max_size=8),
    rows=st.lists(st.lists(cells, max_size=8), max_size=5),
    gzipped=st.booleans(),
)
def test_arbitrary_headers(imports, header, rows, gzipped):
    imports.put_mapping("headers", MAPPING)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    suffix = ".csv.gz" if gzipped else ".csv"
    record, _ = imports.drop("headers", f"h{next(sequences)}{suffix}", buffer.getvalue().encode())
    finished_with_a_report(imports, record, "headers")


@FUZZ
@given(
    text=st.one_of(
        st.binary(max_size=200),
        st.integers(1, 50_000).map(lambda depth: ("[" * depth + "]" * depth).encode()),
        st.integers(1, 50_000).map(lambda depth: ('{"a":' * depth + "1" + "}" * depth).encode()),
    )
)
def test_arbitrary_mapping_files(imports, text):
    imports.s3.put_object(
        Bucket=imports.bucket,
        Key="imports/00000000-0000-0000-0000-000000000000/raw/mapping.json",
        Body=text,
    )
    record, _ = imports.drop("raw", f"r{next(sequences)}.csv", b"id,n\nm1,1\n")
    report = finished_with_a_report(imports, record, "raw")
    assert record.status == "failed"
    assert report["problems"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@FUZZ
@given(
    mapping=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "properties": st.one_of(
                    json_values,
                    st.lists(
                        st.dictionaries(
                            st.sampled_from(["from_column", "to_property", "type", "x"]),
                            json_values,
                        ),
                        max_size=3,
                    ),
                ),
                "ids": st.one_of(
                    json_values,
                    st.lists(
                        st.dictionaries(st.sampled_from(["from_column", "to_id"]), json_values),
                        max_size=2,
                    ),
                ),
                "constant_columns": json_values,
                "timezone": st.one_of(
                    json_values, st.sampled_from(["UTC", "Europe/Bratislava", "Nowhere"])
                ),
                "update_timestamp": json_values,
                "delimiter": json_values,
            },
        ),
    )
)
def test_arbitrary_mappings_fail_cleanly_or_work(imports, mapping):
    imports.s3.put_object(
        Bucket=imports.bucket,
        Key="imports/00000000-0000-0000-0000-000000000000/m/mapping.json",
        Body=json.dumps(mapping),
    )
    record, _ = imports.drop("m", f"m{next(sequences)}.csv", b"id,n\nm1,1\n")
    report = finished_with_a_report(imports, record, "m")
    if record.status == "failed" and report["problems"]:
        assert report["rows_read"] == 0  # refused before any row
