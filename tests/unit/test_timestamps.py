import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync.errors import InvalidTimestampError
from propsync.timestamps import max_future_skew, normalize_timestamp

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1570001049, 1570001049.0),
        (1570001049.25, 1570001049.25),
        (Decimal("1570001049.5"), 1570001049.5),
        ("1570001049", 1570001049.0),
        (" 1570001049.75 ", 1570001049.75),
        ("1.5e9", 1.5e9),
        (0, 0.0),
        ("-0", 0.0),
        (1e-130, 1e-130),  # the smallest magnitude DynamoDB stores
        (NOW + 3600, NOW + 3600),  # exactly at the allowed skew
    ],
)
def test_accepted_forms_normalise_to_float_seconds(value, expected):
    result = normalize_timestamp(value, now=NOW)
    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "boolean"),
        (False, "boolean"),
        ("yesterday", "not a number"),
        ("", "not a number"),
        ("0x10", "not a number"),
        (None, "got NoneType"),
        ([1], "got list"),
        (-1, "negative"),
        ("-0.5", "negative"),
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        ("NaN", "not a finite number"),
        (Decimal("Infinity"), "not a finite number"),
        (NOW + 3601, "in the future"),
    ],
)
def test_refusals_say_what_is_wrong(value, message):
    with pytest.raises(InvalidTimestampError, match=message):
        normalize_timestamp(value, now=NOW)


def test_thirteen_digits_are_called_milliseconds():
    with pytest.raises(InvalidTimestampError, match="looks like milliseconds"):
        normalize_timestamp(1_570_001_049_000, now=NOW)


def test_sixteen_digits_are_called_microseconds():
    with pytest.raises(InvalidTimestampError, match="looks like microseconds"):
        normalize_timestamp(1_570_001_049_000_000, now=NOW)


def test_skew_is_configurable_through_the_environment(monkeypatch):
    monkeypatch.setenv("PROPSYNC_MAX_FUTURE_SKEW_SECONDS", "10")
    assert max_future_skew() == 10.0
    assert normalize_timestamp(NOW + 10, now=NOW) == NOW + 10
    with pytest.raises(InvalidTimestampError, match="at most 10 s ahead"):
        normalize_timestamp(NOW + 11, now=NOW)


def test_default_skew_is_one_hour():
    assert max_future_skew() == 3600.0


@pytest.mark.parametrize("raw", ["-1", "soon", "nan"])
def test_a_bad_skew_setting_fails_loudly(monkeypatch, raw):
    monkeypatch.setenv("PROPSYNC_MAX_FUTURE_SKEW_SECONDS", raw)
    with pytest.raises(RuntimeError, match="PROPSYNC_MAX_FUTURE_SKEW_SECONDS"):
        normalize_timestamp(NOW, now=NOW)


def test_without_now_the_clock_is_used():
    assert normalize_timestamp(1570001049) == 1570001049.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (10**400, "is too large"),
        (-(10**400), "is negative"),
        ("9" * 400, "is too large"),
        ("1e400", "is too large"),
        (Decimal("1e999999999999999999"), "is too large"),
        (Decimal("-1e999999999999999999"), "is negative"),
        (1e300, r"1e\+300 s in the future"),
        (1e-131, "too small"),
        (5e-324, "too small"),
        (Decimal("1e-999999999999999999"), "too small"),
    ],
)
def test_numbers_beyond_a_float_or_dynamodb_are_refused(value, message):
    with pytest.raises(InvalidTimestampError, match=message):
        normalize_timestamp(value, now=NOW)


numbers = st.one_of(
    st.integers(min_value=-(10**1000), max_value=10**1000),
    st.floats(),
    st.decimals(),
    st.builds(lambda m, e: Decimal(f"{m}e{e}"), st.integers(), st.integers(-(10**17), 10**17)),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(), st.integers(-(10**25), 10**25)),
    st.text(max_size=500),
    st.text(max_size=500).map(lambda t: "9" * len(t) + t),
)


