"""The queued mode of the tracking routes (template parameter ``TrackingWrites``).

In the synchronous mode (``sync``, the default) the tracking function writes
every command before it answers. In the queued mode (``queued``) the routes
check every command exactly as the synchronous mode does, so a bad command
still gets its error at once, and put the accepted ones on an SQS queue,
answering ``success`` per command; the worker function (functions/tracking/
worker.py) applies them later through :func:`propsync.tracking.run_commands`,
the synchronous mode's own code, merging included.

What makes a queue safe is the merge rule: the stored result of a set of
updates depends neither on their order nor on how often each is applied
(propsync.merge_rule). So SQS may deliver late, out of order, twice or in
parallel, and a message that failed half-way is simply applied again.

- **Arrival time.** A message carries the time API Gateway received the
  request, and the worker runs its commands with it: a command without
  ``update_timestamp`` is stamped with its arrival, never with the time a
  worker gets to it, and "too far ahead" is judged against the same time.
- **One queue request per batch** where its size allows: the commands of a
  request are packed into as few messages as SQS's 1 MiB per message allows,
  one SendMessage each: a batch under 1 MiB (nearly all) is one request.
- **Failures.** A command that failed for a passing reason (503: throttling,
  DynamoDB's own faults, contention) fails its message, which SQS delivers
  again after a growing delay (:func:`retry_delay`), up to the queue's
  maxReceiveCount, then to the dead-letter queue. A command that can never
  succeed (409: ids of two customers that must not merge; 400: a customer
  too large) is sent to the dead-letter queue at once, with its error, and the
  rest of its message counts as done.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from propsync import http_json, tracking
from propsync.container import per_container
from propsync.customer_updates import prepare_update
from propsync.errors import InvalidInputError, PropsyncError
from propsync.id_types import IdTypes
from propsync.limits import MAX_REQUEST_BYTES
from propsync.models import parse_command_data
from propsync.store.customers import CustomerStore

if TYPE_CHECKING:  # stubs are a dev dependency only
    from mypy_boto3_sqs import SQSClient
else:
    SQSClient = Any

logger = logging.getLogger(__name__)

SYNC, QUEUED = "sync", "queued"
MODES = (SYNC, QUEUED)
TRACKING_WRITES_ENV = "PROPSYNC_TRACKING_WRITES"
QUEUE_URL_ENV = "PROPSYNC_TRACKING_QUEUE_URL"
DEAD_LETTER_QUEUE_URL_ENV = "PROPSYNC_TRACKING_DEAD_LETTER_QUEUE_URL"

# SQS: at most 1 MiB per message (the queues' MaximumMessageSize).
MAX_MESSAGE_BYTES = 1024 * 1024
MESSAGE_FORMAT = 1
# A message holding one command too large as JSON holds it compressed, here.
COMPRESSED_KEY = "commands_zlib"
# A failed message comes back after RETRY_BASE_SECONDS * 2**(receives - 1),
# jittered, at most MAX_RETRY_SECONDS (SQS's visibility timeout allows 12 h).
RETRY_BASE_SECONDS = 10.0
MAX_RETRY_SECONDS = 900.0

Result = dict[str, Any]
Outcome = tuple[int, Result]


def tracking_writes() -> str:
    """The deployment's mode, ``sync`` or ``queued`` (``PROPSYNC_TRACKING_WRITES``,
    set from the template parameter; unset is ``sync``)."""
    mode = os.environ.get(TRACKING_WRITES_ENV, "").strip() or SYNC
    if mode not in MODES:
        raise ValueError(
            f"{TRACKING_WRITES_ENV}={mode!r} is not a mode of the tracking routes: "
            f"use {SYNC} (write before answering) or {QUEUED} (queue, then a worker writes)"
        )
    return mode


# ---------------------------------------------------------------- the routes


class QueueTooSmallError(InvalidInputError):
    """A command that passed every check but does not fit in one SQS message
    even compressed. Never expected: a command over 1 MiB as JSON (only
    U+FFFE and U+FFFF grow so: 3 bytes each in the 800 KB count, a
    6-character escape in a message, since SQS refuses them raw) travels
    compressed, and 800 KB compresses below 1 MiB whatever it holds."""


@dataclass(frozen=True)
class CommandQueue:
    """The queue of the tracking commands: the routes send to it."""

    client: SQSClient
    url: str

    def send(self, bodies: list[str]) -> set[int]:
        """Send each body (at most MAX_MESSAGE_BYTES) as one message; the
        positions of the bodies SQS accepted. One SendMessage per message:
        messages are filled up to SQS's 1 MiB, which is also the limit of a
        SendMessageBatch request, so two of them never fit in one request. A
        message that fails after botocore's retries is left out (its commands
        are answered "retry"), and the others are still sent."""
        sent: set[int] = set()
        for position, body in enumerate(bodies):
            try:
                self.client.send_message(QueueUrl=self.url, MessageBody=body)
            except Exception:
                logger.exception("queueing tracking commands failed")
                continue
            sent.add(position)
        return sent


@per_container
def queue_from_environment() -> CommandQueue:
    url = os.environ.get(QUEUE_URL_ENV)
    if not url:
        raise RuntimeError(
            f"{QUEUE_URL_ENV} is not set: the queued tracking mode needs its queue's URL"
        )
    return CommandQueue(boto3.client("sqs", config=_sqs_config()), url)


def _sqs_config() -> Config:
    # A route answers within API Gateway's 29 s: a few quick attempts, then
    # the commands are answered "retry" rather than held.
    return Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5
    )


def accept_commands(
    queue: CommandQueue,
    project: str,
    commands: list[Any],
    *,
    received_at: float,
    request_id: str,
    id_types: IdTypes,
    clock: Callable[[], float] = time.time,
) -> list[Outcome]:
    """The batch route in the queued mode: each command's status and result.
    Commands that need no write are answered as in the synchronous mode; a
    ``customers`` command that passes every check the synchronous mode makes
    before its first write is queued and answered ``{"success": true}``."""
    outcomes, prepared = tracking.check_commands(commands, id_types, clock)
    queued: dict[int, Any] = {}
    for index, data in prepared.items():
        try:
            prepare_update(data.customer_ids, data.properties, data.update_timestamp, received_at)
            queued[index] = _forwarded(commands[index])
        except PropsyncError as error:
            outcomes[index] = (error.status, tracking.failure(str(error)))
    for index, outcome in _queue(queue, project, queued, received_at, request_id).items():
        outcomes[index] = outcome
    return tracking.with_command_ids(commands, outcomes)


def accept_customers_command(
    queue: CommandQueue,
    project: str,
    payload: Any,
    *,
    received_at: float,
    request_id: str,
    id_types: IdTypes,
) -> Outcome:
    """``POST /track/v2/projects/{token}/customers`` in the queued mode."""
    try:
        data = parse_command_data(payload, id_types)
        prepare_update(data.customer_ids, data.properties, data.update_timestamp, received_at)
    except PropsyncError as error:
        return error.status, tracking.failure(str(error))
    command = _forwarded({"name": "customers", "data": payload})
    return _queue(queue, project, {0: command}, received_at, request_id)[0]


def _forwarded(command: Mapping[str, Any]) -> dict[str, Any]:
    """What the worker needs of a checked command, as the client sent it (the
    values' own forms, so that the worker's checks read what the route's
    read): the fields the models ignore are left behind."""
    data = command["data"]
    forwarded_data = {key: data[key] for key in ("customer_ids", "properties") if key in data}
    if data.get("update_timestamp") is not None:
        forwarded_data["update_timestamp"] = data["update_timestamp"]
    forwarded: dict[str, Any] = {"name": "customers", "data": forwarded_data}
    if command.get("command_id") is not None:
        forwarded["command_id"] = command["command_id"]
    return forwarded


def _queue(
    queue: CommandQueue,
    project: str,
    commands: dict[int, Any],
    received_at: float,
    request_id: str,
) -> dict[int, Outcome]:
    """Send ``commands`` (by index) in as few messages and requests as fit;
    each index's outcome: accepted, too large for a message, or "retry"."""
    if not commands:
        return {}
    envelope = _envelope(project, received_at, request_id)
    head = _message_text(envelope)[:-1] + ',"commands":['
    outcomes: dict[int, Outcome] = {}
    messages: list[tuple[list[int], str]] = []  # (indexes of the commands, body)
    indexes: list[int] = []  # the message being filled
    texts: list[str] = []
    size = 0
    for index, command in commands.items():
        text = _message_text(command)
        length = len(text.encode("utf-8"))
        if len(head) + length + 2 > MAX_MESSAGE_BYTES:  # only through U+FFFE/U+FFFF escapes
            body = _one_command_body(envelope, text)  # compressed
            if body is None:  # never expected: the 800 KB limit keeps it under 1 MiB
                error = QueueTooSmallError(
                    f"command is {length} bytes once queued and more than {MAX_MESSAGE_BYTES} "
                    "bytes (1 MiB) compressed; the queue takes at most that: send fewer or "
                    "shorter values"
                )
                outcomes[index] = (error.status, tracking.failure(str(error)))
            else:
                messages.append(([index], body))
            continue
        if indexes and size + length + 1 > MAX_MESSAGE_BYTES:
            messages.append((indexes, head + ",".join(texts) + "]}"))
            indexes, texts = [], []
        if not indexes:
            size = len(head) + 2  # "]}"
        indexes.append(index)
        texts.append(text)
        size += length + 1  # its comma
    if indexes:
        messages.append((indexes, head + ",".join(texts) + "]}"))
    bodies = [body for _indexes, body in messages]
    sent = queue.send(bodies)
    for position, (queued, _body) in enumerate(messages):
        outcome: Outcome = (
            (200, {"success": True})
            if position in sent
            else (503, tracking.failure(tracking.RETRY_LATER))
        )
        outcomes.update(dict.fromkeys(queued, outcome))
    return outcomes


