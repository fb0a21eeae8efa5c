"""The request models speak the original service's sentences: whatever JSON a
client sends as a batch, a command, a command's data, an edit or an
export-one body, the answer is the parsed model or propsync's own error,
never pydantic's words (which clients and docs/API.md do not know)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync.errors import BatchError, InvalidCustomerIdsError, InvalidInputError, PropsyncError
from propsync.models import (
    ATTRIBUTE_TYPES,
    AttributesRequest,
    CustomerPatch,
    CustomersCommand,
    CustomersCommandData,
    ExportOneRequest,
    SystemTimeCommand,
    parse,
    parse_batch,
    parse_command,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.decimals(allow_nan=False, allow_infinity=False)  # how http_json reads 1.5
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = ["commands", "name", "command_id", "data", "customer_ids", "properties"]
# objects whose keys are the models' own field names, so that the field rules run
bodies = json_values | st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4)
commands = bodies | st.fixed_dictionaries(
    {"name": st.sampled_from(["customers", "system/time", "nope"])},
    optional={"command_id": json_values, "data": bodies},
)
PYDANTIC_WORDS = ("Input should", "validation error", "pydantic", "Field required", "type=")


def refusal(parse_it, value):
    try:
        parse_it(value)
    except PropsyncError as error:
        return str(error)
    return None


def assert_ours(message):
    if message is not None:
        assert message
        assert not any(word in message for word in PYDANTIC_WORDS), message


@given(bodies)
def test_any_batch_body_is_a_batch_or_the_batch_refusal(body):
    try:
        parse_batch(body)
    except BatchError as error:
        assert_ours(str(error))


@given(commands)
def test_any_command_is_a_command_or_its_own_error(command):
    assert_ours(refusal(parse_command, command))


@pytest.mark.parametrize(
    "model", [CustomersCommandData, CustomerPatch, ExportOneRequest, AttributesRequest]
)
@given(body=bodies)
def test_any_body_is_the_model_or_an_error_in_our_words(model, body):
    assert_ours(refusal(lambda value: parse(model, value), body))


# attributes with the attribute models' own keys: each type with any text
# (lone surrogates included) or JSON value in its field, or in another's
any_text = st.text(st.characters(exclude_categories=()), max_size=4)
field_values = any_text | st.sampled_from(["", "\ud800", "a\udfff", "registered"]) | json_values
attribute = st.one_of(
    json_values,
    st.fixed_dictionaries({"type": st.just("property"), "property": field_values}),
    st.fixed_dictionaries({"type": st.just("id"), "id": field_values}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["segmentation", "expression", "aggregate", "prediction"])},
        optional={"id": field_values},
    ),
    st.fixed_dictionaries({"type": st.just("consent"), "category": field_values}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(ATTRIBUTE_TYPES) | json_values},
        optional={"property": field_values, "id": field_values, "category": field_values},
    ),
)
attributes = st.lists(attribute, min_size=1, max_size=3)


@settings(max_examples=400)
@given(attributes=attributes)
def test_any_attribute_is_an_attribute_or_an_error_in_our_words(attributes):
    """Valid ids, so that the attributes decide the answer (the body's own
    fields, which rank first, the test above covers)."""
    body = {"customer_ids": {"registered": "a"}, "attributes": attributes}
    message = refusal(lambda value: parse(AttributesRequest, value), body)
    assert_ours(message)
    if message is not None and attributes:
        assert message.startswith(tuple(f"attributes[{i}]" for i in range(len(attributes))))


def test_every_problem_of_a_body_is_named_at_once():
    with pytest.raises(InvalidInputError) as refused:
        parse(CustomersCommandData, {"properties": [1]})
    assert str(refused.value) == (
        "customer_ids is required; properties must be an object, got a list"
    )


def test_a_single_rule_keeps_its_own_error_class():
    with pytest.raises(InvalidCustomerIdsError, match=r"^At least one id should be specified\.$"):
        parse(CustomersCommandData, {"customer_ids": {}})


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ([], 'the body must be a JSON object: {"commands": [...]}'),
        ({}, '"commands" is required: a list of 1 to 50 commands'),
        ({"commands": {}}, '"commands" must be a list of 1 to 50 commands'),
        ({"commands": []}, '"commands" is empty: send 1 to 50 commands'),
        (
            {"commands": [{}] * 51},
            '"commands" has 51 commands; at most 50 are allowed in one batch',
        ),
    ],
)
def test_batch_refusals_keep_the_original_sentences(body, sentence):
    with pytest.raises(BatchError) as refused:
        parse_batch(body)
    assert str(refused.value) == sentence


def test_a_batch_keeps_its_commands_unchecked_so_that_each_fails_alone():
    assert parse_batch({"commands": [1, {"name": "nope"}]}) == [1, {"name": "nope"}]


def test_commands_parse_to_their_models():
    command = parse_command(
        {"name": "customers", "command_id": "c1", "data": {"customer_ids": {"registered": "a"}}}
    )
    assert isinstance(command, CustomersCommand)
    assert command.data.customer_ids == {"registered": "a"}
    assert command.data.properties == {}
    assert isinstance(parse_command({"name": "system/time"}), SystemTimeCommand)


def test_fields_the_service_does_not_know_are_ignored():
    data = parse(CustomersCommandData, {"customer_ids": {"registered": "a"}, "sdk_version": 3})
    assert data.customer_ids == {"registered": "a"}


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ({"customer_ids": {"registered": "a"}, "properties": "x"}, "properties must be an object"),
        ({"customer_ids": "a"}, "customer_ids must be an object, got a string"),
        ({"customer_ids": {"registered": 1}}, "customer_ids.registered must be a string, got int"),
        ("x", "expected a JSON object, got a string"),
    ],
)
def test_values_are_never_coerced(value, sentence):
    with pytest.raises(InvalidInputError, match=sentence):
        parse(CustomersCommandData, value)
