"""The queued routes' side of the queued tracking mode, without AWS: which
commands are queued, how they are packed into SQS messages and requests, and
what a command is answered when SQS refuses it."""

from __future__ import annotations

import base64
import itertools
import json
import random
import zlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync import tracking_queue
from propsync.http_json import json_size
from propsync.id_types import DEFAULT_ID_TYPES
from propsync.limits import MAX_COMMAND_BYTES
from propsync.tracking import RETRY_LATER
from propsync.tracking_queue import (
    COMPRESSED_KEY,
    MAX_MESSAGE_BYTES,
    CommandQueue,
    accept_commands,
    accept_customers_command,
    dead_letter_bodies,
    read_message,
    retry_delay,
)

PROJECT = "00000000-0000-0000-0000-000000000000"
ARRIVED = 1_700_000_000.25


class FakeSqs:
    """Records every request; the messages at ``fail_positions`` (0-based,
    in the order sent) fail, as after botocore's retries."""

    def __init__(self, fail_positions: frozenset[int] = frozenset(), broken: bool = False):
        self.requests: list[dict[str, Any]] = []
        self.fail_positions = fail_positions
        self.broken = broken

    def send_message(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.broken or len(self.requests) - 1 in self.fail_positions:
            raise ConnectionError("SQS unreachable")
        return {"MessageId": "m"}

    def bodies(self) -> list[str]:
        return [request["MessageBody"] for request in self.requests]

    def queued_commands(self) -> list[Any]:
        """Every command of every message SQS took, in the order sent."""
        return [
            command
            for position, body in enumerate(self.bodies())
            if not self.broken and position not in self.fail_positions
            for command in read_message(body).commands
        ]


def customers(registered: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": "customers",
        "data": {"customer_ids": {"registered": registered}, "properties": properties},
        **extra,
    }


def accept(sqs: FakeSqs, commands: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    return accept_commands(
        CommandQueue(sqs, "https://sqs/queue"),  # type: ignore[arg-type]
        PROJECT,
        commands,
        received_at=ARRIVED,
        request_id="request-1",
        id_types=DEFAULT_ID_TYPES,
        clock=lambda: 5.0,
    )


def test_a_batch_of_50_small_commands_is_one_message_and_one_request():
    sqs = FakeSqs()
    commands = [customers(f"c{i}", {"tier": i}, command_id=f"id-{i}") for i in range(50)]

    outcomes = accept(sqs, commands)

    assert outcomes == [(200, {"success": True, "command_id": f"id-{i}"}) for i in range(50)]
    [body] = sqs.bodies()  # one request
    message = read_message(body)
    assert (message.project, message.received_at, message.request_id) == (
        PROJECT,
        ARRIVED,
        "request-1",
    )
    assert message.commands == commands  # as sent, in order


def test_commands_that_need_no_write_are_answered_and_not_queued():
    sqs = FakeSqs()
    outcomes = accept(
        sqs,
        [{"name": "system/time"}, {"name": "system/cookie"}, customers("a", {"x": 1})],
    )

    assert outcomes[0] == (200, {"success": True, "time": 5.0})
    assert outcomes[1][1]["success"]
    assert "cookie" in outcomes[1][1]
    assert outcomes[2] == (200, {"success": True})
    assert sqs.queued_commands() == [customers("a", {"x": 1})]


def test_a_bad_command_gets_the_synchronous_error_at_once_and_is_not_queued():
    sqs = FakeSqs()
    future = customers("a", {"x": 1})
    future["data"]["update_timestamp"] = ARRIVED + 10 * 3600  # too far ahead of the arrival
    too_long = customers("b", {"x": "v" * (16 * 1024 + 1)})  # a value over 16 KB
    outcomes = accept(sqs, [future, too_long, customers("c", {"x": 1})])

    assert outcomes[0][0] == 400
    assert "update_timestamp" in outcomes[0][1]["errors"][0]
    assert outcomes[1][0] == 400
    assert outcomes[1][1]["success"] is False
    assert outcomes[2] == (200, {"success": True})
    assert sqs.queued_commands() == [customers("c", {"x": 1})]


def test_nothing_is_sent_when_no_command_needs_a_write():
    sqs = FakeSqs()
    accept(sqs, [{"name": "system/time"}, {"name": "nope"}])
    assert sqs.requests == []


def test_fields_the_models_ignore_are_not_forwarded():
    sqs = FakeSqs()
    command = customers("a", {"x": 1}, junk="y" * 1000)
    command["data"]["also_ignored"] = [1, 2, 3]
    accept(sqs, [command])
    assert sqs.queued_commands() == [customers("a", {"x": 1})]


def test_numbers_reach_the_worker_digit_for_digit():
    sqs = FakeSqs()
    exact = Decimal("0.1000000000000000055511151231257827")
    big = 10**40 + 1
    accept(sqs, [customers("a", {"exact": exact, "big": big, "t": "1570001049.5"})])
    [command] = sqs.queued_commands()
    assert command["data"]["properties"] == {"exact": exact, "big": big, "t": "1570001049.5"}


def test_characters_sqs_refuses_are_escaped_and_read_back():
    """SQS takes #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF: a
    body with U+FFFE or U+FFFF (or a raw control character) is refused."""
    sqs = FakeSqs()
    value = "a\ufffeb\uffffc\x00\x01\x1f\u2028"
    accept(sqs, [customers("a", {"odd": value})])
    [body] = sqs.bodies()
    allowed = {0x9, 0xA, 0xD}
    assert all(
        ord(ch) in allowed
        or 0x20 <= ord(ch) <= 0xD7FF
        or 0xE000 <= ord(ch) <= 0xFFFD
        or ord(ch) >= 0x10000
        for ch in body
    )
    assert sqs.queued_commands()[0]["data"]["properties"]["odd"] == value


sizes = st.lists(st.integers(1, 15 * 1024), min_size=1, max_size=50)


@settings(max_examples=40, deadline=None)
@given(value_bytes=sizes, properties_per_command=st.integers(1, 50))
def test_any_batch_is_packed_into_as_few_messages_as_sqs_limits_allow(
    value_bytes, properties_per_command
):
    """Every accepted command in exactly one message, in order; every message
    within 1 MiB; a message ends only where the next command would not fit."""
    sqs = FakeSqs()
    commands = [
        customers(f"c{i}", {f"p{k}": "v" * size for k in range(properties_per_command)})
        for i, size in enumerate(value_bytes)
    ]
    commands = [c for c in commands if len(json.dumps(c)) <= 800 * 1024]  # the API's limit

    outcomes = accept(sqs, commands)

    assert all(outcome == (200, {"success": True}) for outcome in outcomes)
    assert sqs.queued_commands() == commands
    sizes_sent = [len(body.encode()) for body in sqs.bodies()]
    assert all(size <= MAX_MESSAGE_BYTES for size in sizes_sent)
    # two consecutive messages would not have fitted in one
    assert all(a + b > MAX_MESSAGE_BYTES for a, b in itertools.pairwise(sizes_sent))


def test_a_command_over_1_mib_once_escaped_travels_compressed():
    """U+FFFF counts 3 bytes towards the 800 KB but SQS takes it only as a
    6-character escape: 750 KB of it is 1.5 MB of JSON. It goes alone in a
    message, compressed, and reads back exactly; the others go as usual."""
    sqs = FakeSqs()
    huge = customers("a", {f"p{k}": "\uffff" * 5_000 for k in range(50)})
    outcomes = accept(sqs, [huge, customers("b", {"x": 1})])

    assert outcomes == [(200, {"success": True}), (200, {"success": True})]
    assert all(len(body.encode()) <= MAX_MESSAGE_BYTES for body in sqs.bodies())
    assert sorted(sqs.queued_commands(), key=str) == sorted(
        [huge, customers("b", {"x": 1})], key=str
    )
    [compressed] = [body for body in sqs.bodies() if COMPRESSED_KEY in body]
    assert read_message(compressed).commands == [huge]


def test_the_least_compressible_command_that_needs_compressing_still_fits():
    """The worst case for compression is random printable ASCII: about 6.6
    bits a byte. Enough U+FFFF to push the JSON over 1 MiB, the rest of the
    800 KB random text: the compressed message still fits."""
    draw = random.Random(7)
    printable = [chr(c) for c in range(0x20, 0x7F)]
    properties = {f"n{k}": "\uffff" * 5_000 for k in range(20)}  # 300 KB, 600 KB as JSON
    for k in range(31):  # 31 x 16,000 bytes of noise
        properties[f"r{k}"] = "".join(draw.choice(printable) for _ in range(16_000))
    command = customers("a", properties)
    assert json_size(command) <= MAX_COMMAND_BYTES
    sqs = FakeSqs()

    assert accept(sqs, [command]) == [(200, {"success": True})]
    [body] = sqs.bodies()
    assert COMPRESSED_KEY in body
    assert len(body.encode()) <= MAX_MESSAGE_BYTES
    assert read_message(body).commands == [command]


def test_a_command_that_fits_no_message_even_compressed_is_refused_alone(monkeypatch):
    """Never expected with SQS's 1 MiB; the guard stays: a smaller queue."""
    monkeypatch.setattr(tracking_queue, "MAX_MESSAGE_BYTES", 2_000)
    sqs = FakeSqs()
    draw = random.Random(3)
    noise = "".join(draw.choice("abcdefghijklmnop0123456789") for _ in range(5_000))
    outcomes = accept(sqs, [customers("a", {"x": noise}), customers("b", {"x": 1})])

    status, result = outcomes[0]
    assert status == 400
    assert result["errors"][0].startswith("command is ")
    assert "compressed; the queue takes at most that" in result["errors"][0]
    assert outcomes[1] == (200, {"success": True})


@pytest.mark.parametrize(
    "packed",
    [
        "not base64!",
        base64.b64encode(b"not zlib").decode(),
        base64.b64encode(zlib.compress(b"[" + b"0," * 4_000_000 + b"0]")).decode(),
    ],
)
def test_compressed_commands_that_the_routes_did_not_write_are_refused(packed):
    body = json.dumps(
        {"format": 1, "project": "p", "received_at": 1, "request_id": "r", COMPRESSED_KEY: packed}
    )
    with pytest.raises(ValueError, match="not a tracking message"):
        read_message(body)


def test_a_message_sqs_fails_is_answered_retry_and_the_others_success():
    sqs = FakeSqs(fail_positions=frozenset({1}))
    # about 600 KB each: one message each
    commands = [customers(f"c{i}", {f"p{k}": "x" * 15_000 for k in range(40)}) for i in range(3)]
    outcomes = accept(sqs, commands)
    assert len(sqs.requests) == 3
    assert outcomes[0] == (200, {"success": True})
    assert outcomes[1] == (503, {"success": False, "errors": [RETRY_LATER]})
    assert outcomes[2] == (200, {"success": True})


def test_sqs_unreachable_answers_every_queued_command_retry():
    sqs = FakeSqs(broken=True)
    outcomes = accept(sqs, [customers("a", {"x": 1}), {"name": "system/time"}])
    assert outcomes[0] == (503, {"success": False, "errors": [RETRY_LATER]})
    assert outcomes[1][0] == 200


def test_the_single_route_checks_queues_and_answers_like_the_batch():
    sqs = FakeSqs()
    queue = CommandQueue(sqs, "https://sqs/queue")  # type: ignore[arg-type]

    def single(payload):
        return accept_customers_command(
            queue,
            PROJECT,
            payload,
            received_at=ARRIVED,
            request_id="r",
            id_types=DEFAULT_ID_TYPES,
        )

    assert single({"customer_ids": {"registered": "a"}, "properties": {"x": 1}}) == (
        200,
        {"success": True},
    )
    status, result = single({"customer_ids": {}, "properties": {"x": 1}})
    assert status == 400
    assert result["success"] is False
    assert sqs.queued_commands() == [customers("a", {"x": 1})]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"format": 2, "project": "p", "received_at": 1, "commands": []}',
        '{"format": 1, "project": "p", "received_at": true, "commands": []}',
        '{"format": 1, "project": "p", "received_at": "1", "commands": []}',
        '{"format": 1, "received_at": 1, "commands": []}',
        '{"format": 1, "project": "p", "received_at": 1, "commands": {}}',
    ],
)
def test_a_body_the_routes_did_not_write_is_refused(body):
    with pytest.raises(ValueError, match="tracking message"):
        read_message(body)


