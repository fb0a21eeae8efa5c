"""Imports: S3 "object created" under imports/ starts an execution
(``lambda_handler``); SQS chunk messages of large files run one byte range each
(``chunk_handler``, partial batch failures reported so only failed chunks
come back)."""

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from propsync.imports import run_chunk, services_from_environment, start_execution
from propsync.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
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
        sequencer = s3["object"].get("sequencer") or s3["object"].get("eTag", "")
        execution = start_execution(services, key, sequencer)
        if execution is not None:
            started.append(
                {"key": key, "execution_id": execution.execution_id, "status": execution.status}
            )
    return {"executions": started}


def _chunk(record: SQSRecord) -> None:
    message = record.json_body
    run_chunk(services_from_environment(), message["execution_id"], int(message["chunk"]))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def chunk_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=_chunk, processor=processor, context=context
    )
