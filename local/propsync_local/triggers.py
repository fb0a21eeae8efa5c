"""S3 notifications and the SQS event source, done locally for `make run`. A
thread polls the local bucket: each new data file under ``imports/`` invokes
ImportFunction with the S3 event AWS would send (from the sample in events/,
key URL-encoded as S3 does), up to three times while it raises, as Lambda
retries an asynchronous invocation twice; after the third, the on-failure
destination record Lambda would send goes to the import failure queue, whose
messages invoke ImportFailureFunction. Another takes the chunk queue's messages one at a
time, each invoking ImportChunkFunction with an SQS event, and messages its
partial-failure answer names stay on the queue to come back, as with Lambda's
event source mapping, their ApproximateReceiveCount rising with each receive
(the chunk function gives a chunk up after a bounded number of them). With the
queued tracking mode, another thread does the same for the tracking queue and
TrackingWorkerFunction (:class:`QueueTrigger`).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from propsync.imports import import_file
from propsync_local.apigw import EVENTS_DIR, LambdaContext, load_handler

logger = logging.getLogger("propsync_local.triggers")
POLL_SECONDS = 0.5
MAX_ATTEMPTS = 3  # Lambda retries an asynchronous S3 invocation twice


class ImportTriggers(threading.Thread):
    def __init__(
        self,
        s3: Any,
        sqs: Any,
        bucket: str,
        queue_url: str,
        failure_queue_url: str | None = None,
    ):
        """``failure_queue_url``: ImportFunction's on-failure destination
        (None: an event given up on is only logged)."""
        super().__init__(name="import-triggers", daemon=True)
        self._s3, self._sqs = s3, sqs
        self._bucket, self._queue_url = bucket, queue_url
        self._failure_queue_url = failure_queue_url
        self._seen: dict[str, int] = {}  # object version -> attempts
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Two loops, as on AWS S3's events and the queue's event source are
        two: new uploads are planned while a long chunk runs (on its own
        thread), so an upload's execution starts, and waits in the queue,
        from the moment it is made."""
        chunks = threading.Thread(target=self._run_chunks, name="import-chunks", daemon=True)
        chunks.start()
        while not self._stop.wait(POLL_SECONDS):
            try:
                self._plan_new_uploads()
                self._record_failures()
            except Exception:
                logger.exception("import trigger poll failed")
        chunks.join()

    def _run_chunks(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                while not self._stop.is_set() and self._run_one_chunk():
                    pass
            except Exception:
                logger.exception("chunk queue poll failed")

    def _run_one_chunk(self) -> int:
        return drain(
            self._sqs,
            self._queue_url,
            "ImportChunkFunction",
            visibility_timeout=30,
            max_events=1,
            batch_size=1,
        )

    def poll_once(self) -> None:
        """Plan the new uploads, then run the chunk queue until it is empty,
        one message per event (the template's BatchSize), looking for new
        uploads between messages: a file dropped while a large import runs
        is planned at once, and its chunks take turns with the large one's
        (an execution keeps only a window of chunks on the queue)."""
        self._plan_new_uploads()
        self._record_failures()
        while not self._stop.is_set() and self._run_one_chunk():
            self._plan_new_uploads()
            self._record_failures()

    def _record_failures(self) -> None:
        """The failure queue's records, each through ImportFailureFunction
        (its event source mapping on AWS)."""
        if self._failure_queue_url is not None:
            queue = self._failure_queue_url
            drain(self._sqs, queue, "ImportFailureFunction", visibility_timeout=30)

    def _plan_new_uploads(self) -> None:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix="imports/"):
            for item in page.get("Contents", []):
                if import_file(item["Key"]) is None:
                    continue  # mapping.json and anything else: no execution
                etag = item["ETag"].strip('"')  # unquoted in S3 events
                sequencer = f"{int(item['LastModified'].timestamp() * 1e6):X}{etag}"
                version = f"{item['Key']}\n{sequencer}"
                attempts = self._seen.get(version, 0)
                if attempts >= MAX_ATTEMPTS or attempts < 0:
                    continue
                event = s3_event(self._bucket, item["Key"], sequencer, item["Size"], etag)
                try:
                    load_handler("ImportFunction")(event, LambdaContext("ImportFunction"))
                    self._seen[version] = -1  # done
                except Exception as error:
                    self._seen[version] = attempts + 1
                    logger.exception("ImportFunction failed for %s", item["Key"])
                    if attempts + 1 == MAX_ATTEMPTS:
                        self._give_up(event, error)

    def _give_up(self, event: dict[str, Any], error: Exception) -> None:
        """What Lambda does with an event after its last retry: its on-failure
        destination record to the failure queue."""
        if self._failure_queue_url is None:
            logger.error("ImportFunction gave up on an S3 event; no failure queue to record it")
            return
        record = on_failure_record(event, error, MAX_ATTEMPTS)
        self._sqs.send_message(QueueUrl=self._failure_queue_url, MessageBody=json.dumps(record))


