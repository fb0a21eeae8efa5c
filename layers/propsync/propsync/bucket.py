"""The import bucket and the chunk queue: with store.py, the only modules that
talk to AWS (S3 and SQS here, DynamoDB there)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, cast

import boto3  # loaded at init, like store.py's
from botocore.config import Config
from botocore.exceptions import ClientError

from propsync.container import per_container
from propsync.store.throttling import RetryWithinDeadline

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
else:
    S3Client = SQSClient = Any

BUCKET_ENV = "PROPSYNC_IMPORT_BUCKET"
QUEUE_ENV = "PROPSYNC_CHUNK_QUEUE_URL"
# ImportBucket.put_joined's parts (S3 takes 5 MiB to 5 GiB, at most 10,000
# of them): an import's rejected rows up to 160 GiB, 16 MiB in memory.
JOINED_PART_BYTES = 16 << 20


class ObjectReplacedError(Exception):
    """The object at a key is no longer the version a read was pinned to (S3
    answered 412 to ``If-Match``): it was uploaded again, or deleted and
    uploaded again. Not transient: every later read fails the same way."""

    def __init__(self, key: str, etag: str):
        super().__init__(f"{key[:300]!r} no longer has the ETag {etag!r}")
        self.key = key
        self.etag = etag


def _if_match(etag: str | None) -> dict[str, Any]:
    """GetObject/HeadObject arguments that pin a read to one object version:
    ``etag`` as S3 events carry it (unquoted) or as S3 answers it (quoted)."""
    return {} if etag is None else {"IfMatch": f'"{etag.strip(chr(34))}"'}


@contextlib.contextmanager
def _replaced_as_error(key: str, etag: str | None) -> Iterator[None]:
    """S3's 412 to a read pinned with ``etag`` as ObjectReplacedError."""
    try:
        yield
    except ClientError as error:
        if etag is not None and _is_precondition_failed(error):
            raise ObjectReplacedError(key, etag) from None
        raise


def _is_precondition_failed(error: ClientError) -> bool:
    # GetObject says PreconditionFailed; HeadObject, which has no body, only 412
    code = error.response.get("Error", {}).get("Code")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in {"PreconditionFailed", "412"} or status == 412


