"""The import mapping: shape, columns, types, times and timezones."""

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync.errors import (
    InvalidCellError,
    InvalidCustomerIdsError,
    InvalidMappingError,
    InvalidPropertyError,
    InvalidTimestampError,
    UnknownIdTypeError,
)
from propsync.id_types import DEFAULT_ID_TYPES
from propsync.identity import validate_customer_ids
from propsync.import_mapping import (
    TYPES,
    mapping_document,
    parse_cell,
    parse_mapping,
    parse_time,
    parse_update_time,
    row_ids,
    validate_mapping,
)
from propsync.properties import encode_property_value

NOW = 1_700_000_000.0
PRODUCT_MAPPING = {
    "properties": [{"from_column": "meno", "to_property": "first_name", "type": "string"}],
    "update_timestamp": {"from_column": "update_timestamp"},
    "ids": [{"from_column": "idecko", "to_id": "registered"}],
    "constant_columns": [],
    "timezone": "UTC",
}


def test_the_product_documents_mapping_parses():
    mapping = parse_mapping(PRODUCT_MAPPING)
    assert mapping.properties[0].name == "first_name"
    assert mapping.ids[0].id_type == "registered"
    assert mapping.update_timestamp_column == "update_timestamp"
    assert mapping.timezone_name == "UTC"
    assert validate_mapping(PRODUCT_MAPPING, ["idecko", "meno", "update_timestamp"]) == mapping


def test_every_problem_is_listed_at_once():
    with pytest.raises(InvalidMappingError) as raised:
        parse_mapping(
            {
                "properties": [
                    {"from_column": "a", "to_property": "x", "type": "colour"},
                    {"from_column": "b", "to_property": "", "type": "string"},
                    {"from_column": "c", "to_property": "y", "type": "string", "extra": 1},
                    {"from_column": "d", "type": "string"},
                    {"from_column": "e", "to_property": "z", "type": "string"},
                    {"from_column": "f", "to_property": "z", "type": "string"},
                ],
                "ids": [],
                "timezone": "Mars/Olympus",
                "update_timestamp": "col",
                "delimiter": ":",
                "surprise": True,
            }
        )
    problems = "\n".join(raised.value.problems)
    for expected in [
        "surprise: unknown key; allowed keys: properties, ids,",
        "properties[0].type: 'colour' is not one of string, long text,",
        "properties[1].to_property: property name must not be empty",
        "properties[2].extra: unknown key; allowed keys: from_column, to_property, type",
        "properties[3].to_property: missing; the key is required",
        "properties[5].to_property: property 'z' is mapped twice (also by properties[4])",
        "ids: must have at least 1 entry, not 0",
        "timezone: unknown timezone 'Mars/Olympus'",
        "update_timestamp: must be an object, not text: 'col'",
        "delimiter: ':' is not one of ',', ';', '\\t', '|'",
    ]:
        assert expected in problems, expected


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        (
            {"ids": [{"from_column": None, "to_id": []}]},
            "ids[0].from_column: must be text (a JSON string), not null",
        ),
        (
            {
                "ids": [{"from_column": "a", "to_id": "registered"}],
                "properties": [{"from_column": 1, "to_property": "x", "type": "string"}],
            },
            "properties[0].from_column: must be text (a JSON string), not a number: 1",
        ),
        (
            {
                "ids": [{"from_column": "a", "to_id": "registered"}],
                "update_timestamp": {"from_column": 5},
            },
            "update_timestamp.from_column: must be text (a JSON string), not a number: 5",
        ),
        (
            {
                "ids": [{"from_column": "a", "to_id": "registered"}],
                "constant_columns": [{"name": ["x"], "value": 1}],
            },
            "constant_columns[0].name: must be text (a JSON string), not a list: ['x']",
        ),
    ],
)
def test_fields_that_are_not_text_are_refused(mapping, problem):
    with pytest.raises(InvalidMappingError) as raised:
        parse_mapping(mapping)
    assert problem in raised.value.problems


