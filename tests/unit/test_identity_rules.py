import time

import pytest

from propsync.errors import InvalidCustomerIdsError
from propsync.identity import is_customer_id, new_customer_id, validate_customer_ids
from propsync.limits import MAX_ID_TYPE_CHARS, MAX_ID_VALUE_BYTES


def test_valid_ids_pass_through():
    ids = {"registered": "mgalik", "cookie": "abc-123", "email.work": "a@b.c"}
    assert validate_customer_ids(ids) == ids


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (None, "must be an object"),
        (["registered", "x"], "must be an object"),
        ({}, "At least one id should be specified."),
        ({"registered": 5}, "must be a string, got int"),
        ({"registered": None}, "must be a string, got NoneType"),
        ({"registered": ""}, "must not be empty"),
        ({"registered": "x" * 1025}, "1025 bytes"),
        ({"registered": "a\nb"}, "control character"),
        ({"": "x"}, "id type ''"),
        ({"a#b": "x"}, "id type 'a#b'"),
        ({"x" * 65: "x"}, "is not allowed"),
    ],
)
def test_bad_ids_are_refused(ids, message):
    with pytest.raises(InvalidCustomerIdsError, match=message):
        validate_customer_ids(ids)


# 1,024 bytes of UTF-8 in characters of each width
LARGEST_ID_VALUES = ["x" * 1024, "é" * 512, "€" * 341 + "x", "🎉" * 256]


@pytest.mark.parametrize("value", LARGEST_ID_VALUES)
def test_an_id_value_of_exactly_1024_bytes_is_accepted_and_one_byte_more_is_not(value):
    assert len(value.encode()) == MAX_ID_VALUE_BYTES
    assert validate_customer_ids({"registered": value}) == {"registered": value}
    with pytest.raises(InvalidCustomerIdsError, match="is 1025 bytes; at most 1024"):
        validate_customer_ids({"registered": value + "x"})


def test_an_id_value_of_one_character_is_accepted():
    assert validate_customer_ids({"registered": "x"}) == {"registered": "x"}


def test_an_id_type_of_64_characters_is_accepted_and_65_are_not():
    for id_type in ("t" * MAX_ID_TYPE_CHARS, "a.b-c_" * 10 + "0123", "x"):
        assert len(id_type) <= MAX_ID_TYPE_CHARS
        assert validate_customer_ids({id_type: "v"}) == {id_type: "v"}
    with pytest.raises(InvalidCustomerIdsError, match="use 1 to 64 letters"):
        validate_customer_ids({"t" * (MAX_ID_TYPE_CHARS + 1): "v"})


def test_every_id_of_a_command_is_checked_not_only_the_first():
    with pytest.raises(InvalidCustomerIdsError, match=r"customer_ids\.cookie must not be empty"):
        validate_customer_ids({"registered": "ok", "cookie": ""})
    with pytest.raises(InvalidCustomerIdsError, match="id type 'a b'"):
        validate_customer_ids({"registered": "ok", "a b": "x"})


def test_customer_ids_are_unique_and_sort_by_creation_time():
    earlier = [new_customer_id(now=1_000.0) for _ in range(100)]
    later = new_customer_id(now=1_001.0)
    assert len(set(earlier)) == 100
    assert all(len(i) == 26 for i in earlier)
    assert max(earlier) < later
    assert new_customer_id() > new_customer_id(now=time.time() - 1)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (
            ["registered", "x"],
            'customer_ids must be an object of id type to id value, e.g. {"registered": "jane"}',
        ),
        ({}, "At least one id should be specified."),
        (
            {"a b": "x"},
            "id type 'a b' is not allowed: use 1 to 64 letters, digits, '_', '.' or '-'",
        ),
        ({"registered": 5}, "customer_ids.registered must be a string, got int"),
        ({"cookie": ""}, "customer_ids.cookie must not be empty"),
        (
            {"registered": "é" * 513},
            "customer_ids.registered is 1026 bytes; at most 1024 are allowed",
        ),
        (
            {"registered": "a\tb"},
            "customer_ids.registered contains a control character; they are not allowed in ids",
        ),
    ],
)
def test_each_refusal_says_exactly_what_is_wrong(ids, message):
    with pytest.raises(InvalidCustomerIdsError) as raised:
        validate_customer_ids(ids)
    assert str(raised.value) == message


def test_an_id_that_is_not_valid_unicode_is_refused_naming_its_type():
    with pytest.raises(InvalidCustomerIdsError, match=r"^customer_ids\.cookie .*unicode"):
        validate_customer_ids({"registered": "ok", "cookie": "\udc80"})


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def base32(text: str) -> int:
    number = 0
    for char in text:
        number = number * 32 + CROCKFORD.index(char)
    return number


def ulid_millis(customer_id: str) -> int:
    """The time a ULID carries: its first 10 characters, 48 bits of milliseconds."""
    return base32(customer_id[:10])


def test_customer_ids_are_ulids_that_carry_their_creation_time():
    for now in (0.0, 1_570_001_049.123, 1_700_000_000.999, 2**47 / 1000):
        for _ in range(10):
            customer_id = new_customer_id(now=now)
            assert is_customer_id(customer_id)
            assert ulid_millis(customer_id) == int(now * 1000)


def test_the_random_part_of_a_ulid_uses_all_of_its_80_bits():
    ids = [new_customer_id(now=1_000.0) for _ in range(200)]
    randoms = [base32(i[10:]) for i in ids]  # 16 characters of 5 bits
    assert len(set(randoms)) == 200
    assert max(randoms).bit_length() > 75


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("01HZZZZZZZZZZZZZZZZZZZZZZZ", True),
        ("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", True),
        ("01HZZZZZZZZZZZZZZZZZZZZZZ", False),  # 25 characters
        ("01HZZZZZZZZZZZZZZZZZZZZZZZZ", False),  # 27
        ("01HZZZZZZZZZZZZZZZZZZZZZZI", False),  # I is not Crockford base32
        ("01hzzzzzzzzzzzzzzzzzzzzzzz", False),
        ("x01HZZZZZZZZZZZZZZZZZZZZZZZ", False),
        ("", False),
    ],
)
def test_only_ulids_are_customer_ids(value, valid):
    assert is_customer_id(value) is valid