def _envelope(project: str, received_at: float, request_id: str) -> dict[str, Any]:
    """What every message says beside its commands."""
    return {
        "format": MESSAGE_FORMAT,
        "project": project,
        "received_at": received_at,
        "request_id": request_id,
    }


def _one_command_body(envelope: dict[str, Any], command_text: str) -> str | None:
    """A message of one command: as JSON where that fits in SQS's 1 MiB,
    else compressed (_compressed_body); None if neither fits."""
    body = _message_text(envelope)[:-1] + ',"commands":[' + command_text + "]}"
    if len(body.encode("utf-8")) <= MAX_MESSAGE_BYTES:
        return body
    return _compressed_body(envelope, command_text)


def _compressed_body(envelope: dict[str, Any], command_text: str) -> str | None:
    """A message of one command whose JSON is over 1 MiB (U+FFFE and U+FFFF,
    3 bytes in the 800 KB count, are 6-character escapes in a message): the
    command list compressed with zlib, in base64. JSON text of at most 800 KB
    of UTF-8 compresses to at most about 83% (random printable ASCII is the
    worst case), 4/3 of that in base64: it fits. None if it does not."""
    packed = zlib.compress(f"[{command_text}]".encode(), 9)
    body = _message_text({**envelope, COMPRESSED_KEY: base64.b64encode(packed).decode("ascii")})
    return body if len(body.encode("utf-8")) <= MAX_MESSAGE_BYTES else None


