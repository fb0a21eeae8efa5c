"""Imports: S3 "object created" under imports/ plans an execution
(``lambda_handler``); SQS chunk messages, one per byte range of a file (a
small file has one), run one range each (``chunk_handler``, partial batch
failures reported so only failed chunks come back, a bounded number of
times); the S3 events Lambda gave up planning (its on-failure destination
records, through ImportFailureQueue) become failed executions with a report
(``failure_handler``)."""

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from propsync.imports import (
    chunk_services_from_environment,
    deliver_chunk,
    record_failed_planning,
    services_from_environment,
    start_execution,
    upload_of,
)
from propsync.observability import capture_lambda_handler, logger, metrics
from propsync.store.throttling import within_time_budget


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@capture_lambda_handler
# planning's writes (the execution record) retry throttling while the
# invocation has time: an S3 event is retried only twice, then its record
# goes to ImportFailureQueue and the execution fails (failure_handler)
@within_time_budget
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services = services_from_environment()
    started = []
    for record in event.get("Records", []):
        upload = upload_of(record)
        if upload.bucket != services.bucket.name:
            logger.warning("event for another bucket ignored", extra={"bucket": upload.bucket})
            continue
        execution = start_execution(services, upload.key, upload.sequencer, upload.etag)
        if execution is not None:
            started.append(
                {
                    "key": upload.key,
                    "execution_id": execution.execution_id,
                    "status": execution.status,
                }
            )
    return {"executions": started}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@capture_lambda_handler
def chunk_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Each message names one chunk of an execution. A chunk that fails is
    reported in ``batchItemFailures`` (the event source mapping has
    ReportBatchItemFailures), so SQS redelivers that message alone; its
    ApproximateReceiveCount tells deliver_chunk when to stop and record the
    chunk as failed instead, before maxReceiveCount would send it to the DLQ.
    Written out rather than with Powertools' BatchProcessor, whose import costs
    this function about 90 ms of cold start (make bench)."""
    failures = []
    for record in event.get("Records", []):
        execution_id = None  # (a message that names none is logged without)
        try:
            message = json.loads(record["body"])
            execution_id = message["execution_id"]
            receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
            deliver_chunk(
                chunk_services_from_environment(),
                execution_id,
                int(message["chunk"]),
                receives,
                # a chunk checkpoints before the invocation's time runs out
                time_left=lambda: context.get_remaining_time_in_millis() / 1000,
            )
        except Exception:  # SQS delivers it again; only a message of no import reaches the DLQ
            logger.exception(
                "chunk failed",
                extra={"message_id": record.get("messageId"), "execution_id": execution_id},
            )
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


@logger.inject_lambda_context(clear_state=True)
@capture_lambda_handler
@within_time_budget
def failure_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Each message is Lambda's on-failure destination record of an S3 event
    ImportFunction did not handle after its retries; each upload it names
    gets a failed execution with a report (record_failed_planning). A message
    that cannot be recorded is reported in ``batchItemFailures``: it comes
    back, then goes to the failure queue's dead-letter queue."""
    services = services_from_environment(with_queue=False)
    failures = []
    for record in event.get("Records", []):
        try:
            record_failed_planning(services, json.loads(record["body"]))
        except Exception:
            logger.exception(
                "failed planning not recorded", extra={"message_id": record.get("messageId")}
            )
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
