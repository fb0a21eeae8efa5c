"""The import mapping: how the columns of a CSV file become customer updates.

The model is the product document's: ``properties`` (``from_column``,
``to_property``, ``type``), ``ids`` (``from_column``, ``to_id``),
``constant_columns`` (``name``, ``value``: a column with the same value in
every row), ``timezone`` (IANA, default UTC) and an optional
``update_timestamp: {"from_column": ...}``; propsync adds an optional
``delimiter``. :class:`MappingDocument` is its schema (a pydantic model: its
JSON schema documents mapping.json). :func:`validate_mapping` checks a mapping
in one round: the schema, the rules a schema cannot state (property and id type
names, the project's id types, nothing mapped twice, constant ids) and the
columns against the file's header, every problem at once, each starting with
its path in the document (``properties[2].type: ...``). Pure: no I/O.
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
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from propsync import http_json
from propsync.errors import (
    InvalidCellError,
    InvalidInputError,
    InvalidMappingError,
    InvalidTimestampError,
    PropsyncError,
    shown,
)
from propsync.id_types import ID_TYPE_SCHEMA, IdTypes
from propsync.identity import validate_customer_ids
from propsync.properties import validate_property_name
from propsync.timestamps import normalize_timestamp, unit_hint

PropertyType = Literal[
    "string", "long text", "number", "boolean", "date", "datetime", "list", "object"
]
Delimiter = Literal[",", ";", "\t", "|"]
TYPES: tuple[str, ...] = get_args(PropertyType)
DELIMITERS: tuple[str, ...] = get_args(Delimiter)
_ZONE_EXAMPLES = "'UTC' or 'Europe/Bratislava'"


# ---------------------------------------------------------------- the schema


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        sentence = f"unknown timezone {shown(name)}; use an IANA name such as {_ZONE_EXAMPLES}"
        raise PydanticCustomError(
            "mapping_timezone", "{sentence}", {"sentence": sentence}
        ) from None
    return name


class _Strict(BaseModel):
    # unknown keys refused; no coercion (a number is not text); immutable
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PropertyMapping(_Strict):
    """One column of the file written to one customer property."""

    from_column: str = Field(
        min_length=1,
        description="The column of the file (a name in its header row), or a constant column, "
        "whose cells are the property's values.",
    )
    # (the schema states the name rules; properties.validate_property_name checks them)
    to_property: str = Field(
        description="The customer property the values are written to: 1 to 256 bytes of UTF-8, "
        "no control characters. Each property at most once in a mapping.",
        json_schema_extra={"minLength": 1},
    )
    type: PropertyType = Field(
        description="How a cell is read: `string` and `long text` as they are; `number` an "
        "integer or decimal of ASCII digits; `boolean` true/false, 1/0 or yes/no (any case); "
        "`date` YYYY-MM-DD (midnight in `timezone`) or a date-time, and `datetime` UNIX seconds "
        "or ISO 8601 (without an offset: in `timezone`), both stored as UNIX seconds; `list` a "
        "JSON array; `object` a JSON object. An empty cell clears the property.",
    )


class IdMapping(_Strict):
    """One column of the file giving each row's id of one id type: a row's
    ids find (or create) its customer."""

    from_column: str = Field(
        min_length=1,
        description="The column (or constant column) holding the id. A cell is trimmed of "
        "surrounding spaces; an empty one gives no id of this type.",
    )
    # (the schema states the name rule; id_types.check_id_type_name checks it)
    to_id: str = Field(
        description="An id type the project knows (a new project knows `registered` and "
        "`cookie`; an administrator adds more). Each id type at most once in a mapping.",
        json_schema_extra=ID_TYPE_SCHEMA,
    )


class ConstantColumn(_Strict):
    """A column with one value in every row, which a `from_column` names as
    if the file had it."""

    name: str = Field(min_length=1, description="The column's name; each name once.")
    value: str | int | float = Field(
        description="Its value in every row: text, or a number, used as its JSON text "
        '(`1570000000` is the cell "1570000000"). true, false, null, lists and objects are '
        'refused: write "true" or "" as text.',
    )

    @field_validator("value", mode="before")
    @classmethod
    def _text_or_number(cls, value: Any) -> Any:
        # one sentence for what the union of three types would refuse three times
        if _constant_text(value) is None:
            sentence = _constant_problem(value)
            raise PydanticCustomError("mapping_constant", "{sentence}", {"sentence": sentence})
        return value


def _constant_text(value: Any) -> str | None:
    """A constant's cell: text as it is, a number as its JSON text; None for
    any other value."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # (any number of digits: no float in between)
    if isinstance(value, float) and math.isfinite(value):
        return json.dumps(value)
    return None


