"""`make run`: propsync on this machine, without Docker.

- a single-threaded moto server (DynamoDB, S3, SQS) on 127.0.0.1:$PROPSYNC_AWS_PORT
  (4566), with every table and bucket of template.yaml created from the
  template; or, when AWS_ENDPOINT_URL_DYNAMODB is set, that DynamoDB (dynalite,
  DynamoDB Local, a real region), its table created if missing;
- an HTTP front on 127.0.0.1:$PROPSYNC_API_PORT (3000) that routes each request
  as API Gateway would, authorizer first for private routes, to the real
  handlers (propsync_local.apigw); the web console among them, at /console,
  allowed to upload import files to the moto server's origin, whose bucket has
  the template's CORS rule with this front's origin as the API's;
- the import triggers: a file put under imports/ in the local bucket runs
  ImportFunction, chunk messages run ImportChunkFunction (propsync_local.triggers);
- with PROPSYNC_TRACKING_WRITES=queued, the tracking routes queue their
  commands and a trigger runs TrackingWorkerFunction on them, as TrackingWrites=queued
  deploys it;
- a demo project and API key (PROPSYNC_LOCAL_PROJECT_TOKEN, PROPSYNC_LOCAL_KEY_ID,
  PROPSYNC_LOCAL_KEY_SECRET, or the defaults below), printed and written to
  .local/credentials.json, and in it the customer the events/ samples of the
  customers routes name (SAMPLE_CUSTOMER_*).

Both ports are bound before anything else happens: a port another program
listens on stops the stack with one line naming the variable to change, before
any resource is created or credentials are written, and the moto server is
handed the socket bound here, so the stack never talks to a server it did not
start. Runs in the foreground until Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from propsync.access import api_key_id_problem, is_project_token
from propsync.errors import shown
from propsync.imports import chunk_bytes, chunk_write_share, gzip_max_bytes
from propsync.tracking_queue import (
    DEAD_LETTER_QUEUE_URL_ENV,
    QUEUE_URL_ENV,
    QUEUED,
    tracking_writes,
)
from propsync_local import moto_server
from propsync_local.cfn_template import (
    REPO_ROOT,
    create_table_kwargs,
    load_template,
    resources_of_type,
)
from propsync_local.processes import listening_socket
from propsync_local.triggers import ImportTriggers, QueueTrigger, drain

DEFAULT_PROJECT_TOKEN = "00000000-0000-0000-0000-000000000000"
DEFAULT_KEY_ID = "demo-key"
DEFAULT_KEY_SECRET = "demo-secret-change-me"  # local only: never used on AWS
TABLE_NAME = "propsync-local"
# The customer the events/ samples of the customers routes name: GET and PATCH
# by its internal id, as the UI does, export-one by its registered id. Internal
# ids are made at a customer's first sighting, so the demo creates this one
# with the id the samples carry (docs/DECISIONS.md: "The local stack creates
# the customer the samples name").
SAMPLE_CUSTOMER_ID = "01JDQ6Z0Q9X6V1N0K3W9M5T2RB"
SAMPLE_CUSTOMER_IDS = {"registered": "sample-customer"}
SAMPLE_CUSTOMER_PROPERTIES = {"first_name": "Jana", "email": "jana@example.com"}
SAMPLE_CUSTOMER_UPDATED = 1570000000  # before the samples' own requests
# The customer the anonymize sample erases (a customer of its own, so that the
# other samples still find theirs after it ran)
SAMPLE_ERASURE_IDS = {"registered": "sample-customer-to-erase"}
# Local state (git-ignored); PROPSYNC_LOCAL_DIR moves it (the tests use a temporary one).
LOCAL_DIR = Path(os.environ.get("PROPSYNC_LOCAL_DIR", REPO_ROOT / ".local"))
CREDENTIALS_PATH = LOCAL_DIR / "credentials.json"
MOTO_LOG_PATH = LOCAL_DIR / "moto.log"


# How often the tracking queue is polled (queued mode): reads lag the
# requests by about this much locally.
TRACKING_POLL_SECONDS = 0.1

T = TypeVar("T")


class StartupError(Exception):
    """The stack cannot start as configured; the message, one line, names
    the variable to change."""


def _port(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip() or str(default)
    if not raw.isdigit() or not 0 < int(raw) <= 65535:
        raise StartupError(f"{variable}={raw!r} is not a port number: set it to 1-65535")
    return int(raw)


def _bound(variable: str, port: int, bind: Callable[[int], T]) -> T:
    """``bind(port)``: a server socket bound to 127.0.0.1:``port`` and
    listening, held until the stack stops; StartupError if the port is taken.
    Binding is the check, so no other program can take the port in between."""
    try:
        return bind(port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            reason = "is already in use by another program"
        else:
            reason = f"cannot be listened on ({error.strerror or error})"
        example = port + 1 if port < 65535 else port - 1
        raise StartupError(
            f"127.0.0.1:{port} {reason}: set {variable} to a free port, "
            f"e.g. {variable}={example} make run"
        ) from None


def create_resources(template: dict[str, Any], api_origins: Sequence[str] = ()) -> dict[str, str]:
    """Tables (and buckets) of the template, named for the local stack; an
    existing table is kept (a persistent engine keeps its data), and gets the
    template's indexes it lacks, as a stack update would add them. A bucket
    gets the template's CORS rules, the API's origin being ``api_origins``
    (the local front's), where they are given."""
    import boto3  # noqa: PLC0415

    dynamodb = boto3.client("dynamodb")
    names: dict[str, str] = {}
    for logical_id in resources_of_type(template, "AWS::DynamoDB::Table"):
        name = TABLE_NAME if logical_id == "PropsyncTable" else f"propsync-local-{logical_id}"
        with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
            dynamodb.create_table(**create_table_kwargs(template, logical_id, name))
        dynamodb.get_waiter("table_exists").wait(TableName=name)
        add_missing_indexes(dynamodb, create_table_kwargs(template, logical_id, name))
        names[logical_id] = name
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    if buckets:
        s3 = boto3.client("s3")
        for logical_id in buckets:
            name = f"propsync-local-{logical_id.lower()}"
            exists = (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists)
            with contextlib.suppress(*exists):
                s3.create_bucket(
                    Bucket=name,
                    CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name},
                )
            rules = buckets[logical_id]["Properties"].get("CorsConfiguration", {}).get("CorsRules")
            if rules and api_origins:
                s3.put_bucket_cors(
                    Bucket=name,
                    CORSConfiguration={"CORSRules": local_cors_rules(rules, api_origins)},
                )
            names[logical_id] = name
    queues = resources_of_type(template, "AWS::SQS::Queue")
    if queues:
        sqs = boto3.client("sqs")
        # dead-letter queues first: a queue's redrive policy names one's ARN
        for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q]["Properties"]):
            name = f"propsync-local-{logical_id.lower()}"
            names[logical_id] = sqs.create_queue(
                QueueName=name, Attributes=_queue_attributes(sqs, queues[logical_id], names)
            )["QueueUrl"]
    return names