def test_the_retry_delay_doubles_up_to_its_cap_with_jitter():
    base, cap = tracking_queue.RETRY_BASE_SECONDS, tracking_queue.MAX_RETRY_SECONDS
    assert [retry_delay(n, draw=lambda: 1.0) for n in (1, 2, 3)] == [base, 2 * base, 4 * base]
    assert retry_delay(30, draw=lambda: 1.0) == cap
    assert retry_delay(1, draw=lambda: 0.0) == base / 2  # at least half of it
    assert retry_delay(0, draw=lambda: 1.0) == base  # a missing count reads as the first


def test_the_mode_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("PROPSYNC_TRACKING_WRITES", raising=False)
    assert tracking_queue.tracking_writes() == "sync"
    monkeypatch.setenv("PROPSYNC_TRACKING_WRITES", "queued")
    assert tracking_queue.tracking_writes() == "queued"
    monkeypatch.setenv("PROPSYNC_TRACKING_WRITES", "async")
    with pytest.raises(ValueError, match=r"use sync .* or queued"):
        tracking_queue.tracking_writes()


def test_dead_letters_are_one_message_per_command_each_with_its_error():
    batch = read_message(queued_body([customers("a", {"x": 1}), customers("b", {"x": 2})]))
    dead = [(command, (409, {"success": False, "errors": ["never"]})) for command in batch.commands]

    bodies = dead_letter_bodies(batch, dead)

    assert [json.loads(body)["commands"] for body in bodies] == [
        [customers("a", {"x": 1})],
        [customers("b", {"x": 2})],
    ]
    assert all(
        json.loads(body)["errors"] == [{"status": 409, "errors": ["never"]}] for body in bodies
    )
    assert all(read_message(body).request_id == "request-1" for body in bodies)  # redrivable