class ImportBucket:
    def __init__(self, client: S3Client, bucket: str, signer: S3Client | None = None):
        self._client = client
        self.name = bucket
        # the client whose URL upload forms name (upload_signer), else ``client``'s
        self._signer = signer or client

    def upload_form(self, key: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
        """A presigned POST for exactly ``key``: ``{"url", "fields"}``, the
        form a browser or script sends with every field and then the file
        (last), of 1 to ``max_bytes`` bytes, within ``expires_in`` seconds.
        S3 checks the policy the fields carry, signed with this function's
        credentials: another key, a larger or empty file, or a late upload
        is refused by S3 itself. Nothing is written here."""
        form = self._signer.generate_presigned_post(
            Bucket=self.name,
            Key=key,
            Conditions=[["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_in,
        )
        return {"url": form["url"], "fields": dict(form["fields"])}

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

    def version(self, key: str, etag: str | None = None) -> tuple[int, str]:
        """The object's size and ETag (unquoted); with ``etag``, of that
        version only (ObjectReplacedError if the key now holds another)."""
        with _replaced_as_error(key, etag):
            head = self._client.head_object(Bucket=self.name, Key=key, **_if_match(etag))
        return int(head["ContentLength"]), head["ETag"].strip('"')

    def open(
        self, key: str, start: int = 0, end: int | None = None, *, etag: str | None = None
    ) -> IO[bytes]:
        """A stream of the object's bytes [start, end): read as it is consumed.
        With ``etag``, of that version only: ObjectReplacedError if the key
        holds another one now (S3 checks If-Match before it sends a byte)."""
        arguments: dict[str, Any] = {"Bucket": self.name, "Key": key, **_if_match(etag)}
        if start or end is not None:
            arguments["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with _replaced_as_error(key, etag):
            body = self._client.get_object(**arguments)["Body"]
        # botocore's StreamingBody is an io.IOBase with read(); the stubs do not say so
        return cast(IO[bytes], body)

    def put(self, key: str, body: bytes | IO[bytes], content_type: str) -> None:
        self._client.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type)

    def put_joined(self, key: str, head: bytes, parts: Iterable[str], content_type: str) -> None:
        """``head`` then the objects ``parts``, in order, as one object at
        ``key``, in memory a part at a time (JOINED_PART_BYTES): neither a
        temporary file (Lambda's /tmp) nor one PutObject's 5 GB bounds it.
        Small enough for one part, it is one PutObject; larger, a multipart
        upload (s3:PutObject covers it), left to the bucket's lifecycle rule
        for incomplete uploads if it fails."""
        buffer = bytearray(head)
        upload_id: str | None = None
        done: list[dict[str, Any]] = []

        def send_part() -> None:
            nonlocal upload_id
            if upload_id is None:
                upload_id = self._client.create_multipart_upload(
                    Bucket=self.name, Key=key, ContentType=content_type
                )["UploadId"]
            number = len(done) + 1
            answer = self._client.upload_part(
                Bucket=self.name,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(buffer),
            )
            done.append({"PartNumber": number, "ETag": answer["ETag"]})
            buffer.clear()

        for part in parts:
            with self.open(part) as stream:
                while block := stream.read(1 << 20):
                    buffer += block
                    if len(buffer) >= JOINED_PART_BYTES:
                        send_part()
        if upload_id is None:
            self.put(key, bytes(buffer), content_type)
            return
        if buffer:
            send_part()
        self._client.complete_multipart_upload(
            Bucket=self.name,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": cast(Any, done)},
        )

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
    """SQS queue of chunk messages, one per byte range of an import file."""

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


@per_container
def bucket_from_environment() -> ImportBucket:
    """The import bucket as the import functions use it (boto3's defaults:
    a chunk's long reads may wait on S3 as long as they need)."""
    return ImportBucket(boto3.client("s3"), _bucket_name(), upload_signer())


def api_client_config() -> Config:
    """The import API's S3 client: bounded waits and botocore's standard
    retries, so that with RetryWithinDeadline its requests (a mapping
    written, a report read) end within the route's time budget."""
    return Config(
        connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
    )


@per_container
def api_bucket_from_environment() -> ImportBucket:
    """The import bucket as the import API's routes use it: requests that
    end before the route must answer (store.throttling.RetryWithinDeadline,
    the budget set by within_time_budget)."""
    client = boto3.client("s3", config=api_client_config())
    RetryWithinDeadline().attach(client)
    return ImportBucket(client, _bucket_name(), upload_signer())


def _bucket_name() -> str:
    bucket = os.environ.get(BUCKET_ENV)
    if not bucket:
        raise RuntimeError(f"{BUCKET_ENV} is not set: name the import bucket")
    return bucket


def upload_signer() -> S3Client:
    """The S3 client upload forms are signed with, whose URL a browser posts
    to. On AWS, the bucket's regional virtual-host origin,
    ``https://<bucket>.s3.<region>.amazonaws.com`` (in every region, us-east-1
    too; the console's Content-Security-Policy and the bucket's CORS rule name
    this origin), signed with SigV4. With an endpoint set (``AWS_ENDPOINT_URL``
    or ``AWS_ENDPOINT_URL_S3``: make run, the tests) the endpoint's URL,
    path-style: ``http://127.0.0.1:4566/<bucket>``."""
    if os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        config = Config(s3={"addressing_style": "path"}, signature_version="s3v4")
    else:
        config = Config(
            s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"},
            signature_version="s3v4",
        )
    signer: S3Client = boto3.client("s3", config=config)
    return signer


@per_container
def queue_from_environment() -> ChunkQueue:
    url = os.environ.get(QUEUE_ENV)
    if not url:
        raise RuntimeError(f"{QUEUE_ENV} is not set: give the chunk queue's URL")
    return ChunkQueue(boto3.client("sqs"), url)
