"""The mapping's schema (the pydantic model MappingDocument) and its one-round
check: every problem of a mapping and of the file's header at once, each
starting with its path in the document."""

import copy
import json
import re

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync.errors import InvalidCustomerIdsError, InvalidMappingError, InvalidPropertyError
from propsync.id_types import DEFAULT_ID_TYPES, check_id_type_name
from propsync.import_mapping import (
    TYPES,
    ImportMapping,
    MappingDocument,
    mapping_document,
    parse_mapping,
    validate_mapping,
)
from propsync.properties import validate_property_name

HEADER = ["id", "email", "name", "age", "ts"]
VALID = {
    "properties": [
        {"from_column": "email", "to_property": "email", "type": "string"},
        {"from_column": "name", "to_property": "name", "type": "string"},
        {"from_column": "age", "to_property": "age", "type": "number"},
    ],
    "ids": [{"from_column": "id", "to_id": "registered"}],
    "constant_columns": [{"name": "source", "value": "crm"}],
    "timezone": "Europe/Bratislava",
    "update_timestamp": {"from_column": "ts"},
    "delimiter": ",",
}
# A problem starts with its path in the document: a top-level key (or
# `mapping` for the document itself, `header` for the file's header), then
# [index] and .key parts; a key that is no identifier is quoted in brackets.
PATH = re.compile(r"(?:mapping|header|[A-Za-z_]\w*)(?:\[\d+\]|\.[A-Za-z_]\w*|\[.+?\])*: \S")


def problems_of(document, header=HEADER, id_types=DEFAULT_ID_TYPES):
    with pytest.raises(InvalidMappingError) as raised:
        validate_mapping(document, header, id_types)
    return raised.value.problems


def test_a_valid_mapping_is_accepted():
    mapping = validate_mapping(VALID, HEADER, DEFAULT_ID_TYPES)
    assert [(p.column, p.name, p.type) for p in mapping.properties] == [
        ("email", "email", "string"),
        ("name", "name", "string"),
        ("age", "age", "number"),
    ]
    assert mapping.constants == {"source": "crm"}
    assert mapping.timezone_name == "Europe/Bratislava"
    assert mapping.update_timestamp_column == "ts"
    assert mapping.delimiter == ","


def test_shape_domain_and_header_problems_come_in_one_round_each_with_its_path():
    """Before, the header was checked only once the shape passed: a user fixed
    these shape problems and then met the column ones."""
    document = {
        "properties": [
            {"from_column": "email", "to_property": "email", "type": "string"},
            {"from_column": "Email", "to_property": "mail", "type": "string"},
            {"from_column": "name", "to_property": "name", "type": "strng"},
            {"from_column": "age", "to_property": "email", "type": "number"},
        ],
        "ids": [{"from_column": "id", "to_id": "emial"}],
        "timezone": "Europe/Bratislav",
        "update_timestamp": {"from_column": "updated"},
        "colour": "red",
    }
    assert problems_of(document, ["email", "name", "id", "age", "name"]) == [
        "properties[1].from_column: 'Email' is neither a column of the file "
        "('email', 'name', 'id', 'age', 'name') nor a constant column",
        "properties[2].type: 'strng' is not one of string, long text, number, boolean, date, "
        "datetime, list, object",
        "properties[3].to_property: property 'email' is mapped twice (also by properties[0])",
        "ids[0].to_id: id type 'emial' is not known to this project; known id types: "
        "cookie (soft), registered (hard); an administrator adds id types with "
        "`propsync set-id-type`",
        "timezone: unknown timezone 'Europe/Bratislav'; use an IANA name such as 'UTC' or "
        "'Europe/Bratislava'",
        "update_timestamp.from_column: 'updated' is neither a column of the file "
        "('email', 'name', 'id', 'age', 'name') nor a constant column",
        "colour: unknown key; allowed keys: properties, ids, constant_columns, timezone, "
        "update_timestamp, delimiter",
        "header: the file's header repeats the column(s) 'name'; every column needs a name "
        "of its own",
    ]


def test_columns_are_checked_even_when_the_entry_holding_them_has_other_problems():
    document = {
        "properties": [{"from_column": "nope", "to_property": 5, "type": "colour", "x": 1}],
        "ids": [{"from_column": "gone", "to_id": ["registered"]}],
        "constant_columns": "none",
    }
    assert problems_of(document) == [
        "properties[0].from_column: 'nope' is neither a column of the file "
        "('id', 'email', 'name', 'age', 'ts') nor a constant column",
        "properties[0].to_property: must be text (a JSON string), not a number: 5",
        "properties[0].type: 'colour' is not one of string, long text, number, boolean, date, "
        "datetime, list, object",
        "properties[0].x: unknown key; allowed keys: from_column, to_property, type",
        "ids[0].from_column: 'gone' is neither a column of the file "
        "('id', 'email', 'name', 'age', 'ts') nor a constant column",
        "ids[0].to_id: must be text (a JSON string), not a list: ['registered']",
        "constant_columns: must be a list, not text: 'none'",
    ]