TIMESTAMP_EXAMPLES = 300


@settings(max_examples=TIMESTAMP_EXAMPLES)
@given(value=numbers)
def test_any_number_or_text_is_a_float_or_a_short_refusal(value):
    """Never another exception (an OverflowError was a 500), and an echo that
    stays short whatever the size of the input."""
    refusal = None
    try:
        result = normalize_timestamp(value, now=NOW)
    except InvalidTimestampError as error:
        refusal = str(error)
    if refusal is None:
        assert math.isfinite(result)
        assert result == 0 or 1e-130 <= result <= NOW + 3600  # a number DynamoDB stores
    else:
        assert len(refusal) <= 300


# The exact text clients get: the whole message, so that the value, the
# distance and the hint are each checked (not just a fragment of them).
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "update_timestamp must be a number of seconds, got the boolean True"),
        (
            "soon",
            "update_timestamp 'soon' is not a number; send UNIX time in seconds, "
            "e.g. 1570001049 or 1570001049.25",
        ),
        (None, "update_timestamp must be a number of seconds, got NoneType"),
        (
            "NaN",
            "update_timestamp 'NaN' is not a finite number; send UNIX time in seconds",
        ),
        (-1, "update_timestamp -1 is negative; send UNIX time in seconds (>= 0)"),
        (
            NOW + 7200,
            "update_timestamp 1700007200.0 is 7200 s in the future; at most 3600 s ahead "
            "of the server clock is allowed. Send UNIX time in seconds.",
        ),
        (
            1_700_000_000_123,
            "update_timestamp 1700000000123 is 1698300000123 s in the future; at most "
            "3600 s ahead of the server clock is allowed. Send UNIX time in seconds. "
            "It has 13 digits and looks like milliseconds: divide it by 1000.",
        ),
        (
            "1700000000123456",
            "update_timestamp '1700000000123456' is 1699998300123456 s in the future; at most "
            "3600 s ahead of the server clock is allowed. Send UNIX time in seconds. "
            "It has 16 digits and looks like microseconds: divide it by 1000000.",
        ),
    ],
)
def test_each_refusal_says_exactly_what_was_sent_and_what_is_allowed(value, message):
    with pytest.raises(InvalidTimestampError) as raised:
        normalize_timestamp(value, now=NOW)
    assert str(raised.value) == message


@pytest.mark.parametrize("value", ["sNaN", "-sNaN", Decimal("sNaN"), "Infinity", "-inf"])
def test_signalling_nans_and_infinities_are_refused_as_not_finite(value):
    """float(Decimal("sNaN")) raises ValueError: it must not get that far."""
    with pytest.raises(InvalidTimestampError, match="is not a finite number"):
        normalize_timestamp(value, now=NOW)


@pytest.mark.parametrize("raw", ["", "   "])
def test_an_empty_skew_setting_means_the_default(monkeypatch, raw):
    monkeypatch.setenv("PROPSYNC_MAX_FUTURE_SKEW_SECONDS", raw)
    assert max_future_skew() == 3600.0


def test_a_skew_of_zero_allows_up_to_the_arrival_time_and_no_further(monkeypatch):
    monkeypatch.setenv("PROPSYNC_MAX_FUTURE_SKEW_SECONDS", "0")
    assert normalize_timestamp(NOW, now=NOW) == NOW
    with pytest.raises(InvalidTimestampError, match="1 s in the future; at most 0 s ahead"):
        normalize_timestamp(NOW + 1, now=NOW)
    monkeypatch.setenv("PROPSYNC_MAX_FUTURE_SKEW_SECONDS", "0.5")
    assert max_future_skew() == 0.5


@settings(max_examples=200)
@given(digit=st.characters(categories=["Nd"]).filter(lambda c: not c.isascii()))
def test_only_ascii_digits_make_a_timestamp(digit):
    with pytest.raises(InvalidTimestampError, match="is not a number"):
        normalize_timestamp(f"15700{digit}1049", now=NOW)
