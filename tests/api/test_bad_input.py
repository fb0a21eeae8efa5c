"""Bad input: a clear 4xx (or, inside a batch, that command's own error),
never a 5xx, and never a change to stored data."""

import json

import pytest

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
    (b'{"commands": {}}', 400, '"commands" must be a list'),
    (b'{"commands": "x"}', 400, '"commands" must be a list'),
    (b'{"commands": []}', 400, '"commands" is empty'),
    (json.dumps({"commands": [{"name": "system/time"}] * 51}).encode(), 400, "at most 50"),
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
]


@pytest.mark.parametrize(("command", "message"), BAD_COMMANDS)
def test_a_bad_command_fails_alone_and_changes_nothing(api, snapshot, command, message):
    before = snapshot()
    response = api.batch([{"name": "system/time"}, command, {"name": "system/time"}])
    assert response.status == 200
    first, bad, last = response.json()["results"]
    assert first["success"] is True
    assert last["success"] is True
    assert bad["success"] is False
    assert any(message in error for error in bad["errors"]), bad
    assert snapshot() == before


SINGLE_ROUTE = [command["data"] for command, _ in BAD_COMMANDS[7:] if isinstance(command, dict)]


@pytest.mark.parametrize("data", SINGLE_ROUTE)
def test_the_single_customers_route_answers_400(api, snapshot, data):
    before = snapshot()
    response = api.track_customer(data)
    assert response.status == 400
    assert response.json()["success"] is False
    assert snapshot() == before


PRIVATE_BODIES = [b"", b"{", b"[]", b'{"properties": 1}', b'{"properties": {"tier": NaN}}']


@pytest.mark.parametrize("body", PRIVATE_BODIES)
def test_bad_bodies_on_private_routes_are_400(api, snapshot, body):
    customer = api.track(IDS, {}, None)["customer_id"]
    before = snapshot()
    patch = api.request("PATCH", f"/api/customers/{customer}", body=body)
    export = api.request("POST", f"/data/v2/projects/{api.project}/customers/export-one", body=body)
    assert patch.status == 400
    assert export.status == 400
    assert snapshot() == before
