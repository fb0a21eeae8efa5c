"""Customers API (private: the authorizer has checked the API key).

GET   /api/key                                                      (the calling key)
GET   /api/customers/{customer_id}[?include_timestamps=0|1][&include_ids=0|1][&id_type=<type>]
PATCH /api/customers/{customer_id}[?id_type=<type>]                 (UI edits)
POST  /data/v2/projects/{project_token}/customers/export-one
POST  /data/v2/projects/{project_token}/customers/anonymize        (erasure)
POST  /data/v2/projects/{project_token}/customers/attributes[?include_timestamps=0|1]
"""

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

import propsync.snapstart  # noqa: F401 - registers SnapStart's runtime hooks
from propsync import erasure
from propsync.access import Permission, Principal
from propsync.api import (
    Response,
    Router,
    json_body,
    principal_from_event,
    query_value,
    received_at,
    require_permission,
)
from propsync.customer_updates import edit_customer, prepare_property_versions
from propsync.customer_view import (
    attribute_results,
    export_ids,
    plain_properties,
    properties_with_timestamps,
)
from propsync.errors import CustomerNotFoundError, ForbiddenError, InvalidInputError, shown
from propsync.http_json import payload_size
from propsync.id_type_cache import id_types_of
from propsync.id_types import IdTypes
from propsync.identity import find_customer_id, is_customer_id, validate_customer_ids
from propsync.limits import MAX_RESPONSE_BYTES
from propsync.merging import view_following_merges
from propsync.models import (
    AnonymizeRequest,
    AttributesRequest,
    CustomerPatch,
    ExportOneRequest,
    parse,
)
from propsync.observability import (
    capture_lambda_handler,
    capture_method,
    log_api_request,
    logger,
    metrics,
)
from propsync.store.access import access_store_from_environment
from propsync.store.customers import CustomerRecord, store_from_environment
from propsync.store.throttling import within_time_budget

router = Router()


def _switch(event: dict[str, Any], name: str, on: str, off: str) -> bool:
    """A query switch of the read routes: 1 turns it on, 0 or absent leaves
    it off; anything else is a 400 naming both (``on``/``off`` say what each
    answers)."""
    value = query_value(event, name)
    if value in (None, "0"):
        return False
    if value == "1":
        return True
    raise InvalidInputError(
        f"{name}={shown(value)} is not allowed; use 1 ({on}) or 0 / leave it out ({off})"
    )


def _include_timestamps(event: dict[str, Any]) -> bool:
    return _switch(event, "include_timestamps", "values with last_update", "plain values")


def _include_ids(event: dict[str, Any]) -> bool:
    return _switch(event, "include_ids", "the customer's ids too", "properties only")


def _customer_in_path(event: dict[str, Any], project: str, path_id: str) -> str:
    """The customer a GET or PATCH names: ``{customer_id}`` itself, or with
    ``?id_type=`` the customer that external id belongs to. One resolver for
    both routes, so an id that one of them finds the other finds too, and
    both refuse the same ids with the same error."""
    id_type = query_value(event, "id_type")
    if id_type is None:
        if not is_customer_id(path_id):
            raise CustomerNotFoundError(path_id)
        return path_id
    validate_customer_ids({id_type: path_id})  # the shape first, then the project's types
    _id_types(project).check({id_type: path_id})
    found = find_customer_id(store_from_environment(), project, id_type, path_id)
    if found is None:
        raise CustomerNotFoundError(path_id)
    return found


def _id_types(project: str) -> IdTypes:
    """The caller's project's id types (cached per container for a minute)."""
    return id_types_of(access_store_from_environment(), project)


def _read(project: str, customer_id: str) -> CustomerRecord:
    """The caller's project only: another project's customer is 'not found'.
    A customer merged into another reads as the one it was merged into."""
    record = view_following_merges(store_from_environment(), project, [customer_id])
    if record is None:
        raise CustomerNotFoundError(customer_id)
    return record


@router.get("/api/key")
@capture_method
def key(event: dict[str, Any]) -> Response:
    """The calling key as a client needs it to know what to offer (the web
    console at sign-in): its project, its permissions and the project's id
    types. Any valid key may ask; the secret is never part of it."""
    principal = principal_from_event(event)
    id_types = _id_types(principal.project)
    return Response(
        200,
        {
            "success": True,
            "key_id": principal.key_id,
            "project": principal.project,
            "permissions": sorted(principal.permissions),
            "id_types": [{"name": name, "kind": id_types.kind(name)} for name in id_types.known],
        },
    )


@router.get("/api/customers/{customer_id}")
@capture_method
def get_customer(event: dict[str, Any], customer_id: str) -> Response:
    principal = principal_from_event(event)
    require_permission(principal, Permission.GET_CUSTOMER_PROPERTIES)
    with_timestamps = _include_timestamps(event)
    with_ids = _include_ids(event)
    record = _read(principal.project, _customer_in_path(event, principal.project, customer_id))
    shape = properties_with_timestamps if with_timestamps else plain_properties
    answer: dict[str, Any] = {"properties": shape(record)}
    if with_ids:
        # as export-one lists them, so a customer found by its internal id
        # (which export-one cannot find) shows its ids in one request; and
        # its internal id, so one found by an external id shows that one too
        answer["customer_id"] = record.customer_id
        answer["ids"] = export_ids(record, _id_types(principal.project))
    metrics.add_metric("CustomerReads", MetricUnit.Count, 1)
    return Response(200, answer)


