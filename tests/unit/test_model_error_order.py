"""A refused command or body is answered with the first thing wrong, in the
order docs/API.md lists the checks and in its sentence, as the original
service (and propsync before its bodies became pydantic models) answers:
a command's own fields (name, command_id), then a customers command's size,
then the shape of its data (every missing or non-object field, the one case
where sentences are joined with "; "), then the rules of the ids (the first
one broken, the project's id types among them) and of the update timestamp's
form. The reference below is that order written out; the models must
agree with it on any input."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync.errors import (
    InvalidCustomerIdsError,
    InvalidTimestampError,
    shown,
)
from propsync.id_types import DEFAULT_ID_TYPES
from propsync.identity import validate_customer_ids
from propsync.limits import MAX_COMMAND_BYTES
from propsync.models import (
    KNOWN_COMMANDS,
    CustomersCommandData,
    json_type,
    parse,
    parse_batch,
    parse_command,
)
from propsync.timestamps import seconds_of
from propsync.tracking import run_batch, run_customers_command
from tests.unit.test_models import refusal

COMMAND_NOT_AN_OBJECT = 'a command must be an object: {"name": ..., "data": {...}}'


def documented_data_error(data, id_types=None):
    """The first problem of a customers command's data (or of the single
    route's body), as docs/API.md orders them; None when its shape and ids
    are fine (the rest is checked with the project and the store)."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {json_type(data)}"
    shape = []
    if "customer_ids" not in data:
        shape.append("customer_ids is required")
    elif not isinstance(data["customer_ids"], dict):
        shape.append(f"customer_ids must be an object, got {json_type(data['customer_ids'])}")
    if "properties" in data and not isinstance(data["properties"], dict):
        shape.append(f"properties must be an object, got {json_type(data['properties'])}")
    if shape:
        return "; ".join(shape)
    try:
        ids = validate_customer_ids(data["customer_ids"])
        if id_types is not None:
            id_types.check(ids)  # the project's, when the caller knows them
        if data.get("update_timestamp") is not None:
            seconds_of(data["update_timestamp"])  # its form; how far ahead, when written
    except (InvalidCustomerIdsError, InvalidTimestampError) as error:
        return str(error)
    return None


def documented_command_error(command, id_types=None):
    """The first problem of one command of a batch, as docs/API.md orders them."""
    if not isinstance(command, dict):
        return COMMAND_NOT_AN_OBJECT
    name = command.get("name")
    if not isinstance(name, str) or name not in KNOWN_COMMANDS:
        return f"unknown command name {shown(name)}; known commands: {', '.join(KNOWN_COMMANDS)}"
    command_id = command.get("command_id")
    if command_id is not None and not isinstance(command_id, str):
        return "command_id must be a string"
    if isinstance(command_id, str) and not _is_unicode(command_id):
        return "command_id must be valid unicode text; it contains a lone UTF-16 surrogate"
    if name != "customers":
        return None
    if command.get("data") is None:
        return '"data" is required for a customers command'
    return documented_data_error(command["data"], id_types)


def _is_unicode(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Values chosen to meet every check: wrong JSON types, null, lone surrogates,
# numbers that are Decimals, ints and booleans, empty and bad id types.
texts = st.text(max_size=4) | st.sampled_from(["\ud800", "a\udc00b", "", "x" * 1025])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | texts
)
junk = scalars | st.lists(scalars, max_size=2) | st.dictionaries(texts, scalars, max_size=2)


def mostly(good, weight=4):
    """``good`` about ``weight`` times in ``weight + 1``, else ``junk``, so
    that the later checks are reached often."""
    return st.sampled_from(range(weight + 1)).flatmap(lambda i: junk if i == weight else good)