def test_a_dead_letter_of_a_command_that_filled_its_message_fits_without_its_error():
    # a command that fills its message to within a few bytes of 1 MiB: U+FFFF
    # is 3 bytes of the 800 KB, 6 in the message; values of 5,000 (15 KB)
    properties = {f"p{k}": "\uffff" * 5_000 for k in range(34)}
    room = MAX_MESSAGE_BYTES - len(queued_body([customers("a", {**properties, "z": ""})]).encode())
    command = customers("a", {**properties, "z": "\uffff" * (room // 6)})
    body = queued_body([command])
    assert MAX_MESSAGE_BYTES - 6 < len(body.encode()) <= MAX_MESSAGE_BYTES
    batch = read_message(body)

    [dead_letter] = dead_letter_bodies(batch, [(command, (400, {"errors": ["e" * 500]}))])

    assert len(dead_letter.encode()) <= MAX_MESSAGE_BYTES
    assert read_message(dead_letter).commands == [command]


def queued_body(commands: list[Any]) -> str:
    sqs = FakeSqs()
    accept(sqs, commands)
    [body] = sqs.bodies()
    return body


def test_a_dead_letter_of_a_command_that_travelled_compressed_is_compressed_too():
    """Such a command is over 1 MiB as JSON: rebuilt plain, SQS refuses it and
    the message would come back forever instead of reaching the DLQ."""
    command = customers("a", {f"p{k}": "\uffff" * 5_000 for k in range(50)})
    [body] = queued_bodies([command])
    batch = read_message(body)
    refused = (400, {"success": False, "errors": ["too large"]})

    [dead_letter] = dead_letter_bodies(batch, [(command, refused)])

    assert len(dead_letter.encode()) <= MAX_MESSAGE_BYTES
    assert COMPRESSED_KEY in dead_letter
    assert read_message(dead_letter).commands == [command]
    assert json.loads(dead_letter)["errors"] == [{"status": 400, "errors": ["too large"]}]


def queued_bodies(commands: list[Any]) -> list[str]:
    sqs = FakeSqs()
    accept(sqs, commands)
    return sqs.bodies()
