"""The import mapping: how the columns of a CSV file become customer updates.

The model is the product document's: ``properties`` (``from_column``,
``to_property``, ``type``), ``ids`` (``from_column``, ``to_id``),
``constant_columns`` (``name``, ``value``: a column with the same value in
every row), ``timezone`` (IANA, default UTC) and an optional
``update_timestamp: {"from_column": ...}``; propsync adds an optional
``delimiter``. Validation comes in two rounds, each listing every problem it
finds: the mapping's own shape (``parse_mapping``; given the project's id
types, also that it maps only id types the project knows), then, once that
passes, its columns against the file's header (``check_columns``). Pure: no I/O.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from propsync import http_json
from propsync.errors import (
    InvalidCellError,
    InvalidInputError,
    InvalidMappingError,
    InvalidTimestampError,
    PropsyncError,
    shown,
)
from propsync.id_types import IdTypes
from propsync.identity import validate_customer_ids
from propsync.properties import validate_property_name
from propsync.timestamps import normalize_timestamp, unit_hint

DELIMITERS = (",", ";", "\t", "|")
TYPES = ("string", "long text", "number", "boolean", "date", "datetime", "list", "object")
_STRING_FIELDS = {"from_column", "to_property", "type", "to_id", "name"}
_TOP_LEVEL_KEYS = {
    "properties",
    "ids",
    "constant_columns",
    "timezone",
    "update_timestamp",
    "delimiter",
}


@dataclass(frozen=True)
class PropertyColumn:
    column: str
    name: str
    type: str


@dataclass(frozen=True)
class IdColumn:
    column: str
    id_type: str


@dataclass(frozen=True)
class ImportMapping:
    properties: tuple[PropertyColumn, ...]
    ids: tuple[IdColumn, ...]
    constants: dict[str, str]
    timezone: tzinfo
    timezone_name: str
    update_timestamp_column: str | None
    delimiter: str | None

    def columns_needed(self) -> set[str]:
        needed = {p.column for p in self.properties} | {i.column for i in self.ids}
        if self.update_timestamp_column:
            needed.add(self.update_timestamp_column)
        return needed - set(self.constants)


def parse_mapping(document: Any, id_types: IdTypes | None = None) -> ImportMapping:
    """Check the mapping's own shape (not yet against a file's header) and,
    with ``id_types`` (the project's), that every ``to_id`` is one of them.
    Without them (a plan's mapping parsed again, already checked when the
    execution was planned) id types are not checked against a project."""
    problems: list[str] = []
    if not isinstance(document, dict):
        raise InvalidMappingError(["the mapping must be a JSON object"])
    for key in sorted(set(document) - _TOP_LEVEL_KEYS):
        problems.append(f"unknown key {key!r}; allowed keys: {', '.join(sorted(_TOP_LEVEL_KEYS))}")

    constants = _constants(document.get("constant_columns", []), problems)
    properties = _properties(document.get("properties", []), problems)
    ids = _ids(document.get("ids"), id_types, problems)
    zone, zone_name = _timezone(document.get("timezone", "UTC"), problems)
    timestamp_column = _update_timestamp(document.get("update_timestamp"), problems)
    for column in ids:
        constant = _id_cell(constants.get(column.column, ""))
        if constant:
            try:
                validate_customer_ids({column.id_type: constant})
            except PropsyncError as error:
                problems.append(f"constant column {column.column!r}: {error}")
    delimiter = document.get("delimiter")
    if delimiter is not None and delimiter not in DELIMITERS:
        problems.append(f"delimiter {delimiter!r} is not allowed; use one of {DELIMITERS!r}")
    if problems:
        raise InvalidMappingError(problems)
    return ImportMapping(
        properties=tuple(properties),
        ids=tuple(ids),
        constants=constants,
        timezone=zone,
        timezone_name=zone_name,
        update_timestamp_column=timestamp_column,
        delimiter=delimiter,
    )


def check_columns(mapping: ImportMapping, header: Sequence[str]) -> None:
    """Every ``from_column`` must be in the header or a constant column."""
    problems = []
    available = set(header) | set(mapping.constants)
    references = [(p.column, f"property {p.name!r}") for p in mapping.properties]
    references += [(i.column, f"id {i.id_type!r}") for i in mapping.ids]
    if mapping.update_timestamp_column:
        references.append((mapping.update_timestamp_column, "update_timestamp"))
    for column, user in references:
        if column not in available:
            problems.append(
                f"from_column {column!r} of {user} is neither a column of the file "
                f"({_listed(header)}) nor a constant column"
            )
    if len(set(header)) != len(header):
        counts = Counter(header)
        duplicates = sorted(h for h, count in counts.items() if count > 1)
        problems.append(f"the header repeats column(s) {_listed(duplicates)}")
    if problems:
        raise InvalidMappingError(problems)


def validate_mapping(
    document: Any, header: Sequence[str], id_types: IdTypes | None = None
) -> ImportMapping:
    """The mapping checked against the file's header: what the importer and
    the admin command's local check before uploading both call."""
    mapping = parse_mapping(document, id_types)
    check_columns(mapping, header)
    return mapping


_LISTED_COLUMNS = 20


def _listed(columns: Sequence[str]) -> str:
    """Column names for a problem, at most 20 of them: a header may have
    100,000 columns, and problems are stored in the execution record."""
    listed = ", ".join(repr(column[:100]) for column in columns[:_LISTED_COLUMNS])
    more = len(columns) - _LISTED_COLUMNS
    return f"{listed} and {more} more" if more > 0 else listed


# ---------------------------------------------------------------- mapping parts


def _entries(value: Any, where: str, keys: set[str], problems: list[str]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        problems.append(f"{where} must be a list of objects")
        return []
    entries = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            problems.append(f"{where}[{index}] must be an object")
            continue
        for key in sorted(set(entry) - keys):
            problems.append(
                f"{where}[{index}]: unknown key {key!r}; allowed: {', '.join(sorted(keys))}"
            )
        for key in sorted(keys - set(entry)):
            problems.append(f"{where}[{index}]: {key!r} is required")
        if not keys <= set(entry):
            continue
        wrong = sorted(key for key in keys & _STRING_FIELDS if not isinstance(entry[key], str))
        if wrong:
            problems.append(f"{where}[{index}]: {', '.join(wrong)} must be text")
            continue
        entries.append(entry)
    return entries


def _constants(value: Any, problems: list[str]) -> dict[str, str]:
    constants: dict[str, str] = {}
    for entry in _entries(value, "constant_columns", {"name", "value"}, problems):
        name, constant = entry["name"], entry["value"]
        if not isinstance(name, str) or not name:
            problems.append("constant_columns: name must be a non-empty string")
        elif isinstance(constant, dict | list):
            problems.append(f"constant column {name!r}: value must be a string or a number")
        else:
            constants[name] = "" if constant is None else str(constant)
    return constants


def _properties(value: Any, problems: list[str]) -> list[PropertyColumn]:
    columns = []
    seen: set[str] = set()
    keys = {"from_column", "to_property", "type"}
    for index, entry in enumerate(_entries(value, "properties", keys, problems)):
        try:
            name = validate_property_name(entry["to_property"])
        except PropsyncError as error:
            problems.append(f"properties[{index}].to_property: {error}")
            continue
        if entry["type"] not in TYPES:
            problems.append(
                f"properties[{index}] ({name!r}): unknown type {entry['type']!r}; "
                f"types: {', '.join(TYPES)}"
            )
            continue
        if name in seen:
            problems.append(f"property {name!r} is mapped twice")
            continue
        seen.add(name)
        columns.append(PropertyColumn(str(entry["from_column"]), name, entry["type"]))
    return columns


def _ids(value: Any, id_types: IdTypes | None, problems: list[str]) -> list[IdColumn]:
    if value is None or value == []:
        problems.append("ids: at least one id column is required")
        return []
    columns = []
    seen: set[str] = set()
    for index, entry in enumerate(_entries(value, "ids", {"from_column", "to_id"}, problems)):
        try:
            validate_customer_ids({entry["to_id"]: "x"})
        except PropsyncError as error:
            problems.append(f"ids[{index}].to_id: {error}")
            continue
        unknown = id_types.unknown_problem([entry["to_id"]]) if id_types else None
        if unknown:  # a typo would import its rows as customers of their own
            problems.append(f"ids[{index}].to_id: {unknown}")
            continue
        if entry["to_id"] in seen:  # a customer has one id of a type: one column would be lost
            problems.append(f"id type {entry['to_id']!r} is mapped twice")
            continue
        seen.add(entry["to_id"])
        columns.append(IdColumn(str(entry["from_column"]), entry["to_id"]))
    return columns


def _timezone(value: Any, problems: list[str]) -> tuple[tzinfo, str]:
    if not isinstance(value, str):
        problems.append("timezone must be an IANA name such as 'UTC' or 'Europe/Bratislava'")
        return UTC, "UTC"
    try:
        return ZoneInfo(value), value
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            f"unknown timezone {value!r}; use an IANA name such as 'UTC' or 'Europe/Bratislava'"
        )
        return UTC, "UTC"


def _update_timestamp(value: Any, problems: list[str]) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or set(value) != {"from_column"}
        or not isinstance(value["from_column"], str)
    ):
        problems.append('update_timestamp must be {"from_column": "<column>"}')
        return None
    return str(value["from_column"])


