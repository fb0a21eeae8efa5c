"""Faults injected at the botocore layer, as the network and DynamoDB produce them.

``before`` faults fail a request before it leaves (throttling, 500s, a reset
connection, a timeout); ``after`` faults let it reach the engine and then lose
the answer (the write happened, the client sees a timeout or a reset), the
case that makes retries of conditional writes interesting.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

ERROR_BODIES = {
    "throttling": (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    "throughput": (
        400,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    "internal": (500, "InternalServerError", "Internal server error"),
    # Not a fault of the network: what a write meets when another writer
    # changed the item between its read and its write (contention).
    "condition-failed": (400, "ConditionalCheckFailedException", "The conditional request failed"),
}
KINDS = (
    *(kind for kind in ERROR_BODIES if kind != "condition-failed"),
    "reset",
    "timeout",
    "lost-answer-timeout",
    "lost-answer-reset",
)


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_kwargs: Any):
        yield self._body


def error_response(kind: str) -> AWSResponse:
    status, code, message = ERROR_BODIES[kind]
    body = f'{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}'.encode()
    return AWSResponse(
        "http://fault", status, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body)
    )


class FaultInjector:
    """Fails a share of DynamoDB requests with random kinds of faults.

    ``should_fail(operation, params)`` may narrow which requests fail; every
    injected fault is counted by kind. ``max_in_a_row`` makes every fault
    transient: the attempts of one request (the same operation and body) fail
    at most that many times in a row, so a client retrying more often always
    gets through, whatever order its threads draw in."""

    def __init__(
        self,
        probability: float,
        seed: int = 1,
        kinds: tuple[str, ...] = KINDS,
        should_fail: Callable[[str, dict], bool] | None = None,
        max_in_a_row: int | None = None,
    ):
        self.probability = probability
        self.kinds = kinds
        self.should_fail = should_fail or (lambda _op, _params: True)
        self.max_in_a_row = max_in_a_row
        self._in_a_row: Counter[tuple[str, bytes]] = Counter()
        self.injected: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._session = URLLib3Session()

    def attach(self, client: Any) -> FaultInjector:
        client.meta.events.register("before-send.dynamodb", self._before_send)
        return self

    def detach(self, client: Any) -> None:
        client.meta.events.unregister("before-send.dynamodb", self._before_send)

    def _draw(self, request: Any) -> str | None:
        operation = request.headers.get("X-Amz-Target", b"")
        operation = operation.decode() if isinstance(operation, bytes) else operation
        attempt = (operation, bytes(request.body or b""))
        with self._lock:
            if self._random.random() >= self.probability or (
                self.max_in_a_row is not None and self._in_a_row[attempt] >= self.max_in_a_row
            ):
                self._in_a_row.pop(attempt, None)
                return None
            if not self.should_fail(operation.split(".")[-1], {"body": request.body}):
                return None
            self._in_a_row[attempt] += 1
            return self._random.choice(self.kinds)

    def _before_send(self, request: Any, **_kwargs: Any) -> AWSResponse | None:
        kind = self._draw(request)
        if kind is None:
            return None
        with self._lock:
            self.injected[kind] += 1
        if kind in ERROR_BODIES:
            return error_response(kind)
        if kind == "reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        # lost answer: the request reaches the engine, which does the work;
        # the client never hears of it and botocore retries
        self._session.send(request)
        exception = ReadTimeoutError if kind == "lost-answer-timeout" else ConnectionClosedError
        raise exception(endpoint_url=request.url)


def nth_request(n: int) -> Callable[[str, dict], bool]:
    """A ``should_fail`` for FaultInjector that picks the n-th request it is
    asked about (1-based; botocore's retries count as requests) and no other."""
    seen = 0

    def is_nth(_operation: str, _params: dict) -> bool:
        nonlocal seen
        seen += 1
        return seen == n

    return is_nth


class Crash(Exception):
    """The process running a command died (a Lambda timeout, an out-of-memory
    kill): no botocore retry, no cleanup request gets out."""


class CrashAt:
    """Counts the DynamoDB requests a client sends (each HTTP attempt) and,
    once armed with ``n``, fails the n-th and every later one with Crash
    before it leaves, until ``recover()``: what a process dying just before
    its n-th request leaves behind."""

    def __init__(self) -> None:
        self.sent = 0
        self._crash_at: int | None = None

    def attach(self, client: Any) -> CrashAt:
        client.meta.events.register("before-send.dynamodb", self._before_send)
        return self

    def count(self) -> None:
        """Count from zero, crashing nowhere."""
        self.sent, self._crash_at = 0, None

    def arm(self, n: int) -> None:
        self.sent, self._crash_at = 0, n

    def recover(self) -> None:
        self._crash_at = None

    def _before_send(self, request: Any, **_kwargs: Any) -> None:
        self.sent += 1
        if self._crash_at is not None and self.sent >= self._crash_at:
            raise Crash(f"crashed before DynamoDB request {self.sent} ({request.url})")