class QueueTrigger(threading.Thread):
    """Lambda's SQS event source for one queue and function: polls the queue
    (short polls: the moto server answers one request at a time, so a long
    poll would hold every other request) and delivers what it finds, one SQS
    event at a time while holding ``lock``. The HTTP front holds the same
    lock for each request: on AWS the worker and the routes run in
    containers of their own, here they share one process, and with it
    Powertools' logger keys and metrics, which are not made for two
    invocations at once."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        function: str,
        *,
        poll_seconds: float,
        lock: threading.Lock,
    ):
        super().__init__(name=f"{function}-trigger", daemon=True)
        self._sqs, self._queue_url, self._function = sqs, queue_url, function
        self._poll_seconds = poll_seconds
        self._lock = lock
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                while not self._stop.is_set():
                    with self._lock:
                        if not drain(self._sqs, self._queue_url, self._function, max_events=1):
                            break
            except Exception:
                logger.exception("%s trigger poll failed", self._function)


def drain(
    sqs: Any,
    queue_url: str,
    function: str,
    *,
    visibility_timeout: int = 360,
    max_events: int | None = None,
    batch_size: int = 10,
) -> int:
    """Deliver the queue's visible messages to ``function`` in SQS events of
    up to ``batch_size``, until none is left (or after ``max_events`` events), as the
    event source mapping does: the messages its answer names in
    ``batchItemFailures`` stay on the queue (to come back when their
    visibility timeout ends), the others are deleted. The number of messages
    delivered."""
    delivered = 0
    events = 0
    while max_events is None or events < max_events:
        events += 1
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch_size,
            VisibilityTimeout=visibility_timeout,
            MessageSystemAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return delivered
        delivered += len(messages)
        answer = load_handler(function)(sqs_event(messages, function), LambdaContext(function))
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return delivered


def s3_event(bucket: str, key: str, sequencer: str, size: int, etag: str) -> dict[str, Any]:
    """S3's "object created" event for one upload: its eTag is what every read
    of the execution is pinned to, as on AWS."""
    sample = json.loads((EVENTS_DIR / "ImportFunction.S3Put.json").read_text())
    record = copy.deepcopy(sample["Records"][0])
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"].update(
        {"key": quote_plus(key, safe="/"), "sequencer": sequencer, "size": size, "eTag": etag}
    )
    return {"Records": [record]}


def on_failure_record(event: dict[str, Any], error: Exception, attempts: int) -> dict[str, Any]:
    """Lambda's on-failure destination record of an asynchronous invocation
    of ImportFunction with ``event`` whose ``attempts`` all raised, the last
    ``error`` (the shape of the sample in events/, as the Python runtime
    reports an unhandled exception: its type and message)."""
    sample = json.loads((EVENTS_DIR / "ImportFailureFunction.SQS.json").read_text())
    record: dict[str, Any] = json.loads(sample["Records"][0]["body"])
    now = datetime.now(UTC)
    record["timestamp"] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record["requestContext"].update(
        {"requestId": str(uuid.uuid4()), "approximateInvokeCount": attempts}
    )
    record["requestPayload"] = event
    record["responsePayload"] = {"errorMessage": str(error), "errorType": type(error).__name__}
    return record


def sqs_event(
    messages: list[dict[str, Any]], function: str = "ImportChunkFunction"
) -> dict[str, Any]:
    """The event Lambda's SQS event source sends for messages as ReceiveMessage
    returned them (their system attributes, such as ApproximateReceiveCount,
    included when they were asked for)."""
    sample = json.loads((EVENTS_DIR / f"{function}.SQS.json").read_text())["Records"][0]
    records = []
    for message in messages:
        record = copy.deepcopy(sample)
        record.update(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
            }
        )
        record["attributes"].update(message.get("Attributes", {}))
        records.append(record)
    return {"Records": records}
