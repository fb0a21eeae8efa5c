"""An in-process DynamoDB fake at the HTTP layer, for benchmarks only.

It answers botocore's requests from a ``before-send`` hook, after sleeping a
simulated network round trip, so the client does all of its real work
(serializing, signing, parsing) while the engine's own CPU is not on the bill,
as on AWS. It keeps items in a dict and implements what propsync's common path
needs: GetItem, BatchGetItem, PutItem (with ``attribute_not_exists(pk)``) and
UpdateItem (SET of whole top-level attributes and ADD to string sets; the
condition is taken as true: the benchmarks write newer values).

Its own work is kept small, since it runs under our GIL where DynamoDB's would
not: once a benchmark has seeded what it reads back, ``store_updates = False``
makes every UpdateItem a counted, acknowledged no-op (what DynamoDB answers
when the condition holds), without parsing the request.

A table's write capacity (:class:`WriteCapacity`) can be given to fakes in
several processes, the import's "Lambda containers" and the tracking
function's: each write request takes a token of the one table-wide bucket,
and a write that finds it empty is throttled as DynamoDB throttles it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection, Pipe, wait
from typing import Any

from botocore.awsrequest import AWSResponse


class RawBody:
    """A response body as botocore's HTTP layer hands it on."""

    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_kwargs: Any):
        yield self._body


# DynamoDB's requests that consume write capacity
WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
# DynamoDB's answer to a write beyond the table's capacity (HTTP 400)
THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    }
).encode()


class WriteCapacity:
    """A table's write capacity: a token bucket of ``writes_per_second``
    accepted write requests, which holds at most ``burst_seconds`` of them
    (DynamoDB keeps up to 300 s of unused capacity; a small burst is the
    strict case: a writer that goes over the rate is throttled almost at
    once). A write request is one token whatever it carries (propsync's
    writes are single items). Accepted and throttled requests are counted per
    source.

    The bucket lives in the process that made it; the fakes of other
    processes draw from it through a :class:`CapacityLink` each, answered
    while :func:`serving` runs. Not a lock in shared memory: a process that
    holds it can be preempted (a niced one for long), and every other
    process, the tracking function's too, would wait for it."""

    def __init__(self, writes_per_second: float, *, burst_seconds: float = 0.1):
        self.writes_per_second = writes_per_second
        self.burst = max(1.0, writes_per_second * burst_seconds)
        self._lock = threading.Lock()
        self.links: dict[Connection, str] = {}  # this end of each link -> its source
        self.reset()

    def reset(self) -> None:
        """A full bucket and no requests counted."""
        with self._lock:
            self._tokens, self._refilled = self.burst, time.monotonic()
            self._counts: dict[str, Counter[str]] = {}

    def take(self, source: str) -> bool:
        """Whether a write request of ``source`` is accepted now."""
        with self._lock:
            now = time.monotonic()
            elapsed, self._refilled = now - self._refilled, now
            self._tokens = min(self.burst, self._tokens + elapsed * self.writes_per_second)
            accepted = self._tokens >= 1.0
            if accepted:
                self._tokens -= 1.0
            self._counts.setdefault(source, Counter())["accepted" if accepted else "throttled"] += 1
        return accepted

    def counts(self, source: str) -> dict[str, int]:
        """Accepted and throttled write requests of ``source`` since the reset."""
        with self._lock:
            counted = self._counts.get(source, Counter())
            return {"accepted": counted["accepted"], "throttled": counted["throttled"]}

    def link(self, source: str) -> CapacityLink:
        """A link for a process whose writes are ``source``'s (hand it to the
        process before it starts), answered while :func:`serving` runs."""
        here, there = Pipe()
        self.links[here] = source
        return CapacityLink(there)


class CapacityLink:
    """A process's way to a :class:`WriteCapacity` of another: one request
    at a time over a pipe (the threads of the process take turns)."""

    def __init__(self, connection: Connection):
        self._connection = connection
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"connection": self._connection}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["connection"])  # type: ignore[misc]

    def take(self) -> bool:
        with self._lock:
            self._connection.send_bytes(b"?")
            return self._connection.recv_bytes() == b"1"


@contextmanager
def serving(*tables: WriteCapacity) -> Iterator[None]:
    """Answer the links of ``tables`` on a thread of this process, meanwhile;
    then close them."""
    links = {end: (table, source) for table in tables for end, source in table.links.items()}
    stop = threading.Event()

    def serve() -> None:
        open_ends = list(links)
        while open_ends and not stop.is_set():
            for end in wait(open_ends, timeout=0.1):
                assert isinstance(end, Connection)
                try:
                    end.recv_bytes()
                except (EOFError, OSError):  # its process ended
                    open_ends.remove(end)
                    continue
                table, source = links[end]
                end.send_bytes(b"1" if table.take(source) else b"0")

    server = threading.Thread(target=serve, name="write-capacity", daemon=True)
    server.start()
    try:
        yield
    finally:
        stop.set()
        server.join()
        for end in links:
            end.close()
        for table in tables:
            table.links.clear()


