"""What a valid property name and value are (one place for both rules)."""

import unicodedata
from typing import Any

from propsync import canonical_json
from propsync.errors import InvalidPropertyError, shown
from propsync.limits import MAX_PROPERTY_NAME_BYTES, MAX_PROPERTY_VALUE_BYTES


def validate_property_name(name: Any) -> str:
    """Any characters are allowed (dots, spaces, ``#``, ``:``, ``$``, unicode)
    except control characters; 1 to 256 bytes of UTF-8."""
    if not isinstance(name, str):
        raise InvalidPropertyError(f"property name must be a string, got {type(name).__name__}")
    if not name:
        raise InvalidPropertyError("property name must not be empty")
    if name.isascii() and name.isprintable() and len(name) <= MAX_PROPERTY_NAME_BYTES:
        return name  # the common case: no control character, one byte per character
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidPropertyError(
            f"property name {shown(name)} is not valid unicode (lone surrogate)"
        ) from None
    if size > MAX_PROPERTY_NAME_BYTES:
        raise InvalidPropertyError(
            f"property name {shown(name)} is {size} bytes of UTF-8; at most "
            f"{MAX_PROPERTY_NAME_BYTES} are allowed"
        )
    for char in name:
        if unicodedata.category(char) == "Cc":
            raise InvalidPropertyError(
                f"property name {name!r} contains the control character U+{ord(char):04X}; "
                "control characters are not allowed in property names"
            )
    return name


def encode_property_value(name: str, value: Any) -> str:
    """Canonical JSON of a property value, refusing values over 16 KB."""
    try:
        encoded = canonical_json.dumps(value)
    except InvalidPropertyError as error:
        raise InvalidPropertyError(f"property {name!r}: {error}") from None
    if len(encoded) <= MAX_PROPERTY_VALUE_BYTES // 4:
        return encoded  # at most 4 bytes of UTF-8 per character: cannot be too large
    size = len(encoded.encode("utf-8"))
    if size > MAX_PROPERTY_VALUE_BYTES:
        raise InvalidPropertyError(
            f"property {name!r}: value is {size} bytes as JSON; at most "
            f"{MAX_PROPERTY_VALUE_BYTES} bytes (16 KB) are allowed"
        )
    return encoded