@pytest.mark.parametrize(
    ("where", "allowed"),
    [
        ((), "properties, ids, constant_columns, timezone, update_timestamp, delimiter"),
        (("properties", 1), "from_column, to_property, type"),
        (("ids", 0), "from_column, to_id"),
        (("constant_columns", 0), "name, value"),
        (("update_timestamp",), "from_column"),
    ],
)
def test_unknown_keys_are_refused_at_every_level(where, allowed):
    document = copy.deepcopy(VALID)
    entry = document
    for part in where:
        entry = entry[part]
    entry["surprise"] = "x"
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where).lstrip(".")
    path = f"{path}.surprise" if path else "surprise"
    assert problems_of(document) == [f"{path}: unknown key; allowed keys: {allowed}"]


def test_a_key_that_is_no_identifier_is_quoted_in_its_path():
    document = {**VALID, "a b": 1, "ids": [{**VALID["ids"][0], "x" * 100: 1}]}
    assert problems_of(document) == [
        f"ids[0][{'x' * 17 + '...' + 'x' * 18!r}]: unknown key; allowed keys: from_column, to_id",
        "mapping['a b']: unknown key; allowed keys: properties, ids, constant_columns, "
        "timezone, update_timestamp, delimiter",
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"properties": [{"from_column": "age", "to_property": "age", "type": "Number"}]},
            "properties[0].type: 'Number' is not one of string, long text, number, boolean, "
            "date, datetime, list, object",
        ),
        (
            {"ids": [{"from_column": "id", "to_id": "registred"}]},
            "ids[0].to_id: id type 'registred' is not known to this project; known id types: "
            "cookie (soft), registered (hard); an administrator adds id types with "
            "`propsync set-id-type`",
        ),
        (
            {"ids": [{"from_column": "id", "to_id": "reg istered"}]},
            "ids[0].to_id: id type 'reg istered' is not allowed: use 1 to 64 letters, digits, "
            "'_', '.' or '-'",
        ),
        (
            {"timezone": "Europe/Bratislav"},
            "timezone: unknown timezone 'Europe/Bratislav'; use an IANA name such as 'UTC' or "
            "'Europe/Bratislava'",
        ),
        (
            {"timezone": "../../etc/passwd"},
            "timezone: unknown timezone '../../etc/passwd'; use an IANA name such as 'UTC' or "
            "'Europe/Bratislava'",
        ),
        ({"timezone": 1}, "timezone: must be text (a JSON string), not a number: 1"),
        (
            {"delimiter": ":"},
            "delimiter: ':' is not one of ',', ';', '\\t', '|'",
        ),
        ({"ids": []}, "ids: must have at least 1 entry, not 0"),
        ({"properties": {"a": 1}}, "properties: must be a list, not an object: {'a': 1}"),
        ({"update_timestamp": "ts"}, "update_timestamp: must be an object, not text: 'ts'"),
        (
            {"properties": [{"from_column": "", "to_property": "x", "type": "string"}]},
            "properties[0].from_column: must not be empty",
        ),
        (
            {"properties": [{"from_column": "age", "to_property": "", "type": "string"}]},
            "properties[0].to_property: property name must not be empty",
        ),
        (
            {"properties": [{"from_column": "age", "to_property": "type"}]},
            "properties[0].type: missing; the key is required",
        ),
    ],
)
def test_each_problem_says_where_and_what_is_allowed(change, problem):
    assert problems_of({**VALID, **change}) == [problem]


def test_a_mapping_that_is_no_object_is_one_problem_of_the_mapping():
    assert problems_of([VALID]) == ["mapping: must be an object, not a list: [{...}]"]


def test_ids_are_required():
    document = {key: value for key, value in VALID.items() if key != "ids"}
    assert problems_of(document) == ["ids: missing; the key is required"]


def test_an_id_type_mapped_twice_names_both_entries():
    document = {
        **VALID,
        "ids": [
            {"from_column": "id", "to_id": "registered"},
            {"from_column": "email", "to_id": "registered"},
        ],
    }
    assert problems_of(document) == [
        "ids[1].to_id: id type 'registered' is mapped twice (also by ids[0])"
    ]


