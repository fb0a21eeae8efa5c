"""The accepted edge of each request limit, beside one past it, through the
real handlers: the 6 MB body, the 800 KB command, and the deepest value a
customer can hold, sent and read back. In the queued mode an accepted
command is answered ``{"success": true}`` and its worker stores it: read back
in both modes."""

import json

from propsync.limits import (
    MAX_BATCH_COMMANDS,
    MAX_COMMAND_BYTES,
    MAX_REQUEST_BYTES,
    MAX_VALUE_NESTING,
)
from propsync_local import apigw
from tests.conftest import PROJECT
from tests.support.tracking_modes import accepted

SMALL_BATCH = json.dumps({"commands": [{"name": "system/time"}]})


def batch_event_bytes(body: str) -> int:
    """Bytes of the Lambda event API Gateway makes of a batch with ``body``,
    as the api fixture sends it (its headers)."""
    event = apigw.rest_event(
        apigw.route("TrackingFunction", "Batch"),
        path_parameters={"project_token": PROJECT},
        headers={"Content-Type": "application/json"},
        body=body,
    )
    return apigw.lambda_payload_bytes(event)


def test_the_largest_body_lambda_takes_is_accepted_and_one_byte_more_is_not(api):
    """Lambda takes an event of at most 6 MB, the body inside it with the
    request's headers and context: a body that makes exactly that event is
    the largest accepted; a byte more is refused by API Gateway with its 413
    before the function runs (the function's own 413, for a body over 6 MB,
    is for what calls it directly: tests/unit)."""
    room = apigw.LAMBDA_PAYLOAD_LIMIT - batch_event_bytes(SMALL_BATCH)
    padded = SMALL_BATCH + " " * room  # JSON allows the spaces
    assert batch_event_bytes(padded) == apigw.LAMBDA_PAYLOAD_LIMIT
    assert len(padded.encode()) < MAX_REQUEST_BYTES  # the event's own bytes take the rest
    edge = api.batch(body=padded)
    assert edge.status == 200
    assert edge.json()["results"][0]["success"]

    refused = api.batch(body=padded + " ")
    assert refused.status == 413
    assert refused.json() == {"success": False, "error": "Request too large: at most 6 MB"}


def json_bytes(value: object) -> int:
    """Bytes of ``value`` as compact JSON in UTF-8: what the size limit counts."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def command_of_size(size: int, padding: str = "x", registered: str = "big") -> dict:
    """A customers command of exactly ``size`` bytes of compact JSON (its
    command_id, which the answer echoes, takes up the room: ``padding`` as
    often as it fits, then "x" to the exact size)."""
    command = {
        "name": "customers",
        "command_id": "",
        "data": {"customer_ids": {"registered": registered}, "properties": {"tier": "gold"}},
    }
    room = size - json_bytes(command)
    width = json_bytes(padding) - 2  # without its quotes
    command["command_id"] = padding * (room // width) + "x" * (room % width)
    assert json_bytes(command) == size
    return command


def test_a_command_of_exactly_800_kb_is_accepted_and_one_byte_more_is_not(api):
    response = api.batch(
        [command_of_size(MAX_COMMAND_BYTES), command_of_size(MAX_COMMAND_BYTES + 1)]
    )
    assert response.status == 200
    edge, refused = response.json()["results"]
    if api.queued:
        assert edge == accepted(command_of_size(MAX_COMMAND_BYTES)["command_id"])
    else:
        assert edge["success"], edge
        assert edge["applied"] == ["tier"]
    assert not refused["success"]
    assert refused["errors"] == [
        f"command is {MAX_COMMAND_BYTES + 1} bytes; one update must be at most "
        f"{MAX_COMMAND_BYTES} bytes (800 KB)"
    ]
    assert api.export_one({"registered": "big"}).json()["properties"] == {"tier": "gold"}


# A character of each UTF-8 width, a control character (counted as its
# 6-byte escape) and the two noncharacters SQS refuses raw (U+FFFE, U+FFFF:
# 3 bytes each, counted so, but queued as 6-byte escapes: such a command is
# over SQS's 1 MiB and travels compressed).
PADDINGS = ["x", "\x01", "\u00e9", "\u20ac", "\U0001f600", "\ufffe", "\uffff"]


def test_a_command_of_exactly_800_kb_is_accepted_whatever_its_characters(api):
    for number, padding in enumerate(PADDINGS):
        command = command_of_size(MAX_COMMAND_BYTES, padding, registered=f"big-{number}")
        [result] = api.batch([command]).json()["results"]
        assert result["success"], (padding, result.get("errors"))
        if api.queued:
            assert result == accepted(command["command_id"]), padding
        else:
            assert result["applied"] == ["tier"], padding
            assert result["command_id"] == command["command_id"], padding
        stored = api.export_one({"registered": f"big-{number}"}).json()["properties"]
        assert stored == {"tier": "gold"}, padding
    if api.queued:
        assert api.queues.dead_letters() == []


def test_a_batch_of_50_commands_is_accepted_and_51_are_not(api):
    accepted = api.batch([{"name": "system/time"}] * MAX_BATCH_COMMANDS)
    assert accepted.status == 200
    assert len(accepted.json()["results"]) == MAX_BATCH_COMMANDS
    refused = api.batch([{"name": "system/time"}] * (MAX_BATCH_COMMANDS + 1))
    assert refused.status == 400
    payload = refused.json()
    assert "at most 50" in (payload.get("error") or payload["errors"][0])


def test_a_value_nested_64_levels_deep_is_stored_and_read_back_in_every_shape(api):
    deepest: object = 1
    for level in range(MAX_VALUE_NESTING):
        deepest = [deepest] if level % 2 else {"k": deepest}
    result = api.track({"registered": "deep"}, {"deep": deepest, "ok": True})
    customer = api.customer_id_of({"registered": "deep"})
    if api.queued:
        assert result == accepted()
    else:
        assert result["applied"] == ["deep", "ok"], result
        assert result["customer_id"] == customer

    plain = api.get_customer(customer)
    assert plain.status == 200
    assert plain.json()["properties"]["deep"] == deepest
    timed = api.get_customer(customer, query={"include_timestamps": "1"})
    assert timed.json()["properties"]["deep"]["value"] == deepest
    exported = api.export_one({"registered": "deep"})
    assert exported.status == 200
    assert exported.json()["properties"]["deep"] == deepest

    too_deep = api.track({"registered": "deep"}, {"deeper": [deepest], "ok": False})
    assert not too_deep["success"]
    assert "nested more than 64 levels" in too_deep["errors"][0]
    assert api.get_customer(customer).json()["properties"]["ok"] is True  # nothing of it stored
