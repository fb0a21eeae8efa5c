"""Import files as rows: header and delimiter, chunk planning, streaming CSV
parsing, and each row mapped to a customer update or rejected with a reason.

Pure: everything here reads from file-like byte streams, so the same code
serves S3 objects, local files and tests, and memory stays flat whatever the
file size (a block at a time, and at most ``MAX_ROW_BYTES`` of one record).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from propsync.errors import InvalidMappingError, PropsyncError
from propsync.import_mapping import (
    DELIMITERS,
    ImportMapping,
    parse_cell,
    parse_update_time,
    row_ids,
)
from propsync.merge_rule import MAX_SEQUENCE, PropertyVersion
from propsync.properties import encode_property_value

BOM = b"\xef\xbb\xbf"
# bytes that were not UTF-8 survive decoding as these surrogates (surrogateescape)
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_BLOCK = 1 << 18  # bytes read at a time
MAX_HEADER_BYTES = 1 << 20
# A row longer than this is rejected, and only its first ECHO_BYTES are kept:
# memory never holds more of one row. A customer item holds at most 400 KB,
# and a value at most 16 KB, so no row that could be written comes near 1 MiB.
MAX_ROW_BYTES = 1 << 20
ECHO_BYTES = 1024
# No field is longer than its row, so csv's own limit (128 KB by default)
# never decides: the row limit does, before csv sees the row.
csv.field_size_limit(MAX_ROW_BYTES)
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Read with another delimiter than its own, a quoted file is cut after a
# closing quote wherever that delimiter or a line break stands, and quotes
# after the cut open a field: a formula character there starts a field too.
_FORMULA_AFTER_A_CUT = re.compile(r'([,;\t|\r\n]"*)(?=[=+\-@\t\r])')


@dataclass(frozen=True)
class FileLayout:
    """What the first line of a file says: its columns, its delimiter, and
    where the data starts (bytes after the header, and its line number)."""

    header: list[str]
    delimiter: str
    data_start: int
    data_first_line: int


@dataclass(frozen=True)
class Chunk:
    """A byte range of whole rows, and the line number its first row starts on."""

    start: int
    end: int | None  # None: to the end of the file
    first_line: int


@dataclass(frozen=True)
class RowUpdate:
    line: int
    ids: dict[str, str]
    versions: dict[str, PropertyVersion]
    cells: list[str]  # as read, for the rejected file if the store refuses the row
    timestamp: float  # the row's update time (its versions' timestamp)


@dataclass(frozen=True)
class RejectedRow:
    line: int
    cells: list[str]
    reason: str


def read_layout(head: bytes, mapping_delimiter: str | None) -> FileLayout:
    """Header and delimiter from the first bytes of a file (up to 1 MB). The
    delimiter, unless the mapping names it, is the candidate that splits the
    header record into the most cells (',' if none splits it)."""
    start = len(BOM) if head.startswith(BOM) else 0
    candidates = (mapping_delimiter,) if mapping_delimiter else DELIMITERS
    headers = {delimiter: _header(head, start, delimiter) for delimiter in candidates}
    delimiter = max(candidates, key=lambda candidate: len(headers[candidate][1]))
    end, cells = headers[delimiter]
    if end is None:
        if len(head) >= MAX_HEADER_BYTES:
            raise InvalidMappingError(["the header row is longer than 1 MB"])
        end = len(head)  # a file that is only a header
    try:
        head[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidMappingError(["the header row is not valid UTF-8"]) from None
    header = [cell.strip() for cell in cells]
    if not header or header == [""]:
        raise InvalidMappingError(["the file has no header row"])
    return FileLayout(
        header=header,
        delimiter=delimiter,
        data_start=end,
        data_first_line=1 + head.count(b"\n", start, end),
    )


def _header(head: bytes, start: int, delimiter: str) -> tuple[int | None, list[str]]:
    """Where the first record ends if ``delimiter`` is the file's (None: not
    within ``head``), and its cells."""
    end = _RecordSplitter(delimiter).end(head, start)
    text = head[start : end if end >= 0 else len(head)].decode("utf-8", "surrogateescape")
    try:
        cells = next(csv.reader([text], delimiter=delimiter, strict=False), [])
    except csv.Error as error:
        raise InvalidMappingError([f"the header row: {csv_problem(error)}"]) from None
    return (end if end >= 0 else None), cells


def csv_problem(error: csv.Error) -> str:
    """csv's refusal in words that say what to change (csv's own sentence
    about a lone carriage return speaks of opening files in Python)."""
    if "new-line character seen in unquoted field" in str(error):
        return (
            "a carriage return (\\r) outside quotes in the middle of a line: rows must end "
            "with \\n or \\r\\n, and a field that holds a \\r must be quoted (a file "
            "whose rows end with \\r alone must be converted first)"
        )
    return f"malformed CSV row: {error}"


class _RecordSplitter:
    """Where csv.reader ends a record, found in the bytes themselves.

    The states are those of CPython's CSV parser (Modules/_csv.c) as the
    importer runs it: ``strict=False``, doubled quotes, no escape character,
    the text split after each ``\n`` (a line ends a record unless it ends
    inside a quoted field). Only what decides where a record ends is kept:

    - a quote opens a quoted field only as a field's first character; inside
      one, ``""`` is a quote and any other quote closes it, after which the
      field goes on unquoted (``"ab"c"d`` is ``abc"d``);
    - a quote anywhere else is data (``a,b"c``), and so are newlines and
      ``\r`` inside a quoted field;
    - outside quotes, ``\n`` ends the record; so does the rest of the line
      after a ``\r`` (``\r\n``, or csv's "new-line character seen in unquoted
      field", after which csv drops the rest of the line).

    Delimiters, quotes and newlines are ASCII, so the machine runs on UTF-8
    bytes (undecodable bytes included) exactly as csv runs on their text. It
    keeps its state between calls, so a record can be given in pieces and
    one of any length is scanned in constant memory.

    Fast paths, from a record's start: outside quotes every ``\n`` before
    the next quote ends a record (a ``\r`` cannot keep one open), found with
    ``rfind``; then one regular expression takes every well-formed record in
    a row (each field quoted with inner quotes doubled, or unquoted without a
    quote or ``\r``; ``\n`` or ``\r\n`` after the last one), where csv's
    reading is not in doubt. The state machine reads anything else, jumping
    with ``find`` and patterns to the next byte that changes its state."""

    RECORD, START, UNQUOTED, QUOTED, AFTER_QUOTE, REST_OF_LINE = range(6)

    def __init__(self, delimiter: str) -> None:
        if len(delimiter) != 1 or delimiter in '"\r\n' or not delimiter.isascii():
            raise ValueError(f"not a delimiter the splitter can run on: {delimiter!r}")
        mark = re.escape(delimiter.encode())
        self._delimiter = ord(delimiter)
        quoted = rb'"[^"]*+(?:""[^"]*+)*+"'  # a quoted field: its quotes doubled
        # outside quotes only these change the state: a delimiter that opens
        # a quoted field, the end of the line, a \r
        self._unquoted = re.compile(mark + rb'"|[\n\r]')
        # the rest of a quoted field, and any quoted fields right after it
        self._quoted = re.compile(quoted[1:] + rb"(?:" + mark + quoted + rb")*+")
        field = rb"(?>" + quoted + rb'|[^"\r\n' + mark + rb"]*+)"
        self._records = re.compile(rb"(?:" + field + rb"(?:" + mark + field + rb")*+\r?\n)*+")
        # what the byte after a quote inside a quoted field leads to; any
        # other byte is text after a closing quote, unquoted
        self._after_quote = {
            0x22: self.QUOTED,  # "" is a quote
            self._delimiter: self.START,
            0x0A: self.RECORD,
            0x0D: self.REST_OF_LINE,
        }
        self.state = self.RECORD
        self.last_end = -1  # where the last record ended in the last call of end
        self._quote = -1

    def end(self, data: bytes, position: int, until: int = 0) -> int:
        """Read ``data`` from ``position`` on, from the current state: the
        index after the ``\n`` that ends the first record to end at or after
        ``until`` (the next record starts there), or -1 if ``data`` ends
        first (the next call goes on from the state reached; ``last_end``
        says where the last record ended before, or -1)."""
        state, size = self.state, len(data)
        self.last_end = -1
        self._quote = -1  # the next quote at or after position, once looked for
        while position < size:
            if state == self.RECORD:
                if position < until - 1:  # whole records that end before until
                    ended = self._whole_records(data, position, until - 1)
                    if ended > position:
                        position = self.last_end = ended
                        continue
                state = self.START
            if state == self.START:
                if data[position] == 0x22:  # '"'
                    state, position = self.QUOTED, position + 1
                    continue
                state = self.UNQUOTED
            if state == self.UNQUOTED:
                found = self._unquoted.search(data, position)
                if found is None:
                    # a delimiter last: the next byte starts a field
                    state = self.START if data[-1] == self._delimiter else self.UNQUOTED
                    break
                position = found.start() + 1
                byte = data[position - 1]
                if byte == 0x0A:
                    state = self.RECORD
                elif byte == 0x0D:
                    state = self.REST_OF_LINE
                else:  # a delimiter, then a quote
                    state, position = self.QUOTED, position + 1
            elif state == self.QUOTED:
                found = self._quoted.match(data, position)
                if found is None:  # no closing quote yet
                    break
                state, position = self.AFTER_QUOTE, found.end()
            elif state == self.AFTER_QUOTE:
                state = self._after_quote.get(data[position], self.UNQUOTED)
                position += 1
            else:  # REST_OF_LINE
                newline = data.find(b"\n", position)
                if newline < 0:
                    break
                state, position = self.RECORD, newline + 1
            if state == self.RECORD:  # a record ended
                self.last_end = position
                if position >= until:
                    self.state = state
                    return position
        self.state = state
        return -1

    def _whole_records(self, data: bytes, position: int, stop: int) -> int:
        """Where the fast paths take us from ``position`` (a record's start),
        through whole records that all end before ``stop``: past every line
        before the next quote (each ends a record), then past every
        well-formed record."""
        if self._quote < position:  # looked for once per stretch, not per record
            quote = data.find(b'"', position)
            self._quote = len(data) if quote < 0 else quote
        position = max(position, data.rfind(b"\n", position, min(self._quote, stop)) + 1)
        found = self._records.match(data, position, stop)  # (it matches, at least nothing)
        return found.end() if found else position


class _RecordScanner:
    """The records of a byte stream, found by ``_RecordSplitter``, a block at
    a time: memory holds one block and the start of the current record, never
    more than ``MAX_ROW_BYTES`` of it."""

    def __init__(self, stream: IO[bytes], delimiter: str, offset: int = 0) -> None:
        self._stream = stream
        self._delimiter = delimiter
        self._splitter = _RecordSplitter(delimiter)
        self._buffer = b""
        self._offset = offset  # the stream position of the buffer's first byte
        self._start = 0  # the current record's first byte in the buffer
        self._scanned = 0  # where the splitter goes on (in its state)
        self.lines = 0  # newlines before the current record (end_at_or_after)

    @property
    def position(self) -> int:
        """The stream position of the current record's first byte."""
        return self._offset + self._start

    def _read(self) -> bool:
        """Keep the current record's bytes, read a block after them."""
        block = self._stream.read(_BLOCK)
        if not block:
            return False
        start = self._start
        self._buffer = self._buffer[start:] + block if start < len(self._buffer) else block
        self._offset += start
        self._scanned -= start
        self._start = 0
        return True

    def __iter__(self) -> Iterator[tuple[bytes, int, int]]:
        """(bytes, size, newlines) of each run of whole records (all those that
        end in a block, at most ``MAX_ROW_BYTES`` together). A record over
        ``MAX_ROW_BYTES`` comes alone, as its first ``ECHO_BYTES`` (its size
        says so), read to its end without keeping the rest."""
        splitter = self._splitter
        while True:
            buffer, start = self._buffer, self._start
            end = splitter.end(buffer, self._scanned, len(buffer))
            end = max(end, splitter.last_end)
            self._scanned = len(buffer)
            if end > start:
                self._start = end
                if end - start <= MAX_ROW_BYTES:
                    yield buffer[start:end], end - start, buffer.count(b"\n", start, end)
                else:
                    yield from self._one_at_a_time(buffer, start, end)
            if len(buffer) - self._start > MAX_ROW_BYTES:
                yield self._long_record()
            elif not self._read():
                if self._start < len(buffer):  # the last record, without a newline
                    record = buffer[self._start :]
                    self._start = len(buffer)
                    yield record, len(record), record.count(b"\n")
                return

    def _one_at_a_time(
        self, buffer: bytes, start: int, end: int
    ) -> Iterator[tuple[bytes, int, int]]:
        """The whole records of buffer[start:end] (over ``MAX_ROW_BYTES``
        together), one by one: a long one among them as its first bytes."""
        splitter = _RecordSplitter(self._delimiter)
        while start < end:
            stop = splitter.end(buffer, start)
            size = stop - start
            kept = stop if size <= MAX_ROW_BYTES else start + ECHO_BYTES
            yield buffer[start:kept], size, buffer.count(b"\n", start, stop)
            start = stop

    def _long_record(self) -> tuple[bytes, int, int]:
        """The current record, already over ``MAX_ROW_BYTES``, read to its end
        a block at a time: its first ``ECHO_BYTES``, its size, its newlines."""
        buffer, start = self._buffer, self._start
        echo = buffer[start : start + ECHO_BYTES]
        size, lines = len(buffer) - start, buffer.count(b"\n", start)
        self._offset += len(buffer)
        self._buffer, self._start, self._scanned = b"", 0, 0
        while block := self._stream.read(_BLOCK):
            end = self._splitter.end(block, 0)
            if end >= 0:
                self._buffer, self._start, self._scanned = block, end, end
                return echo, size + end, lines + block.count(b"\n", 0, end)
            self._offset += len(block)
            size, lines = size + len(block), lines + block.count(b"\n")
        return echo, size, lines

    def end_at_or_after(self, target: int) -> int | None:
        """Read on to the first record that ends at or after stream position
        ``target``: its end, or None if the stream ends first. ``lines`` counts
        the newlines passed. Only the current block is kept: a record's bytes
        are not needed here, only where it ends."""
        while True:
            end = self._splitter.end(self._buffer, self._scanned, target - self._offset)
            if end >= 0:
                return self._pass(end)
            self._pass(len(self._buffer))  # the rest of the buffer is behind us
            if not self._read():
                return None

    def _pass(self, end: int) -> int:
        """Move past the buffer's bytes up to ``end``; their stream end."""
        self.lines += self._buffer.count(b"\n", self._start, end)
        self._start = self._scanned = end
        return self._offset + end


def plan_chunks(stream: IO[bytes], layout: FileLayout, chunk_bytes: int) -> list[Chunk]:
    """Cut the data part of a file (``stream`` from byte 0) into ranges of about
    ``chunk_bytes`` that each hold whole records: each range ends where the
    first record ending at or after its target ends, as found by the same
    splitter ``iter_records`` reads with, so a chunk boundary is always a
    record boundary of the single pass. One pass, a block at a time."""
    skip_bytes(stream, layout.data_start)
    scanner = _RecordScanner(stream, layout.delimiter, layout.data_start)
    chunks: list[Chunk] = []
    start, first_line = layout.data_start, layout.data_first_line
    while (end := scanner.end_at_or_after(start + chunk_bytes)) is not None:
        chunks.append(Chunk(start=start, end=end, first_line=first_line))
        start, first_line = end, layout.data_first_line + scanner.lines
    if scanner.position > start:
        chunks.append(Chunk(start=start, end=None, first_line=first_line))
    return chunks


def skip_bytes(stream: IO[bytes], count: int) -> None:
    """Read past ``count`` bytes of a stream that cannot seek (S3, gzip), a
    block at a time; less if it ends first."""
    while count > 0:
        skipped = len(stream.read(min(count, _BLOCK)))
        if not skipped:
            return
        count -= skipped


@dataclass(frozen=True)
class ResumePoint:
    """Where reading a chunk's range goes on after a checkpoint: at byte
    ``start`` of the (decompressed) file, a record boundary whose first line
    is ``line``, the rows that start on line ``done_through`` or before
    skipped, since they were imported already (0: none)."""

    start: int
    line: int
    done_through: int = 0


class RecordReader:
    """The records of a stream of whole rows that starts at ``point`` (the
    rows up to ``point.done_through`` left out), as iter_records gives them,
    and where reading again would go on after any of them (``resume_after``).

    A checkpoint falls between two batches of rows, which is seldom between
    two of the runs the scanner cuts (all the records that end in a block), so
    the point names the run's first byte and line, and the last line done:
    read again from there, the same splitter cuts the same records."""

    def __init__(self, stream: IO[bytes], delimiter: str, point: ResumePoint) -> None:
        self._stream = stream
        self._delimiter = delimiter
        self._point = point
        self._run = (point.start, point.line)  # the current run's first byte and line

    def resume_after(self, line: int) -> ResumePoint:
        """Where to go on once every row up to the one on ``line`` (the last
        row given, or one before it in the current run) is imported."""
        start, first_line = self._run
        return ResumePoint(start, first_line, line)

    def __iter__(self) -> Iterator[tuple[int, list[str], str | None]]:
        delimiter, done_through = self._delimiter, self._point.done_through
        start, line = self._point.start, self._point.line
        for data, size, newlines in _RecordScanner(self._stream, delimiter, start):
            self._run = (start, line)
            text = data.decode("utf-8", "surrogateescape")
            if size > MAX_ROW_BYTES:
                rows: Iterable[tuple[int, list[str], str | None]] = [
                    (line, [text], f"the row has {size} bytes; at most {MAX_ROW_BYTES} are allowed")
                ]
            else:
                rows = _rows(text, delimiter, line)
            for row in rows:
                if row[0] > done_through:
                    yield row
            start, line = start + size, line + newlines


def iter_records(
    stream: IO[bytes], delimiter: str, first_line: int
) -> Iterator[tuple[int, list[str], str | None]]:
    """(line number, cells, problem) of each record of a stream of whole rows.

    Lines are counted by ``\n`` (as the chunk planner counts them). Records
    are cut by the same splitter as chunks, then parsed by csv. Bytes that are
    not UTF-8 survive as surrogates, so the row can be rejected and written
    back exactly as it was. A record csv cannot parse comes back as its raw
    text in one cell, with the problem, instead of stopping the file; one
    over ``MAX_ROW_BYTES`` as its first ``ECHO_BYTES``, never held whole."""
    return iter(RecordReader(stream, delimiter, ResumePoint(0, first_line)))


def _rows(text: str, delimiter: str, line: int) -> Iterator[tuple[int, list[str], str | None]]:
    """The rows of whole records (starting on ``line``), parsed by csv in one
    go; csv splits the text after each \n only, as the splitter does."""
    reader = csv.reader(io.StringIO(text, newline="\n"), delimiter=delimiter, strict=False)
    taken = 0  # lines csv has read: the next record starts on the next one
    lines: list[str] = []  # the text's lines, split at the first malformed record
    while True:
        try:
            for cells in reader:
                if cells and cells != [""]:  # not a blank line
                    yield line + taken, cells, None
                taken = reader.line_num
            return
        except csv.Error as error:  # csv drops the rest of the line and goes on
            lines = lines or text.split("\n")
            raw = "\n".join(lines[taken : reader.line_num]).rstrip("\r\n")
            yield line + taken, [raw], csv_problem(error)
            taken = reader.line_num


def map_record(
    mapping: ImportMapping,
    header: list[str],
    line: int,
    cells: list[str],
    *,
    default_timestamp: float,
    now: float,
) -> RowUpdate | RejectedRow:
    """One record as a customer update, or rejected with the reason."""
    if len(cells) != len(header):
        return RejectedRow(
            line, cells, f"the row has {len(cells)} cells; the header has {len(header)}"
        )
    joined = "".join(cells)  # one check for the whole row; nearly every row is ASCII
    if not joined.isascii() and _UNDECODABLE.search(joined):
        return RejectedRow(line, cells, "the row is not valid UTF-8")
    row = dict(zip(header, cells, strict=True))
    value_of = {**row, **mapping.constants}.get
    try:
        ids = row_ids(mapping, row)  # validated as tracking validates customer_ids
    except PropsyncError as error:
        return RejectedRow(line, cells, str(error))
    if not ids:
        columns = ", ".join(repr(c.column) for c in mapping.ids)
        return RejectedRow(line, cells, f"no id: the id column(s) {columns} are empty")
    try:
        timestamp = default_timestamp
        if mapping.update_timestamp_column:
            cell = value_of(mapping.update_timestamp_column, "").strip()
            if not cell:
                return RejectedRow(line, cells, "update_timestamp is empty")
            timestamp = parse_update_time(cell, mapping.timezone, now=now)
        versions = {}
        for column in mapping.properties:
            text = value_of(column.column, "")
            value = None if text == "" else parse_cell(text, column.type, mapping.timezone)
            encoded = encode_property_value(column.name, value)
            versions[column.name] = PropertyVersion(encoded, timestamp, min(line, MAX_SEQUENCE))
    except PropsyncError as error:
        column_hint = f" (column {column.column!r})" if "column" in locals() else ""
        return RejectedRow(line, cells, f"{error}{column_hint}")
    return RowUpdate(line=line, ids=ids, versions=versions, cells=cells, timestamp=timestamp)


def rejected_csv(
    rows: Iterable[RejectedRow], header: list[str], delimiter: str, *, with_header: bool = True
) -> bytes:
    """The rejected rows as they were, with their line and reason first,
    made safe to open in a spreadsheet as OWASP advises against CSV
    injection, in every cell (the header, the row's cells and the reason):
    every cell is quoted, and a character a spreadsheet would run as a
    formula (``=``, ``+``, ``-``, ``@``, a tab or a ``\r``) gets a ``'`` in
    front where a field could start: at the start of the cell, or after a
    separator (any of ``DELIMITERS``), quotes or a line break inside it,
    since a spreadsheet may split the file on another delimiter than its own."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
    if with_header:
        writer.writerow(["line", "reason", *map(_inert, header)])
    for row in rows:
        writer.writerow([row.line, _inert(row.reason), *map(_inert, row.cells)])
    return buffer.getvalue().encode("utf-8", errors="surrogateescape")


def _inert(cell: str) -> str:
    cell = _FORMULA_AFTER_A_CUT.sub(r"\1'", cell)
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell
