"""Tracking API (public: the project token in the path is the credential).

POST /track/v2/projects/{project_token}/batch
POST /track/v2/projects/{project_token}/customers
GET  /track/v2/projects/{project_token}/system/time
"""

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

import propsync.snapstart  # noqa: F401 - registers SnapStart's runtime hooks
from propsync import tracking
from propsync.api import Response, Router, json_body, received_at, require_project
from propsync.models import parse_batch
from propsync.observability import (
    capture_lambda_handler,
    capture_method,
    log_api_request,
    logger,
    metrics,
)
from propsync.store.access import access_store_from_environment
from propsync.store.customers import store_from_environment

router = Router()


@router.post("/track/v2/projects/{project_token}/batch")
@capture_method
def batch(event: dict[str, Any], project_token: str) -> Response:
    arrived = received_at(event)
    id_types = require_project(access_store_from_environment(), project_token)
    commands = parse_batch(json_body(event))
    results = tracking.run_batch(
        store_from_environment(), project_token, commands, received_at=arrived, id_types=id_types
    )
    failed = sum(1 for result in results if not result["success"])
    metrics.add_metric("Commands", MetricUnit.Count, len(results))
    metrics.add_metric("FailedCommands", MetricUnit.Count, failed)
    logger.info("batch", extra={"commands": len(results), "failed": failed})
    return Response(
        200,
        {"results": results, "start_time": arrived, "end_time": time.time(), "success": True},
    )


@router.post("/track/v2/projects/{project_token}/customers")
@capture_method
def customers(event: dict[str, Any], project_token: str) -> Response:
    arrived = received_at(event)
    id_types = require_project(access_store_from_environment(), project_token)
    status, result = tracking.run_customers_command(
        store_from_environment(),
        project_token,
        json_body(event),
        received_at=arrived,
        id_types=id_types,
    )
    return Response(status, result)


@router.get("/track/v2/projects/{project_token}/system/time")
def system_time(event: dict[str, Any], project_token: str) -> Response:
    require_project(access_store_from_environment(), project_token)
    return Response(200, {"success": True, "time": time.time()})


@log_api_request
@metrics.log_metrics
@capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return router.resolve(event)
