"""Request shapes of the HTTP routes, shared by the tracking and the customers
functions. Field-level rules (ids, names, values, timestamps) stay in the core
modules so that imports and tracking apply the same ones; these shapes check
the envelope: which fields are required and which must be JSON objects, and
name every problem in one readable sentence.

Plain dataclasses, not pydantic: three envelopes of at most three fields do
not need a validation library, and importing pydantic and building its models
cost the tracking function about 90 ms of cold start (make bench;
docs/DECISIONS.md: "Request envelopes are checked by hand").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from propsync.errors import InvalidInputError

_REQUIRED = object()  # marks a field without a default


@dataclass(frozen=True)
class CustomersCommandData:
    """``data`` of a ``customers`` command, and the body of
    ``POST /track/v2/projects/{token}/customers``."""

    customer_ids: dict[str, Any]
    properties: dict[str, Any] = field(default_factory=dict)
    update_timestamp: Any = None

    @classmethod
    def parse(cls, payload: Any) -> CustomersCommandData:
        fields = _fields(
            payload,
            objects={"customer_ids": _REQUIRED, "properties": {}},
            anything={"update_timestamp": None},
        )
        return cls(**fields)


@dataclass(frozen=True)
class CustomerPatch:
    """Body of ``PATCH /api/customers/{customer_id}`` (a UI edit)."""

    properties: dict[str, Any]

    @classmethod
    def parse(cls, payload: Any) -> CustomerPatch:
        return cls(**_fields(payload, objects={"properties": _REQUIRED}))


@dataclass(frozen=True)
class ExportOneRequest:
    """Body of ``POST /data/v2/projects/{token}/customers/export-one``."""

    customer_ids: dict[str, Any]

    @classmethod
    def parse(cls, payload: Any) -> ExportOneRequest:
        return cls(**_fields(payload, objects={"customer_ids": _REQUIRED}))


def _fields(
    payload: Any, *, objects: dict[str, Any], anything: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The named fields of ``payload``: ``objects`` must be JSON objects,
    ``anything`` may be any JSON value; each maps to its default (or
    _REQUIRED). Unknown fields are ignored, as the original service does: SDKs
    may send more. Raises InvalidInputError naming every problem."""
    if not isinstance(payload, dict):
        raise InvalidInputError(f"expected a JSON object, got {_json_type(payload)}")
    values: dict[str, Any] = {}
    problems = []
    for name, default in objects.items():
        if name not in payload:
            if default is _REQUIRED:
                problems.append(f"{name} is required")
            else:
                values[name] = dict(default)
        elif not isinstance(payload[name], dict):
            problems.append(f"{name} must be an object, got {_json_type(payload[name])}")
        else:
            values[name] = payload[name]
    for name, default in (anything or {}).items():
        values[name] = payload.get(name, default)
    if problems:
        raise InvalidInputError("; ".join(problems))
    return values


def _json_type(value: Any) -> str:
    """How a JSON value's type is named in error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float) or type(value).__name__ == "Decimal":
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
