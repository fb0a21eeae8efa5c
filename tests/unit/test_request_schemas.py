"""docs/openapi.json's request schemas and the models that check requests
agree. A body the models accept validates against its route's schema, so a
client generated from the document can send everything propsync takes; and a
body the schema accepts is accepted by the models, or refused by one of the
rules docs/API.md states that a schema cannot (an id type's characters and
length, id values in bytes, control characters, lone surrogates, a command's
800 KB), never for its shape."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync.errors import (
    InvalidCustomerIdsError,
    InvalidPropertyError,
    InvalidTimestampError,
    PropsyncError,
)
from propsync.id_types import check_id_type_name
from propsync.identity import validate_customer_ids
from propsync.models import (
    AttributesRequest,
    CustomerPatch,
    ExportOneRequest,
    parse,
    parse_batch,
    parse_command,
    parse_command_data,
)
from tests.support.openapi_check import OAS31Validator, openapi_document

SCHEMAS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def request_validator(path, method):
    document = openapi_document()
    operation = document["paths"][path][method]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return OAS31Validator({**schema, "components": document["components"]})


def batch(body):
    for command in parse_batch(body):
        parse_command(command)


ROUTES = {
    "batch": ("/track/v2/projects/{project_token}/batch", "post", batch),
    "customers": ("/track/v2/projects/{project_token}/customers", "post", parse_command_data),
    "edit": ("/api/customers/{customer_id}", "patch", lambda b: parse(CustomerPatch, b)),
    "export-one": (
        "/data/v2/projects/{project_token}/customers/export-one",
        "post",
        lambda b: parse(ExportOneRequest, b),
    ),
    "attributes": (
        "/data/v2/projects/{project_token}/customers/attributes",
        "post",
        lambda b: parse(AttributesRequest, b),
    ),
}

# JSON values as http_json reads them (numbers with a fraction are Decimals).
# Each field is mostly a value it takes and sometimes anything, so that both
# the bodies the models accept and those they refuse are common.
texts = st.text(max_size=5) | st.sampled_from(["", "\ud800", "a\u0007", "registered", "x" * 70])
numbers = st.integers(-(10**20), 10**20) | st.decimals(
    allow_nan=False, allow_infinity=False, places=3
)
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)


def mostly(good, weight=8):
    """``good`` about ``weight`` times in ``weight + 1``, else any JSON value
    (a one_of of the two would draw the recursive one far more often)."""
    return st.sampled_from(range(weight + 1)).flatmap(lambda i: good if i < weight else json_values)


id_types = st.sampled_from(["registered", "cookie", "a.b-c_9"] * 4)
bad_id_types = st.sampled_from(["bad type", "", "\ud800", "x" * 65])
id_values = st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), min_size=1, max_size=5)
customer_ids = mostly(
    st.dictionaries(id_types | bad_id_types, mostly(id_values), min_size=1, max_size=3)
)
properties = mostly(st.dictionaries(texts, json_values, max_size=3))
timestamps = mostly(
    st.none()
    | st.integers(0, 2 * 10**9)
    | st.decimals(0, 2 * 10**9, places=3)
    | st.sampled_from(["1570001049.5", "soon", "-1", " 7 "])
)
data = mostly(
    st.fixed_dictionaries(
        {"customer_ids": customer_ids},
        optional={"properties": properties, "update_timestamp": timestamps, "unknown": json_values},
    )
)
command = mostly(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(
                ["customers", "system/time", "system/cookie", "customers/events"]
            )
        },
        optional={"command_id": mostly(st.none() | texts), "data": data, "unknown": json_values},
    )
)
property_names = texts | st.sampled_from(["x" * 256, "x" * 257, "é" * 200, "a\x85", "\n"])
unsupported_types = st.sampled_from(["segmentation", "expression", "aggregate", "prediction"])
attribute = mostly(
    st.one_of(
        st.fixed_dictionaries({"type": st.just("property"), "property": mostly(property_names)}),
        st.fixed_dictionaries({"type": st.just("id"), "id": mostly(id_types | bad_id_types)}),
        st.fixed_dictionaries({"type": unsupported_types, "id": mostly(texts)}),
        st.fixed_dictionaries({"type": st.just("consent"), "category": mostly(texts)}),
        # a field another type needs, or an unknown type
        st.fixed_dictionaries(
            {"type": mostly(st.sampled_from(["property", "id", "consent", "event"]))},
            optional={"property": texts, "id": texts, "category": texts},
        ),
    )
)
BODIES = {
    "batch": mostly(
        st.fixed_dictionaries({"commands": st.lists(command, min_size=1, max_size=3)}), 6
    ),
    "customers": data,
    "edit": mostly(st.fixed_dictionaries({"properties": properties}, optional={"x": json_values})),
    "export-one": mostly(
        st.fixed_dictionaries({"customer_ids": customer_ids}, optional={"x": json_values})
    ),
    "attributes": mostly(
        st.fixed_dictionaries(
            {
                # valid ids half the time, so that the attributes decide
                "customer_ids": st.just({"registered": "mgalik"}) | customer_ids,
                "attributes": mostly(st.lists(attribute, min_size=1, max_size=4)),
            },
            optional={"x": json_values},
        )
    ),
}


def rules_a_schema_cannot_state(error):
    """The documented rules the schema leaves to the service: lone
    surrogates (JSON Schema sees characters), an id value's and a property
    name's length in bytes (the schema bounds their characters), a command's
    size, and an update timestamp's text and smallest positive value (its
    JSON types and sign the schema states). An id type's characters and
    length, and control characters in id values and property names, the
    schema states."""
    text = str(error)
    return (
        (isinstance(error, InvalidCustomerIdsError) and text.endswith(_IDS_BEYOND_A_SCHEMA))
        or (isinstance(error, InvalidPropertyError) and text.endswith(_NAMES_BEYOND_A_SCHEMA))
        or (isinstance(error, InvalidTimestampError) and "must be a number" not in text)
        or text.startswith(("command_id must be valid unicode", "command is "))
        or text.endswith("must be valid unicode text; it contains a lone UTF-16 surrogate")
    )


_IDS_BEYOND_A_SCHEMA = ("is not valid unicode", "at most 1024 are allowed")
_NAMES_BEYOND_A_SCHEMA = ("is not valid unicode (lone surrogate)", "at most 256 are allowed")


def refusal(parse_it, body):
    try:
        parse_it(body)
    except PropsyncError as error:
        return error
    return None


@pytest.mark.parametrize("route", ROUTES)
@SCHEMAS
@given(data=st.data())
def test_the_models_and_the_request_schema_accept_the_same_bodies(route, data):
    path, method, parse_it = ROUTES[route]
    body = data.draw(BODIES[route])
    schema_problems = [error.message for error in request_validator(path, method).iter_errors(body)]
    refused = refusal(parse_it, body)
    if refused is None:
        assert schema_problems == [], f"the model takes {body!r}, the schema does not"
    elif not schema_problems:
        assert rules_a_schema_cannot_state(refused), (
            f"the schema takes {body!r}, the model refuses it: {refused}"
        )


def test_decimals_are_numbers_to_the_validator():
    validator = request_validator(*ROUTES["customers"][:2])
    body = {"customer_ids": {"registered": "a"}, "update_timestamp": Decimal("1.5")}
    assert list(validator.iter_errors(body)) == []


def _accepts(schema, value):
    return OAS31Validator(schema).is_valid(value)


def _ids_schema():
    return openapi_document()["components"]["schemas"]["CustomersCommandData"]["properties"][
        "customer_ids"
    ]


@SCHEMAS
@given(
    st.text(max_size=70)
    | st.sampled_from(["a" * 64, "a" * 65, "registered", "a.b-c_9", "registered\n", "\nx"])
)
def test_the_schema_states_the_id_type_rule(id_type):
    schema = _ids_schema()["propertyNames"]
    try:
        check_id_type_name(id_type)
    except InvalidCustomerIdsError:
        assert not _accepts(schema, id_type)
    else:
        assert _accepts(schema, id_type)


@SCHEMAS
@given(
    st.text(max_size=8)
    | st.sampled_from(["x" * 1024, "x" * 1025, "\x85", "\x9f", "\xa0", "jane\n", "\n"])
)
def test_the_schema_states_the_id_value_rules_it_can(value):
    """All but a lone surrogate and a value of over 1,024 bytes in fewer
    characters. A trailing newline too: Python's ``$`` (jsonschema's) matches
    before one, so the schema's patterns do without anchors."""
    schema = _ids_schema()["additionalProperties"]
    refused = refusal(lambda v: validate_customer_ids({"registered": v}), value)
    if refused is None:
        assert _accepts(schema, value)
    elif not str(refused).endswith(_IDS_BEYOND_A_SCHEMA):
        assert not _accepts(schema, value), refused
