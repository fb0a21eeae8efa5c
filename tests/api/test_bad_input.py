"""Bad input: a clear 4xx (or, inside a batch, that command's own error),
never a 5xx, and never a change to stored data. In the queued mode a bad
command gets the synchronous mode's own answer, at once: it is never queued."""

import json

import pytest

from propsync import http_json, tracking
from propsync.id_type_cache import id_types_of
from propsync.models import parse_batch
from propsync.store.access import access_store_from_environment
from propsync.store.customers import store_from_environment
from propsync_local import apigw
from tests.support.tracking_calls import TrackingCalls

NOW_MS = 1_570_001_049_000
IDS = {"registered": "victim"}


@pytest.fixture
def snapshot(api, dynamodb_client, table_name):
    """The table's full content, to prove a refusal changed nothing."""
    api.track(IDS, {"first_name": "Original", "tier": "gold"}, 1570001049)

    def take():
        items = dynamodb_client.scan(TableName=table_name, ConsistentRead=True)["Items"]
        return sorted(json.dumps(item, sort_keys=True) for item in items)

    return take


@pytest.fixture
def arrivals(monkeypatch):
    """The arrival of each request sent (its requestTimeEpoch, in seconds), in
    order: what the routes measure "too far ahead" from."""
    seen = []
    build = apigw.rest_event

    def recorded(*args, **kwargs):
        event = build(*args, **kwargs)
        seen.append(event["requestContext"]["requestTimeEpoch"] / 1000)
        return event

    monkeypatch.setattr(apigw, "rest_event", recorded)
    return seen


def synchronous_answers(api, arrived):
    """What the synchronous mode's own code answers a command of the batch
    route and of the single-command route, for a request that arrived at
    ``arrived``, the command read from JSON as the routes read it (a bad
    command is answered before any write): the queued mode must answer the
    same, at once."""
    store = store_from_environment()
    id_types = id_types_of(access_store_from_environment(), api.project)

    def in_batch(command):
        commands = parse_batch(http_json.parse_body(json.dumps({"commands": [command]})))
        [(_status, result)] = tracking.run_commands(
            store, api.project, commands, received_at=arrived, id_types=id_types
        )
        return result

    def single(data):
        payload = http_json.parse_body(json.dumps(data))
        return tracking.run_customers_command(
            store, api.project, payload, received_at=arrived, id_types=id_types
        )

    return in_batch, single


def customers_command(**data):
    return {"name": "customers", "data": {"customer_ids": IDS, **data}}