def test_a_constant_column_defined_twice_is_refused():
    """The later value silently won before."""
    document = {
        **VALID,
        "constant_columns": [{"name": "source", "value": "a"}, {"name": "source", "value": "b"}],
    }
    assert problems_of(document) == [
        "constant_columns[1].name: constant column 'source' is defined twice "
        "(also by constant_columns[0])"
    ]


def test_a_constant_id_value_is_checked_as_tracking_checks_ids():
    document = {
        **VALID,
        "ids": [{"from_column": "source", "to_id": "registered"}],
        "constant_columns": [{"name": "source", "value": "a\tb"}],
    }
    assert problems_of(document) == [
        "constant_columns[0].value: customer_ids.registered contains a control character; "
        "they are not allowed in ids (the column is ids[0].from_column)"
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("crm", "crm"),
        ("", ""),
        (1570000000, "1570000000"),
        (1.5, "1.5"),
        (-2, "-2"),
        (-0.0, "-0.0"),
        (1e20, "1e+20"),
        # no float holds it: an OverflowError before
        pytest.param(10**4000, "1" + "0" * 4000, id="4001 digits"),
    ],
)
def test_a_constant_value_is_text_or_a_number_written_as_its_json_text(value, text):
    document = {**VALID, "constant_columns": [{"name": "source", "value": value}]}
    assert validate_mapping(document, HEADER).constants == {"source": text}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (True, 'true is neither text nor a number: write "true" for the text true'),
        (False, 'false is neither text nor a number: write "false" for the text false'),
        (None, 'null is neither text nor a number: write "" for an empty value'),
        ({"a": 1}, "an object is neither text nor a number"),
        ([1], "a list is neither text nor a number"),
        (float("inf"), "too large a number (read as infinity); write it as text"),
    ],
)
def test_a_constant_value_that_is_neither_text_nor_a_number_is_refused(value, problem):
    """`true` became "True" through str() before."""
    document = {**VALID, "constant_columns": [{"name": "source", "value": value}]}
    assert problems_of(document) == [f"constant_columns[0].value: {problem}"]


@pytest.mark.parametrize(
    "text",
    [
        '{"ids": [{"from_column": "id", "to_id": "registered"}], '
        '"constant_columns": [{"name": "n", "value": NaN}]}',
        '{"ids": [], "x": Infinity}',
        '{"ids": [], "x": [-Infinity]}',
    ],
)
def test_nan_and_infinity_are_refused_as_json(text):
    """json.loads reads them as floats; JSON has neither."""
    with pytest.raises(InvalidMappingError) as raised:
        mapping_document(text)
    [problem] = raised.value.problems
    assert problem.startswith("mapping.json: ")
    assert re.search(r"(NaN|-?Infinity) is not JSON", problem), problem


def test_json_syntax_errors_say_where():
    with pytest.raises(InvalidMappingError) as raised:
        mapping_document('{"ids": [}')
    assert raised.value.problems == [
        "mapping.json: not valid JSON: Expecting value at line 1, column 10"
    ]


def test_parse_mapping_checks_the_mapping_without_a_header():
    """What a plan's mapping is parsed again with: no columns to check."""
    mapping = parse_mapping({**VALID, "update_timestamp": {"from_column": "elsewhere"}})
    assert mapping.update_timestamp_column == "elsewhere"
    with pytest.raises(InvalidMappingError) as raised:
        parse_mapping({**VALID, "timezone": "Mars"})
    assert raised.value.problems == [
        "timezone: unknown timezone 'Mars'; use an IANA name such as 'UTC' or 'Europe/Bratislava'"
    ]


# ---------------------------------------------------------------- the schema


SCHEMA = MappingDocument.model_json_schema()


def test_the_json_schema_documents_every_field():
    definitions = SCHEMA["$defs"]
    documented = {
        "MappingDocument": SCHEMA,
        **{name: definitions[name] for name in definitions},
    }
    for model in ("PropertyMapping", "IdMapping", "ConstantColumn", "UpdateTimestamp"):
        assert model in documented
    for model in documented.values():
        assert model["additionalProperties"] is False
        assert model["description"]
        for name, field in model["properties"].items():
            assert field.get("description"), name
    assert definitions["PropertyMapping"]["properties"]["type"]["enum"] == list(TYPES)
    assert SCHEMA["required"] == ["ids"]