def test_columns_must_exist_in_the_header_or_as_constants():
    mapping = {
        **PRODUCT_MAPPING,
        "constant_columns": [{"name": "update_timestamp", "value": 1570000000}],
    }
    validate_mapping(mapping, ["idecko", "meno"])  # the timestamp is a constant column
    with pytest.raises(InvalidMappingError) as raised:
        validate_mapping(mapping, ["id", "meno", "meno"])
    assert raised.value.problems == [
        "ids[0].from_column: 'idecko' is neither a column of the file ('id', 'meno', 'meno') "
        "nor a constant column",
        "header: the file's header repeats the column(s) 'meno'; every column needs a name of "
        "its own",
    ]


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("1570001049", "UTC", 1570001049.0),
        ("1570001049.25", "UTC", 1570001049.25),
        ("2018-08-05", "UTC", datetime(2018, 8, 5, tzinfo=UTC).timestamp()),
        ("2018-8-5 12:20:25", "UTC", datetime(2018, 8, 5, 12, 20, 25, tzinfo=UTC).timestamp()),
        ("2018-8-5T12:20:25Z", "UTC", datetime(2018, 8, 5, 12, 20, 25, tzinfo=UTC).timestamp()),
        (
            "2018-8-5 12:20:25.555Z",
            "UTC",
            datetime(2018, 8, 5, 12, 20, 25, tzinfo=UTC).timestamp() + 0.555,
        ),
        (
            "2018-08-05T12:20:25+01:00",
            "UTC",
            datetime(2018, 8, 5, 11, 20, 25, tzinfo=UTC).timestamp(),
        ),
        (
            "2018-08-05T12:20:25+0100",
            "UTC",
            datetime(2018, 8, 5, 11, 20, 25, tzinfo=UTC).timestamp(),
        ),
        (
            "2018-08-05T12:20:25-05:30",
            "UTC",
            datetime(2018, 8, 5, 17, 50, 25, tzinfo=UTC).timestamp(),
        ),
        ("2018-08-05 12:20", "UTC", datetime(2018, 8, 5, 12, 20, tzinfo=UTC).timestamp()),
        # naive times are read in the mapping's timezone (summer time: UTC+2)
        (
            "2018-08-05 12:20:25",
            "Europe/Bratislava",
            datetime(2018, 8, 5, 10, 20, 25, tzinfo=UTC).timestamp(),
        ),
        # an explicit offset wins over the mapping's timezone
        (
            "2018-08-05 12:20:25Z",
            "Europe/Bratislava",
            datetime(2018, 8, 5, 12, 20, 25, tzinfo=UTC).timestamp(),
        ),
    ],
)
def test_time_formats(text, zone, expected):
    assert parse_time(text, ZoneInfo(zone)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1570001049000", "looks like milliseconds"),
        ("yesterday", "is not a time"),
        ("2018-13-01", "not a valid date"),
        ("2018-02-30 10:00", "not a valid date"),
        ("05/08/2018", "is not a time"),
    ],
)
def test_bad_times_are_refused_with_a_reason(text, message):
    with pytest.raises(InvalidTimestampError, match=message):
        parse_time(text, UTC)


def test_update_times_get_the_future_skew_guard_and_no_negatives():
    assert parse_update_time("1699999999", UTC, now=NOW) == 1699999999.0
    with pytest.raises(InvalidTimestampError, match="in the future"):
        parse_update_time("1800000000", UTC, now=NOW)
    with pytest.raises(InvalidTimestampError, match="negative"):
        parse_update_time("1969-12-31", UTC, now=NOW)


