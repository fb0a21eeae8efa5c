"""Customers API (private: the authorizer has checked the API key).

GET   /api/customers/{customer_id}[?include_timestamps=0|1][&id_type=<type>]
PATCH /api/customers/{customer_id}                                  (UI edits)
POST  /data/v2/projects/{project_token}/customers/export-one
"""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from propsync.access import Permission
from propsync.api import (
    CustomerNotFoundError,
    ForbiddenError,
    json_body,
    json_response,
    new_resolver,
    principal_from_event,
    received_at,
    require_permission,
)
from propsync.customer_updates import edit_customer
from propsync.customer_view import export_ids, plain_properties, properties_with_timestamps
from propsync.errors import InvalidInputError
from propsync.identity import find_customer_id, is_customer_id, validate_customer_ids
from propsync.models import CustomerPatch, ExportOneRequest, parse_model
from propsync.observability import logger, metrics, tracer
from propsync.store import CustomerRecord, store_from_environment

app = new_resolver()


def _include_timestamps() -> bool:
    value = app.current_event.get_query_string_value("include_timestamps")
    if value in (None, "0"):
        return False
    if value == "1":
        return True
    raise InvalidInputError(
        f"include_timestamps={value!r} is not allowed; use 1 (values with last_update) "
        "or 0 / leave it out (plain values)"
    )


def _read(project: str, customer_id: str | None) -> CustomerRecord:
    """The caller's project only: another project's customer is 'not found'."""
    if customer_id is None or not is_customer_id(customer_id):
        raise CustomerNotFoundError(customer_id)
    record = store_from_environment().read_customer(project, customer_id)
    if record is None:
        raise CustomerNotFoundError(customer_id)
    return record


@app.get("/api/customers/<customer_id>")
@tracer.capture_method
def get_customer(customer_id: str) -> Response[str]:
    principal = principal_from_event(app.current_event.raw_event)
    require_permission(principal, Permission.GET_CUSTOMER_PROPERTIES)
    with_timestamps = _include_timestamps()
    id_type = app.current_event.get_query_string_value("id_type")
    if id_type is not None:
        found = find_customer_id(store_from_environment(), principal.project, id_type, customer_id)
        record = _read(principal.project, found)
    else:
        record = _read(principal.project, customer_id)
    shape = properties_with_timestamps if with_timestamps else plain_properties
    metrics.add_metric("CustomerReads", MetricUnit.Count, 1)
    return json_response(200, {"properties": shape(record)})


@app.patch("/api/customers/<customer_id>")
@tracer.capture_method
def patch_customer(customer_id: str) -> Response[str]:
    principal = principal_from_event(app.current_event.raw_event)
    require_permission(principal, Permission.SET_CUSTOMER_PROPERTIES)
    body = parse_model(CustomerPatch, json_body(app.current_event.raw_event))
    if not is_customer_id(customer_id):
        raise CustomerNotFoundError(customer_id)
    store = store_from_environment()
    now = received_at(app.current_event.raw_event)  # UI edits carry the server's time
    result = edit_customer(store, principal.project, customer_id, body.properties, now=now)
    if result is None:
        raise CustomerNotFoundError(customer_id)
    metrics.add_metric("CustomerEdits", MetricUnit.Count, 1)
    logger.info("customer edited", extra={"applied": len(result.applied)})
    record = _read(principal.project, customer_id)
    return json_response(
        200,
        {
            "success": True,
            "customer_id": customer_id,
            "applied": list(result.applied),
            "stale": list(result.ignored),
            "properties": properties_with_timestamps(record),
        },
    )


@app.post("/data/v2/projects/<project_token>/customers/export-one")
@tracer.capture_method
def export_one(project_token: str) -> Response[str]:
    principal = principal_from_event(app.current_event.raw_event)
    if project_token != principal.project:
        raise ForbiddenError("No permission to access this project with this API key")
    require_permission(principal, Permission.GET_CUSTOMER_PROPERTIES)
    body = parse_model(ExportOneRequest, json_body(app.current_event.raw_event))
    ids = validate_customer_ids(body.customer_ids)
    store = store_from_environment()
    owners = store.lookup_identities(principal.project, ids.items())
    if len(set(owners.values())) != 1 or len(owners) != len(ids):
        raise CustomerNotFoundError(ids)
    record = _read(principal.project, next(iter(owners.values())))
    metrics.add_metric("CustomerExports", MetricUnit.Count, 1)
    return json_response(
        200,
        {
            "success": True,
            "ids": export_ids(record),
            "properties": plain_properties(record),
            "events": [],
        },
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
