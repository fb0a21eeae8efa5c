"""Canonical JSON: the exact, deterministic text form of a property value.

Values are stored as this text (see docs/DECISIONS.md), which gives three
things at once:

- exact numbers: an integer of any size or a decimal such as ``0.1000000000000000055``
  is kept digit for digit (DynamoDB numbers hold only 38 digits, and floats
  round);
- a fixed total order on values for the merge rule's tie-break: compare the
  canonical texts by code point, which is the UTF-8 byte order DynamoDB uses
  when it compares strings in a condition;
- one encoding, so the same value always compares equal to itself.

Objects are written with sorted keys and no whitespace. Non-integer numbers are
read back as ``decimal.Decimal`` so that they survive a round trip exactly.
"""

import json
import math
from decimal import Decimal
from typing import Any

from propsync.errors import InvalidPropertyError
from propsync.limits import MAX_VALUE_NESTING

_encode_string = json.JSONEncoder(ensure_ascii=False).encode
_NO_NAN = "JSON has no NaN or infinity"


def dumps(value: Any, *, max_depth: int = MAX_VALUE_NESTING) -> str:
    """Canonical JSON text of ``value``; raises InvalidPropertyError for what
    JSON cannot represent (NaN, infinities, non-string keys, other types) and
    for nesting deeper than ``max_depth``."""
    if type(value) is str:  # most values: skip the walk
        text = _encode_string(value)
    else:
        parts: list[str] = []
        _encode(value, parts, 0, max_depth)
        text = "".join(parts)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPropertyError(
            "value contains a lone UTF-16 surrogate (invalid unicode); "
            "only valid unicode text is allowed"
        ) from None
    return text


def loads(text: str) -> Any:
    """Inverse of :func:`dumps`: integers as int, other numbers as Decimal."""
    return json.loads(text, parse_float=Decimal)


def _encode(value: Any, out: list[str], depth: int, max_depth: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, int):
        try:
            out.append(str(value))
        except ValueError:  # more digits than Python converts (sys.int_info)
            raise InvalidPropertyError("number has too many digits") from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidPropertyError(f"number {value!r} is not allowed: {_NO_NAN}")
        out.append(_decimal_text(Decimal(repr(value))))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidPropertyError(f"number {value} is not allowed: {_NO_NAN}")
        out.append(_decimal_text(value))
    elif isinstance(value, list | tuple):
        _check_depth(depth, max_depth)
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out, depth + 1, max_depth)
        out.append("]")
    elif isinstance(value, dict):
        _check_depth(depth, max_depth)
        for key in value:
            if not isinstance(key, str):
                raise InvalidPropertyError(f"object keys must be strings, got {type(key).__name__}")
        out.append("{")
        for index, key in enumerate(sorted(value)):
            if index:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _encode(value[key], out, depth + 1, max_depth)
        out.append("}")
    else:
        raise InvalidPropertyError(
            f"values of type {type(value).__name__} are not allowed; "
            "use a string, number, boolean, list, object or null"
        )


def _decimal_text(value: Decimal) -> str:
    # Floats go through Decimal too, so that a number reads back (as Decimal)
    # and writes again as the very same text: "1e+16" would come back "1E+16".
    text = str(value)
    if text.lstrip("-").isdigit():  # "-0" would come back as the integer 0
        return str(int(value))
    return text


def _check_depth(depth: int, max_depth: int) -> None:
    if depth >= max_depth:
        raise InvalidPropertyError(f"value is nested more than {max_depth} levels deep; flatten it")