@pytest.mark.parametrize(
    ("text", "type_name", "expected"),
    [
        ("Marian", "string", "Marian"),
        ("  keeps spaces ", "string", "  keeps spaces "),
        ("a long\nstory", "long text", "a long\nstory"),
        ("42", "number", 42),
        ("-7", "number", -7),
        ("3.14", "number", Decimal("3.14")),
        ("1e3", "number", Decimal("1E+3")),
        ("12345678901234567890123", "number", 12345678901234567890123),
        ("TRUE", "boolean", True),
        ("Yes", "boolean", True),
        ("1", "boolean", True),
        ("false", "boolean", False),
        ("NO", "boolean", False),
        ("0", "boolean", False),
        ("2018-08-05", "date", 1533427200),
        ("1950-01-01", "date", -631152000),
        ("2018-08-05T12:20:25.5Z", "datetime", Decimal("1533471625.5")),
        ("2099-01-01T00:00:00Z", "datetime", 4070908800),
        ('[1, "a", 2.50]', "list", [1, "a", Decimal("2.50")]),
        ('{"a": {"b": null}}', "object", {"a": {"b": None}}),
    ],
)
def test_cell_types(text, type_name, expected):
    assert parse_cell(text, type_name, UTC) == expected


def test_dates_are_midnight_in_the_mappings_timezone():
    assert parse_cell("2018-08-05", "date", ZoneInfo("Europe/Bratislava")) == 1533420000


@pytest.mark.parametrize(
    ("text", "type_name", "message"),
    [
        ("forty", "number", "is not a number"),
        ("NaN", "number", "is not a number"),
        ("1,5", "number", "is not a number"),
        ("maybe", "boolean", "is not a boolean"),
        ("soon", "date", "is not a time"),
        ("1570001049000", "datetime", "milliseconds"),
        ('{"a": 1}', "list", "is not a JSON array"),
        ("[1]", "object", "is not a JSON object"),
        ("[1", "list", "is not JSON"),
    ],
)
def test_cells_that_do_not_parse_say_why(text, type_name, message):
    with pytest.raises(InvalidCellError, match=message):
        parse_cell(text, type_name, UTC)


def test_an_id_type_mapped_from_two_columns_is_refused_with_the_other_problems():
    """Two columns for one id type: the last one silently won (dupB imported,
    dupA dropped). Refused as a property mapped twice is."""
    with pytest.raises(InvalidMappingError) as raised:
        parse_mapping(
            {
                "properties": [
                    {"from_column": "e", "to_property": "z", "type": "string"},
                    {"from_column": "f", "to_property": "z", "type": "string"},
                ],
                "ids": [
                    {"from_column": "crm_id", "to_id": "registered"},
                    {"from_column": "email_id", "to_id": "registered"},
                    {"from_column": "mail", "to_id": "email"},
                    {"from_column": "mail2", "to_id": "email"},
                    {"from_column": "phone", "to_id": "phone"},
                ],
                "timezone": "Mars/Olympus",
            }
        )
    assert raised.value.problems == [
        "properties[1].to_property: property 'z' is mapped twice (also by properties[0])",
        "ids[1].to_id: id type 'registered' is mapped twice (also by ids[0])",
        "ids[3].to_id: id type 'email' is mapped twice (also by ids[2])",
        "timezone: unknown timezone 'Mars/Olympus'; use an IANA name such as 'UTC' or "
        "'Europe/Bratislava'",
    ]


def test_one_column_may_give_two_id_types():
    mapping = parse_mapping(
        {
            "properties": [],
            "ids": [
                {"from_column": "mail", "to_id": "email"},
                {"from_column": "mail", "to_id": "registered"},
            ],
        }
    )
    assert row_ids(mapping, {"mail": "a@b.c"}) == {"email": "a@b.c", "registered": "a@b.c"}


def test_row_ids_skip_empty_cells_and_use_constants():
    mapping = parse_mapping(
        {
            "properties": [],
            "ids": [
                {"from_column": "email", "to_id": "email"},
                {"from_column": "reg", "to_id": "registered"},
                {"from_column": "source", "to_id": "crm"},
            ],
            "constant_columns": [{"name": "source", "value": "crm-1"}],
        }
    )
    assert row_ids(mapping, {"email": " a@b.c ", "reg": ""}) == {"email": "a@b.c", "crm": "crm-1"}