# CloudFormation's names of a CORS rule's fields -> the S3 API's
_CORS_FIELDS = {
    "AllowedMethods": "AllowedMethods",
    "AllowedOrigins": "AllowedOrigins",
    "AllowedHeaders": "AllowedHeaders",
    "ExposedHeaders": "ExposeHeaders",
    "MaxAge": "MaxAgeSeconds",
}
API_ORIGIN_SUB = "https://${PropsyncApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"


def local_cors_rules(
    rules: list[dict[str, Any]], api_origins: Sequence[str]
) -> list[dict[str, Any]]:
    """A bucket's CORS rules of the template, for the local bucket: the
    API's execute-api origin is ``api_origins`` (the local front, by each
    name a browser may open it with); any other origin must be literal text
    (ValueError otherwise: no rule is silently widened)."""

    def origins(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if value == {"Fn::Sub": API_ORIGIN_SUB}:
            return list(api_origins)
        raise ValueError(f"a CORS origin the local stack cannot resolve: {value!r}")

    local = []
    for rule in rules:
        converted = {_CORS_FIELDS[field]: value for field, value in rule.items()}
        converted["AllowedOrigins"] = [o for v in rule["AllowedOrigins"] for o in origins(v)]
        local.append(converted)
    return local


def add_missing_indexes(dynamodb: Any, table: dict[str, Any]) -> None:
    """Create the global secondary indexes of ``table`` (create_table's
    arguments) that the existing table lacks, one at a time as DynamoDB
    allows, and wait until each is active (the engine builds it from the
    items already stored). An engine that cannot add an index to a table
    (dynalite) stops the stack with what to do instead."""
    name = table["TableName"]
    for index in table.get("GlobalSecondaryIndexes", []):
        if _index_status(dynamodb, name, index["IndexName"]) is not None:
            continue
        cannot = (
            f"the existing table {name} lacks the index {index['IndexName']}, and this "
            "DynamoDB engine could not add it{why}: delete the table (its data goes with it) "
            "or point AWS_ENDPOINT_URL_DYNAMODB at a fresh engine, then run make run again"
        )
        try:
            dynamodb.update_table(
                TableName=name,
                AttributeDefinitions=table["AttributeDefinitions"],
                GlobalSecondaryIndexUpdates=[{"Create": index}],
            )
        except dynamodb.exceptions.ClientError as error:
            raise StartupError(cannot.format(why=f" ({shown(str(error))})")) from None
        for _ in range(600):  # a local engine builds it in well under a minute
            status = _index_status(dynamodb, name, index["IndexName"])
            if status is None:  # accepted and ignored (dynalite)
                raise StartupError(cannot.format(why=""))
            if status == "ACTIVE":
                break
            time.sleep(0.1)
        else:
            raise StartupError(
                f"the index {index['IndexName']} of the table {name} was not built within 60 s"
            )


def _index_status(dynamodb: Any, table: str, index: str) -> str | None:
    described = dynamodb.describe_table(TableName=table)["Table"]
    for found in described.get("GlobalSecondaryIndexes") or []:
        if found["IndexName"] == index:
            return str(found.get("IndexStatus", "ACTIVE"))
    return None


def _queue_attributes(sqs: Any, queue: dict[str, Any], created: dict[str, str]) -> dict[str, str]:
    """The template's settings of a queue that shape what a message goes
    through (how long it is invisible, kept, how large, and after how many
    receives it goes to its dead-letter queue), for the local one."""
    properties = queue["Properties"]
    attributes = {
        name: str(properties[name])
        for name in ("VisibilityTimeout", "MessageRetentionPeriod", "MaximumMessageSize")
        if name in properties
    }
    redrive = properties.get("RedrivePolicy")
    if redrive:
        target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]  # !GetAtt Queue.Arn
        arn = sqs.get_queue_attributes(QueueUrl=created[target], AttributeNames=["QueueArn"])
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
                "maxReceiveCount": str(redrive["maxReceiveCount"]),
            }
        )
    return attributes


