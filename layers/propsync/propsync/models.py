"""Request bodies of the HTTP routes as pydantic models: what every request is
checked against, and what the OpenAPI document (docs/openapi.json,
propsync.openapi) is generated from.

The original product's error sentences are part of the contract (clients and
docs/API.md depend on them), so pydantic's own messages never reach a client:
``_sentence`` maps each of pydantic's errors to the product's sentence, the
one place that does. Field rules shared with imports (id values, id type
names, the project's id types, an update timestamp's form) stay in their
modules and run as validators here, so a body that passes its model has
valid ids and a valid timestamp, and validates against its request schema in
the OpenAPI document. Unknown fields are ignored: SDKs of the original
product may send more than propsync reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import ErrorDetails

from propsync.errors import BatchError, InvalidInputError, PropsyncError, shown
from propsync.http_json import json_size
from propsync.id_types import ID_TYPE_SCHEMA, IdTypes, check_id_type_name
from propsync.identity import validate_customer_ids
from propsync.limits import (
    MAX_ATTRIBUTES,
    MAX_BATCH_COMMANDS,
    MAX_COMMAND_BYTES,
    MAX_ID_VALUE_BYTES,
    MAX_PROPERTY_NAME_BYTES,
)
from propsync.properties import validate_property_name
from propsync.timestamps import seconds_of

CUSTOMERS = "customers"
CUSTOMER_EVENTS = "customers/events"
SYSTEM_TIME = "system/time"
SYSTEM_COOKIE = "system/cookie"
KNOWN_COMMANDS = (CUSTOMERS, CUSTOMER_EVENTS, SYSTEM_TIME, SYSTEM_COOKIE)


class RequestModel(BaseModel):
    """Strict: a JSON value is never coerced into another type (no "1" for 1,
    no list for an object); frozen: a parsed body is not changed afterwards."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)
    # the sentence for a body (or command) that is not a JSON object at all
    not_an_object: ClassVar[str] = "expected a JSON object, got {json_type}"


# The id rules a JSON schema can state (tests/unit/test_request_schemas.py
# keeps them in step with id_types.check_id_type_name and
# identity.validate_customer_ids; a lone surrogate and a value's size in bytes
# they cannot). Patterns without anchors: Python's "$", which jsonschema and
# other Python validators use, also matches before a final newline.
NO_CONTROL_CHARACTER = {"pattern": "[\\u0000-\\u001f\\u007f-\\u009f]"}
ID_VALUE_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_ID_VALUE_BYTES,
    "not": NO_CONTROL_CHARACTER,
}


def _valid_ids(customer_ids: dict[str, Any], info: ValidationInfo) -> dict[str, str]:
    """The shared id rules, then, when the caller passed its project's id
    types (``context={"id_types": ...}``), that the project knows each one:
    a misspelt id type must not create a customer apart. Both before the
    update timestamp's rules, as the original service checks them."""
    ids = validate_customer_ids(customer_ids)
    id_types = (info.context or {}).get("id_types")
    if id_types is not None:
        id_types.check(ids)
    return ids


CustomerIds = Annotated[
    dict[str, Any],
    AfterValidator(_valid_ids),
    WithJsonSchema(
        {
            "type": "object",
            "description": "The customer's ids: id type to id value, e.g. "
            '{"registered": "jane@example.com", "cookie": "b2c1..."}. At least one; every '
            "id type must be one of the project's; values are non-empty text of at most "
            f"{MAX_ID_VALUE_BYTES} bytes without control characters.",
            "minProperties": 1,
            "propertyNames": ID_TYPE_SCHEMA,
            "additionalProperties": ID_VALUE_SCHEMA,
            "examples": [{"registered": "jane@example.com"}],
        }
    ),
]
PropertyValues = Annotated[
    dict[str, Any],
    Field(
        description="Property name to value: any JSON value (null clears the property); "
        "names are 1 to 256 bytes without control characters, values at most 16 KB as JSON.",
        examples=[{"first_name": "Marian", "loyalty": {"tier": "gold"}}],
    ),
]