# Numbers and times at and past what Decimal, int and float hold, and JSON
# holding them: the cells that used to escape as OverflowError, ValueError
# or decimal.InvalidOperation and stall their chunk.
huge_numbers = st.from_regex(r"[+-]?\d{1,6000}(\.\d{0,50})?([eE][+-]?\d{1,25})?", fullmatch=True)
hostile_cells = st.one_of(
    st.text(),
    huge_numbers,
    huge_numbers.map(lambda number: f"[{number}]"),
    huge_numbers.map(lambda number: f'{{"a": [{number}]}}'),
    st.integers(1, 20_000).map(lambda depth: "[" * depth + "]" * depth),
)


CELLS = settings(max_examples=400, deadline=None)


@CELLS
@given(text=hostile_cells, type_name=st.sampled_from(TYPES))
def test_any_cell_is_a_value_or_refused_with_a_short_reason(text, type_name):
    try:
        encode_property_value("p", parse_cell(text, type_name, UTC))
    except (InvalidCellError, InvalidPropertyError) as error:  # the row is rejected
        reason = str(error)
    else:
        return
    assert 0 < len(reason) < 500  # a reason, not an echo of a cell of any size


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(), huge_numbers))
def test_any_update_timestamp_cell_is_a_time_or_refused_with_a_reason(text):
    try:
        parse_update_time(text, UTC, now=NOW)
    except InvalidTimestampError as error:
        reason = str(error)
    else:
        return
    assert 0 < len(reason) < 500


ID_MAPPING = {"properties": [], "ids": [{"from_column": "id", "to_id": "registered"}]}


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("x" * 1025, "customer_ids.registered is 1025 bytes; at most 1024 are allowed"),
        ("x" * 3000, "customer_ids.registered is 3000 bytes; at most 1024 are allowed"),
        ("a\nb", "customer_ids.registered contains a control character"),
        ("a\x00b", "customer_ids.registered contains a control character"),
        ("a\x7fb", "customer_ids.registered contains a control character"),
    ],
)
def test_row_ids_are_validated_as_tracking_validates_customer_ids(cell, message):
    with pytest.raises(InvalidCustomerIdsError) as raised:
        row_ids(parse_mapping(ID_MAPPING), {"id": cell})
    assert str(raised.value).startswith(message)
    with pytest.raises(InvalidCustomerIdsError) as tracking:
        validate_customer_ids({"registered": cell})
    assert str(raised.value) == str(tracking.value)  # one validator, one sentence


@settings(max_examples=300)
@given(cell=st.text(min_size=1))
def test_an_id_an_import_accepts_is_one_tracking_accepts(cell):
    try:
        ids = row_ids(parse_mapping(ID_MAPPING), {"id": cell})
    except InvalidCustomerIdsError:
        return
    if ids:  # (a blank cell is no id: the row is rejected for that)
        assert validate_customer_ids(ids) == ids


# Every character str.strip() would take off an end (whitespace, including the
# control characters \x1c-\x1f, \x85, NBSP and \u2028), and other controls.
edge_chars = st.one_of(
    st.sampled_from([c for c in map(chr, range(0x3000 + 1)) if c.isspace()]),
    st.characters(categories=["Cc", "Zs", "Zl", "Zp"]),
)


@settings(max_examples=300)
@given(
    head=st.text(edge_chars, max_size=3),
    core=st.text(min_size=1, max_size=8),
    tail=st.text(edge_chars, max_size=3),
)
def test_an_id_cell_is_never_imported_as_a_different_id(head, core, tail):
    """Only spaces are trimmed (README): anything else at either end is part of
    the id, which tracking's validator then accepts or refuses, with its own
    sentence; `us\x1f` is never imported as `us`."""
    cell = head + core + tail
    expected = cell.strip(" ")
    assert _outcome(lambda: row_ids(parse_mapping(ID_MAPPING), {"id": cell})) == _outcome(
        lambda: validate_customer_ids({"registered": expected}) if expected else {}
    )


def _outcome(call):
    """What a call answers: its ids, or the sentence it refuses them with."""
    try:
        return call()
    except InvalidCustomerIdsError as error:
        return ("refused", str(error))


@pytest.mark.parametrize("cell", ["us\x1f", "\x1cus", "us\x85", "us\r", "\tus", "us\n"])
def test_an_id_cell_with_a_control_character_at_an_end_is_refused(cell):
    with pytest.raises(InvalidCustomerIdsError, match="contains a control character"):
        row_ids(parse_mapping(ID_MAPPING), {"id": cell})