class FakeDynamoDB:
    def __init__(
        self,
        round_trip_seconds: float = 0.005,
        *,
        capacity: CapacityLink | None = None,
    ):
        self.round_trip = round_trip_seconds
        self.items: dict[str, dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()
        self.store_updates = True
        self.capacity = capacity  # the table's write capacity, if limited
        self._lock = threading.Lock()

    def attach(self, client: Any) -> FakeDynamoDB:
        client.meta.events.register("before-send.dynamodb", self._answer)
        return self

    @contextmanager
    def serving(self, session: Any) -> Iterator[FakeDynamoDB]:
        """Answer every DynamoDB client ``session`` (a boto3 Session) creates
        meanwhile: the clients propsync's own factories make included."""
        with answering(session, "dynamodb", self._answer, f"fake-dynamodb-{id(self)}"):
            yield self

    def _answer(self, request: Any, **_kwargs: Any) -> AWSResponse:
        operation = request.headers["X-Amz-Target"]
        operation = (operation.decode() if isinstance(operation, bytes) else operation).split(".")[
            -1
        ]
        if self.round_trip:
            time.sleep(self.round_trip)  # the network; releases the GIL like real I/O
        if self.capacity is not None and operation in WRITE_OPERATIONS and not self.capacity.take():
            with self._lock:
                self.requests["throttled"] += 1
            status, payload = 400, THROTTLED
        elif operation == "UpdateItem" and not self.store_updates:
            with self._lock:
                self.requests[operation] += 1
            status, payload = 200, b"{}"
        else:
            body = json.loads(request.body)
            with self._lock:
                self.requests[operation] += 1
                status, answer = getattr(self, f"_{operation}")(body)
            payload = json.dumps(answer).encode()
        return AWSResponse(
            request.url, status, {"Content-Type": "application/x-amz-json-1.0"}, RawBody(payload)
        )

    def _GetItem(self, body: dict) -> tuple[int, dict]:
        item = self.items.get(body["Key"]["pk"]["S"])
        return 200, ({"Item": item} if item else {})

    def _BatchGetItem(self, body: dict) -> tuple[int, dict]:
        responses = {}
        for table, request in body["RequestItems"].items():
            found = [
                self.items[k["pk"]["S"]] for k in request["Keys"] if k["pk"]["S"] in self.items
            ]
            responses[table] = found
        return 200, {"Responses": responses, "UnprocessedKeys": {}}

    def _PutItem(self, body: dict) -> tuple[int, dict]:
        key = body["Item"]["pk"]["S"]
        if "attribute_not_exists(pk)" in body.get("ConditionExpression", "") and key in self.items:
            error = {
                "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                "message": "The conditional request failed",
                "Item": self.items[key],
            }
            return 400, error
        self.items[key] = body["Item"]
        return 200, {}

    def _UpdateItem(self, body: dict) -> tuple[int, dict]:
        key = body["Key"]["pk"]["S"]
        item = self.items.setdefault(key, {"pk": {"S": key}})
        names = body.get("ExpressionAttributeNames", {})
        values = body.get("ExpressionAttributeValues", {})
        sections = re.split(r"\b(SET|ADD|DELETE)\b", body["UpdateExpression"])
        for clause, action in zip(sections[1::2], sections[2::2], strict=True):
            if clause == "SET":
                for target, value in re.findall(
                    r"(#?\w+)\s*=\s*(if_not_exists\([^)]*\)|:\w+)", action
                ):
                    name = names.get(target, target)
                    if value.startswith("if_not_exists"):
                        if name not in item:
                            item[name] = values[value.split(",")[1].strip(" )")]
                    else:
                        item[name] = values[value]
            elif clause == "ADD":
                for target, value in re.findall(r"(#?\w+)\s+(:\w+)", action):
                    name = names.get(target, target)
                    if "SS" in values[value]:
                        merged = set(item.get(name, {}).get("SS", [])) | set(values[value]["SS"])
                        item[name] = {"SS": sorted(merged)}
        return 200, ({"Attributes": item} if body.get("ReturnValues") == "ALL_NEW" else {})


@contextmanager
def answering(session: Any, service: str, answer: Any, unique_id: str) -> Iterator[None]:
    """``answer`` answers every request of ``service`` that the clients of
    ``session`` (a boto3 Session) send meanwhile, before it leaves."""
    session.events.register(f"before-send.{service}", answer, unique_id=unique_id)
    try:
        yield
    finally:
        session.events.unregister(f"before-send.{service}", unique_id=unique_id)
