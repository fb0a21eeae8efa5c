"""Reading import files: layout, chunking on row boundaries, records, rows."""

import csv
import gzip
import io
import tracemalloc
import zlib
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync import import_rows
from propsync.errors import InvalidMappingError
from propsync.import_mapping import DELIMITERS, parse_mapping
from propsync.import_rows import (
    BOM,
    RecordReader,
    RejectedRow,
    ResumePoint,
    RowUpdate,
    iter_records,
    map_record,
    plan_chunks,
    read_layout,
    rejected_csv,
)
from propsync.imports import BATCH_BYTES, ROWS_PER_BATCH, _batches

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


@pytest.mark.parametrize(
    ("head", "delimiter", "header", "data_start", "data_first_line"),
    [
        (b'id,na"me\n1,2\n', ",", ["id", 'na"me'], 9, 2),  # a quote inside a field is data
        (b'"i"d;x"y;z\n1;2;3\n', ";", ["id", 'x"y', "z"], 11, 2),  # text after a closing quote
        (b'a,"b\nc",d\n1,2,3\n', ",", ["a", "b\nc", "d"], 10, 3),
    ],
)
def test_the_header_ends_where_csv_ends_it(head, delimiter, header, data_start, data_first_line):
    layout = read_layout(head, None)
    assert (layout.delimiter, layout.header) == (delimiter, header)
    assert (layout.data_start, layout.data_first_line) == (data_start, data_first_line)


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


def one_pass(data: bytes, delimiter: str) -> tuple[list[str], list[tuple[int, list[str], str]]]:
    """What csv.reader itself makes of a whole file, as the importer runs it
    (strict=False, the text split after each \\n only): the header, and (line,
    cells, kind) of each record, kind "" for a row, "malformed" for a record
    csv refuses (its raw text in one cell) and "too long" for one over the
    row limit (its first bytes in one cell). The reference every chunking
    and every block size must reproduce."""
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    pieces = [piece + "\n" for piece in text.split("\n")]
    pieces[-1] = pieces[-1][:-1]
    consumed: list[str] = []

    def lines():
        for piece in filter(None, pieces):
            consumed.append(piece)
            yield piece

    reader = csv.reader(lines(), delimiter=delimiter, strict=False)
    header, records, line = None, [], 1
    while True:
        consumed.clear()
        try:
            cells, kind = next(reader), ""
        except StopIteration:
            return header or [], records
        except csv.Error:
            cells, kind = ["".join(consumed).rstrip("\r\n")], "malformed"
        raw = "".join(consumed).encode("utf-8", errors="surrogateescape")
        if header is None:
            header = [cell.strip() for cell in cells]
        elif len(raw) > import_rows.MAX_ROW_BYTES:
            echo = raw[: import_rows.ECHO_BYTES].decode("utf-8", errors="surrogateescape")
            records.append((line, [echo], "too long"))
        elif kind or (cells and cells != [""]):
            records.append((line, cells, kind))
        line += raw.count(b"\n")


def kind_of(problem: str | None) -> str:
    if problem is None:
        return ""
    return "too long" if problem.startswith("the row has") else "malformed"


# Raw pieces of CSV, not csv.writer's output: quoted newlines, escaped quotes,
# stray quotes in unquoted fields, text after a closing quote, \r\n and lone
# \r (inside and outside quotes), every candidate delimiter, bytes that are
# not UTF-8 (cut sequences too), so that any of them can sit on either side
# of any boundary.
PIECES = [b"a", "é".encode(), b" ", b'"', b'""', b'"q\nq"', b"\n", b"\r\n", b"\r"]
PIECES += [b",", b";", b"\t", b"|", b"\xff", b"\xc3", b"\xe2\x82", b"\x00"]


@st.composite
def csv_files(draw):
    delimiter = draw(st.sampled_from(DELIMITERS))
    bom = draw(st.sampled_from([b"", BOM]))
    body = b"".join(draw(st.lists(st.sampled_from(PIECES), max_size=40)))
    return bom + f"id{delimiter}value\n".encode() + body, delimiter


