"""The importer under arbitrary files and mappings: it never crashes on a
row, every row read is written or rejected, and a refused mapping writes
nothing."""

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
cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", "1", "yes", "2018-8-5 12:20:25", "[1,2]", "1570001049000", '"', "\r", "\n"]
    ),
)
sequences = iter(range(10**9))


def counts_add_up(report):
    assert report["rows_read"] == report["rows_written"] + report["rows_rejected"]


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=7), max_size=12))
def test_arbitrary_rows_of_a_valid_mapping(imports, rows):
    imports.put_mapping("fuzz", MAPPING)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "n", "b", "d", "l", "s"])
    writer.writerows(rows)
    record, _ = imports.drop("fuzz", f"f{next(sequences)}.csv", buffer.getvalue().encode())
    assert record.status in {"succeeded", "partially_succeeded", "failed"}
    report = imports.report("fuzz", record.file_key.rsplit("/", 1)[1])
    counts_add_up(report)
    assert report["rows_read"] == sum(1 for row in rows if row not in ([], [""]))


@FUZZ
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(imports, data):
    imports.put_mapping("bytes", MAPPING)
    record, _ = imports.drop("bytes", f"b{next(sequences)}.csv", b"id,n,b,d,l,s\n" + data)
    report = imports.report("bytes", record.file_key.rsplit("/", 1)[1])
    assert record.status in {"succeeded", "partially_succeeded", "failed"}
    counts_add_up(report)


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
    report = imports.report("m", record.file_key.rsplit("/", 1)[1])
    if record.status == "failed" and report["problems"]:
        assert report["rows_read"] == 0  # refused before any row
    counts_add_up(report)
