"""Hostile input, generated: arbitrary JSON, names, values, nesting and bytes
against the tracking and customers routes. Never a 5xx, never an unhandled
exception, and a refused request (4xx) never changes stored data."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PROJECT

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["", "registered", "customers", "1570001049", "x" * 300, "\x00", "\ud7ff"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)
names = st.one_of(st.text(max_size=300), st.sampled_from(["", " ", "a.b", "#p0", "\n", "x" * 257]))
command_data = st.fixed_dictionaries(
    {},
    optional={
        "customer_ids": st.one_of(
            json_values,
            st.dictionaries(
                st.sampled_from(["registered", "cookie", "a#b", ""]), json_values, max_size=3
            ),
        ),
        "properties": st.one_of(json_values, st.dictionaries(names, json_values, max_size=6)),
        "update_timestamp": st.one_of(json_values, st.floats(), st.integers(-(10**20), 10**20)),
    },
)
commands = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "name": st.one_of(
                st.sampled_from(["customers", "system/time", "system/cookie", "customers/events"]),
                json_values,
            )
        },
        optional={"data": st.one_of(command_data, json_values), "command_id": json_values},
    ),
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"commands": st.one_of(st.lists(commands, max_size=6), json_values)}).map(
        lambda v: json.dumps(v).encode()
    ),
    st.integers(1, 3000).map(lambda depth: ("[" * depth + "]" * depth).encode()),
    st.integers(60, 200).map(
        lambda depth: json.dumps(
            {
                "commands": [
                    {
                        "name": "customers",
                        "data": {
                            "customer_ids": {"registered": "deep"},
                            "properties": {"p": json.loads("[" * depth + "]" * depth)},
                        },
                    }
                ]
            }
        ).encode()
    ),
)


@pytest.fixture
def table_snapshot(dynamodb_client, table_name):
    def take():
        items = dynamodb_client.scan(TableName=table_name, ConsistentRead=True)["Items"]
        return sorted(json.dumps(item, sort_keys=True) for item in items)

    return take


@FUZZ
@given(body=bodies)
def test_tracking_batch_survives_anything(api, table_snapshot, body):
    before = table_snapshot()
    response = api.batch(body=body)
    assert response.status < 500, response.body
    payload = response.json()
    assert isinstance(payload["success"], bool)
    if response.status >= 400:
        assert table_snapshot() == before
    else:
        assert all(isinstance(r["success"], bool) for r in payload["results"])


@FUZZ
@given(data=st.one_of(command_data, json_values))
def test_single_customers_route_survives_anything(api, table_snapshot, data):
    before = table_snapshot()
    response = api.track_customer(data)
    assert response.status < 500, response.body
    if response.status >= 400:
        assert table_snapshot() == before


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=100), json_values.map(lambda v: json.dumps(v).encode())),
    path_id=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#%"),
        min_size=1,
        max_size=40,
    ),
    include=st.one_of(st.none(), st.text(max_size=5)),
    id_type=st.one_of(st.none(), st.text(max_size=10)),
)
def test_customers_routes_survive_anything(api, table_snapshot, body, path_id, include, id_type):
    customer = api.track({"registered": "fuzzed"}, {"a": 1}, 5)["customer_id"]
    before = table_snapshot()
    query = {
        k: v
        for k, v in {"include_timestamps": include, "id_type": id_type}.items()
        if v is not None
    }
    for response in (
        api.get_customer(path_id, query=query or None),
        api.request("PATCH", f"/api/customers/{customer}", body=body),
        api.request("POST", f"/data/v2/projects/{PROJECT}/customers/export-one", body=body),
    ):
        assert response.status < 500, response.body
        if response.status >= 400:
            assert table_snapshot() == before