# examples per test (docs/RELIABILITY.md states them)
BOUNDARIES = settings(max_examples=400, deadline=None)
ROW_LIMITS = settings(max_examples=300, deadline=None)
FORMULAS = settings(max_examples=300, deadline=None)


@BOUNDARIES
@given(file=csv_files(), block=st.one_of(st.integers(1, 24), st.just(import_rows._BLOCK)))
def test_every_chunking_of_any_file_reads_what_csv_reads_in_one_pass(file, block):
    """Every chunk size (so a boundary is tried after every record) and small
    read blocks (so every record also straddles the planner's and the
    reader's reads) give exactly the records of csv's own single pass."""
    data, delimiter = file
    header, expected = one_pass(data, delimiter)
    with mock.patch.object(import_rows, "_BLOCK", block):
        layout = read_layout(data, None)
        assert (layout.delimiter, layout.header) == (delimiter, header)
        for chunk_bytes in range(1, len(data) - layout.data_start + 2):
            found = [
                (line, cells, kind_of(problem))
                for line, cells, problem in records_with_problems(data, chunk_bytes)
            ]
            assert found == expected, chunk_bytes


def records_with_problems(data: bytes, chunk_bytes: int) -> list[tuple[int, list[str], str | None]]:
    layout = read_layout(data[: 1 << 20], None)
    found = []
    for chunk in plan_chunks(io.BytesIO(data), layout, chunk_bytes):
        part = data[chunk.start : chunk.end]
        found += iter_records(io.BytesIO(part), layout.delimiter, chunk.first_line)
    return found


@BOUNDARIES
@given(
    file=csv_files(),
    block=st.one_of(st.integers(1, 24), st.just(import_rows._BLOCK)),
    stops=st.lists(st.integers(1, 5), min_size=1, max_size=20),
)
def test_reading_again_from_any_resume_point_gives_exactly_the_rows_after_it(file, block, stops):
    """A checkpoint after any row (every few rows, as ``stops`` says: inside
    a run of records or at its end, whatever the block size): read again
    from its resume point, the file gives exactly the rows after that row,
    as csv's own single pass has them, so a chunk resumed any number of
    times imports each row once."""
    data, delimiter = file
    _, expected = one_pass(data, delimiter)
    with mock.patch.object(import_rows, "_BLOCK", block):
        layout = read_layout(data, None)
        point = ResumePoint(layout.data_start, layout.data_first_line)
        found = []
        for take in [*stops, len(expected) + 1]:
            reader = RecordReader(io.BytesIO(data[point.start :]), delimiter, point)
            rows = iter(reader)
            taken = [row for _, row in zip(range(take), rows, strict=False)]
            found += taken
            if len(taken) < take:  # the end of the file
                break
            point = reader.resume_after(taken[-1][0])
            assert point.start <= layout.data_start + len(data)
    assert [(line, cells, kind_of(problem)) for line, cells, problem in found] == expected


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
    # every cell quoted (OWASP: no other separator splits a cell), bytes as read
    assert data == b'"line","reason","id","name","age"\n"3","bad","m","a,b","x\xff"\n'


def test_a_formula_after_another_separator_is_not_a_cell_of_its_own():
    """The trial's cell: in a comma file, a spreadsheet splitting on ';' must
    not see a cell that starts with '='."""
    rows = [RejectedRow(3, ["x;=cmd|' /C calc'!A0"], "bad")]
    text = rejected_csv(rows, ["id"], ",").decode()
    assert list(csv.reader(io.StringIO(text), delimiter=","))[1] == [
        "3",
        "bad",
        "x;'=cmd|' /C calc'!A0",
    ]
    for delimiter in DELIMITERS:
        cells = [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]
        assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)], delimiter


def test_a_row_csv_cannot_parse_comes_back_raw_with_the_problem():
    data = b'1,"ok"\n2,bad\rfield\n3,fine\n'
    records = list(iter_records(io.BytesIO(data), ",", 5))
    assert records[0] == (5, ["1", "ok"], None)
    assert records[1][0] == 6
    assert records[1][1] == ["2,bad\rfield"]
    assert "a carriage return (\\r) outside quotes" in records[1][2]
    assert records[2] == (7, ["3", "fine"], None)