def create_demo_access(project: str, key_id: str, secret: str) -> None:
    from propsync.access import Permission, create_api_key, secret_matches  # noqa: PLC0415
    from propsync.errors import InvalidSecretError  # noqa: PLC0415
    from propsync.store.access import access_store_from_environment  # noqa: PLC0415

    access = access_store_from_environment()
    access.create_project(project, "local demo")
    record = access.get_api_key(key_id)
    if record is None:
        create_api_key(
            access,
            project,
            frozenset(p.value for p in Permission),
            key_id=key_id,
            secret=secret,
        )
    elif not secret_matches(record, secret):
        # a persistent engine from an earlier run: the secret must still match
        # (checked, not authenticated: a restart neither counts nor meets a lock)
        raise InvalidSecretError("invalid secret")


def create_sample_customer(project: str) -> None:
    """The customer the samples name, created as a first sighting would create
    it (its id claimed, then its properties and ids in one write), but with the
    samples' internal id; and the one the anonymize sample erases. Run again
    on a persistent engine, it changes nothing a newer update (or an erasure)
    wrote."""
    from propsync.customer_updates import (  # noqa: PLC0415
        prepare_property_versions,
        update_customer,
    )
    from propsync.store.customers import store_from_environment  # noqa: PLC0415

    store = store_from_environment()
    # the anonymize sample's customer; once erased on a persistent engine,
    # this older update is held back and the sample answers as a repeat
    update_customer(
        store,
        project,
        SAMPLE_ERASURE_IDS,
        {"first_name": "Erik"},
        update_timestamp=SAMPLE_CUSTOMER_UPDATED,
        received_at=time.time(),
    )
    [(id_type, id_value)] = SAMPLE_CUSTOMER_IDS.items()
    owner = store.identities.claim(project, id_type, id_value, SAMPLE_CUSTOMER_ID)
    if owner != SAMPLE_CUSTOMER_ID:  # only on an engine where it was tracked before
        print(
            f"warning: {id_type}={id_value!r} belongs to customer {owner}, not to "
            f"{SAMPLE_CUSTOMER_ID} that the events/ samples name",
            file=sys.stderr,
        )
        return
    versions = prepare_property_versions(SAMPLE_CUSTOMER_PROPERTIES, SAMPLE_CUSTOMER_UPDATED)
    store.write_properties(project, SAMPLE_CUSTOMER_ID, versions, new_ids=SAMPLE_CUSTOMER_IDS)


