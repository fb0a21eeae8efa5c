"""An import bucket, a chunk queue and the table, all moto, with a project."""

import gzip
import itertools
import json
import uuid
from dataclasses import dataclass

import boto3
import pytest

from propsync.bucket import ChunkQueue, ImportBucket
from propsync.imports import Services, deliver_chunk, run_chunk, start_execution
from propsync.store.access import AccessStore
from propsync.store.customers import CustomerStore
from propsync.store.imports import ImportStore
from tests.conftest import PROJECT

_sequencers = itertools.count(1)


def chunk_sqs_event(messages: list[dict]) -> dict:
    """The SQS event the chunk function gets for these chunk message bodies."""
    from propsync_local import triggers  # noqa: PLC0415

    return triggers.sqs_event(
        [
            {"MessageId": f"message-{index}", "ReceiptHandle": "r", "Body": json.dumps(message)}
            for index, message in enumerate(messages)
        ]
    )


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class ImportHarness:
    services: Services
    s3: object
    sqs: object
    clock: Clock

    @property
    def bucket(self) -> str:
        return self.services.bucket.name

    def put_mapping(self, name: str, mapping: dict) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"imports/{PROJECT}/{name}/mapping.json",
            Body=json.dumps(mapping),
        )

    def drop(
        self,
        name: str,
        file_name: str,
        data: bytes,
        sequencer: str | None = None,
        *,
        run_chunks: bool = True,
    ):
        """Upload a data file and deliver its S3 event; then, unless
        ``run_chunks`` is False, deliver the chunk messages it queued, as the
        chunk function would. Returns the execution as it is then."""
        key = f"imports/{PROJECT}/{name}/{file_name}"
        if file_name.endswith(".gz"):
            data = gzip.compress(data)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        sequencer = sequencer or f"{next(_sequencers):016X}"
        return self.deliver(key, sequencer, run_chunks=run_chunks), sequencer

    def deliver(self, key: str, sequencer: str, *, run_chunks: bool = True):
        """Deliver the S3 event of ``key`` (again), then its queued chunks
        unless ``run_chunks`` is False."""
        execution = start_execution(self.services, key, sequencer)
        if execution is None or not run_chunks:
            return execution
        self.run_queue()
        return self.services.imports.get(execution.execution_id)

    def run_queue(self, receive_count: int = 1, time_left=None) -> list[dict]:
        """Deliver the queue's chunk messages, and those the chunks done send
        (the next of their lanes, the rest of a chunk that checkpointed),
        until the queue is empty, as the chunk function would. The messages
        delivered, in order."""
        delivered = []
        while batch := self.messages():
            self.deliver_messages(batch, receive_count, time_left)
            delivered += batch
        return delivered

    def messages(self) -> list[dict]:
        """Every chunk message waiting in the queue (taken off it)."""
        found = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=self.services.queue.url, MaxNumberOfMessages=10
            )
            batch = response.get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.services.queue.url, ReceiptHandle=message["ReceiptHandle"]
                )

    def run_messages(self, messages: list[dict]) -> None:
        for message in messages:
            run_chunk(self.services, message["execution_id"], message["chunk"])

    def deliver_messages(
        self, messages: list[dict], receive_count: int = 1, time_left=None
    ) -> None:
        """Each message as the chunk function handles its ``receive_count``-th
        delivery, with ``time_left`` saying the invocation's seconds left."""
        for message in messages:
            deliver_chunk(
                self.services, message["execution_id"], message["chunk"], receive_count, time_left
            )

    def report(self, name: str, file_name: str) -> dict:
        body = self.s3.get_object(
            Bucket=self.bucket, Key=f"reports/{PROJECT}/{name}/{file_name}.json"
        )
        return json.loads(body["Body"].read())

    def report_at(self, key: str) -> dict:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def rejected(self, name: str, file_name: str) -> bytes:
        key = f"reports/{PROJECT}/{name}/{file_name}.rejected.csv"
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def keys(self, prefix: str = "") -> list[str]:
        response = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for item in response.get("Contents", [])]


@pytest.fixture
def imports(dynamodb_client, table_name, moto_endpoint) -> ImportHarness:
    """Bucket and queue on the moto server, the table on the engine under test."""
    suffix = uuid.uuid4().hex[:10]
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="eu-west-1")
    bucket = f"propsync-imports-{suffix}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="eu-west-1")
    queue_url = sqs.create_queue(QueueName=f"propsync-chunks-{suffix}")["QueueUrl"]
    access = AccessStore(dynamodb_client, table_name)
    access.create_project(PROJECT, "imports")
    clock = Clock(1_700_000_000.0)
    services = Services(
        customers=CustomerStore(dynamodb_client, table_name),
        access=access,
        imports=ImportStore(dynamodb_client, table_name),
        bucket=ImportBucket(s3, bucket),
        queue=ChunkQueue(sqs, queue_url),
        clock=clock,
    )
    return ImportHarness(services=services, s3=s3, sqs=sqs, clock=clock)