@pytest.mark.parametrize("head", [b"id,na\rme\n1,2\n", b"id,name\r1,a\r2,b\r"])
def test_a_lone_carriage_return_in_the_header_is_said_in_plain_words(head):
    """Not csv's own sentence ("do you need to open the file with newline=''?"),
    which speaks to a Python programmer, not to whoever exported the file."""
    with pytest.raises(InvalidMappingError) as raised:
        read_layout(head, None)
    assert raised.value.problems[0].startswith("the header row: a carriage return (\\r)")


# ---------------------------------------------------------------- rows over the limit


class Generated(io.RawIOBase):
    """A stream of pieces made as they are read: a test never holds them all."""

    def __init__(self, pieces):
        self._pieces = iter(pieces)
        self._pending = b""

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self._pending:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._pending = piece
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


def gzipped(pieces):
    compressor = zlib.compressobj(wbits=31)  # the gzip container
    for piece in pieces:
        yield compressor.compress(piece)
    yield compressor.flush()


LONG_LINE_MB = 50
READ_PEAK_MIB = 8  # bound on the traced peak of planning and reading it


def file_with_a_long_row():
    """A header, a row, a 50 MB row (a quoted field of 51,200 lines), a row."""
    yield b'id,note\n1,ok\n2,"'
    for _ in range(LONG_LINE_MB * 1024):
        yield b"y" * 1023 + b"\n"
    yield b'"\n3,fine\n'


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_a_row_over_the_limit_is_rejected_in_constant_memory(compressed):
    def stream():
        pieces = file_with_a_long_row()
        raw = Generated(gzipped(pieces) if compressed else pieces)
        return gzip.GzipFile(fileobj=raw) if compressed else io.BufferedReader(raw)

    tracemalloc.start()
    try:
        with stream() as planned:
            layout = read_layout(planned.read(1 << 20), None)
        with stream() as planned:
            chunks = plan_chunks(planned, layout, 1024)
        with stream() as data:
            data.read(layout.data_start)
            records = list(iter_records(data, ",", layout.data_first_line))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    size = 3 + LONG_LINE_MB * 1024 * 1024 + 2
    assert [(line, problem) for line, _cells, problem in records] == [
        (2, None),
        (3, f"the row has {size} bytes; at most {import_rows.MAX_ROW_BYTES} are allowed"),
        (3 + LONG_LINE_MB * 1024 + 1, None),
    ]
    assert records[1][1] == [('2,"' + "y" * 1023 + "\n")[: import_rows.ECHO_BYTES]]
    assert records[2][1] == ["3", "fine"]
    # the first chunk reaches past its 1,024 bytes to the long row's end
    assert [(c.start, c.end, c.first_line) for c in chunks] == [
        (8, 13 + size, 2),
        (13 + size, None, 3 + LONG_LINE_MB * 1024 + 1),
    ]
    assert peak < READ_PEAK_MIB << 20, peak  # the row alone is 50 MB