# Held by the HTTP front for each request and by the tracking worker's
# trigger for each SQS event (propsync_local.triggers.QueueTrigger).
HANDLER_LOCK = threading.Lock()


# API Gateway's payload limit: a longer body is answered 413 by apigw
MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024
_DECIMAL = re.compile(r"[0-9]+")
_HEXADECIMAL = re.compile(rb"[0-9A-Fa-f]+")
_LINE_LIMIT = 4096


class _BadFraming(Exception):
    """The request's body cannot be read: its length is not a number."""


class _FrontServer(HTTPServer):
    # Clients that connect while a request is served wait in the listen
    # backlog; socketserver's default of 5 reset the sixth of a burst.
    request_queue_size = 128


class _Front(BaseHTTPRequestHandler):
    """One request at a time, as one Lambda container serves one event at a time."""

    server_version = "propsync-local"

    def _serve(self) -> None:
        from propsync_local.apigw import handle  # noqa: PLC0415

        url = urlsplit(self.path)
        try:
            body = self._body()
        except _BadFraming as error:
            self.close_connection = True  # what is left of the body cannot be told from a request
            self._answer(
                400,
                {"Content-Type": "application/json"},
                json.dumps({"success": False, "error": f"Bad request: {error}"}),
            )
            return
        # HEAD is answered as GET without its body (http.server answered 501)
        method = "GET" if self.command == "HEAD" else self.command
        try:
            with HANDLER_LOCK:
                response = handle(
                    method,
                    url.path,
                    query=dict(parse_qsl(url.query, keep_blank_values=True)) or None,
                    headers=dict(self.headers.items()),
                    body=body,
                )
            status, headers, payload = response.status, response.headers, response.body
            self._request_id = response.headers.get("x-amzn-RequestId", "")
        except Exception as error:  # a crash of a handler is a 502 at API Gateway
            status, headers = 502, {"Content-Type": "application/json"}
            payload = json.dumps({"message": "Internal server error", "detail": repr(error)})
        self._answer(status, headers, payload)

    def _answer(self, status: int, headers: dict[str, str], payload: str) -> None:
        data = payload.encode("utf-8")
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def __getattr__(self, name: str) -> Any:
        """Any other method (OPTIONS, TRACE, ...) goes to the routes too, which
        answer 404 JSON as API Gateway does where no route has it; http.server
        answered 501 with an HTML page."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _body(self) -> bytes | None:
        """The request's body, by its Content-Length or chunked (as API
        Gateway takes either); past API Gateway's 10 MB only its first byte
        over is kept, enough for apigw to answer 413, the rest read and
        dropped. A length or chunk size that is not a number raises
        _BadFraming (a 400, never a dropped connection or a server that
        waits for the end of the input)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._chunked_body()
        declared = self.headers.get("Content-Length")
        if declared is None:
            return None
        if not _DECIMAL.fullmatch(declared.strip()):
            raise _BadFraming(f"Content-Length {shown(declared)} is not a number of bytes")
        body = bytearray()
        self._read_into(body, int(declared))
        return bytes(body) or None

    def _chunked_body(self) -> bytes:
        body = bytearray()
        while True:
            size = self.rfile.readline(_LINE_LIMIT).split(b";", 1)[0].strip()
            if not _HEXADECIMAL.fullmatch(size):
                raise _BadFraming("a chunk of the chunked body does not start with its size")
            if int(size, 16) == 0:
                break
            self._read_into(body, int(size, 16))
            if self.rfile.readline(_LINE_LIMIT) not in (b"\r\n", b"\n"):
                raise _BadFraming("a chunk of the chunked body is longer than its size")
        while self.rfile.readline(_LINE_LIMIT) not in (b"\r\n", b"\n", b""):
            pass  # trailer fields
        return bytes(body)

    def _read_into(self, body: bytearray, length: int) -> None:
        while length > 0:
            piece = self.rfile.read(min(length, 1 << 16))
            if not piece:
                raise _BadFraming("the body ended before its length")
            length -= len(piece)
            body += piece[: max(0, MAX_REQUEST_BODY_BYTES + 1 - len(body))]

    _request_id = ""

    def log_message(self, format: str, *args: Any) -> None:
        # the request id is the correlation_id of the functions' log lines
        sys.stderr.write(
            f"[api] {self.command} {self.path} -> {args[1] if len(args) > 1 else ''} "
            f"{self._request_id}\n"
        )


