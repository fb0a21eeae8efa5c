"""S3 notifications and the SQS event source, done locally for `make run`.

A thread polls the local bucket: each new data file under ``imports/``
invokes ImportFunction with the S3 event AWS would send (from the sample in
events/, key URL-encoded as S3 does); each message on the chunk queue invokes
ImportChunkFunction with an SQS event, and messages its partial-failure answer
names stay on the queue to come back, as with Lambda's event source mapping,
their ApproximateReceiveCount rising with each receive (the chunk function
gives a chunk up after a bounded number of them).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from typing import Any
from urllib.parse import quote_plus

from propsync.imports import import_file
from propsync_local.apigw import EVENTS_DIR, LambdaContext, load_handler

logger = logging.getLogger("propsync_local.triggers")
POLL_SECONDS = 0.5
MAX_ATTEMPTS = 3  # Lambda retries an asynchronous S3 invocation twice


class ImportTriggers(threading.Thread):
    def __init__(self, s3: Any, sqs: Any, bucket: str, queue_url: str):
        super().__init__(name="import-triggers", daemon=True)
        self._s3, self._sqs = s3, sqs
        self._bucket, self._queue_url = bucket, queue_url
        self._seen: dict[str, int] = {}  # object version -> attempts
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll_once()
            except Exception:
                logger.exception("import trigger poll failed")

    def poll_once(self) -> None:
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
                try:
                    load_handler("ImportFunction")(
                        s3_event(self._bucket, item["Key"], sequencer, item["Size"], etag),
                        LambdaContext("ImportFunction"),
                    )
                    self._seen[version] = -1  # done
                except Exception:
                    self._seen[version] = attempts + 1
                    logger.exception("ImportFunction failed for %s", item["Key"])
        self._drain_queue()

    def _drain_queue(self) -> None:
        while True:
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=30,
                MessageSystemAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                return
            answer = load_handler("ImportChunkFunction")(
                sqs_event(messages), LambdaContext("ImportChunkFunction")
            )
            failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] not in failed:
                    self._sqs.delete_message(
                        QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )


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


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The event Lambda's SQS event source sends for messages as ReceiveMessage
    returned them (their system attributes, such as ApproximateReceiveCount,
    included when they were asked for)."""
    sample = json.loads((EVENTS_DIR / "ImportChunkFunction.SQS.json").read_text())["Records"][0]
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