def test_the_row_limit_counts_bytes_and_its_edge_is_a_row():
    limit = import_rows.MAX_ROW_BYTES
    at_limit = b"1," + b"\xc3\xa9" * ((limit - 3) // 2) + b"a" * ((limit - 3) % 2) + b"\n"
    over = b"2," + b"b" * (limit - 2) + b"\n"
    assert (len(at_limit), len(over)) == (limit, limit + 1)
    records = list(iter_records(io.BytesIO(at_limit + over + b"3,c"), ",", 2))
    assert (records[0][0], records[0][2]) == (2, None)
    assert records[0][1][1].startswith("éé")
    assert records[1] == (
        3,
        [over[: import_rows.ECHO_BYTES].decode()],
        f"the row has {limit + 1} bytes; at most {limit} are allowed",
    )
    assert records[2] == (4, ["3", "c"], None)


@ROW_LIMITS
@given(
    file=csv_files(),
    block=st.integers(1, 24),
    limit=st.integers(1, 24),
    echo=st.integers(0, 6),
)
def test_rows_over_a_limit_are_found_alike_by_every_chunking(file, block, limit, echo):
    """The same single-pass reference with a small row limit: a record over
    it, wherever it starts or ends, is one rejected row with its first bytes."""
    data, delimiter = file
    with (
        mock.patch.object(import_rows, "MAX_ROW_BYTES", limit),
        mock.patch.object(import_rows, "ECHO_BYTES", min(echo, limit)),  # as 1 KiB <= 1 MiB
        mock.patch.object(import_rows, "_BLOCK", block),
    ):
        _header, expected = one_pass(data, delimiter)
        layout = read_layout(data, None)
        for chunk_bytes in range(1, len(data) - layout.data_start + 2):
            found = [
                (line, cells, kind_of(problem))
                for line, cells, problem in records_with_problems(data, chunk_bytes)
            ]
            assert found == expected, chunk_bytes


def test_a_batch_of_large_rows_is_cut_by_its_bytes():
    big = ["x" * (BATCH_BYTES // 4)]
    records = [(line, big, None) for line in range(10)] + [(10, ["y"], None)]
    sizes = [len(batch) for batch in _batches(iter(records))]
    assert sizes == [4, 4, 3]
    small = [(line, ["y"], None) for line in range(ROWS_PER_BATCH + 1)]
    assert [len(batch) for batch in _batches(iter(small))] == [ROWS_PER_BATCH, 1]


# ---------------------------------------------------------------- the rejected file

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# what can start a field when the file is read with another delimiter than its own
SEPARATORS = (*DELIMITERS, "\r", "\n")
# cells built of pieces that make formulas after a separator, a quote or a line break
spreadsheet_cells = st.lists(
    st.one_of(st.sampled_from(["'", " ", '"', *FORMULA_STARTS, *SEPARATORS]), st.text(max_size=3)),
    max_size=6,
).map("".join)


@FORMULAS
@given(
    header=st.lists(spreadsheet_cells, min_size=1, max_size=3),
    rows=st.lists(
        st.tuples(
            st.integers(2, 10**6), st.lists(spreadsheet_cells, max_size=4), spreadsheet_cells
        ),
        max_size=4,
    ),
    delimiter=st.sampled_from(DELIMITERS),
)
def test_no_cell_of_the_rejected_file_is_a_formula(header, rows, delimiter):
    """Whatever the file held (the header, the cells) and whatever the reason
    says, read with its own delimiter or any other one, no field starts with a
    character a spreadsheet runs as a formula (OWASP CSV injection): such a
    character at the start of a cell, or after a separator, quotes or a line
    break inside it, gets a ' in front; everything else is echoed as it was."""
    rejected = [RejectedRow(line, cells, reason) for line, cells, reason in rows]
    data = rejected_csv(rejected, header, delimiter)
    text = data.decode("utf-8", errors="surrogateescape")
    parsed = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    echoed = [["line", "reason", *header]]
    echoed += [[str(line), reason, *cells] for line, cells, reason in rows]

    def inert(cell):
        shown, exposed = [], True  # where a field could start
        for char in cell:
            if exposed and char in FORMULA_STARTS:
                shown.append("'")
            shown.append(char)
            exposed = char in SEPARATORS or (exposed and char == '"' and bool(shown[:-1]))
        return "".join(shown)

    assert parsed == [[inert(cell) for cell in row] for row in echoed]
    assert not [cell for row in parsed for cell in row if cell.startswith(FORMULA_STARTS)]
    # Read with another delimiter, fields are cut where the file never meant
    # it. In a tab-delimited file such a field can start with the tab between
    # two quoted cells ('\t"...'); a tab or \r is a formula start because
    # spreadsheets skip it, so what must not follow them is =, +, - or @.
    for reading in DELIMITERS:
        fields = csv.reader(io.StringIO(text, newline=""), delimiter=reading)
        formulas = [cell for row in fields for cell in row if _runs_as_formula(cell)]
        assert not formulas, (reading, formulas)


def _runs_as_formula(cell):
    return cell.lstrip("\t\r").startswith(("=", "+", "-", "@"))
