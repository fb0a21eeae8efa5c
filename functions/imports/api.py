"""Import API (private: the authorizer has checked the API key; every route
needs the customers:import permission and acts on the key's project).

POST /api/imports/preview          a mapping on the first lines of a file
POST /api/imports                  write the mapping, answer an upload form
GET  /api/imports[?file_key=][&limit=][&next=]   executions, newest first
GET  /api/imports/{execution_id}   one execution with its report
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

import propsync.snapstart  # noqa: F401 - registers SnapStart's runtime hooks
from propsync import import_api
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
from propsync.bucket import api_bucket_from_environment
from propsync.errors import UnknownProjectError
from propsync.id_types import IdTypes
from propsync.import_api import ImportPreviewRequest, ImportStartRequest
from propsync.models import parse
from propsync.observability import (
    capture_lambda_handler,
    capture_method,
    log_api_request,
    logger,
    metrics,
)
from propsync.store.access import access_store_from_environment
from propsync.store.imports import import_store_from_environment
from propsync.store.throttling import within_time_budget

router = Router()


def _importer(event: dict[str, Any]) -> Principal:
    principal = principal_from_event(event)
    require_permission(principal, Permission.IMPORT_CUSTOMERS)
    return principal


def _id_types(project: str) -> IdTypes:
    """The project's id types read afresh, as an execution reads them when
    it starts: an id type added a moment ago is known to a preview too."""
    id_types = access_store_from_environment().project_id_types(project)
    if id_types is None:
        raise UnknownProjectError(project)
    return id_types


@router.post("/api/imports/preview")
@capture_method
def preview(event: dict[str, Any]) -> Response:
    principal = _importer(event)
    request = parse(ImportPreviewRequest, json_body(event))
    project = principal.project
    answer = import_api.preview(project, _id_types(project), request, received_at(event))
    metrics.add_metric("ImportPreviews", MetricUnit.Count, 1)
    return Response(200, answer)


@router.post("/api/imports")
@capture_method
def start(event: dict[str, Any]) -> Response:
    principal = _importer(event)
    request = parse(ImportStartRequest, json_body(event))
    project = principal.project
    answer = import_api.start(project, _id_types(project), api_bucket_from_environment(), request)
    metrics.add_metric("ImportUploadForms", MetricUnit.Count, 1)
    logger.info("import upload form given", extra={"file_key": answer["file_key"]})
    return Response(201, answer)


@router.get("/api/imports")
@capture_method
def list_executions(event: dict[str, Any]) -> Response:
    principal = _importer(event)
    answer = import_api.list_executions(
        import_store_from_environment(),
        principal.project,
        file_key=query_value(event, "file_key"),
        limit=query_value(event, "limit"),
        next_token=query_value(event, "next"),
    )
    return Response(200, answer)


@router.get("/api/imports/{execution_id}")
@capture_method
def get_execution(event: dict[str, Any], execution_id: str) -> Response:
    principal = _importer(event)
    answer = import_api.execution_with_report(
        import_store_from_environment(),
        api_bucket_from_environment(),
        principal.project,
        execution_id,
    )
    return Response(200, answer)


@log_api_request
@metrics.log_metrics
@capture_lambda_handler
@within_time_budget
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return router.resolve(event)
