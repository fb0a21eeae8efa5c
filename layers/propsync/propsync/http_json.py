"""JSON in and out of the HTTP routes, keeping numbers exact.

Request bodies are parsed with non-integer numbers as ``Decimal`` (so a value
such as ``0.1000000000000000055511151231257827`` is stored digit for digit),
and ``NaN``/``Infinity``, which are not JSON, are refused, as are numbers that
no Decimal holds (an exponent of more than 18 digits) and integers of more
than 4,300 digits (Python's limit). Responses are written with the same exact
number formatting as stored values.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from propsync import canonical_json
from propsync.errors import InvalidInputError, InvalidJsonError, RequestTooLargeError

# import_mapping catches this one as http_json.NumberOutOfRangeError: an explicit re-export
from propsync.errors import NumberOutOfRangeError as NumberOutOfRangeError  # noqa: PLC0414
from propsync.limits import MAX_REQUEST_BYTES, MAX_VALUE_NESTING


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_body(body: str | bytes | None) -> Any:
    """The request body as Python values, or InvalidJsonError / RequestTooLargeError
    (NumberOutOfRangeError for a number no Decimal holds)."""
    if not body:
        raise InvalidJsonError("Invalid JSON")
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > MAX_REQUEST_BYTES:
        raise RequestTooLargeError(
            f"request body is {len(raw)} bytes; at most {MAX_REQUEST_BYTES} bytes (6 MB) "
            "are allowed: split the batch"
        )
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_refuse_constant)
    except InvalidOperation:  # Decimal's refusal, e.g. 1e9999999999999999999
        raise NumberOutOfRangeError(
            "a number in the body is out of range: its exponent may have at most 18 digits; "
            "send such a value as a string"
        ) from None
    except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise InvalidJsonError("Invalid JSON") from None


# Responses hold stored values (at most MAX_VALUE_NESTING deep) inside a few
# levels of envelope.
_RESPONSE_MAX_DEPTH = MAX_VALUE_NESTING + 8


def dumps(value: Any) -> str:
    """Response JSON; numbers are written exactly (Decimal digit for digit)."""
    return canonical_json.dumps(value, max_depth=_RESPONSE_MAX_DEPTH)


def payload_size(body: Any) -> int:
    """Bytes an answer with this body takes in Lambda's response payload,
    what its 6 MB limit counts: the body as ``dumps`` writes it, inside the
    proxy integration's envelope as a JSON string, where every non-ASCII
    character is a ``\\u`` escape (6 or 12 bytes) and every quote and
    backslash is escaped (plus the envelope's own few hundred bytes)."""
    return len(json.dumps(dumps(body))) + _ENVELOPE_BYTES


# statusCode, headers and the other keys of api.Response.proxy_result
_ENVELOPE_BYTES = 256


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (for the per-command size limit).
    Any parsed body can be measured: a lone surrogate counts its 3 bytes (the
    field's own check refuses it, naming the field), and nesting too deep to
    measure is refused here."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:
        raise InvalidInputError(
            f"the command is nested too deeply; property values may be nested at most "
            f"{MAX_VALUE_NESTING} levels deep"
        ) from None
    return len(text.encode("utf-8", errors="surrogatepass"))