def persistence_note(aws_url: str, dynamodb_url: str) -> str:
    """What survives a restart: the moto server keeps everything in its
    process's memory; only another DynamoDB engine may keep the table."""
    if dynamodb_url == aws_url:
        return (
            "data is kept in memory only: stopping make run loses it (projects, keys, "
            "customers, imports); the demo project and key are created again at start"
        )
    return (
        f"the table is in {dynamodb_url} and keeps what that engine keeps; the import "
        "bucket and queue are in memory only: stopping make run loses their files and reports"
    )


def _stop(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the stack as Ctrl-C does


def serve(
    server: HTTPServer, *, project: str, key_id: str, secret: str, aws_url: str, dynamodb_url: str
) -> None:
    """Create resources and demo access, then serve HTTP on ``server`` (bound
    already) until interrupted."""
    api_port = server.server_address[1]
    api_url = f"http://127.0.0.1:{api_port}"
    # the console's page uploads from the front's origin: 127.0.0.1, or localhost
    names = create_resources(load_template(), api_origins=(api_url, f"http://localhost:{api_port}"))
    # the console's CSP lets its page upload import files to the local bucket
    os.environ["PROPSYNC_UPLOAD_ORIGIN"] = aws_url
    os.environ["PROPSYNC_TABLE_NAME"] = names["PropsyncTable"]
    os.environ["PROPSYNC_IMPORT_BUCKET"] = names["ImportBucket"]
    os.environ["PROPSYNC_CHUNK_QUEUE_URL"] = names["ChunkQueue"]
    os.environ[QUEUE_URL_ENV] = names["TrackingQueue"]
    os.environ[DEAD_LETTER_QUEUE_URL_ENV] = names["TrackingDeadLetterQueue"]
    create_demo_access(project, key_id, secret)
    create_sample_customer(project)
    import boto3  # noqa: PLC0415

    triggers = ImportTriggers(
        boto3.client("s3"),
        boto3.client("sqs"),
        names["ImportBucket"],
        names["ChunkQueue"],
        names["ImportFailureQueue"],
    )
    triggers.start()
    workers = []
    if tracking_writes() == QUEUED:
        workers.append(
            QueueTrigger(
                boto3.client("sqs"),
                names["TrackingQueue"],
                "TrackingWorkerFunction",
                poll_seconds=TRACKING_POLL_SECONDS,
                lock=HANDLER_LOCK,
            )
        )
    for worker in workers:
        worker.start()
    credentials = {
        "project_token": project,
        "api_key_id": key_id,
        "api_secret": secret,
        "api_url": api_url,
        "console_url": f"{api_url}/console",
        "aws_endpoint_url": aws_url,
        "dynamodb_endpoint_url": dynamodb_url,
        "table_name": names["PropsyncTable"],
        "import_bucket": names["ImportBucket"],
        "chunk_queue_url": names["ChunkQueue"],
        "tracking_writes": tracking_writes(),
        **(
            {
                "tracking_queue_url": names["TrackingQueue"],
                "tracking_dead_letter_queue_url": names["TrackingDeadLetterQueue"],
            }
            if tracking_writes() == QUEUED
            else {}
        ),
        "region": os.environ["AWS_DEFAULT_REGION"],
        "sample_customer_id": SAMPLE_CUSTOMER_ID,
    }
    CREDENTIALS_PATH.parent.mkdir(parents=True, exist_ok=True)
    # The key's secret: readable by its owner only, as ~/.aws/credentials is.
    descriptor = os.open(CREDENTIALS_PATH, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file an older run left keeps its mode otherwise
    with os.fdopen(descriptor, "w") as file:
        file.write(json.dumps(credentials, indent=2) + "\n")
    print(
        "propsync local stack is up (Ctrl-C stops it)\n"
        + "\n".join(f"  {k}: {v}" for k, v in credentials.items())
        + f"\n  written to {CREDENTIALS_PATH}; the propsync command finds the stack there"
        + f"\n{persistence_note(aws_url, dynamodb_url)}",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        triggers.stop()
        for worker in workers:
            worker.stop()
            worker.join()
        if workers:
            _apply_what_is_queued(names["TrackingQueue"])


def _apply_what_is_queued(queue_url: str) -> None:
    """On stop (queued mode): the moto server keeps the queue in memory, so
    the commands it holds would be lost with it although their clients were
    told success. Apply them now, and say what could not be."""
    import boto3  # noqa: PLC0415

    sqs = boto3.client("sqs")
    try:
        with HANDLER_LOCK:
            delivered = drain(sqs, queue_url, "TrackingWorkerFunction")
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    except Exception as error:  # the moto server was stopped too (a signal to the group)
        print(
            f"stopping: the queued tracking commands could not be applied ({error}); "
            "they are lost with the in-memory queue",
            file=sys.stderr,
            flush=True,
        )
        return
    left = sum(int(value) for value in attributes.values())  # failed: waiting to come back
    print(
        f"stopping: applied {max(0, delivered - left)} queued tracking messages"
        + (f"; {left} failed and are lost with the in-memory queue" if left else ""),
        file=sys.stderr,
        flush=True,
    )


def main() -> int:
    try:
        return run()
    except StartupError as error:
        raise SystemExit(str(error)) from None


def run() -> int:
    try:
        chunk_bytes()  # read at each import: a bad value is refused now, not at the first one
        chunk_write_share()  # read by the first chunk: the same
        gzip_max_bytes()  # read at each .csv.gz import: the same
        tracking_writes()  # read at each request: the same
    except ValueError as error:
        raise StartupError(str(error)) from None
    aws_port = _port("PROPSYNC_AWS_PORT", 4566)
    api_port = _port("PROPSYNC_API_PORT", 3000)
    project = os.environ.get("PROPSYNC_LOCAL_PROJECT_TOKEN", DEFAULT_PROJECT_TOKEN)
    key_id = os.environ.get("PROPSYNC_LOCAL_KEY_ID", DEFAULT_KEY_ID)
    secret = os.environ.get("PROPSYNC_LOCAL_KEY_SECRET", DEFAULT_KEY_SECRET)
    if aws_port == api_port != 0:
        raise StartupError(
            f"PROPSYNC_AWS_PORT and PROPSYNC_API_PORT are both {api_port}: "
            "give them different ports"
        )
    if not is_project_token(project):
        raise StartupError(
            f"PROPSYNC_LOCAL_PROJECT_TOKEN={project!r} is not a project token: use a UUID, "
            f"e.g. {DEFAULT_PROJECT_TOKEN}"
        )
    # what create_api_key and Basic auth refuse, refused before anything is written
    key_id_problem = "it must not be empty" if not key_id else api_key_id_problem(key_id)
    if key_id_problem:
        raise StartupError(
            f"PROPSYNC_LOCAL_KEY_ID={shown(key_id)} cannot be used: {key_id_problem}"
        )
    if not secret:
        raise StartupError("PROPSYNC_LOCAL_KEY_SECRET='' cannot be used: it must not be empty")
    # Both ports first: nothing is created, started or written on a busy port.
    aws_socket = _bound("PROPSYNC_AWS_PORT", aws_port, listening_socket)
    server = _bound(
        "PROPSYNC_API_PORT", api_port, lambda port: _FrontServer(("127.0.0.1", port), _Front)
    )

    # Credentials that can only ever reach the local engine, unless the
    # developer points DynamoDB somewhere else on purpose.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    aws_url = f"http://127.0.0.1:{aws_port}"
    os.environ["AWS_ENDPOINT_URL"] = aws_url  # every service; DynamoDB may be overridden
    dynamodb_url = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB", aws_url)
    # Powertools' settings are set by the package (propsync_local/__init__.py),
    # before the handlers' Logger and Metrics are created.

    signal.signal(signal.SIGTERM, _stop)
    MOTO_LOG_PATH.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            server,
            MOTO_LOG_PATH.open("wb") as moto_log,
            moto_server.running(aws_socket, moto_log),
        ):
            serve(
                server,
                project=project,
                key_id=key_id,
                secret=secret,
                aws_url=aws_url,
                dynamodb_url=dynamodb_url,
            )
    except KeyboardInterrupt:
        pass
    except moto_server.MotoServerError as error:
        raise SystemExit(f"{error} (see {MOTO_LOG_PATH})") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
