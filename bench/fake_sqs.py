"""An in-process SQS fake at the HTTP layer, for benchmarks only.

Like bench/fake_dynamodb.py it answers botocore's requests from a
``before-send`` hook, so the SDK does all of its real work (serializing,
signing, parsing) and every request is counted as SQS would receive it. It
keeps each queue's messages in memory and implements what the queued
tracking mode uses: SendMessage, SendMessageBatch, ReceiveMessage (visibility
timeouts, and the system attributes the event source mapping passes on),
DeleteMessage and ChangeMessageVisibility. No round trip is simulated: it
stands for a local queue, polled in the same process.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse
from fake_dynamodb import RawBody, answering


@dataclass
class Message:
    id: str
    body: str
    sent: float  # this and the next two: time.time()
    first_received: float = 0.0
    deleted: float = 0.0
    visible_at: float = 0.0  # time.monotonic()
    receives: int = 0
    receipt: str = ""


class FakeSQS:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.messages_sent = 0
        self.bytes_sent = 0
        self.deleted: list[Message] = []  # in the order they were deleted
        self._queues: dict[str, dict[str, Message]] = {}  # url -> message id -> message
        self._ids = itertools.count()
        self._lock = threading.Lock()

    @contextmanager
    def serving(self, session: Any) -> Iterator[FakeSQS]:
        """Answer every SQS client ``session`` (a boto3 Session) creates
        meanwhile: the clients propsync's own factories make included."""
        with answering(session, "sqs", self._answer, f"fake-sqs-{id(self)}"):
            yield self

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.messages_sent = self.bytes_sent = 0
            self.deleted.clear()

    def depth(self, url: str) -> int:
        """Messages on the queue, visible or in flight."""
        with self._lock:
            return len(self._queues.get(url, {}))

    def _answer(self, request: Any, **_kwargs: Any) -> AWSResponse:
        target = request.headers["X-Amz-Target"]
        operation = (target.decode() if isinstance(target, bytes) else target).split(".")[-1]
        body = json.loads(request.body)
        with self._lock:
            self.requests[operation] += 1
            answer = getattr(self, f"_{operation}")(body)
        return AWSResponse(
            request.url,
            200,
            {"Content-Type": "application/x-amz-json-1.0"},
            RawBody(json.dumps(answer).encode()),
        )

    def _send(self, url: str, body: str) -> str:
        message_id = f"m{next(self._ids)}"
        queue = self._queues.setdefault(url, {})
        queue[message_id] = Message(message_id, body, time.time())
        self.messages_sent += 1
        self.bytes_sent += len(body.encode("utf-8"))
        return message_id

    def _SendMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"MessageId": self._send(body["QueueUrl"], body["MessageBody"])}

    def _SendMessageBatch(self, body: dict[str, Any]) -> dict[str, Any]:
        successful = [
            {"Id": entry["Id"], "MessageId": self._send(body["QueueUrl"], entry["MessageBody"])}
            for entry in body["Entries"]
        ]
        return {"Successful": successful, "Failed": []}

    def _ReceiveMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        now, now_epoch = time.monotonic(), time.time()
        found = []
        for message in self._queues.get(body["QueueUrl"], {}).values():
            if len(found) == body.get("MaxNumberOfMessages", 1):
                break
            if message.visible_at > now:
                continue
            message.visible_at = now + body.get("VisibilityTimeout", 30)
            message.receives += 1
            message.first_received = message.first_received or now_epoch
            message.receipt = f"{message.id}/{message.receives}"
            found.append(
                {
                    "MessageId": message.id,
                    "ReceiptHandle": message.receipt,
                    "Body": message.body,
                    "Attributes": {
                        "SentTimestamp": str(int(message.sent * 1000)),
                        "ApproximateReceiveCount": str(message.receives),
                        "ApproximateFirstReceiveTimestamp": str(int(message.first_received * 1000)),
                    },
                }
            )
        return {"Messages": found} if found else {}

    def _received(self, body: dict[str, Any]) -> Message | None:
        message_id = body["ReceiptHandle"].split("/")[0]
        message = self._queues.get(body["QueueUrl"], {}).get(message_id)
        return message if message is not None and message.receipt == body["ReceiptHandle"] else None

    def _DeleteMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        message = self._received(body)
        if message is not None:
            del self._queues[body["QueueUrl"]][message.id]
            message.deleted = time.time()
            self.deleted.append(message)
        return {}

    def _ChangeMessageVisibility(self, body: dict[str, Any]) -> dict[str, Any]:
        message = self._received(body)
        if message is not None:
            message.visible_at = time.monotonic() + body["VisibilityTimeout"]
        return {}
