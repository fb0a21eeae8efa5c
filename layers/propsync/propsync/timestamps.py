"""Update timestamps: UNIX time in float seconds, validated.

The refusals protect the merge rule: a timestamp far in the future would win
against every honest update for as long as the skew lasts, so it is refused
rather than stored.
"""

import math
import os
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from propsync.errors import InvalidTimestampError, shown
from propsync.limits import DEFAULT_MAX_FUTURE_SKEW_SECONDS, MAX_FUTURE_SKEW_ENV

# DynamoDB numbers have magnitudes from 1E-130 to 9.9E+125 (or are 0): a
# timestamp between 0 and this would pass here and fail the write (a "retry").
SMALLEST_STORED_NUMBER = 1e-130


def max_future_skew() -> float:
    """Allowed distance into the future, from ``PROPSYNC_MAX_FUTURE_SKEW_SECONDS``."""
    raw = os.environ.get(MAX_FUTURE_SKEW_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_MAX_FUTURE_SKEW_SECONDS
    try:
        skew = float(raw)
    except ValueError:
        skew = math.nan
    if not math.isfinite(skew) or skew < 0:
        raise RuntimeError(
            f"{MAX_FUTURE_SKEW_ENV}={raw!r} is not valid: set it to a number of seconds >= 0"
        )
    return skew


def normalize_timestamp(value: Any, *, now: float | None = None) -> float:
    """Return ``value`` as float seconds, or raise InvalidTimestampError:
    every rule of :func:`seconds_of`, and at most the allowed skew ahead of
    ``now`` (with a hint when the value looks like milliseconds or
    microseconds), numbers of any size among them."""
    number = seconds_of(value)
    now = time.time() if now is None else now
    skew = max_future_skew()
    if number > now + skew:
        raise InvalidTimestampError(_future_message(value, number, now, skew))
    return number


def seconds_of(value: Any) -> float:
    """``value`` as float seconds, checked by every rule that does not depend
    on the time (the request models check these as they read a body).

    Accepted: int, float, Decimal, and strings holding a decimal number.
    Refused: booleans, other types, non-numeric strings, NaN, infinities,
    negative values and positive values below 1E-130 (DynamoDB stores none).
    A finite number beyond a float's range is +-inf: "negative", or too far
    ahead for :func:`normalize_timestamp`.
    """
    number = _as_number(value)
    if math.isnan(number):
        raise InvalidTimestampError(
            f"update_timestamp {shown(value)} is not a finite number; send UNIX time in seconds"
        )
    if number < 0:
        raise InvalidTimestampError(
            f"update_timestamp {shown(value)} is negative; send UNIX time in seconds (>= 0)"
        )
    if 0 < number < SMALLEST_STORED_NUMBER:
        raise InvalidTimestampError(
            f"update_timestamp {shown(value)} is too small: DynamoDB stores no positive number "
            "below 1E-130; send UNIX time in seconds (0, or at least 1E-130)"
        )
    return number


def _as_number(value: Any) -> float:
    """``value`` as a float: NaN for what is not a finite number (NaN,
    infinities), +-inf for a finite number beyond a float's range (a
    400-digit integer, ``1e400``), which the caller refuses as too large or
    negative."""
    if isinstance(value, bool):
        raise InvalidTimestampError(
            f"update_timestamp must be a number of seconds, got the boolean {value!r}"
        )
    if isinstance(value, float):
        return value + 0.0 if math.isfinite(value) else math.nan  # + 0.0: -0.0 is 0
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, Decimal):
        return _decimal_as_float(value)
    if isinstance(value, str):
        try:
            if not value.isascii():  # Decimal() reads other scripts' digits ("١٢٣")
                raise InvalidOperation
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidTimestampError(
                f"update_timestamp {shown(value)} is not a number; send UNIX time in seconds, "
                "e.g. 1570001049 or 1570001049.25"
            ) from None
        return _decimal_as_float(parsed)
    raise InvalidTimestampError(
        f"update_timestamp must be a number of seconds, got {type(value).__name__}"
    )


def _decimal_as_float(value: Decimal) -> float:
    """+-inf beyond a float's range; a nonzero value below it keeps its sign
    (the smallest float), so that 1e-400 is "too small" as 1e-200 is, not 0."""
    if not value.is_finite():
        return math.nan
    number = float(value) + 0.0
    if number == 0 and value != 0:
        return math.copysign(math.ulp(0.0), value)
    return number


def unit_hint(number: float) -> str:
    """A hint when a number of seconds looks like milliseconds or microseconds."""
    if not math.isfinite(number):
        return ""
    digits = len(str(int(abs(number))))
    if digits == 13:
        return " It has 13 digits and looks like milliseconds: divide it by 1000."
    if digits == 16:
        return " It has 16 digits and looks like microseconds: divide it by 1000000."
    return ""


def _future_message(value: Any, number: float, now: float, skew: float) -> str:
    if math.isinf(number):
        return (
            f"update_timestamp {shown(value)} is too large; at most {skew:.0f} s ahead of the "
            "server clock is allowed. Send UNIX time in seconds."
        )
    ahead = number - now
    ahead_text = f"{ahead:.0f}" if ahead < 1e18 else f"{ahead:.3g}"  # 1e+300, not 301 digits
    return (
        f"update_timestamp {shown(value)} is {ahead_text} s in the future; at most "
        f"{skew:.0f} s ahead of the server clock is allowed. Send UNIX time in seconds."
        + unit_hint(number)
    )
