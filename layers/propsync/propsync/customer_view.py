"""The read path: a stored customer in the shapes of ``GET /api/customers/{id}``,
export-one and the attributes route.

Tombstones (properties deleted with ``null``) are hidden; a property that has
a value but no recorded update time has ``last_update`` ``-1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from propsync import canonical_json
from propsync.id_types import IdTypes
from propsync.merge_rule import PropertyVersion
from propsync.models import (
    Attribute,
    ConsentAttribute,
    IdAttribute,
    PropertyAttribute,
    UnsupportedAttribute,
)
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
        name: _with_timestamp(version)
        for name, version in sorted(record.properties.items())
        if not version.is_tombstone
    }


def _with_timestamp(version: PropertyVersion) -> dict[str, Any]:
    return {
        "value": canonical_json.loads(version.encoded_value),
        "last_update": _last_update(version.timestamp),
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


# The attribute types of the original product that propsync does not have,
# as their results name them.
_NOT_KEPT = {
    "segmentation": "segmentations",
    "expression": "expressions",
    "aggregate": "aggregates",
    "prediction": "predictions",
    "consent": "consents",
}


def attribute_results(
    record: CustomerRecord,
    attributes: Sequence[Attribute],
    id_types: IdTypes,
    *,
    with_timestamps: bool,
) -> list[dict[str, Any]]:
    """One result per attribute, in order, as the attributes route answers:
    ``{"success": true, "value": ...}``, or ``{"success": false, "error":
    ...}`` for an attribute propsync cannot answer, in its place."""
    ids = export_ids(record, id_types)
    results = []
    for attribute in attributes:
        match attribute:
            case PropertyAttribute(property=name):
                results.append(_property_result(record, name, with_timestamps))
            case IdAttribute(id=id_type):
                unknown = id_types.unknown_problem([id_type])
                if unknown:
                    results.append({"success": False, "error": unknown})
                else:
                    results.append({"success": True, "value": ids.get(id_type)})
            case UnsupportedAttribute() | ConsentAttribute():
                results.append({"success": False, "error": _not_supported(attribute.type)})
    return results


def _property_result(record: CustomerRecord, name: str, with_timestamps: bool) -> dict[str, Any]:
    """Its value, null where the customer has none (never had one, or it was
    deleted); ``last_update`` beside a value when asked, as
    ``include_timestamps=1`` words it: a missing value has no update to show."""
    version = record.properties.get(name)
    if version is None or version.is_tombstone:
        return {"success": True, "value": None}
    if with_timestamps:
        return {"success": True, **_with_timestamp(version)}
    return {"success": True, "value": canonical_json.loads(version.encoded_value)}


def _not_supported(attribute_type: str) -> str:
    return (
        f"{_NOT_KEPT[attribute_type]} are not supported: propsync keeps customer properties "
        "and ids only"
    )
