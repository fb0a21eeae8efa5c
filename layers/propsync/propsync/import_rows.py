"""Import files as rows: header and delimiter, chunk planning, streaming CSV
parsing, and each row mapped to a customer update or rejected with a reason.

Pure: everything here reads from file-like byte streams, so the same code
serves S3 objects, local files and tests, and memory stays flat whatever the
file size (a row at a time, a block at a time).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from propsync.errors import PropsyncError
from propsync.import_mapping import (
    DELIMITERS,
    ImportMapping,
    InvalidMappingError,
    parse_cell,
    parse_update_time,
    row_ids,
)
from propsync.merge_rule import MAX_SEQUENCE, PropertyVersion
from propsync.properties import encode_property_value

BOM = b"\xef\xbb\xbf"
# bytes that were not UTF-8 survive decoding as these surrogates (surrogateescape)
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_BLOCK = 1 << 20
MAX_HEADER_BYTES = 1 << 20

# A large field must not stop the import: csv's default limit is 128 KB.
csv.field_size_limit(16 * 1024 * 1024)


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


@dataclass(frozen=True)
class RejectedRow:
    line: int
    cells: list[str]
    reason: str


def read_layout(head: bytes, mapping_delimiter: str | None) -> FileLayout:
    """Header and delimiter from the first bytes of a file (up to 1 MB)."""
    start = len(BOM) if head.startswith(BOM) else 0
    end, lines = _record_end(head, start)
    if end is None:
        if len(head) >= MAX_HEADER_BYTES:
            raise InvalidMappingError(["the header row is longer than 1 MB"])
        end = len(head)  # a file that is only a header
    raw = head[start:end]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidMappingError(["the header row is not valid UTF-8"]) from None
    delimiter = mapping_delimiter or _detect_delimiter(text)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    header = [cell.strip() for cell in rows[0]] if rows else []
    if not header or header == [""]:
        raise InvalidMappingError(["the file has no header row"])
    return FileLayout(header=header, delimiter=delimiter, data_start=end, data_first_line=1 + lines)


def _detect_delimiter(header_line: str) -> str:
    """The candidate that splits the header most (outside quotes); ',' if none."""
    outside = "".join(part for index, part in enumerate(header_line.split('"')) if index % 2 == 0)
    counts = {candidate: outside.count(candidate) for candidate in DELIMITERS}
    best = max(DELIMITERS, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def _record_end(data: bytes, start: int) -> tuple[int | None, int]:
    """End (after its newline) of the record starting at ``start``, and how
    many newlines it spans; quotes are counted so a quoted newline is data."""
    quoted = False
    newlines = 0
    position = start
    while position < len(data):
        byte = data[position]
        if byte == 0x22:  # '"'; a doubled "" toggles twice
            quoted = not quoted
        elif byte == 0x0A:
            newlines += 1
            if not quoted:
                return position + 1, newlines
        position += 1
    return None, newlines


def plan_chunks(stream: IO[bytes], layout: FileLayout, chunk_bytes: int) -> list[Chunk]:
    """Cut the data part of a file (``stream`` from byte 0) into ranges of about
    ``chunk_bytes`` that each hold whole rows. One pass, a block at a time: a
    newline is a row boundary when the number of quotes before it is even (CSV
    doubles quotes inside quoted fields, so parity tells inside from outside)."""
    chunks: list[Chunk] = []
    start, first_line = layout.data_start, layout.data_first_line
    target = start + chunk_bytes
    block_offset = 0  # file offset of the current block
    quotes = 0  # quotes before index ``i`` of the block (whole file so far)
    newlines = 0  # newlines before index ``i``
    while block := stream.read(_BLOCK):
        i = 0
        while target - block_offset < len(block):
            newline = block.find(b"\n", max(target - block_offset, i))
            if newline < 0:
                break
            quotes += block.count(b'"', i, newline)
            newlines += block.count(b"\n", i, newline + 1)
            i = newline + 1
            if quotes % 2 == 0:  # outside quotes: the row ends here
                end = block_offset + i
                chunks.append(Chunk(start=start, end=end, first_line=first_line))
                start, first_line = end, newlines + 1
                target = end + chunk_bytes
        quotes += block.count(b'"', i)
        newlines += block.count(b"\n", i)
        block_offset += len(block)
    if block_offset > start:
        chunks.append(Chunk(start=start, end=None, first_line=first_line))
    return chunks


def iter_records(
    stream: IO[bytes], delimiter: str, first_line: int
) -> Iterator[tuple[int, list[str], str | None]]:
    """(line number, cells, problem) of each record of a stream of whole rows.

    Lines are counted by ``\n`` (as the chunk planner counts them). Bytes that
    are not UTF-8 survive as surrogates, so the row can be rejected and written
    back exactly as it was. A record csv cannot parse comes back as its raw
    text in one cell, with the problem, instead of stopping the file."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    consumed: list[str] = []
    reader = csv.reader(_lines(text, consumed), delimiter=delimiter, strict=False)
    line = first_line
    while True:
        consumed.clear()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield line, ["".join(consumed).rstrip("\r\n")], f"malformed CSV row: {error}"
            line += len(consumed)
            continue
        if cells and cells != [""]:  # not a blank line
            yield line, cells, None
        line += len(consumed)


def _lines(text: io.TextIOBase, consumed: list[str]) -> Iterator[str]:
    """The text split after each ``\n`` only (a lone ``\r`` is data), each
    line also appended to ``consumed`` so the caller can count and echo them."""
    pending = ""
    while block := text.read(1 << 16):
        pending += block
        *complete, pending = pending.split("\n")
        for line in complete:
            consumed.append(line + "\n")
            yield line + "\n"
    if pending:
        consumed.append(pending)
        yield pending


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
    return RowUpdate(line=line, ids=ids, versions=versions, cells=cells)


def rejected_csv(
    rows: Iterable[RejectedRow], header: list[str], delimiter: str, *, with_header: bool = True
) -> bytes:
    """The rejected rows as they were, with their line and reason first."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    if with_header:
        writer.writerow(["line", "reason", *header])
    for row in rows:
        writer.writerow([row.line, row.reason, *row.cells])
    return buffer.getvalue().encode("utf-8", errors="surrogateescape")