@router.patch("/api/customers/{customer_id}")
@capture_method
def patch_customer(event: dict[str, Any], customer_id: str) -> Response:
    principal = principal_from_event(event)
    require_permission(principal, Permission.SET_CUSTOMER_PROPERTIES)
    body = parse(CustomerPatch, json_body(event))
    # UI edits carry the server's time; the whole body is checked before the
    # path is resolved, so a bad body is a 400 whatever customer it names
    versions = prepare_property_versions(body.properties, received_at(event))
    customer_id = _customer_in_path(event, principal.project, customer_id)
    result = edit_customer(store_from_environment(), principal.project, customer_id, versions)
    if result is None:
        raise CustomerNotFoundError(customer_id)
    metrics.add_metric("CustomerEdits", MetricUnit.Count, 1)
    logger.info("customer edited", extra={"applied": len(result.applied)})
    answer: dict[str, Any] = {
        "success": True,
        "customer_id": result.customer_id,  # where a merged-away customer's edit landed
        "applied": list(result.applied),
        "stale": list(result.stale),
    }
    # The edited customer as it now is, but only to a key that may read it:
    # a set-only key must not read whole profiles through its edits.
    if principal.can(Permission.GET_CUSTOMER_PROPERTIES):
        answer["properties"] = properties_with_timestamps(
            _read(principal.project, result.customer_id)
        )
    return Response(200, answer)


def _key_of_project(
    event: dict[str, Any],
    project_token: str,
    permission: Permission = Permission.GET_CUSTOMER_PROPERTIES,
) -> Principal:
    """The caller of a /data/v2 route, whose key must belong to the project
    in the path (403 otherwise, before any other check) and hold
    ``permission``."""
    principal = principal_from_event(event)
    if project_token != principal.project:
        raise ForbiddenError("No permission to access this project with this API key")
    require_permission(principal, permission)
    return principal


def _customer_by_ids(project: str, ids: Mapping[str, str], id_types: IdTypes) -> CustomerRecord:
    """The one customer all of ``ids`` name, as the /data/v2 routes find a
    customer: every id type must be the project's (400 otherwise), every id
    must be known, and all must name one customer, merges followed (ids that
    belonged to customers merged since are the destination's); else 404."""
    id_types.check(ids)
    store = store_from_environment()
    owners = store.identities.lookup(project, ids.items())
    if len(owners) != len(ids):
        raise CustomerNotFoundError(ids)
    # every owner, following merges, must lead to the same customer
    record = view_following_merges(store, project, owners.values())
    if record is None:
        raise CustomerNotFoundError(ids)
    return record


@router.post("/data/v2/projects/{project_token}/customers/export-one")
@capture_method
def export_one(event: dict[str, Any], project_token: str) -> Response:
    principal = _key_of_project(event, project_token)
    ids = parse(ExportOneRequest, json_body(event)).customer_ids
    id_types = _id_types(principal.project)
    record = _customer_by_ids(principal.project, ids, id_types)
    metrics.add_metric("CustomerExports", MetricUnit.Count, 1)
    return Response(
        200,
        {
            "success": True,
            "ids": export_ids(record, id_types),
            "properties": plain_properties(record),
            "events": [],
        },
    )


@router.post("/data/v2/projects/{project_token}/customers/attributes")
@capture_method
def attributes(event: dict[str, Any], project_token: str) -> Response:
    principal = _key_of_project(event, project_token)
    with_timestamps = _include_timestamps(event)
    # the whole request is checked before the customer is looked up, so a
    # malformed one is a 400 whatever customer it names
    request = parse(AttributesRequest, json_body(event))
    id_types = _id_types(principal.project)
    record = _customer_by_ids(principal.project, request.customer_ids, id_types)
    results = attribute_results(
        record, request.attributes, id_types, with_timestamps=with_timestamps
    )
    answer = {"success": True, "results": results}
    # Each result repeats stored values (the same one, if asked again): an
    # answer over Lambda's limit would reach the client as API Gateway's 502.
    size = payload_size(answer)
    if size > MAX_RESPONSE_BYTES:
        raise InvalidInputError(
            f"the answer would be {size} bytes; at most {MAX_RESPONSE_BYTES} bytes (6 MB) can be "
            "answered: ask for fewer attributes, each one once"
        )
    metrics.add_metric("CustomerAttributeReads", MetricUnit.Count, 1)
    return Response(200, answer)


@router.post("/data/v2/projects/{project_token}/customers/anonymize")
@capture_method
def anonymize(event: dict[str, Any], project_token: str) -> Response:
    """Erase the customer the ids name, for good (propsync.erasure): stamped
    with the request's arrival, so that every update sent before it loses."""
    principal = _key_of_project(event, project_token, Permission.ANONYMIZE_CUSTOMERS)
    ids = parse(AnonymizeRequest, json_body(event)).customer_ids
    _id_types(principal.project).check(ids)
    if not erasure.anonymize(store_from_environment(), principal.project, ids, received_at(event)):
        raise CustomerNotFoundError(ids)
    metrics.add_metric("CustomersErased", MetricUnit.Count, 1)
    logger.info("customer erased")  # nothing about whom: the ids are what was erased
    return Response(200, {"success": True})


@log_api_request
@metrics.log_metrics
@capture_lambda_handler
@within_time_budget
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return router.resolve(event)