# ---------------------------------------------------------------- cells

_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[T ](?P<h>\d{1,2}):(?P<mi>\d{1,2})(?::(?P<s>\d{1,2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.ASCII,
)
_UNIX = re.compile(r"[+-]?\d+(?:\.\d+)?", re.ASCII)
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def parse_time(text: str, zone: tzinfo) -> float:
    """UNIX seconds from UNIX seconds or an ISO 8601 date / date-time; times
    without an offset are read in ``zone``. Refusals say why."""
    text = text.strip()
    if _UNIX.fullmatch(text):
        seconds = float(Decimal(text))
        if not math.isfinite(seconds):  # hundreds of digits: no float, no time
            raise InvalidTimestampError(
                f"{shown(text)} is out of range for a time: use UNIX seconds or ISO 8601"
            )
        hint = unit_hint(seconds)
        if hint:
            raise InvalidTimestampError(f"{shown(text)} is not UNIX seconds.{hint}")
        return seconds
    found = _ISO.fullmatch(text)
    if not found:
        raise InvalidTimestampError(
            f"{shown(text)} is not a time: use UNIX seconds or ISO 8601 such as "
            "2018-08-05, 2018-8-5 12:20:25, 2018-08-05T12:20:25.555Z or 2018-08-05T12:20:25+01:00"
        )
    parts = found.groupdict()
    try:
        fraction = Decimal("0." + parts["f"]) if parts["f"] else Decimal(0)
        moment = datetime(
            int(parts["y"]),
            int(parts["mo"]),
            int(parts["d"]),
            int(parts["h"] or 0),
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
            tzinfo=_offset(parts["tz"]) or zone,
        )
    except ValueError as error:
        raise InvalidTimestampError(f"{shown(text)} is not a valid date or time: {error}") from None
    return float(Decimal(int(moment.timestamp())) + fraction)


def parse_update_time(text: str, zone: tzinfo, *, now: float) -> float:
    """A row's update timestamp: a time, guarded as tracking's update_timestamp
    is (not negative, not further in the future than the allowed skew)."""
    return normalize_timestamp(parse_time(text, zone), now=now)


def _offset(text: str | None) -> tzinfo | None:
    if not text:
        return None
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_cell(text: str, type_name: str, zone: tzinfo) -> Any:
    """A non-empty cell as a value of ``type_name`` (empty cells are handled
    by the caller: they clear the property)."""
    try:
        return _PARSERS[type_name](text, zone)
    except PropsyncError as error:
        raise InvalidCellError(str(error)) from None


# re.ASCII: \d is 0-9 only, never another script's digits (Arabic-Indic, fullwidth),
# which int(), Decimal() and date() would otherwise read as numbers
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)


def _number(text: str, _zone: tzinfo) -> Any:
    cleaned = text.strip()
    if _INTEGER.fullmatch(cleaned):
        digits = len(cleaned.lstrip("+-"))
        if digits > sys.get_int_max_str_digits():
            # what Python (and so tracking's JSON) reads; canonical JSON writes
            # integers digit for digit, so a longer one could not be stored
            raise InvalidCellError(
                f"{shown(text)} is a number of {digits} digits; "
                f"at most {sys.get_int_max_str_digits()} digits are allowed"
            )
        return int(cleaned)
    if not _DECIMAL.fullmatch(cleaned):
        raise InvalidCellError(f"{shown(text)} is not a number")
    try:
        return Decimal(cleaned)
    except InvalidOperation:  # 1e9999999999999999999: more than a Decimal holds
        raise InvalidCellError(
            f"{shown(text)} is not a number propsync can store: its exponent is out of range"
        ) from None


def _boolean(text: str, _zone: tzinfo) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidCellError(f"{shown(text)} is not a boolean: use true/false, 1/0 or yes/no")


def _seconds(value: float) -> Any:
    return int(value) if value.is_integer() else Decimal(repr(value))


def _datetime(text: str, zone: tzinfo) -> Any:
    # Dates of data (a birthday, a contract's end) may lie before 1970 or in
    # the future: only update timestamps get the merge rule's guards.
    return _seconds(parse_time(text, zone))


def _date(text: str, zone: tzinfo) -> Any:
    """A day: midnight of that day in ``zone``; a full date-time is accepted too."""
    found = _DAY.fullmatch(text.strip())
    if not found:
        return _datetime(text, zone)
    try:
        day = date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError as error:
        raise InvalidCellError(f"{shown(text)} is not a valid date: {error}") from None
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


def _json_of(kind: type, label: str) -> Callable[[str, tzinfo], Any]:
    def parse(text: str, _zone: tzinfo) -> Any:
        try:
            value = http_json.parse_body(text.encode("utf-8"))
        except http_json.NumberOutOfRangeError:  # 1e9999999999999999999
            raise InvalidCellError(
                f"{shown(text)} holds a number out of range (its exponent is too large)"
            ) from None
        except InvalidInputError:
            raise InvalidCellError(f"{shown(text)} is not JSON ({label} expected)") from None
        if not isinstance(value, kind):
            raise InvalidCellError(f"{shown(text)} is not {label}")
        return value

    return parse


_PARSERS: dict[str, Callable[[str, tzinfo], Any]] = {
    "string": lambda text, _zone: text,
    "long text": lambda text, _zone: text,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "list": _json_of(list, "a JSON array"),
    "object": _json_of(dict, "a JSON object"),
}


def mapping_document(text: str | bytes) -> Any:
    """mapping.json as JSON, or InvalidMappingError; parse_mapping checks it."""
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidMappingError(["mapping.json is not valid JSON"]) from None
    except RecursionError:
        raise InvalidMappingError(
            ["mapping.json nests lists or objects too deeply to be read (a mapping needs 3 levels)"]
        ) from None


def row_ids(mapping: ImportMapping, row: Mapping[str, str]) -> dict[str, str]:
    """The row's non-empty ids (constant columns included), each cell trimmed
    of surrounding spaces and then validated exactly as tracking validates
    ``customer_ids`` (InvalidCustomerIdsError): an id an import creates is one
    every API call can reach."""
    ids = {}
    for column in mapping.ids:
        value = _id_cell(mapping.constants.get(column.column, row.get(column.column, "")))
        if value:
            ids[column.id_type] = value
    return validate_customer_ids(ids) if ids else ids


def _id_cell(cell: str) -> str:
    """An id cell without the spaces that pad it, and nothing else: str.strip()
    would also take off tabs, newlines, \x1c-\x1f, \x85, NBSP and \u2028, so
    ``us\x1f`` would become another customer's ``us`` instead of being refused
    as tracking refuses it."""
    return cell.strip(" ")
