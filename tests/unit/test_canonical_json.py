import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propsync import canonical_json
from propsync.errors import InvalidPropertyError
from propsync.limits import MAX_VALUE_NESTING
from propsync.properties import encode_property_value


def test_objects_have_sorted_keys_and_no_whitespace():
    assert canonical_json.dumps({"b": [1, 2], "a": {"d": None, "c": True}}) == (
        '{"a":{"c":true,"d":null},"b":[1,2]}'
    )


def test_unicode_is_kept_as_text_not_escaped():
    assert canonical_json.dumps("Žilina 日本") == '"Žilina 日本"'


@pytest.mark.parametrize(
    "text",
    [
        "123456789012345678901234567890123456789012345678901234567890",
        "-0.1000000000000000055511151231257827021181583404541015625",
        "1E+400",
        "3.14159265358979323846264338327950288419716939937510",
    ],
)
def test_numbers_survive_a_round_trip_digit_for_digit(text):
    value = canonical_json.loads(text)
    assert canonical_json.dumps(value) == text


def test_floats_are_written_as_their_shortest_exact_form():
    assert canonical_json.dumps(0.1) == "0.1"
    assert canonical_json.dumps(1e16) == "1E+16"
    assert canonical_json.dumps(1e-7) == "1E-7"
    assert canonical_json.dumps(100.0) == "100.0"
    assert canonical_json.loads(canonical_json.dumps(0.1)) == Decimal("0.1")


@pytest.mark.parametrize("value", [Decimal("-0"), Decimal("1E+2"), Decimal("1.10"), -0.0, 1e300])
def test_every_number_reads_back_as_the_same_text(value):
    text = canonical_json.dumps(value)
    assert canonical_json.dumps(canonical_json.loads(text)) == text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "NaN or infinity"),
        (Decimal("NaN"), "NaN"),
        ({1: "a"}, "keys must be strings"),
        ({"a": {1, 2}}, "type set"),
        (b"bytes", "type bytes"),
        ("\ud800", "surrogate"),
    ],
)
def test_what_json_cannot_hold_is_refused(value, message):
    with pytest.raises(InvalidPropertyError, match=message):
        canonical_json.dumps(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "number nan is not allowed: JSON has no NaN or infinity"),
        (float("-inf"), "number -inf is not allowed: JSON has no NaN or infinity"),
        (Decimal("Infinity"), "number Infinity is not allowed: JSON has no NaN or infinity"),
        ({1: "a"}, "object keys must be strings, got int"),
        ({"a": {None: 1}}, "object keys must be strings, got NoneType"),
        (
            {"a": {1, 2}},
            "values of type set are not allowed; use a string, number, boolean, list, "
            "object or null",
        ),
        (
            ["ok", "\udc80"],
            "value contains a lone UTF-16 surrogate (invalid unicode); "
            "only valid unicode text is allowed",
        ),
        pytest.param(10**5000, "number has too many digits", id="5001-digits"),
        ([[[1]]], "value is nested more than 2 levels deep; flatten it"),
    ],
)
def test_each_refusal_says_exactly_what_is_wrong(value, message):
    with pytest.raises(InvalidPropertyError) as raised:
        canonical_json.dumps(value, max_depth=2)
    assert str(raised.value) == message


def test_nesting_deeper_than_the_limit_is_refused_without_recursion_error():
    value = []
    for _ in range(10_000):
        value = [value]
    with pytest.raises(InvalidPropertyError, match="nested more than 64"):
        canonical_json.dumps(value)


def nested(levels: int, kind: str) -> object:
    """``levels`` lists and/or objects inside each other, around the number 1."""
    value: object = 1
    for level in range(levels):
        as_list = kind == "list" or (kind == "mixed" and level % 2 == 0)
        value = [value] if as_list else {"k": value}
    return value


@pytest.mark.parametrize("kind", ["list", "object", "mixed"])
def test_exactly_64_levels_are_accepted_and_65_are_not(kind):
    deepest = nested(MAX_VALUE_NESTING, kind)
    text = encode_property_value("p", deepest)
    assert canonical_json.loads(text) == deepest
    with pytest.raises(InvalidPropertyError, match="property 'p': value is nested more than 64"):
        encode_property_value("p", nested(MAX_VALUE_NESTING + 1, kind))


@pytest.mark.parametrize("kind", ["list", "object"])
def test_nesting_is_counted_along_each_branch_not_across_siblings(kind):
    """Many containers side by side are one level; only depth counts."""
    deepest = nested(MAX_VALUE_NESTING - 1, kind)
    wide = [deepest] * 100 if kind == "list" else {f"k{i}": deepest for i in range(100)}
    assert canonical_json.loads(canonical_json.dumps(wide)) == wide


json_documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_documents)
def test_canonical_text_is_valid_json_and_stable(value):
    text = canonical_json.dumps(value)
    assert json.loads(text) == json.loads(json.dumps(value))
    assert canonical_json.dumps(canonical_json.loads(text)) == text
