import pytest
from hypothesis import given
from hypothesis import strategies as st

from propsync.errors import InvalidPropertyError
from propsync.limits import MAX_PROPERTY_VALUE_BYTES
from propsync.properties import encode_property_value, validate_property_name


@pytest.mark.parametrize(
    "name",
    ["first_name", "a.b", "with space", "#hash", "a:b", "$price", "日本語", "x" * 256, "é" * 128],
)
def test_names_of_any_printable_characters_are_accepted(name):
    assert validate_property_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("x" * 257, "257 bytes"),
        ("é" * 129, "258 bytes"),
        ("tab\there", "U\\+0009"),
        ("line\nbreak", "U\\+000A"),
        ("nul\x00", "U\\+0000"),
        ("del\x7f", "U\\+007F"),
        (5, "must be a string"),
        ("\udc80", "not valid unicode"),
    ],
)
def test_bad_names_are_refused(name, message):
    with pytest.raises(InvalidPropertyError, match=message):
        validate_property_name(name)


def test_value_of_exactly_16_kb_is_accepted_and_one_byte_more_is_not():
    largest = "x" * (16 * 1024 - 2)  # the two quotes make it 16384 bytes
    assert len(encode_property_value("p", largest)) == 16 * 1024
    with pytest.raises(InvalidPropertyError, match="16385 bytes"):
        encode_property_value("p", largest + "x")


def test_value_size_counts_utf8_bytes():
    with pytest.raises(InvalidPropertyError, match="at most 16384 bytes"):
        encode_property_value("p", "é" * 8192)


# One character of each UTF-8 width: the limit counts bytes, whatever the characters.
WIDE_CHARACTERS = "xé€🎉"


@pytest.mark.parametrize("char", WIDE_CHARACTERS)
def test_the_largest_value_of_each_character_width_is_accepted_and_one_more_is_not(char):
    width = len(char.encode())
    count = (MAX_PROPERTY_VALUE_BYTES - 2) // width  # the two quotes are 2 bytes
    assert len(encode_property_value("p", char * count).encode()) == 2 + count * width
    with pytest.raises(InvalidPropertyError, match=f"{2 + (count + 1) * width} bytes"):
        encode_property_value("p", char * (count + 1))


def test_few_characters_of_many_bytes_are_refused():
    """6,000 characters (fewer than 8,192) that are 18,002 bytes of JSON."""
    with pytest.raises(InvalidPropertyError, match="18002 bytes"):
        encode_property_value("p", "€" * 6000)


@given(
    pattern=st.text(alphabet=WIDE_CHARACTERS, min_size=1, max_size=12),
    excess=st.integers(-3, 3),
)
def test_any_mix_of_characters_is_accepted_exactly_when_its_json_fits(pattern, excess):
    """Strings whose JSON is a few bytes under, at or over the limit, in any mix
    of 1- to 4-byte characters."""
    inside = MAX_PROPERTY_VALUE_BYTES - 2 + excess  # bytes between the quotes
    text = pattern * (inside // len(pattern.encode()))
    text += "x" * (inside - len(text.encode()))
    size = len(text.encode()) + 2
    assert size == MAX_PROPERTY_VALUE_BYTES + excess
    if excess <= 0:
        assert encode_property_value("p", text) == f'"{text}"'
    else:
        with pytest.raises(InvalidPropertyError, match=f"value is {size} bytes"):
            encode_property_value("p", text)


def test_a_value_that_is_not_a_string_is_measured_as_its_json():
    """Escapes count: a control character is 6 bytes of JSON (\\u0001)."""
    inside = MAX_PROPERTY_VALUE_BYTES - 4  # ["..."]: 4 bytes of brackets and quotes
    largest = ["\x01" * (inside // 6) + "x" * (inside % 6)]
    assert len(encode_property_value("p", largest)) == MAX_PROPERTY_VALUE_BYTES
    with pytest.raises(InvalidPropertyError, match="16385 bytes"):
        encode_property_value("p", [largest[0] + "x"])


def test_value_errors_name_the_property():
    with pytest.raises(InvalidPropertyError, match="property 'score'"):
        encode_property_value("score", float("nan"))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (5, "property name must be a string, got int"),
        (None, "property name must be a string, got NoneType"),
        ("", "property name must not be empty"),
        ("\udc80", "property name '\\udc80' is not valid unicode (lone surrogate)"),
        (
            "n" * 300,
            # quoted through errors.shown: its start and end, at most 40 characters
            f"property name '{'n' * 17}...{'n' * 18}' is 300 bytes of UTF-8; "
            "at most 256 are allowed",
        ),
        (
            "tab\there",
            "property name 'tab\\there' contains the control character U+0009; "
            "control characters are not allowed in property names",
        ),
    ],
)
def test_each_name_refusal_says_exactly_what_is_wrong(name, message):
    with pytest.raises(InvalidPropertyError) as raised:
        validate_property_name(name)
    assert str(raised.value) == message


def test_a_value_refusal_names_the_property_its_size_and_the_limit():
    with pytest.raises(InvalidPropertyError) as raised:
        encode_property_value("bio", "€" * 6000)
    assert str(raised.value) == (
        "property 'bio': value is 18002 bytes as JSON; at most 16384 bytes (16 KB) are allowed"
    )
