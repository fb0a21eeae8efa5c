import time

import pytest

from propsync.errors import InvalidCustomerIdsError
from propsync.identity import new_customer_id, validate_customer_ids


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


def test_customer_ids_are_unique_and_sort_by_creation_time():
    earlier = [new_customer_id(now=1_000.0) for _ in range(100)]
    later = new_customer_id(now=1_001.0)
    assert len(set(earlier)) == 100
    assert all(len(i) == 26 for i in earlier)
    assert max(earlier) < later
    assert new_customer_id() > new_customer_id(now=time.time() - 1)
