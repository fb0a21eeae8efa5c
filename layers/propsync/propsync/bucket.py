"""The import bucket and the chunk queue: with store.py, the only modules that
talk to AWS (S3 and SQS here, DynamoDB there)."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, cast

import boto3  # loaded at init, like store.py's

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
else:
    S3Client = SQSClient = Any

BUCKET_ENV = "PROPSYNC_IMPORT_BUCKET"
QUEUE_ENV = "PROPSYNC_CHUNK_QUEUE_URL"


class ImportBucket:
    def __init__(self, client: S3Client, bucket: str):
        self._client = client
        self.name = bucket

    def read(self, key: str, limit: int | None = None) -> bytes | None:
        """The whole object, or None if there is none (a mapping, a report).
        With ``limit``, at most ``limit + 1`` bytes: more than ``limit`` says
        the object is too large, without holding all of it in memory."""
        try:
            stream = self._client.get_object(Bucket=self.name, Key=key)["Body"]
        except self._client.exceptions.NoSuchKey:
            return None
        with stream:
            body: bytes = stream.read() if limit is None else stream.read(limit + 1)
        return body

    def size(self, key: str) -> int:
        return int(self._client.head_object(Bucket=self.name, Key=key)["ContentLength"])

    def open(self, key: str, start: int = 0, end: int | None = None) -> IO[bytes]:
        """A stream of the object's bytes [start, end): read as it is consumed."""
        arguments: dict[str, Any] = {"Bucket": self.name, "Key": key}
        if start or end is not None:
            arguments["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        # botocore's StreamingBody is an io.IOBase with read(); the stubs do not say so
        return cast(IO[bytes], self._client.get_object(**arguments)["Body"])

    def put(self, key: str, body: bytes | IO[bytes], content_type: str) -> None:
        self._client.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type)

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.name, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            objects: Any = [{"Key": key} for key in keys[start : start + 1000]]
            self._client.delete_objects(Bucket=self.name, Delete={"Objects": objects})


class ChunkQueue:
    """SQS queue of chunk messages, one per byte range of a large import."""

    def __init__(self, client: SQSClient, url: str):
        self._client = client
        self.url = url

    def send(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            batch = messages[start : start + 10]
            entries: Any = [
                {"Id": str(index), "MessageBody": json.dumps(message)}
                for index, message in enumerate(batch)
            ]
            response = self._client.send_message_batch(QueueUrl=self.url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"SQS refused chunk messages: {response['Failed']}")


@functools.cache
def bucket_from_environment() -> ImportBucket:
    bucket = os.environ.get(BUCKET_ENV)
    if not bucket:
        raise RuntimeError(f"{BUCKET_ENV} is not set: name the import bucket")
    return ImportBucket(boto3.client("s3"), bucket)


@functools.cache
def queue_from_environment() -> ChunkQueue:
    url = os.environ.get(QUEUE_ENV)
    if not url:
        raise RuntimeError(f"{QUEUE_ENV} is not set: give the chunk queue's URL")
    return ChunkQueue(boto3.client("sqs"), url)
