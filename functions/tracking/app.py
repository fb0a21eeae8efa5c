"""Tracking API (public: the project token in the path is the credential).

Writes before it answers, or, with TrackingWrites=queued, checks the commands
and queues them for the worker (worker.py, propsync.tracking_queue).

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
from propsync.api import Response, Router, json_body, received_at, request_id, require_project
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
from propsync.store.throttling import within_time_budget
from propsync.tracking_queue import (
    QUEUED,
    accept_commands,
    accept_customers_command,
    queue_from_environment,
    tracking_writes,
)

router = Router()


@router.post("/track/v2/projects/{project_token}/batch")
@capture_method
def batch(event: dict[str, Any], project_token: str) -> Response:
    arrived = received_at(event)
    id_types = require_project(access_store_from_environment(), project_token)
    commands = parse_batch(json_body(event))
    mode = tracking_writes()
    if mode == QUEUED:
        outcomes = accept_commands(
            queue_from_environment(),
            project_token,
            commands,
            received_at=arrived,
            request_id=request_id(event),
            id_types=id_types,
        )
    else:
        outcomes = tracking.run_commands(
            store_from_environment(),
            project_token,
            commands,
            received_at=arrived,
            id_types=id_types,
        )
    results = [result for _status, result in outcomes]
    count_commands(results, mode)
    return Response(
        200,
        {"results": results, "start_time": arrived, "end_time": time.time(), "success": True},
    )


@router.post("/track/v2/projects/{project_token}/customers")
@capture_method
def customers(event: dict[str, Any], project_token: str) -> Response:
    arrived = received_at(event)
    id_types = require_project(access_store_from_environment(), project_token)
    mode = tracking_writes()
    if mode == QUEUED:
        status, result = accept_customers_command(
            queue_from_environment(),
            project_token,
            json_body(event),
            received_at=arrived,
            request_id=request_id(event),
            id_types=id_types,
        )
    else:
        status, result = tracking.run_customers_command(
            store_from_environment(),
            project_token,
            json_body(event),
            received_at=arrived,
            id_types=id_types,
        )
    count_commands([result], mode)
    return Response(status, result)


def count_commands(results: list[dict[str, Any]], mode: str) -> None:
    """The routes' metrics, the same names in both modes: commands received,
    refused (or failed, in the synchronous mode), and what became of the
    others: queued, or applied and stale (some property written, or every
    property older than the stored one)."""
    counts = tracking.count_results(results)
    for name, count in counts.items():
        metrics.add_metric(name, MetricUnit.Count, count)
    logger.info("batch", extra={"mode": mode, **counts})


@router.get("/track/v2/projects/{project_token}/system/time")
def system_time(event: dict[str, Any], project_token: str) -> Response:
    require_project(access_store_from_environment(), project_token)
    return Response(200, {"success": True, "time": time.time()})


@log_api_request
@metrics.log_metrics
@capture_lambda_handler
@within_time_budget
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return router.resolve(event)
