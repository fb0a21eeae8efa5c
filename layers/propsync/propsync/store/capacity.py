"""What DynamoDB bills a write on: the size of an item by its documented
formula, and the write units of a request that changes it. Used by `make
bench` and the tests of compaction (the store itself never needs it: it does
not read an item to write it).

DynamoDB's formula ("Item sizes and formats", Amazon DynamoDB Developer
Guide): an item is the sum of its attributes, each the UTF-8 bytes of its
name plus its value: a string its UTF-8 bytes, a number about one byte per
two significant digits plus one, a set the sum of its elements, a map or a
list 3 bytes plus one byte and the size of each element (with a map's
element names). A write (PutItem, UpdateItem, DeleteItem, one that fails its
condition too) costs one write unit per started 1 KB of the larger of the
item before and after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

WRITE_UNIT_BYTES = 1024


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: its significant digits in pairs, one more
    when they do not start on a pair boundary, one for the sign (as
    dynalite, which follows DynamoDB's answers, computes it)."""
    value = Decimal(text)
    if value.is_zero():
        return 1
    sign, digits, _exponent = value.normalize().as_tuple()
    count = len(digits)
    aligned = count % 2 == 0 and value.adjusted() % 2 == 0
    return 1 + math.ceil(count / 2) + (1 if aligned else 0) + (1 if sign else 0)


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's JSON form."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode("utf-8", errors="surrogatepass"))
    if kind == "N":
        return number_size(content)
    if kind == "B":
        return len(content)
    if kind == "SS":
        return sum(len(s.encode("utf-8", errors="surrogatepass")) for s in content)
    if kind == "NS":
        return sum(number_size(n) for n in content)
    if kind == "BS":
        return sum(len(b) for b in content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in content.items())
    raise ValueError(f"not a DynamoDB attribute value: {kind}")


def item_size(item: Mapping[str, Any] | None) -> int:
    """Bytes of an item (0 when there is none)."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> int:
    """Write units of a write that turns ``before`` into ``after`` (an
    item that stays as it is, for a write that fails its condition)."""
    return max(1, math.ceil(max(item_size(before), item_size(after)) / WRITE_UNIT_BYTES))