def test_a_constant_id_with_a_control_character_at_an_end_is_refused():
    with pytest.raises(InvalidMappingError, match="contains a control character"):
        parse_mapping({**ID_MAPPING, "constant_columns": [{"name": "id", "value": "us\x1f"}]})


def test_the_edge_of_the_id_limit_is_accepted():
    assert row_ids(parse_mapping(ID_MAPPING), {"id": "é" * 512}) == {"registered": "é" * 512}


def test_a_constant_id_column_is_validated_with_the_mapping():
    with pytest.raises(InvalidMappingError) as raised:
        parse_mapping({**ID_MAPPING, "constant_columns": [{"name": "id", "value": "a\tb"}]})
    assert raised.value.problems == [
        "constant_columns[0].value: customer_ids.registered contains a control character; "
        "they are not allowed in ids (the column is ids[0].from_column)"
    ]


def test_a_very_wide_header_is_named_in_part():
    mapping = {**ID_MAPPING, "ids": [{"from_column": "nope", "to_id": "registered"}]}
    header = [f"c{i}" for i in range(100_000)]
    with pytest.raises(InvalidMappingError) as raised:
        validate_mapping(mapping, [*header, "c1"])
    [missing, repeated] = raised.value.problems
    assert missing.startswith("ids[0].from_column: 'nope' is neither a column of the file")
    assert "'c19' and 99981 more" in missing
    assert repeated.startswith("header: the file's header repeats the column(s) 'c1';")


def test_a_mapping_nested_too_deep_for_json_is_a_mapping_problem():
    with pytest.raises(InvalidMappingError, match="nests lists or objects too deeply"):
        mapping_document("[" * 100_000 + "]" * 100_000)


non_ascii_digits = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())


@settings(max_examples=200)
@given(
    digit=non_ascii_digits,
    at=st.integers(0, 9),
    kind=st.sampled_from(["number", "date", "datetime"]),
)
def test_only_ascii_digits_make_numbers_and_times(digit, at, kind):
    """int(), Decimal() and date() read any script's digits (Arabic-Indic, fullwidth);
    a cell that holds one is refused, not stored as another number or day."""
    valid = {"number": "2018080512", "date": "2018-08-05", "datetime": "2018-08-05T10:20"}[kind]
    at = min(at, len(valid) - 1)
    if not valid[at].isdigit():
        at = 0
    cell = valid[:at] + digit + valid[at + 1 :]
    with pytest.raises(InvalidCellError):
        parse_cell(cell, kind, UTC)


ID_TYPE_NAMES = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", min_size=1, max_size=64
)


@given(
    st.lists(
        ID_TYPE_NAMES | st.sampled_from(DEFAULT_ID_TYPES.known), min_size=1, max_size=4, unique=True
    )
)
def test_a_mapping_may_map_only_id_types_the_project_knows(names):
    """Given the project's id types, every to_id it does not know is a problem
    of its own, worded as tracking refuses that id type; without them (a
    plan's mapping parsed again) the names are not checked against a project."""
    mapping = {
        **PRODUCT_MAPPING,
        "ids": [{"from_column": f"c{i}", "to_id": n} for i, n in enumerate(names)],
    }
    unknown = [(i, n) for i, n in enumerate(names) if n not in DEFAULT_ID_TYPES.known]
    assert [c.id_type for c in parse_mapping(mapping).ids] == names
    if not unknown:
        assert [c.id_type for c in parse_mapping(mapping, DEFAULT_ID_TYPES).ids] == names
        return
    with pytest.raises(InvalidMappingError) as raised:
        parse_mapping(mapping, DEFAULT_ID_TYPES)
    for problem, (i, name) in zip(raised.value.problems, unknown, strict=True):
        with pytest.raises(UnknownIdTypeError) as tracking:
            DEFAULT_ID_TYPES.check({name: "x"})
        assert problem == f"ids[{i}].to_id: {tracking.value}"