def _message_text(value: Any) -> str:
    """``value`` as the JSON of a message body: exact numbers (as the routes
    read them), and the two characters JSON may leave raw but SQS refuses
    (U+FFFE, U+FFFF; they can only occur inside strings) escaped."""
    text = http_json.dumps(value)
    if "\ufffe" in text or "\uffff" in text:
        text = text.replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff")
    return text


# ---------------------------------------------------------------- the worker


@dataclass(frozen=True)
class QueuedBatch:
    """One message: the commands of one request, accepted and waiting."""

    project: str
    received_at: float
    request_id: str
    commands: list[Any]


def read_message(body: str) -> QueuedBatch:
    """A message body as the routes wrote it; ValueError for anything else."""
    try:
        message = http_json.parse_body(body)
    except PropsyncError as error:
        raise ValueError(f"not a tracking message: {error}") from None
    if not isinstance(message, dict) or message.get("format") != MESSAGE_FORMAT:
        raise ValueError(f"not a tracking message of format {MESSAGE_FORMAT}")
    project, received_at = message.get("project"), message.get("received_at")
    commands = message.get("commands")
    if COMPRESSED_KEY in message:
        commands = _decompressed(message[COMPRESSED_KEY])
    if not isinstance(project, str) or not isinstance(commands, list):
        raise ValueError("a tracking message names its project and holds a list of commands")
    if isinstance(received_at, bool) or not isinstance(received_at, int | Decimal):
        raise ValueError("a tracking message carries its arrival time")
    return QueuedBatch(
        project=project,
        received_at=float(received_at),
        request_id=str(message.get("request_id", "")),
        commands=commands,
    )