def _timestamp_form(value: Any) -> Any:
    """Every rule of an update timestamp but how far ahead it may be, which
    depends on when the request arrived (checked as the update is written,
    propsync.timestamps.normalize_timestamp). The value is kept as sent."""
    if value is not None:
        seconds_of(value)
    return value


UpdateTimestamp = Annotated[
    Any,
    AfterValidator(_timestamp_form),
    WithJsonSchema(
        {
            "description": "When the update happened, in UNIX seconds (a number, or a string "
            "holding one; fractions allowed). Without it the update is stamped with the time "
            "the request arrived. A property is overwritten only by a newer update.",
            "anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}, {"type": "null"}],
            "examples": [1700000000.5],
        }
    ),
]


def is_unicode(text: str) -> bool:
    """False if ``text`` holds a lone UTF-16 surrogate (JSON's "\\ud800"),
    which no answer can be written with."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _answerable_command_id(command_id: str | None) -> str | None:
    if command_id is not None and not is_unicode(command_id):
        raise InvalidInputError(
            "command_id must be valid unicode text; it contains a lone UTF-16 surrogate"
        )
    return command_id


CommandId = Annotated[
    str | None,
    AfterValidator(_answerable_command_id),
    Field(description="Any text; the command's result repeats it."),
]


class CustomersCommandData(RequestModel):
    """The `data` of a `customers` command, and the body of the
    single-command route: a customer's ids and the properties to store."""

    customer_ids: CustomerIds
    properties: PropertyValues = Field(default_factory=dict)
    update_timestamp: UpdateTimestamp = None


class CustomerPatch(RequestModel):
    """An edit by a person: the properties are stamped with the time the
    request arrived."""

    properties: PropertyValues


class ExportOneRequest(RequestModel):
    """The customer to export, by its ids."""

    customer_ids: CustomerIds


class AnonymizeRequest(RequestModel):
    """The customer to erase, by its ids (each must be one of its ids)."""

    customer_ids: CustomerIds


# ---------------------------------------------------------------- attributes

# The rule of propsync.properties.validate_property_name that a JSON schema
# can state (its size in bytes and lone surrogates it cannot).
PROPERTY_NAME_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_PROPERTY_NAME_BYTES,
    "not": NO_CONTROL_CHARACTER,
}
PropertyName = Annotated[
    str,
    AfterValidator(validate_property_name),
    WithJsonSchema(
        {
            **PROPERTY_NAME_SCHEMA,
            "description": "A property name: 1 to 256 bytes of UTF-8 without control characters.",
        }
    ),
]
IdTypeName = Annotated[
    str,
    AfterValidator(check_id_type_name),
    WithJsonSchema({**ID_TYPE_SCHEMA, "description": "An id type, e.g. registered or cookie."}),
]
NonEmptyText = Annotated[str, Field(min_length=1)]


class PropertyAttribute(RequestModel):
    """A property's value: null where the customer has none; with
    `include_timestamps=1`, its `last_update` beside it."""

    type: Literal["property"]
    property: PropertyName


class IdAttribute(RequestModel):
    """The customer's ids of one id type, as export-one shows them: a hard id
    type's value, a soft id type's list of values; null where it has none."""

    type: Literal["id"]
    id: IdTypeName


class UnsupportedAttribute(RequestModel):
    """An attribute type of the original product that propsync does not
    have: answered `{"success": false, "error": "... are not supported ..."}`
    in its place."""

    type: Literal["segmentation", "expression", "aggregate", "prediction"]
    id: NonEmptyText


class ConsentAttribute(RequestModel):
    """A consent category: propsync keeps no consents, so it is answered
    `{"success": false, "error": "consents are not supported: ..."}`."""

    type: Literal["consent"]
    category: NonEmptyText