@given(
    st.text(max_size=70)
    | st.from_regex(r"[A-Za-z0-9_.\-]{60,70}", fullmatch=True)
    | st.from_regex(r"[A-Za-z0-9_.\-]{1,64}\n", fullmatch=True)
)
def test_the_schema_states_the_id_type_and_property_name_rules_the_code_checks(name):
    """The schema documents rules pydantic does not check (the validators
    tracking uses do): it must say what they say."""
    id_type = SCHEMA["$defs"]["IdMapping"]["properties"]["to_id"]
    try:
        check_id_type_name(name)
        allowed = True
    except InvalidCustomerIdsError:
        allowed = False
    assert allowed == jsonschema.Draft202012Validator(id_type).is_valid(name)
    to_property = SCHEMA["$defs"]["PropertyMapping"]["properties"]["to_property"]
    if not jsonschema.Draft202012Validator(to_property).is_valid(name):
        with pytest.raises(InvalidPropertyError):
            validate_property_name(name)


def test_the_schemas_example_is_a_valid_mapping():
    [example] = SCHEMA["examples"]
    jsonschema.validate(example, SCHEMA)
    assert isinstance(parse_mapping(example, DEFAULT_ID_TYPES), ImportMapping)


# ---------------------------------------------------------------- mutations

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(10**300, 10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=5,
)
FIELDS = {
    "properties", "ids", "constant_columns", "timezone", "update_timestamp", "delimiter",
    "from_column", "to_property", "type", "to_id", "name", "value",
}  # fmt: skip
REQUIRED = {"ids", "from_column", "to_property", "type", "to_id", "name", "value"}
UNKNOWN_KEYS = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda key: key not in FIELDS
)


def places(document):
    """Every (path parts, object) of the document's structure: where a key
    can be dropped, added or changed (not an object a change put where a list
    belongs: its keys are no keys of the mapping)."""
    found = [((), document)]
    for key, value in document.items():
        if key == "update_timestamp" and isinstance(value, dict):
            found.append(((key,), value))
        elif key in {"properties", "ids", "constant_columns"} and isinstance(value, list):
            found += [((key, i), entry) for i, entry in enumerate(value) if isinstance(entry, dict)]
    return found


def path_of(parts):
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


@st.composite
def mutated(draw):
    """A valid mapping with a few keys dropped, added, changed to another
    value of any type, or columns renamed; with the problems it must have:
    (path parts, whether the key is there) of each unknown key added and each
    required key dropped."""
    document = copy.deepcopy(VALID)
    expected = []
    for _ in range(draw(st.integers(1, 3))):
        where, entry = draw(st.sampled_from(places(document)))
        action = draw(st.sampled_from(["drop", "add", "change", "rename"]))
        if action == "add":
            key = draw(UNKNOWN_KEYS)
            entry[key] = draw(json_values)
            expected.append(((*where, key), True))
        elif action == "drop" and entry:
            key = draw(st.sampled_from(sorted(entry)))
            del entry[key]
            if key in REQUIRED:
                expected.append(((*where, key), False))
        elif action == "change" and entry:
            entry[draw(st.sampled_from(sorted(entry)))] = draw(json_values)
        elif action == "rename" and "from_column" in entry:
            entry["from_column"] = draw(st.text(min_size=1, max_size=6))
    return document, expected


def still_wrong(document, parts, present):
    """Whether a mutation survived the later ones: its object is still in the
    document, with the unknown key still there or the required key still gone."""
    entry = document
    for part in parts[:-1]:
        try:
            entry = entry[part]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(entry, dict) and (parts[-1] in entry) == present


def outcome(call):
    """(what ``call`` returns, None), or (None, the problems it is refused with)."""
    try:
        return call(), None
    except InvalidMappingError as error:
        return None, error.problems


MUTATED = settings(max_examples=400)
MAPPING_FILES = settings(max_examples=200)


@MUTATED
@given(mutated())
def test_a_mutated_mapping_is_accepted_or_refused_with_paths_never_crashes(case):
    document, expected = case
    wrong = [path_of(parts) for parts, present in expected if still_wrong(document, parts, present)]
    mapping, problems = outcome(lambda: validate_mapping(document, HEADER, DEFAULT_ID_TYPES))
    if problems is None:
        assert isinstance(mapping, ImportMapping)
        assert not wrong
        jsonschema.validate(document, SCHEMA)  # what the model accepts, its schema accepts
        return
    assert problems
    for problem in problems:
        assert PATH.match(problem), problem
    for path in wrong:
        assert any(p.startswith(f"{path}: ") for p in problems), (path, problems)


@MAPPING_FILES
@given(st.text(max_size=40) | json_values.map(json.dumps))
def test_any_mapping_file_is_read_or_refused_as_a_mapping_problem(text):
    document, problems = outcome(lambda: mapping_document(text))
    if problems is not None:
        assert all(p.startswith("mapping.json: ") for p in problems), problems
        return
    _, problems = outcome(lambda: validate_mapping(document, HEADER, DEFAULT_ID_TYPES))
    assert all(PATH.match(p) for p in problems or []), problems
