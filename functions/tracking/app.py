"""Tracking API (public: the project token in the path is the credential).

POST /track/v2/projects/{project_token}/batch
POST /track/v2/projects/{project_token}/customers
GET  /track/v2/projects/{project_token}/system/time
"""

import time
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from propsync import tracking
from propsync.api import (
    json_body,
    json_response,
    new_resolver,
    received_at,
    require_project,
)
from propsync.observability import logger, metrics, tracer
from propsync.store import access_store_from_environment, store_from_environment

app = new_resolver()


@app.post("/track/v2/projects/<project_token>/batch")
@tracer.capture_method
def batch(project_token: str) -> Response[str]:
    arrived = received_at(app.current_event.raw_event)
    require_project(access_store_from_environment(), project_token)
    commands = tracking.batch_commands(json_body(app.current_event.raw_event))
    results = tracking.run_batch(
        store_from_environment(), project_token, commands, received_at=arrived
    )
    failed = sum(1 for result in results if not result["success"])
    metrics.add_metric("Commands", MetricUnit.Count, len(results))
    metrics.add_metric("FailedCommands", MetricUnit.Count, failed)
    logger.info("batch", extra={"commands": len(results), "failed": failed})
    return json_response(
        200,
        {"results": results, "start_time": arrived, "end_time": time.time(), "success": True},
    )


@app.post("/track/v2/projects/<project_token>/customers")
@tracer.capture_method
def customers(project_token: str) -> Response[str]:
    arrived = received_at(app.current_event.raw_event)
    require_project(access_store_from_environment(), project_token)
    payload = json_body(app.current_event.raw_event)
    result = tracking.run_customers_command(
        store_from_environment(), project_token, payload, received_at=arrived
    )
    status = 200 if result["success"] else 400
    if not result["success"] and result.get("errors") == [tracking.RETRY_LATER]:
        status = 503
    return json_response(status, result)


@app.get("/track/v2/projects/<project_token>/system/time")
def system_time(project_token: str) -> Response[str]:
    require_project(access_store_from_environment(), project_token)
    return json_response(200, {"success": True, "time": time.time()})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