_ATTRIBUTE_MODELS = (PropertyAttribute, IdAttribute, UnsupportedAttribute, ConsentAttribute)
Attribute = Annotated[
    PropertyAttribute | IdAttribute | UnsupportedAttribute | ConsentAttribute,
    Field(discriminator="type"),
]
# Every attribute type, as the messages name them: property, id, segmentation, ...
ATTRIBUTE_TYPES: tuple[str, ...] = tuple(
    name for model in _ATTRIBUTE_MODELS for name in get_args(model.model_fields["type"].annotation)
)
# An attribute of each type, for the messages (the unsupported types with an
# "id" are like segmentation's).
_ATTRIBUTE_EXAMPLES = {
    "property": '{"type": "property", "property": "email"}',
    "id": '{"type": "id", "id": "registered"}',
    "consent": '{"type": "consent", "category": "newsletter"}',
}


class AttributesRequest(RequestModel):
    """A customer, by its ids, and 1 to 1,000 of its attributes; one result
    per attribute, in order. A malformed attribute refuses the request whole
    (docs/DECISIONS.md: "A malformed attribute refuses the whole request")."""

    customer_ids: CustomerIds
    attributes: Annotated[list[Attribute], Field(min_length=1, max_length=MAX_ATTRIBUTES)]


# ---------------------------------------------------------------- tracking commands


class CustomersCommand(RequestModel):
    """Creates or updates a customer: each property is stored unless the
    stored value is newer."""

    name: Literal["customers"]
    command_id: CommandId = None
    data: CustomersCommandData


class SystemTimeCommand(RequestModel):
    """The server's time in UNIX seconds, to estimate a device's clock skew."""

    name: Literal["system/time"]
    command_id: CommandId = None


class SystemCookieCommand(RequestModel):
    """A new random cookie id (a UUID)."""

    name: Literal["system/cookie"]
    command_id: CommandId = None


class CustomerEventsCommand(RequestModel):
    """Accepted by name so that SDKs can send it; answers an error, since
    propsync stores customer properties only."""

    name: Literal["customers/events"]
    command_id: CommandId = None
    data: Any = None


TrackingCommand = Annotated[
    CustomersCommand | SystemTimeCommand | SystemCookieCommand | CustomerEventsCommand,
    Field(discriminator="name"),
]
_TRACKING_COMMAND: TypeAdapter[TrackingCommand] = TypeAdapter(TrackingCommand)


class BatchRequest(RequestModel):
    """1 to 50 commands. Each command is checked alone and fails alone; the
    batch is refused whole only when it is not a batch."""

    # The commands are not validated with the batch (SkipValidation: the
    # schema still shows them): parse_command checks each one.

    not_an_object: ClassVar[str] = 'the body must be a JSON object: {"commands": [...]}'

    commands: Annotated[
        list[SkipValidation[TrackingCommand]],
        Field(min_length=1, max_length=MAX_BATCH_COMMANDS),
    ]


# ---------------------------------------------------------------- parsing

ModelT = TypeVar("ModelT", bound=RequestModel)


def parse(model: type[ModelT], payload: Any, id_types: IdTypes | None = None) -> ModelT:
    """``payload`` as ``model``, or the product's error for its first problem
    (see _error); with ``id_types``, ids of other id types are refused too."""
    try:
        return model.model_validate(payload, context={"id_types": id_types})
    except ValidationError as error:
        raise _error(error.errors(), model.not_an_object, tuple(model.model_fields)) from None


def parse_batch(payload: Any) -> list[Any]:
    """The commands of a batch body, each still unchecked, or BatchError."""
    try:
        return BatchRequest.model_validate(payload).commands
    except ValidationError as error:
        raise BatchError(str(_error(error.errors(), BatchRequest.not_an_object))) from None


def parse_command(command: Any, id_types: IdTypes | None = None) -> TrackingCommand:
    """One command of a batch, or InvalidInputError (its result's error): the
    command's own fields are checked first, then a customers command's size
    (MAX_COMMAND_BYTES), then its data, as the original service does."""
    try:
        parsed = _TRACKING_COMMAND.validate_python(command, context={"id_types": id_types})
    except ValidationError as error:
        problems = error.errors()
        if min(map(_stage, problems)) > _OWN_FIELD:  # only its data is wrong
            check_command_size(command)
        raise _error(problems, _COMMAND_NOT_AN_OBJECT) from None
    if isinstance(parsed, CustomersCommand):
        check_command_size(command)
    return parsed