id_types = st.sampled_from(
    ["registered", "cookie"] * 8 + ["phone", "bad type", "\ud800", "", "x" * 65]
)
id_values = mostly(st.sampled_from(["jane", "a\u0007b", "\ud83d", "x" * 1025]) | st.text())
customer_ids = mostly(st.dictionaries(id_types, id_values, max_size=3))
timestamps = mostly(
    st.integers(-5, 2 * 10**9)
    | st.decimals(-1, 2 * 10**9, allow_nan=False, allow_infinity=False)
    | st.sampled_from(["1570001049", "1e-200", "NaN", "soon", "-1", "", None])
)
data = mostly(
    st.fixed_dictionaries(
        {},
        optional={
            "customer_ids": customer_ids,
            "properties": mostly(st.dictionaries(texts, junk, max_size=2)),
            "update_timestamp": timestamps,
            "extra": junk,
        },
    )
)
commands = mostly(
    st.fixed_dictionaries(
        {"name": mostly(st.sampled_from([*KNOWN_COMMANDS, "nope", "\ud800"]))},
        optional={"command_id": mostly(st.none() | texts), "data": data, "sdk": junk},
    )
)


COMMANDS = settings(max_examples=500)
BODIES = settings(max_examples=300)
PROJECTS = pytest.mark.parametrize(
    "id_types", [None, DEFAULT_ID_TYPES], ids=["any id types", "a project's"]
)


@PROJECTS
@COMMANDS
@given(command=commands)
def test_a_command_is_refused_for_its_first_problem_in_the_documented_order(id_types, command):
    assert refusal(lambda value: parse_command(value, id_types), command) == (
        documented_command_error(command, id_types)
    )


@PROJECTS
@BODIES
@given(body=data)
def test_a_body_of_the_single_route_is_refused_for_its_first_problem(id_types, body):
    assert refusal(lambda value: parse(CustomersCommandData, value, id_types), body) == (
        documented_data_error(body, id_types)
    )


@pytest.mark.parametrize(
    ("command", "sentence"),
    [
        ({"name": "customers", "command_id": 1}, "command_id must be a string"),
        ({"name": "customers", "command_id": 1, "data": {}}, "command_id must be a string"),
        (
            {"name": "customers", "command_id": "\ud800", "data": []},
            "command_id must be valid unicode text; it contains a lone UTF-16 surrogate",
        ),
        (
            {"name": "customers", "data": {"customer_ids": {}, "properties": 1}},
            "properties must be an object, got a number",
        ),
        (
            {"name": "customers", "data": {"customer_ids": {"registered": 1}, "properties": []}},
            "properties must be an object, got a list",
        ),
    ],
)
def test_two_problems_are_not_joined_where_the_docs_give_one_sentence(command, sentence):
    assert refusal(parse_command, command) == sentence


def test_commands_null_is_no_commands():
    assert refusal(parse_batch, {"commands": None}) == (
        '"commands" is required: a list of 1 to 50 commands'
    )


class NoStore:
    """The refusals below never reach the store."""

    def __getattr__(self, name):
        raise AssertionError(f"a refused command used the store ({name})")


def batch_refusal(data):
    (result,) = run_batch(NoStore(), "p", [{"name": "customers", "data": data}], received_at=1.0)
    return None if result["success"] else result["errors"]


def single_refusal(data):
    status, result = run_customers_command(NoStore(), "p", data, received_at=1.0)
    assert (status == 400) == (not result["success"])
    return None if result["success"] else result["errors"]


@BODIES
@given(data.filter(lambda d: isinstance(d, dict) and documented_data_error(d) is not None))
def test_the_single_route_refuses_a_body_as_a_batch_refuses_the_same_data(body):
    assert single_refusal(body) == batch_refusal(body)


PADDING = "x" * MAX_COMMAND_BYTES


@pytest.mark.parametrize(
    "data",
    [
        {"properties": {"big": PADDING}},
        {"customer_ids": {"registered": 1}, "properties": {"big": PADDING}},
        {"customer_ids": {}, "pad": PADDING},
        {"customer_ids": [], "properties": [PADDING]},
    ],
    ids=["no ids", "bad id", "no id", "nothing an object"],
)
def test_a_command_over_800_kb_is_refused_for_its_size_first_on_both_routes(data):
    command = {"name": "customers", "data": data}
    size = len(json.dumps(command, separators=(",", ":")).encode())
    sentence = (
        f"command is {size} bytes; one update must be at most {MAX_COMMAND_BYTES} bytes (800 KB)"
    )
    assert batch_refusal(data) == [sentence]
    assert single_refusal(data)[0].startswith("command is ")
