"""Request shapes of the HTTP routes (pydantic), shared by the tracking and the
customers functions. Field-level rules (ids, names, values, timestamps) stay in
the core modules so that imports and tracking apply the same ones; these models
check the envelope and turn pydantic's errors into one readable sentence."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from propsync.errors import InvalidInputError

ModelT = TypeVar("ModelT", bound=BaseModel)


class _Body(BaseModel):
    # Unknown fields are ignored, as the original service does: SDKs may send more.
    model_config = ConfigDict(extra="ignore", strict=True)


class CustomersCommandData(_Body):
    """``data`` of a ``customers`` command, and the body of
    ``POST /track/v2/projects/{token}/customers``."""

    customer_ids: dict[str, Any]
    properties: dict[str, Any] = Field(default_factory=dict)
    update_timestamp: Any = None


class CustomerPatch(_Body):
    """Body of ``PATCH /api/customers/{customer_id}`` (a UI edit)."""

    properties: dict[str, Any]


class ExportOneRequest(_Body):
    """Body of ``POST /data/v2/projects/{token}/customers/export-one``."""

    customer_ids: dict[str, Any]


def parse_model(model: type[ModelT], payload: Any) -> ModelT:
    """Validate ``payload`` or raise InvalidInputError naming every problem."""
    if not isinstance(payload, dict):
        raise InvalidInputError(f"expected a JSON object, got {_json_type(payload)}")
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        problems = []
        for problem in error.errors(include_url=False):
            where = ".".join(str(part) for part in problem["loc"]) or "body"
            if problem["type"] == "missing":
                problems.append(f"{where} is required")
            elif problem["type"] in ("dict_type", "model_type"):
                got = _json_type(problem.get("input"))
                problems.append(f"{where} must be an object, got {got}")
            else:
                problems.append(f"{where}: {problem['msg']}")
        raise InvalidInputError("; ".join(problems)) from None


def _json_type(value: Any) -> str:
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