def parse_command_data(payload: Any, id_types: IdTypes | None = None) -> CustomersCommandData:
    """The body of the single-command route: checked as a batch's command
    is (its size, then its data), so both routes refuse it alike."""
    check_command_size(payload)
    return parse(CustomersCommandData, payload, id_types)


def check_command_size(command: Any) -> None:
    size = json_size(command)
    if size > MAX_COMMAND_BYTES:
        raise InvalidInputError(
            f"command is {size} bytes; one update must be at most {MAX_COMMAND_BYTES} bytes "
            "(800 KB)"
        )


# The order the original service checks a body in, which decides the one
# problem an answer names: a command's own fields (name, command_id); the
# shape of the body or data (missing fields, fields that must be objects);
# the rules of the values (propsync's validators); last, what is wrong
# inside one attribute of an attributes request (only the first such
# attribute is named). Only shape problems are named together, joined with
# "; " (docs/API.md): every other sentence is answered alone, as the docs
# give it, with its own error class.
_OWN_FIELD, _SHAPE, _RULE, _ATTRIBUTE = range(4)
_COMMAND_NOT_AN_OBJECT = 'a command must be an object: {"name": ..., "data": {...}}'
_SHAPE_KINDS = ("missing", "model_type", "model_attributes_type", "dict_type", "list_type")


def _stage(problem: ErrorDetails) -> int:
    path = _path(problem)
    if path[:1] == ["attributes"] and len(path) > 1:
        return _ATTRIBUTE
    if not path or problem["type"].startswith("union_tag") or path[:1] == ["command_id"]:
        return _OWN_FIELD  # the body or command itself, its name or its command_id
    return _SHAPE if problem["type"] in _SHAPE_KINDS else _RULE


def _error(
    problems: list[ErrorDetails], not_an_object: str, fields: tuple[str, ...] = ()
) -> PropsyncError:
    """The product's error for the first problems (see _stage): a rule's own
    error (its class decides the status), else an InvalidInputError.
    ``fields``: the model's, named when a field is unknown."""
    first = min(map(_stage, problems))
    named = [problem for problem in problems if _stage(problem) == first]
    if first != _SHAPE:
        named = named[:1]
    rule_error = (named[0].get("ctx") or {}).get("error")
    if first == _ATTRIBUTE:
        position = _attribute_position(named[0])
        if isinstance(rule_error, PropsyncError):  # the rule's class, its place named
            return type(rule_error)(f"{position}: {rule_error}")
        return InvalidInputError(_attribute_sentence(named[0], position))
    if len(named) == 1 and isinstance(rule_error, PropsyncError):
        return rule_error  # one of propsync's own rules, with its own class
    return InvalidInputError(
        "; ".join(_sentence(problem, not_an_object, fields) for problem in named)
    )


# The product's sentences for pydantic's errors on a named field, where the
# generic ones below do not say it as the original service does.
_FIELD_SENTENCES = {
    ("commands", "missing"): '"commands" is required: a list of 1 to 50 commands',
    ("commands", "list_type"): '"commands" must be a list of 1 to 50 commands',
    ("commands", "too_short"): '"commands" is empty: send 1 to 50 commands',
    ("commands", "too_long"): '"commands" has {actual_length} commands; at most {max_length} '
    "are allowed in one batch",
    ("data", "missing"): '"data" is required for a customers command',
    ("attributes", "missing"): f'"attributes" is required: a list of 1 to {MAX_ATTRIBUTES} '
    "attributes",
    ("attributes", "list_type"): f'"attributes" must be a list of 1 to {MAX_ATTRIBUTES} attributes',
    ("attributes", "too_short"): f'"attributes" is empty: ask for 1 to {MAX_ATTRIBUTES} attributes',
    ("attributes", "too_long"): '"attributes" has {actual_length} attributes; at most '
    "{max_length} are allowed in one request",
}
# fields the original service read as missing when they were null (and
# attributes, read as the commands of a batch are)
_NULL_IS_MISSING = ("commands", "data", "attributes")
_NOT_AN_OBJECT = ("model_type", "model_attributes_type", "dict_type")


