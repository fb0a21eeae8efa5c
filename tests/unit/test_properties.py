import pytest

from propsync.errors import InvalidPropertyError
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


def test_value_errors_name_the_property():
    with pytest.raises(InvalidPropertyError, match="property 'score'"):
        encode_property_value("score", float("nan"))