def _decompressed(packed: Any) -> Any:
    """The commands of a compressed message (_compressed_body), read as a
    body is: no more than a request may hold."""
    try:
        raw = base64.b64decode(str(packed), validate=True)
        inflater = zlib.decompressobj()
        text = inflater.decompress(raw, MAX_REQUEST_BYTES + 1)
        if inflater.unconsumed_tail or len(text) > MAX_REQUEST_BYTES:
            raise ValueError("compressed commands over the request limit")
        return http_json.parse_body(text)
    except (ValueError, zlib.error, PropsyncError) as error:  # binascii.Error is a ValueError
        raise ValueError(f"not a tracking message: {error}") from None


@dataclass
class Applied:
    """What the worker did with one message."""

    commands: int = 0
    applied: int = 0  # written, in part or whole
    stale: int = 0  # lost to newer stored values or an erasure: nothing written
    retry: list[Outcome] = field(default_factory=list)  # 503: the message comes back
    dead: list[tuple[Any, Outcome]] = field(default_factory=list)  # never succeed

    @property
    def must_retry(self) -> bool:
        return bool(self.retry)


def apply_batches(
    store: CustomerStore, batches: list[QueuedBatch], id_types: IdTypes
) -> list[Applied]:
    """Run the commands of several messages of one project as the synchronous
    batch route runs a batch, each with its own request's arrival time, all
    together: one identity lookup for them all, and the customers of every
    message written in parallel (about 1.3 times the commands a second of one
    message at a time, make bench). What happened, per message."""
    commands = [command for batch in batches for command in batch.commands]
    outcomes = tracking.run_commands(
        store,
        batches[0].project,
        commands,
        received_at=[batch.received_at for batch in batches for _ in batch.commands],
        id_types=id_types,
    )
    done = []
    start = 0
    for batch in batches:
        own = outcomes[start : start + len(batch.commands)]
        start += len(batch.commands)
        counts = tracking.count_results([result for _status, result in own])
        applied = Applied(
            commands=len(own), applied=counts["AppliedCommands"], stale=counts["StaleCommands"]
        )
        for command, (status, result) in zip(batch.commands, own, strict=True):
            if result["success"]:
                continue
            if status == 503:
                applied.retry.append((status, result))
            else:
                applied.dead.append((command, (status, result)))
        done.append(applied)
    return done


def dead_letter_bodies(batch: QueuedBatch, dead: list[tuple[Any, Outcome]]) -> list[str]:
    """The messages the dead-letter queue receives for commands that can
    never be applied: one per command, in the routes' format (a redrive sends
    them to the worker again), with the command's error beside it for the
    person who looks; compressed as the route compressed it where it is over
    1 MiB as JSON. A command that filled its message almost to 1 MiB goes
    without its error, which only the worker's log line then holds: the
    command must fit (it did in the route's message), the error need not."""
    envelope = _envelope(batch.project, batch.received_at, batch.request_id)
    bodies = []
    for command, (status, result) in dead:
        text = _message_text(command)
        error = {"errors": [{"status": status, "errors": result.get("errors", [])}]}
        for head in ({**envelope, **error}, envelope):
            body = _one_command_body(head, text)
            if body is not None:
                break
        if body is None:  # the route's own message of it, the last form tried, fitted
            raise RuntimeError("a dead-lettered command fits no message")
        bodies.append(body)
    return bodies


def retry_delay(receive_count: int, draw: Callable[[], float] = random.random) -> int:
    """Seconds before a failed message comes back: doubling from
    RETRY_BASE_SECONDS with each receive, at most MAX_RETRY_SECONDS, and
    jittered (half to all of it), so that messages failed together by one
    spell of throttling do not all come back at once."""
    delay = min(MAX_RETRY_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, receive_count - 1))
    return int(delay * (0.5 + 0.5 * draw()))


@per_container
def worker_queues_from_environment() -> tuple[SQSClient, str, str]:
    """The worker's SQS client, its queue's URL (for the retry delay) and the
    dead-letter queue's URL (for commands that never succeed)."""
    urls = []
    for variable in (QUEUE_URL_ENV, DEAD_LETTER_QUEUE_URL_ENV):
        url = os.environ.get(variable)
        if not url:
            raise RuntimeError(f"{variable} is not set: the tracking worker needs it")
        urls.append(url)
    return boto3.client("sqs", config=_sqs_config()), urls[0], urls[1]
