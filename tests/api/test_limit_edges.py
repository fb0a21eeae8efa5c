"""The accepted edge of each request limit, beside one past it, through the
real handlers: the 6 MB body, the 800 KB command, and the deepest value a
customer can hold, sent and read back."""

import json

from propsync.limits import (
    MAX_BATCH_COMMANDS,
    MAX_COMMAND_BYTES,
    MAX_REQUEST_BYTES,
    MAX_VALUE_NESTING,
)

SMALL_BATCH = json.dumps({"commands": [{"name": "system/time"}]})


def test_a_body_of_exactly_6_mb_is_accepted_and_one_byte_more_is_not(api):
    padded = SMALL_BATCH + " " * (MAX_REQUEST_BYTES - len(SMALL_BATCH))  # JSON allows the spaces
    assert len(padded.encode()) == MAX_REQUEST_BYTES
    accepted = api.batch(body=padded)
    assert accepted.status == 200
    assert accepted.json()["results"][0]["success"]

    refused = api.batch(body=padded + " ")
    assert refused.status == 413
    assert f"{MAX_REQUEST_BYTES + 1} bytes" in refused.json()["error"]


def command_of_size(size: int) -> dict:
    """A customers command of exactly ``size`` bytes of compact JSON (its
    command_id, which the answer echoes, takes up the room)."""
    command = {
        "name": "customers",
        "command_id": "",
        "data": {"customer_ids": {"registered": "big"}, "properties": {"tier": "gold"}},
    }
    overhead = len(json.dumps(command, separators=(",", ":")).encode())
    command["command_id"] = "x" * (size - overhead)
    return command


def test_a_command_of_exactly_800_kb_is_accepted_and_one_byte_more_is_not(api):
    response = api.batch(
        [command_of_size(MAX_COMMAND_BYTES), command_of_size(MAX_COMMAND_BYTES + 1)]
    )
    assert response.status == 200
    accepted, refused = response.json()["results"]
    assert accepted["success"], accepted
    assert accepted["applied"] == ["tier"]
    assert not refused["success"]
    assert refused["errors"] == [
        f"command is {MAX_COMMAND_BYTES + 1} bytes; one update must be at most "
        f"{MAX_COMMAND_BYTES} bytes (800 KB)"
    ]


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
    assert result["applied"] == ["deep", "ok"], result

    plain = api.get_customer(result["customer_id"])
    assert plain.status == 200
    assert plain.json()["properties"]["deep"] == deepest
    timed = api.get_customer(result["customer_id"], query={"include_timestamps": "1"})
    assert timed.json()["properties"]["deep"]["value"] == deepest
    exported = api.export_one({"registered": "deep"})
    assert exported.status == 200
    assert exported.json()["properties"]["deep"] == deepest

    too_deep = api.track({"registered": "deep"}, {"deeper": [deepest], "ok": False})
    assert not too_deep["success"]
    assert "nested more than 64 levels" in too_deep["errors"][0]