def _constant_problem(value: Any) -> str:
    if isinstance(value, float):  # 1e400 is read as inf
        return "too large a number (read as infinity); write it as text"
    if value is None:
        return 'null is neither text nor a number: write "" for an empty value'
    if isinstance(value, bool):
        word = json.dumps(value)
        return f'{word} is neither text nor a number: write "{word}" for the text {word}'
    if isinstance(value, dict):
        return "an object is neither text nor a number"
    if isinstance(value, list):
        return "a list is neither text nor a number"
    return f"{shown(value)} is neither text nor a number"


class UpdateTimestamp(_Strict):
    """Where each row's update timestamp comes from."""

    from_column: str = Field(
        min_length=1,
        description="The column (or constant column) holding the time of the row's update: "
        "UNIX seconds or ISO 8601 (without an offset: in `timezone`). A property is overwritten "
        "only by a newer update than the one it holds.",
    )


class MappingDocument(_Strict):
    """The import mapping, `mapping.json`: how the columns of a CSV file
    become customer updates. Unknown keys are refused and no value is
    converted (a number is not text). Every problem of a mapping, and of the
    file's header against it, is reported at once, each starting with its
    path, e.g. `properties[2].type: 'strng' is not one of string, ...`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "properties": [
                        {"from_column": "meno", "to_property": "first_name", "type": "string"}
                    ],
                    "ids": [{"from_column": "idecko", "to_id": "registered"}],
                    "update_timestamp": {"from_column": "update_timestamp"},
                    "constant_columns": [],
                    "timezone": "UTC",
                }
            ]
        }
    )

    properties: list[PropertyMapping] = Field(
        default_factory=list, description="Columns written to customer properties."
    )
    ids: list[IdMapping] = Field(
        min_length=1, description="Columns giving each row's customer ids; at least one."
    )
    constant_columns: list[ConstantColumn] = Field(
        default_factory=list, description="Columns with the same value in every row."
    )
    timezone: Annotated[str, AfterValidator(_known_zone)] = Field(
        default="UTC",
        description="The IANA name of the timezone times without an offset are read in, "
        "e.g. `Europe/Bratislava`.",
    )
    update_timestamp: UpdateTimestamp | None = Field(
        default=None,
        description="The column of each row's update timestamp; without it every row is "
        "stamped with the import execution's start time.",
    )
    delimiter: Delimiter | None = Field(
        default=None,
        description="The file's delimiter: `,`, `;`, tab or `|`; found from the header row "
        "when left out.",
    )


# ---------------------------------------------------------------- the mapping


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
    """A valid mapping as the importer uses it."""

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


def validate_mapping(
    document: Any, header: Sequence[str] | None, id_types: IdTypes | None = None
) -> ImportMapping:
    """The mapping, or InvalidMappingError listing every problem of it and of
    ``header`` (the file's header row; None: no columns to check), each
    starting with its path. Given ``id_types`` (the project's), every
    ``to_id`` must be one of them."""
    try:
        model: MappingDocument | None = MappingDocument.model_validate(document)
        problems = []
    except ValidationError as error:
        model, problems = None, _from_pydantic(error.errors(include_url=False))
    # the rules are read from the document itself, so that they are checked
    # wherever they can be read, whatever else is wrong
    problems += _rule_problems(document, header, id_types)
    lines = [f"{path_of(loc)}: {sentence}" for loc, sentence in sorted(problems, key=_order)]
    lines += repeated_columns(header) if header is not None else []
    if lines or model is None:
        raise InvalidMappingError(lines)
    return _import_mapping(model)


def repeated_columns(header: Sequence[str]) -> list[str]:
    """The header's problem, if it names a column twice (rows are read into
    column -> cell: one of the two would be lost)."""
    if len(set(header)) == len(header):
        return []
    repeated = sorted(column for column, count in Counter(header).items() if count > 1)
    return [
        f"header: the file's header repeats the column(s) {_listed(repeated)}; every column "
        "needs a name of its own"
    ]


def parse_mapping(document: Any, id_types: IdTypes | None = None) -> ImportMapping:
    """The mapping without a header to check its columns against: a plan's
    mapping parsed again (checked against its file when the execution was
    planned; without ``id_types``, id types are not checked against a project)."""
    return validate_mapping(document, None, id_types)


def _import_mapping(model: MappingDocument) -> ImportMapping:
    timestamp = model.update_timestamp
    return ImportMapping(
        properties=tuple(
            PropertyColumn(p.from_column, p.to_property, p.type) for p in model.properties
        ),
        ids=tuple(IdColumn(i.from_column, i.to_id) for i in model.ids),
        constants={c.name: _constant_text(c.value) or "" for c in model.constant_columns},
        timezone=ZoneInfo(model.timezone),
        timezone_name=model.timezone,
        update_timestamp_column=timestamp.from_column if timestamp else None,
        delimiter=model.delimiter,
    )


_LISTED_COLUMNS = 20


def _listed(columns: Sequence[str]) -> str:
    """Column names for a problem, at most 20 of them: a header may have
    100,000 columns, and problems are stored in the execution record."""
    listed = ", ".join(repr(column[:100]) for column in columns[:_LISTED_COLUMNS])
    more = len(columns) - _LISTED_COLUMNS
    return f"{listed} and {more} more" if more > 0 else listed


# ---------------------------------------------------------------- problems

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]
_NESTED: dict[str, type[_Strict]] = {
    "properties": PropertyMapping,
    "ids": IdMapping,
    "constant_columns": ConstantColumn,
    "update_timestamp": UpdateTimestamp,
}
_FIELD_ORDER = [
    *MappingDocument.model_fields,
    *{name: None for model in _NESTED.values() for name in model.model_fields},
]
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _from_pydantic(errors: list[ErrorDetails]) -> list[Problem]:
    """pydantic's errors as propsync's problems: the one place its error types
    become sentences (what was wrong, what is allowed), so every mapping
    problem reads alike whichever check found it."""
    return [(tuple(error["loc"]), _sentence(error)) for error in errors]


def _sentence(error: ErrorDetails) -> str:
    kind, value, loc = error["type"], error["input"], error["loc"]
    context = error.get("ctx") or {}
    if kind.startswith("mapping_"):  # raised by the model's own validators, worded there
        return error["msg"]
    if kind == "missing":
        return "missing; the key is required"
    if kind == "extra_forbidden":
        model = _NESTED[str(loc[0])] if len(loc) > 1 else MappingDocument
        return f"unknown key; allowed keys: {', '.join(model.model_fields)}"
    if kind == "literal_error":
        return f"{shown(value)} is not one of {_choices(loc)}"
    if kind == "string_type":
        return f"must be text (a JSON string), not {_json_kind(value)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "list_type":
        return f"must be a list, not {_json_kind(value)}"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"must be an object, not {_json_kind(value)}"
    if kind == "too_short":
        wanted = context.get("min_length")
        return (
            f"must have at least {wanted} {'entry' if wanted == 1 else 'entries'}, not {len(value)}"
        )
    return str(error["msg"])  # (no other type occurs; pydantic's own words if one does)


def _choices(loc: Loc) -> str:
    values = {"type": TYPES, "delimiter": DELIMITERS}[str(loc[-1])]
    return ", ".join(v if v.replace(" ", "").isalpha() else repr(v) for v in values)


def _json_kind(value: Any) -> str:
    """What a JSON value is, for a sentence saying what it should have been."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"a number: {shown(value)}"
    if isinstance(value, str):
        return f"text: {shown(value)}"
    if isinstance(value, list):
        return f"a list: {shown(value)}"
    if isinstance(value, dict):
        return f"an object: {shown(value)}"
    return f"a {type(value).__name__}"


def path_of(loc: Loc) -> str:
    """``properties[2].type``: where a problem is in the document (``mapping``:
    the document itself; a key that is no identifier is quoted in brackets)."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f"[{shown(part)}]" if path else f"mapping[{shown(part)}]"
    return path or "mapping"


def _order(problem: Problem) -> tuple[tuple[int, int, str], ...]:
    """Problems in the order of the document: by entry, then by key (the
    model's order, unknown keys last)."""

    def rank(part: str | int) -> tuple[int, int, str]:
        if isinstance(part, int):
            return (-1, part, "")
        known = part in _FIELD_ORDER
        return (_FIELD_ORDER.index(part) if known else len(_FIELD_ORDER), 0, part)

    return tuple(rank(part) for part in problem[0])


# ---------------------------------------------------------------- rules


def _rule_problems(
    document: Any, header: Sequence[str] | None, id_types: IdTypes | None
) -> list[Problem]:
    """What the schema cannot state, read wherever the document lets it be
    read (its shape's problems are pydantic's): property and id type names,
    the project's id types, nothing mapped or defined twice, constant ids, and
    every from_column against the header."""
    problems = _property_problems(document)
    id_problems, ids = _id_problems(document, id_types)
    constant_problems, constants = _constants(document)
    problems += id_problems + constant_problems
    for index, column, id_type in ids:
        if column not in constants:
            continue
        at, text = constants[column]
        value = _id_cell(text or "")
        if value:
            try:
                validate_customer_ids({id_type: value})
            except PropsyncError as error:
                problems.append(
                    (
                        ("constant_columns", at, "value"),
                        f"{error} (the column is ids[{index}].from_column)",
                    )
                )
    if header is not None:
        available = set(header) | set(constants)
        for loc, column in _column_references(document):
            if column and column not in available:
                problems.append(
                    (
                        loc,
                        f"{shown(column)} is neither a column of the file ({_listed(header)}) "
                        "nor a constant column",
                    )
                )
    return problems


def _entries(document: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
    """The objects of the document's list ``key``, with their indexes."""
    value = document.get(key) if isinstance(document, dict) else None
    if not isinstance(value, list):
        return []
    return [(index, entry) for index, entry in enumerate(value) if isinstance(entry, dict)]


def _text(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return value if isinstance(value, str) else None


def _property_problems(document: Any) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, entry in _entries(document, "properties"):
        name = _text(entry, "to_property")
        if name is None:
            continue
        loc: Loc = ("properties", index, "to_property")
        try:
            validate_property_name(name)
        except PropsyncError as error:
            problems.append((loc, str(error)))
            continue
        if name in seen:
            problems.append(
                (loc, f"property {shown(name)} is mapped twice (also by properties[{seen[name]}])")
            )
        else:
            seen[name] = index
    return problems


def _id_problems(
    document: Any, id_types: IdTypes | None
) -> tuple[list[Problem], list[tuple[int, str | None, str]]]:
    """The problems of the id types, and (index, from_column, to_id) of the
    entries whose id type may be used."""
    problems: list[Problem] = []
    usable: list[tuple[int, str | None, str]] = []
    seen: dict[str, int] = {}
    for index, entry in _entries(document, "ids"):
        id_type = _text(entry, "to_id")
        if id_type is None:
            continue
        loc: Loc = ("ids", index, "to_id")
        try:
            validate_customer_ids({id_type: "x"})
        except PropsyncError as error:
            problems.append((loc, str(error)))
            continue
        unknown = id_types.unknown_problem([id_type]) if id_types else None
        if unknown:  # a typo would import its rows as customers of their own
            problems.append((loc, unknown))
        elif id_type in seen:  # a customer has one id of a type: one column would be lost
            problems.append(
                (loc, f"id type {shown(id_type)} is mapped twice (also by ids[{seen[id_type]}])")
            )
        else:
            seen[id_type] = index
            usable.append((index, _text(entry, "from_column"), id_type))
    return problems, usable


def _constants(document: Any) -> tuple[list[Problem], dict[str, tuple[int, str | None]]]:
    """The problems of constant column names, and each name's index and
    value as text (None: not text or a number)."""
    problems: list[Problem] = []
    constants: dict[str, tuple[int, str | None]] = {}
    for index, entry in _entries(document, "constant_columns"):
        name = _text(entry, "name")
        if not name:
            continue
        if name in constants:  # the later value would silently win
            problems.append(
                (
                    ("constant_columns", index, "name"),
                    f"constant column {shown(name)} is defined twice "
                    f"(also by constant_columns[{constants[name][0]}])",
                )
            )
            continue
        constants[name] = (index, _constant_text(entry.get("value")))
    return problems, constants


def _column_references(document: Any) -> list[tuple[Loc, str]]:
    """Every from_column the document names, where it names it."""
    references: list[tuple[Loc, str]] = []
    for key in ("properties", "ids"):
        for index, entry in _entries(document, key):
            column = _text(entry, "from_column")
            if column is not None:
                references.append(((key, index, "from_column"), column))
    timestamp = document.get("update_timestamp") if isinstance(document, dict) else None
    column = _text(timestamp, "from_column") if isinstance(timestamp, dict) else None
    if column is not None:
        references.append((("update_timestamp", "from_column"), column))
    return references


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


class _NotJsonConstant(ValueError):
    """NaN, Infinity or -Infinity, which json.loads reads and JSON does not have."""


def _refuse_constant(name: str) -> Any:
    raise _NotJsonConstant(name)


def mapping_document(text: str | bytes) -> Any:
    """mapping.json as JSON, or InvalidMappingError; validate_mapping checks it."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except _NotJsonConstant as error:
        problem = f"{error} is not JSON (JSON has no NaN or Infinity): write a number or text"
    except json.JSONDecodeError as error:
        problem = f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
    except UnicodeDecodeError:
        problem = "not valid JSON: it is not UTF-8 text"
    except ValueError:  # an integer of more digits than Python converts
        problem = "not valid JSON"
    except RecursionError:
        problem = "nests lists or objects too deeply to be read (a mapping needs 3 levels)"
    raise InvalidMappingError([f"mapping.json: {problem}"])


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