def _path(problem: ErrorDetails) -> list[str]:
    # the command's name is the tag of the union, not a field of the path
    return [str(part) for part in problem["loc"] if part not in KNOWN_COMMANDS]


def _sentence(problem: ErrorDetails, not_an_object: str, fields: tuple[str, ...] = ()) -> str:
    """One of pydantic's errors in the original service's words."""
    kind, value, ctx = problem["type"], problem["input"], problem.get("ctx") or {}
    path = _path(problem)
    if len(path) > 1 and path[-1].isdigit():  # an item of a list: header[3]
        path = [*path[:-2], f"{path[-2]}[{path[-1]}]"]
    if kind == "value_error" and isinstance(ctx.get("error"), PropsyncError):
        return str(ctx["error"])
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        if not isinstance(value, Mapping):  # a number (a Decimal has attributes), ...
            return not_an_object.replace("{json_type}", json_type(value))
        name = value.get("name")
        return f"unknown command name {shown(name)}; known commands: {', '.join(KNOWN_COMMANDS)}"
    field = path[-1] if path else ""
    if field in _NULL_IS_MISSING and kind in (*_NOT_AN_OBJECT, "list_type") and value is None:
        kind = "missing"
    template = _FIELD_SENTENCES.get((field, kind))
    if template:
        return template.format(**ctx)
    if not path and kind in _NOT_AN_OBJECT:
        return not_an_object.replace("{json_type}", json_type(value))
    if kind == "missing":
        return f"{field} is required"
    if kind in _NOT_AN_OBJECT:
        if field == "data":
            return f"expected a JSON object, got {json_type(value)}"
        return f"{field} must be an object, got {json_type(value)}"
    if kind == "string_type":
        return f"{field} must be a string"
    if kind == "list_type":
        return f"{field} must be a list, got {json_type(value)}"
    if kind == "int_type":
        return f"{field} must be a whole number, got {json_type(value)}"
    if kind == "extra_forbidden":
        return f"unknown field {shown(field)}; the fields are {', '.join(fields)}"
    # not reached by the models above; a model added later still gets its path
    return f"{'.'.join(path) or 'the body'}: {problem['msg']}"


def _attribute_position(problem: ErrorDetails) -> str:
    """``attributes[3]``: which attribute a problem is in."""
    return f"attributes[{problem['loc'][1]}]"


def _attribute_sentence(problem: ErrorDetails, position: str) -> str:
    """What is wrong with one attribute of an attributes request, and what
    is allowed. Its path is [attributes, index] for the attribute itself,
    [attributes, index, type, field] for one of its fields."""
    kind, value = problem["type"], problem["input"]
    if kind in _NOT_AN_OBJECT or (kind.startswith("union_tag") and not isinstance(value, Mapping)):
        example = _ATTRIBUTE_EXAMPLES["property"]
        return f"{position} must be an object such as {example}, got {json_type(value)}"
    known = f"known types: {', '.join(ATTRIBUTE_TYPES)}"
    if kind.startswith("union_tag"):
        if "type" not in value:
            return f'{position} has no "type"; {known}'
        return f"{position} has type {shown(value['type'])}; {known}"
    if len(problem["loc"]) != 4:  # not reached by the attribute models above
        return f"{position}: {problem['msg']}"
    attribute_type, field = (str(part) for part in problem["loc"][2:])
    if kind == "missing":
        example = _ATTRIBUTE_EXAMPLES.get(
            attribute_type, f'{{"type": "{attribute_type}", "id": "5f3a..."}}'
        )
        return f'{position} of type {shown(attribute_type)} needs "{field}", e.g. {example}'
    if kind == "string_type":
        return f'{position}: "{field}" must be a string, got {json_type(value)}'
    if kind == "string_too_short":
        return f'{position}: "{field}" must not be empty'
    if kind == "string_unicode":
        return (
            f'{position}: "{field}" must be valid unicode text; it contains a lone UTF-16 surrogate'
        )
    # not reached by the attribute models above; one added later still gets its place
    return f"{position}: {problem['msg']}"


def json_type(value: Any) -> str:
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
