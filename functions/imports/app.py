"""Imports: S3 "object created" under imports/ plans an execution
(``lambda_handler``); SQS chunk messages, one per byte range of a file (a
small file has one), run one range each (``chunk_handler``, partial batch
failures reported so only failed chunks come back, a bounded number of
times)."""

import json
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.typing import LambdaContext

from propsync.imports import (
    chunk_services_from_environment,
    deliver_chunk,
    services_from_environment,
    start_execution,
)
from propsync.observability import capture_lambda_handler, logger, metrics
from propsync.store.throttling import within_time_budget


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@capture_lambda_handler
# planning's writes (the execution record) retry throttling while the
# invocation has time: an S3 event is retried twice, then dropped
@within_time_budget
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services = services_from_environment()
    started = []
    for record in event.get("Records", []):
        s3 = record["s3"]
        if s3["bucket"]["name"] != services.bucket.name:
            logger.warning(
                "event for another bucket ignored", extra={"bucket": s3["bucket"]["name"]}
            )
            continue
        key = unquote_plus(s3["object"]["key"])  # S3 event keys arrive URL-encoded
        etag = s3["object"].get("eTag")  # the version every read of the execution is pinned to
        sequencer = s3["object"].get("sequencer") or etag or ""
        execution = start_execution(services, key, sequencer, etag)
        if execution is not None:
            started.append(
                {"key": key, "execution_id": execution.execution_id, "status": execution.status}
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
