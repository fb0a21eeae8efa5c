"""Tracking worker (TrackingWrites=queued): applies the commands the tracking
routes queued (propsync.tracking_queue explains the mode). The messages of an
SQS event that belong to one project run together through the synchronous
mode's own code, each command with its own request's arrival time; what
happened is then settled message by message.

Partial batch failures (the event source mapping has ReportBatchItemFailures):
only the messages named in ``batchItemFailures`` come back. A message whose
commands failed for a passing reason is named there, after its visibility
timeout was set to a growing delay; commands that can never succeed go to the
dead-letter queue with their errors. Written out rather than with Powertools'
BatchProcessor, as the chunk handler of the imports is (its import costs
about 90 ms of cold start).
"""

import time
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from propsync.access import is_project_token
from propsync.errors import UnknownProjectError
from propsync.observability import capture_lambda_handler, keys_logged, logger, metrics
from propsync.store.access import access_store_from_environment
from propsync.store.customers import store_from_environment
from propsync.tracking import failure
from propsync.tracking_queue import (
    Applied,
    QueuedBatch,
    apply_batches,
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
    done = _deliver(records)
    return {
        "batchItemFailures": [
            {"itemIdentifier": record["messageId"]}
            for record, ok in zip(records, done, strict=True)
            if not ok
        ]
    }


@dataclass(frozen=True)
class _Failed:
    """The messages of one project failed together (reading the project, or
    the store outside any command): they all come back."""

    error: Exception


@dataclass(frozen=True)
class _Refused:
    """The project refused them (no such project): none can ever be applied."""

    error: UnknownProjectError


# What became of one message of the project's messages applied together.
Outcome = Applied | _Failed | _Refused


def _deliver(records: list[dict[str, Any]]) -> list[bool]:
    """For each record, True when its message is done with (every command
    applied or stale, or dead-lettered), False when it must come back."""
    done = [False] * len(records)
    by_project: dict[str, list[tuple[int, QueuedBatch]]] = {}
    for position, record in enumerate(records):
        try:
            batch = read_message(record["body"])
        except ValueError:
            # not a message the routes wrote: no attempt can apply it
            logger.error("not a tracking message: dead-lettered", extra=_ids(record))
            done[position] = _dead_letter(record, [record["body"]])
            if not done[position]:
                _come_back_later(record)
            continue
        by_project.setdefault(batch.project, []).append((position, batch))
    for project, members in by_project.items():
        outcomes = _apply(project, [batch for _, batch in members])
        for (position, batch), outcome in zip(members, outcomes, strict=True):
            record = records[position]
            # the request's id is the correlation id of the route's own lines
            with keys_logged(
                correlation_id=batch.request_id,
                project=batch.project,
                message_id=str(record.get("messageId", "")),
            ):
                done[position] = _settled(record, batch, outcome)
                if not done[position]:
                    _come_back_later(record)
    return done


def _apply(project: str, batches: list[QueuedBatch]) -> list[Outcome]:
    """Run the messages of one project together. A line logged meanwhile
    (a command failing unexpectedly) carries the request ids of them all."""
    request_ids = ",".join(dict.fromkeys(batch.request_id for batch in batches))
    with keys_logged(correlation_id=request_ids, project=project):
        try:
            # Read afresh for every event, not from the routes' 60 s cache: id
            # types are only ever added, so what the worker reads knows every
            # type the route that accepted the commands knew (a cached set
            # could lack one added a moment ago, and refuse what was accepted).
            id_types = (
                access_store_from_environment().project_id_types(project)
                if is_project_token(project)  # no read for a key DynamoDB could refuse
                else None
            )
            if id_types is None:
                raise UnknownProjectError(project)
            return list(apply_batches(store_from_environment(), batches, id_types))
        except UnknownProjectError as error:
            return [_Refused(error)] * len(batches)
        except Exception as error:  # the project or the store failing: try again later
            return [_Failed(error)] * len(batches)


def _settled(record: dict[str, Any], batch: QueuedBatch, outcome: Outcome) -> bool:
    """Metrics, log line and dead letters of one message; True when it is
    done with, False when it must come back."""
    attributes = record.get("attributes") or {}
    if isinstance(outcome, _Failed):
        logger.error(
            "tracking message failed; it comes back", extra=_ids(record), exc_info=outcome.error
        )
        metrics.add_metric("RetriedCommands", MetricUnit.Count, len(batch.commands))
        return False
    if isinstance(outcome, _Refused):
        logger.error("tracking message of no project: dead-lettered", extra=_ids(record))
        refused = (outcome.error.status, failure(str(outcome.error)))
        return _dead_letter(
            record, dead_letter_bodies(batch, [(command, refused) for command in batch.commands])
        )
    metrics.add_metric("AppliedCommands", MetricUnit.Count, outcome.applied)
    metrics.add_metric("StaleCommands", MetricUnit.Count, outcome.stale)
    sent = float(attributes.get("SentTimestamp", 0)) / 1000.0
    first_received = float(attributes.get("ApproximateFirstReceiveTimestamp", 0)) / 1000.0
    if sent and first_received:
        metrics.add_metric("QueueAge", MetricUnit.Milliseconds, (first_received - sent) * 1000)
    logger.info(
        "tracking message applied",
        extra={
            "commands": outcome.commands,
            "applied": outcome.applied,
            "stale": outcome.stale,
            "retry": len(outcome.retry),
            "dead_lettered": len(outcome.dead),
            "receive_count": int(attributes.get("ApproximateReceiveCount", 1)),
        },
    )
    if outcome.must_retry:
        metrics.add_metric("RetriedCommands", MetricUnit.Count, len(outcome.retry))
        return False
    metrics.add_metric(
        "CommandLag", MetricUnit.Milliseconds, (time.time() - batch.received_at) * 1000
    )
    if outcome.dead:
        if not _dead_letter(record, dead_letter_bodies(batch, outcome.dead)):
            return False
        metrics.add_metric("DeadLetteredCommands", MetricUnit.Count, len(outcome.dead))
        for command, (status, _result) in outcome.dead:
            # the status, not the errors: their sentences quote the command's
            # ids and values, which the dead-letter message keeps beside it
            logger.error(
                "tracking command can never be applied: dead-lettered",
                extra={
                    "command_id": command.get("command_id") if isinstance(command, dict) else None,
                    "status": status,
                },
            )
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
