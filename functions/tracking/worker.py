"""Tracking worker (TrackingWrites=queued): applies the commands the tracking
routes queued, one SQS message (one request's commands) at a time, through
the synchronous mode's own code (propsync.tracking_queue explains the mode).

Partial batch failures (the event source mapping has ReportBatchItemFailures):
only the messages named in ``batchItemFailures`` come back. A message whose
commands failed for a passing reason is named there, after its visibility
timeout was set to a growing delay; commands that can never succeed go to the
dead-letter queue with their errors. Written out rather than with Powertools'
BatchProcessor, as the chunk handler of the imports is (its import costs
about 90 ms of cold start).
"""

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from propsync.errors import PropsyncError
from propsync.id_type_cache import id_types_of
from propsync.observability import capture_lambda_handler, keys_logged, logger, metrics
from propsync.store.access import access_store_from_environment
from propsync.store.customers import store_from_environment
from propsync.tracking import failure
from propsync.tracking_queue import (
    QueuedBatch,
    apply_batch,
    dead_letter_bodies,
    read_message,
    retry_delay,
    worker_queues_from_environment,
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records", [])
    return {
        "batchItemFailures": [
            {"itemIdentifier": record["messageId"]} for record in records if not _delivered(record)
        ]
    }


def _delivered(record: dict[str, Any]) -> bool:
    """True when the message is done with: every command applied or stale,
    or dead-lettered; False when it must come back (after its retry delay)."""
    try:
        batch = read_message(record["body"])
    except ValueError:
        # not a message the routes wrote: no attempt can apply it
        logger.error("not a tracking message: dead-lettered", extra=_ids(record))
        done = _dead_letter(record, [record["body"]])
        if not done:
            _come_back_later(record)
        return done
    # the request's id is the correlation id of the route's own log lines
    with keys_logged(
        correlation_id=batch.request_id,
        project=batch.project,
        message_id=str(record.get("messageId", "")),
    ):
        done = _applied(record, batch)
        if not done:
            _come_back_later(record)
        return done


def _applied(record: dict[str, Any], batch: QueuedBatch) -> bool:
    """Apply the message's commands; True when it is done with (see _delivered)."""
    attributes = record.get("attributes") or {}
    started = time.time()
    try:
        id_types = id_types_of(access_store_from_environment(), batch.project)
    except PropsyncError as error:  # no such project: no attempt can apply these
        logger.error("tracking message of no project: dead-lettered", extra=_ids(record))
        refused = (error.status, failure(str(error)))
        return _dead_letter(
            record,
            dead_letter_bodies(batch, [(command, refused) for command in batch.commands]),
        )
    except Exception:  # reading the project failed: try again later
        logger.exception("tracking message failed; it comes back", extra=_ids(record))
        metrics.add_metric("RetriedCommands", MetricUnit.Count, len(batch.commands))
        return False
    try:
        applied = apply_batch(store_from_environment(), batch, id_types)
    except Exception:  # the store failing outside the commands: try again later
        logger.exception("tracking message failed; it comes back", extra=_ids(record))
        metrics.add_metric("RetriedCommands", MetricUnit.Count, len(batch.commands))
        return False
    metrics.add_metric("AppliedCommands", MetricUnit.Count, applied.applied)
    metrics.add_metric("StaleCommands", MetricUnit.Count, applied.stale)
    sent = float(attributes.get("SentTimestamp", 0)) / 1000.0
    if sent:
        metrics.add_metric("QueueAge", MetricUnit.Milliseconds, (started - sent) * 1000)
    logger.info(
        "tracking message applied",
        extra={
            "commands": applied.commands,
            "applied": applied.applied,
            "stale": applied.stale,
            "retry": len(applied.retry),
            "dead_lettered": len(applied.dead),
            "receive_count": int(attributes.get("ApproximateReceiveCount", 1)),
        },
    )
    if applied.must_retry:
        metrics.add_metric("RetriedCommands", MetricUnit.Count, len(applied.retry))
        return False
    metrics.add_metric(
        "CommandLag", MetricUnit.Milliseconds, (time.time() - batch.received_at) * 1000
    )
    if applied.dead:
        metrics.add_metric("DeadLetteredCommands", MetricUnit.Count, len(applied.dead))
        for command, (status, result) in applied.dead:
            logger.error(
                "tracking command can never be applied: dead-lettered",
                extra={
                    "command_id": command.get("command_id") if isinstance(command, dict) else None,
                    "status": status,
                    "errors": result.get("errors"),
                },
            )
        return _dead_letter(record, dead_letter_bodies(batch, applied.dead))
    return True


def _dead_letter(record: dict[str, Any], bodies: list[str]) -> bool:
    client, _queue_url, dead_letter_url = worker_queues_from_environment()
    try:
        for body in bodies:
            client.send_message(QueueUrl=dead_letter_url, MessageBody=body)
    except Exception:  # the message comes back, and is dead-lettered then
        logger.exception("dead-lettering failed; the message comes back", extra=_ids(record))
        return False
    return True


def _come_back_later(record: dict[str, Any]) -> None:
    """Make a failed message visible again only after retry_delay: without
    this it would come back after the queue's whole visibility timeout."""
    receives = int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
    try:
        client, queue_url, _dead_letter_url = worker_queues_from_environment()
        client.change_message_visibility(
            QueueUrl=queue_url,
            ReceiptHandle=record["receiptHandle"],
            VisibilityTimeout=retry_delay(receives),
        )
    except Exception:  # it comes back after the visibility timeout instead
        logger.warning("could not set the retry delay", extra=_ids(record), exc_info=True)


def _ids(record: dict[str, Any]) -> dict[str, Any]:
    return {"message_id": record.get("messageId")}
