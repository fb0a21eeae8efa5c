"""Reading import files: layout, chunking on row boundaries, records, rows."""

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync.import_mapping import InvalidMappingError, parse_mapping
from propsync.import_rows import (
    RejectedRow,
    RowUpdate,
    iter_records,
    map_record,
    plan_chunks,
    read_layout,
    rejected_csv,
)

NOW = 1_700_000_000.0
START = 1_600_000_000.0


def records_of(data: bytes, chunk_bytes: int) -> list[tuple[int, list[str]]]:
    layout = read_layout(data[: 1 << 20], None)
    found = []
    for chunk in plan_chunks(io.BytesIO(data), layout, chunk_bytes):
        part = data[chunk.start : chunk.end]
        found += [
            (line, cells)
            for line, cells, _problem in iter_records(
                io.BytesIO(part), layout.delimiter, chunk.first_line
            )
        ]
    return found


@pytest.mark.parametrize(
    ("head", "delimiter", "header"),
    [
        (b"id,name\n1,a\n", ",", ["id", "name"]),
        (b"\xef\xbb\xbfid;name\r\n1;a\r\n", ";", ["id", "name"]),
        (b"id\tname\n", "\t", ["id", "name"]),
        (b"id|name|x,y\n", "|", ["id", "name", "x,y"]),
        (b'"a,b";c;d\n', ";", ["a,b", "c", "d"]),
        (b"single\n", ",", ["single"]),
        (b"id,name", ",", ["id", "name"]),  # only a header, no newline
    ],
)
def test_layout_detects_delimiter_and_header(head, delimiter, header):
    layout = read_layout(head, None)
    assert (layout.delimiter, layout.header) == (delimiter, header)


def test_layout_knows_where_data_starts_even_after_a_quoted_newline():
    layout = read_layout(b'"multi\nline",b\n1,2\n', None)
    assert layout.header == ["multi\nline", "b"]
    assert (layout.data_start, layout.data_first_line) == (15, 3)


def test_the_mappings_delimiter_wins_over_detection():
    assert read_layout(b"a;b,c\n", ",").header == ["a;b", "c"]


@pytest.mark.parametrize("head", [b"", b"\n", b"\xff\xfe,x\n"])
def test_a_file_without_a_usable_header_is_refused(head):
    with pytest.raises(InvalidMappingError):
        read_layout(head, None)


def test_chunks_cut_only_between_rows_and_keep_line_numbers():
    data = b'id,note\n1,"a\nb"\n2,plain\n3,"x,""y""\nz"\n4,end\n'
    whole = records_of(data, 10**9)
    assert whole == [
        (2, ["1", "a\nb"]),
        (4, ["2", "plain"]),
        (5, ["3", 'x,"y"\nz']),
        (7, ["4", "end"]),
    ]
    for size in range(1, 40):
        assert records_of(data, size) == whole, size


cells = st.text(alphabet=st.sampled_from('ab,;"\n\r é'), max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.lists(cells, min_size=2, max_size=2), max_size=15),
    chunk_bytes=st.integers(1, 64),
)
def test_any_chunking_reads_the_same_records_as_one_pass(rows, chunk_bytes):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "value"])
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    assert records_of(data, chunk_bytes) == records_of(data, 10**9)


MAPPING = parse_mapping(
    {
        "properties": [
            {"from_column": "name", "to_property": "first_name", "type": "string"},
            {"from_column": "age", "to_property": "age", "type": "number"},
        ],
        "ids": [{"from_column": "id", "to_id": "registered"}],
    }
)
HEADER = ["id", "name", "age"]


def mapped(cells, mapping=MAPPING, header=HEADER, line=2):
    return map_record(mapping, header, line, cells, default_timestamp=START, now=NOW)


def test_a_row_becomes_an_update_stamped_with_the_default_time_and_its_line():
    update = mapped(["m", "Marian", "42"], line=7)
    assert isinstance(update, RowUpdate)
    assert update.ids == {"registered": "m"}
    assert update.versions["first_name"].encoded_value == '"Marian"'
    assert update.versions["age"].encoded_value == "42"
    assert {v.timestamp for v in update.versions.values()} == {START}
    assert {v.sequence for v in update.versions.values()} == {7}


def test_an_empty_cell_clears_the_property():
    update = mapped(["m", "", "42"])
    assert update.versions["first_name"].is_tombstone


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (["m", "Marian"], "the row has 2 cells; the header has 3"),
        (["m", "Marian", "old"], "'old' is not a number (column 'age')"),
        (["", "Marian", "1"], "no id: the id column(s) 'id' are empty"),
        (["m", "Mari\udcffan", "1"], "not valid UTF-8"),
        (["m", "x" * 17000, "1"], "at most 16384 bytes"),
    ],
)
def test_bad_rows_are_rejected_with_a_reason(cells, reason):
    rejected = mapped(cells)
    assert isinstance(rejected, RejectedRow)
    assert reason in rejected.reason


def test_the_update_timestamp_column_and_its_refusals():
    mapping = parse_mapping(
        {
            "properties": [{"from_column": "name", "to_property": "n", "type": "string"}],
            "ids": [{"from_column": "id", "to_id": "registered"}],
            "update_timestamp": {"from_column": "ts"},
            "timezone": "Europe/Bratislava",
        }
    )
    header = ["id", "name", "ts"]
    update = mapped(["m", "a", "2018-08-05 12:00:00"], mapping, header)
    assert update.versions["n"].timestamp == 1533463200.0  # 10:00 UTC
    assert mapped(["m", "a", ""], mapping, header).reason == "update_timestamp is empty"
    assert "milliseconds" in mapped(["m", "a", "1533463200000"], mapping, header).reason
    assert "in the future" in mapped(["m", "a", "2099-01-01"], mapping, header).reason


def test_a_constant_column_can_be_the_timestamp():
    mapping = parse_mapping(
        {
            "properties": [{"from_column": "name", "to_property": "n", "type": "string"}],
            "ids": [{"from_column": "id", "to_id": "registered"}],
            "update_timestamp": {"from_column": "snapshot"},
            "constant_columns": [{"name": "snapshot", "value": "2019-10-02T08:00:00Z"}],
        }
    )
    update = mapped(["m", "a"], mapping, ["id", "name"])
    assert update.versions["n"].timestamp == 1570003200.0


def test_rejected_rows_are_written_back_as_they_were_with_line_and_reason():
    rows = [RejectedRow(3, ["m", "a,b", "x\udcff"], "bad")]
    data = rejected_csv(rows, HEADER, ",")
    assert data == b'line,reason,id,name,age\n3,bad,m,"a,b",x\xff\n'


def test_a_row_csv_cannot_parse_comes_back_raw_with_the_problem():
    data = b'1,"ok"\n2,bad\rfield\n3,fine\n'
    records = list(iter_records(io.BytesIO(data), ",", 5))
    assert records[0] == (5, ["1", "ok"], None)
    assert records[1][0] == 6
    assert records[1][1] == ["2,bad\rfield"]
    assert "malformed CSV row" in records[1][2]
    assert records[2] == (7, ["3", "fine"], None)