BATCH_BODIES = [
    # (body, status, error text)
    (b"", 400, "Invalid JSON"),
    (b"{not json", 400, "Invalid JSON"),
    (b"\xff\xfe", 400, "Invalid JSON"),
    (b'{"commands": [NaN]}', 400, "Invalid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "Invalid JSON"),
    (b"[]", 400, "must be a JSON object"),
    (b'"commands"', 400, "must be a JSON object"),
    (b"{}", 400, '"commands" is required'),
    (b'{"commands": null}', 400, '"commands" is required'),
    (b'{"commands": {}}', 400, '"commands" must be a list'),
    (b'{"commands": "x"}', 400, '"commands" must be a list'),
    (b'{"commands": []}', 400, '"commands" is empty'),
    (json.dumps({"commands": [{"name": "system/time"}] * 51}).encode(), 400, "at most 50"),
    # numbers beyond what Decimal holds (exponent over 18 digits), anywhere in the body
    (b"1e9999999999999999999", 400, "out of range"),
    (b'{"commands": [], "x": -1E+99999999999999999999}', 400, "out of range"),
    (
        b'{"commands": [{"name": "customers", "data": {"customer_ids": {"registered": "victim"},'
        b' "properties": {"tier": [1e9999999999999999999]}}}]}',
        400,
        "out of range",
    ),
    (
        b'{"commands": [{"name": "customers", "data": {"customer_ids": {"registered": "victim"},'
        b' "update_timestamp": 1e-9999999999999999999}}]}',
        400,
        "out of range",
    ),
    (b'{"commands": [{"name": "system/time", "command_id": 5e99999999999999999999}]}', 400, "out"),
]


@pytest.mark.parametrize(("body", "status", "message"), BATCH_BODIES)
def test_malformed_batches_are_refused_whole(api, snapshot, body, status, message):
    before = snapshot()
    response = api.batch(body=body)
    assert response.status == status
    payload = response.json()
    assert payload["success"] is False
    assert message in (payload.get("error") or payload["errors"][0])
    assert snapshot() == before


def test_a_request_over_6_mb_is_413(api, snapshot):
    before = snapshot()
    command = customers_command(properties={f"p{i}": "x" * 16000 for i in range(40)})
    response = api.batch(body=json.dumps({"commands": [command] * 10}))
    assert response.status == 413
    assert "6 MB" in response.json()["error"]
    assert snapshot() == before


BAD_COMMANDS = [
    # (command, error text)
    ("customers", "a command must be an object"),
    (None, "a command must be an object"),
    ({"name": "customers/delete", "data": {}}, "unknown command name 'customers/delete'"),
    ({"data": {}}, "unknown command name None"),
    (
        {"name": "customers", "command_id": 5, "data": {"customer_ids": IDS}},
        "command_id must be a string",
    ),
    ({"name": "customers"}, '"data" is required'),
    ({"name": "customers", "data": []}, "expected a JSON object"),
    ({"name": "customers", "data": {"properties": {"a": 1}}}, "customer_ids is required"),
    (customers_command(customer_ids={}), "At least one id should be specified."),
    (customers_command(customer_ids=[]), "customer_ids must be an object, got a list"),
    (customers_command(customer_ids="victim"), "customer_ids must be an object, got a string"),
    (customers_command(customer_ids={"registered": 5}), "must be a string, got int"),
    (customers_command(customer_ids={"registered": None}), "must be a string"),
    (customers_command(customer_ids={"registered": ""}), "must not be empty"),
    (customers_command(properties=[1]), "properties must be an object, got a list"),
    (customers_command(properties="x"), "properties must be an object, got a string"),
    (customers_command(properties={"tier": "x" * 16400}), "at most 16384 bytes"),
    (customers_command(properties={"": 1}), "must not be empty"),
    (customers_command(properties={"x" * 257: 1}), "at most 256 are allowed"),
    (customers_command(properties={"bad\nname": 1}), "control character"),
    (customers_command(properties={"tier": "silver"}, update_timestamp="soon"), "is not a number"),
    (customers_command(properties={"tier": "silver"}, update_timestamp=True), "boolean"),
    (customers_command(properties={"tier": "silver"}, update_timestamp=[1]), "got list"),
    (customers_command(properties={"tier": "silver"}, update_timestamp=-1), "negative"),
    (customers_command(properties={"tier": "silver"}, update_timestamp=4e9), "in the future"),
    (customers_command(properties={"tier": "silver"}, update_timestamp=NOW_MS), "milliseconds"),
    (
        customers_command(properties={f"p{i}": "x" * 16000 for i in range(52)}),
        "at most 819200 bytes",
    ),
    # unpaired UTF-16 surrogates (json.dumps writes them as "\\ud800" escapes)
    (customers_command(properties={"\ud800": 1}), "not valid unicode"),
    (customers_command(properties={"ti\udc00er": 1}), "not valid unicode"),
    (customers_command(properties={"tier": "\ud800"}), "lone UTF-16 surrogate"),
    (customers_command(properties={"tier": {"\udfff": 1}}), "lone UTF-16 surrogate"),
    (customers_command(properties={"tier": ["ok", ["\ud83d"]]}), "lone UTF-16 surrogate"),
    (customers_command(customer_ids={"registered": "vic\ud800tim"}), "not valid unicode"),
    (customers_command(customer_ids={"\ud800": "victim"}), "is not allowed"),
    (customers_command(properties={"tier": "silver"}, update_timestamp="\ud800"), "not a number"),
    # timestamps too large for a float, and echoes that stay short
    (customers_command(properties={"tier": "silver"}, update_timestamp=10**400), "too large"),
    (customers_command(properties={"tier": "silver"}, update_timestamp=-(10**400)), "negative"),
    (customers_command(properties={"tier": "silver"}, update_timestamp="9" * 400), "too large"),
    (customers_command(properties={"tier": "silver"}, update_timestamp="1e400"), "too large"),
    (customers_command(properties={"tier": "silver"}, update_timestamp="x" * 100_000), "..."),
    # positive but below the smallest number DynamoDB stores (1E-130)
    (customers_command(properties={"tier": "silver"}, update_timestamp=1e-200), "too small"),
    (customers_command(properties={"tier": "silver"}, update_timestamp=5e-324), "too small"),
    (customers_command(properties={"tier": "silver"}, update_timestamp="1e-131"), "too small"),
    (customers_command(customer_ids={"\x85" * 100_000: "victim"}), "is not allowed"),
    (customers_command(properties={"\x00" * 100_000: 1}), "at most 256 are allowed"),
]

# Bad commands whose envelope (name, command_id) is wrong: the command fails alone.
BAD_ENVELOPES = [
    (1.5, "a command must be an object"),  # a Decimal, which has attributes
    ({"name": "customers", "command_id": 5}, "command_id must be a string"),
    ({"name": "\ud800", "data": {}}, "unknown command name '\\ud800'"),
    ({"name": ["\x85" * 100_000], "data": {}}, "unknown command name ["),
    ({"name": "system/time", "command_id": "\ud800"}, "command_id must be valid unicode"),
    (
        {"name": "customers", "command_id": "a\udc00", "data": {"customer_ids": IDS}},
        "command_id must be valid unicode",
    ),
]

# An answer echoes at most this much of what it refuses (bodies are up to 6 MB,
# answers must stay under Lambda's 6 MB response limit).
MAX_ECHO_CHARS = 300


@pytest.mark.parametrize(("command", "message"), BAD_COMMANDS + BAD_ENVELOPES)
def test_a_bad_command_fails_alone_and_changes_nothing(api, snapshot, arrivals, command, message):
    before = snapshot()
    calls = TrackingCalls(api.queued)
    response = api.batch([{"name": "system/time"}, command, {"name": "system/time"}])
    assert response.status == 200
    first, bad, last = response.json()["results"]
    assert first["success"] is True
    assert last["success"] is True
    assert bad["success"] is False
    assert "command_id" not in bad or isinstance(bad["command_id"], str)
    assert any(message in error for error in bad["errors"]), bad
    assert all(len(error) <= MAX_ECHO_CHARS for error in bad["errors"]), bad
    in_batch, _single = synchronous_answers(api, arrivals[-1])
    assert bad == in_batch(command)  # in the queued mode: its promise
    assert calls.queue_requests == []
    assert snapshot() == before


SINGLE_ROUTE = [command["data"] for command, _ in BAD_COMMANDS[7:] if isinstance(command, dict)]


@pytest.mark.parametrize("data", SINGLE_ROUTE)
def test_the_single_customers_route_answers_400(api, snapshot, arrivals, data):
    before = snapshot()
    calls = TrackingCalls(api.queued)
    response = api.track_customer(data)
    assert response.status == 400
    assert response.json()["success"] is False
    _in_batch, single = synchronous_answers(api, arrivals[-1])
    assert (response.status, response.json()) == single(data)
    assert calls.queue_requests == []
    assert snapshot() == before


# Two problems where docs/API.md gives one sentence: the first in its order
# (the command's own fields, its size, the shape of its data, the id rules).
ONE_SENTENCE = [
    ({"customer_ids": {}, "properties": 1}, "properties must be an object, got a number"),
    (
        {"customer_ids": {"registered": 1}, "properties": []},
        "properties must be an object, got a list",
    ),
    ({"properties": {"big": "x" * 819_200}}, None),  # too large: its size first
]


def size_sentence(command):
    size = len(json.dumps(command, separators=(",", ":")))
    return f"command is {size} bytes; one update must be at most 819200 bytes (800 KB)"


@pytest.mark.parametrize(("data", "sentence"), ONE_SENTENCE)
def test_both_routes_answer_the_first_problem_in_its_documented_sentence(api, data, sentence):
    command = {"name": "customers", "command_id": "c", "data": data}
    calls = TrackingCalls(api.queued)
    single = api.track_customer(data)
    batch = api.batch([command])
    assert calls.queue_requests == []
    assert single.status == 400
    assert single.json() == {"success": False, "errors": [sentence or size_sentence(data)]}
    assert batch.json()["results"] == [
        {"success": False, "errors": [sentence or size_sentence(command)], "command_id": "c"}
    ]


def test_a_bad_command_id_is_named_alone(api):
    response = api.batch([{"name": "customers", "command_id": 5, "data": {}}])
    assert response.json()["results"] == [
        {"success": False, "errors": ["command_id must be a string"]}
    ]


PRIVATE_BODIES = [
    b"",
    b"{",
    b"[]",
    b'{"properties": 1}',
    b'{"properties": {"tier": NaN}}',
    b'{"properties": {"tier": 1e9999999999999999999}}',
    b'{"properties": {"\\ud800": 1}, "customer_ids": {"registered": "\\udbff"}}',
    b'{"properties": {"tier": "\\ud800"}, "customer_ids": {"\\ud800": "victim"}}',
    b'{"properties": {"tier": 1}, "customer_ids": {"registered": 1e99999999999999999999}}',
]


@pytest.mark.parametrize("body", PRIVATE_BODIES)
def test_bad_bodies_on_private_routes_are_400(api, snapshot, body):
    api.track(IDS, {}, None)
    customer = api.customer_id_of(IDS)
    before = snapshot()
    patch = api.request("PATCH", f"/api/customers/{customer}", body=body)
    export = api.request("POST", f"/data/v2/projects/{api.project}/customers/export-one", body=body)
    attributes = api.request(
        "POST", f"/data/v2/projects/{api.project}/customers/attributes", body=body
    )
    assert patch.status == 400
    assert export.status == 400
    assert attributes.status == 400
    assert snapshot() == before


def test_an_edit_too_large_for_one_customer_is_400_not_a_retry(api, snapshot):
    api.track(IDS, {}, None)
    customer = api.customer_id_of(IDS)
    before = snapshot()
    response = api.patch_customer(
        customer, {"properties": {f"p{i}": "x" * 16000 for i in range(30)}}
    )
    assert response.status == 400
    assert "400 KB" in response.json()["error"]
    assert snapshot() == before
