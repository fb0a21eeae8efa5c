"""The read path: a stored customer in the shapes of ``GET /api/customers/{id}``.

Tombstones (properties deleted with ``null``) are hidden; a property that has
a value but no recorded update time has ``last_update`` ``-1``.
"""

from __future__ import annotations

from typing import Any

from propsync import canonical_json
from propsync.id_types import IdTypes
from propsync.store.customers import CustomerRecord

UNKNOWN_LAST_UPDATE = -1


def plain_properties(record: CustomerRecord) -> dict[str, Any]:
    """``{"first_name": "Marian", ...}`` (``include_timestamps`` absent or 0)."""
    return {
        name: canonical_json.loads(version.encoded_value)
        for name, version in sorted(record.properties.items())
        if not version.is_tombstone
    }


def properties_with_timestamps(record: CustomerRecord) -> dict[str, dict[str, Any]]:
    """``{"first_name": {"value": "Marian", "last_update": 1570001049}, ...}``
    (``include_timestamps=1``)."""
    return {
        name: {
            "value": canonical_json.loads(version.encoded_value),
            "last_update": _last_update(version.timestamp),
        }
        for name, version in sorted(record.properties.items())
        if not version.is_tombstone
    }


def _last_update(timestamp: float | None) -> int | float:
    if timestamp is None:
        return UNKNOWN_LAST_UPDATE
    # Whole seconds read as the product document shows them (1570001049, not 1570001049.0).
    return int(timestamp) if timestamp.is_integer() else timestamp


def export_ids(record: CustomerRecord, id_types: IdTypes) -> dict[str, str | list[str]]:
    """Ids as export-one shows them: a hard id as its one value, a soft id
    type as the list of its values."""
    return {
        id_type: values[0] if id_types.is_hard(id_type) and len(values) == 1 else values
        for id_type, values in sorted(record.ids.items())
    }
