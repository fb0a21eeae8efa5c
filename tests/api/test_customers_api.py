"""The customers API through the authorizer and the real handler."""

import time

import pytest

from propsync.access import Permission
from propsync.store.conditional import customer_key
from tests.conftest import PROJECT
from tests.support.tracking_modes import accepted, assert_all_applied

OTHER_PROJECT = "22222222-2222-2222-2222-222222222222"


@pytest.fixture
def customer(api):
    result = api.track(
        {"registered": "mgalik", "cookie": "c1"},
        {"first_name": "Marian", "tier": "gold"},
        1570001049,
    )
    if not api.queued:
        return result["customer_id"]
    assert result == accepted()
    assert_all_applied(api)  # the worker wrote it: the tests read it back
    return api.customer_id_of({"registered": "mgalik"})


def test_plain_values_without_include_timestamps_or_with_0(api, customer):
    expected = {"properties": {"first_name": "Marian", "tier": "gold"}}
    assert api.get_customer(customer).json() == expected
    assert api.get_customer(customer, query={"include_timestamps": "0"}).json() == expected


def test_values_and_last_update_with_include_timestamps_1(
    api, customer, dynamodb_client, table_name
):
    dynamodb_client.update_item(  # a property from before synchronization
        TableName=table_name,
        Key={"pk": {"S": customer_key(PROJECT, customer)}},
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "p:last_name"},
        ExpressionAttributeValues={":v": {"M": {"v": {"S": '"Galik"'}}}},
    )
    response = api.get_customer(customer, query={"include_timestamps": "1"})
    assert response.status == 200
    assert response.json() == {
        "properties": {
            "first_name": {"value": "Marian", "last_update": 1570001049},
            "last_name": {"value": "Galik", "last_update": -1},
            "tier": {"value": "gold", "last_update": 1570001049},
        }
    }


@pytest.mark.parametrize("value", ["2", "true", "yes", "", "-1", "1.0", " 1", "01", "\u0661"])
def test_other_include_timestamps_values_are_refused(api, customer, value):
    response = api.get_customer(customer, query={"include_timestamps": value})
    assert response.status == 400
    assert "use 1" in response.json()["error"]


def _lookups(customer):
    """Every way the route finds the customer: its internal id and each id."""
    return [
        (customer, {}),
        ("mgalik", {"id_type": "registered"}),
        ("c1", {"id_type": "cookie"}),
    ]


@pytest.mark.parametrize("timestamps", [None, "0", "1"])
def test_include_ids_1_adds_the_ids_as_export_one_gives_them(api, customer, timestamps):
    """However the customer is found (by its internal id too, which export-one
    cannot take), `ids` is export-one's, and the properties are unchanged."""
    api.track({"registered": "mgalik", "cookie": "c2"}, {}, 1570001050)  # a second cookie
    if api.queued:
        assert_all_applied(api)
    exported = api.export_one({"registered": "mgalik"}).json()["ids"]
    assert exported == {"cookie": ["c1", "c2"], "registered": "mgalik"}
    timestamped = {} if timestamps is None else {"include_timestamps": timestamps}
    for path_id, query in _lookups(customer):
        without = api.get_customer(path_id, query={**query, **timestamped})
        response = api.get_customer(path_id, query={**query, **timestamped, "include_ids": "1"})
        assert response.status == 200, response.body
        assert response.json() == {**without.json(), "customer_id": customer, "ids": exported}
        for off in ("0", None):
            plain = {**query, **timestamped} | ({} if off is None else {"include_ids": off})
            assert api.get_customer(path_id, query=plain).json().keys() == {"properties"}


def test_include_ids_of_a_customer_merged_away_are_the_destinations(api):
    api.track({"cookie": "m1"}, {"a": 1}, 1570001049)
    api.track({"registered": "merged"}, {"b": 2}, 1570001049)
    if api.queued:
        assert_all_applied(api)
    before = [api.customer_id_of({"cookie": "m1"}), api.customer_id_of({"registered": "merged"})]
    api.track({"registered": "merged", "cookie": "m1"}, {}, 1570001050)  # merges the two
    if api.queued:
        assert_all_applied(api)
    exported = api.export_one({"registered": "merged"}).json()["ids"]
    assert exported == {"cookie": ["m1"], "registered": "merged"}
    for path_id, query in [("m1", {"id_type": "cookie"}), *((each, {}) for each in before)]:
        response = api.get_customer(path_id, query={**query, "include_ids": "1"})
        assert response.status == 200, response.body
        assert response.json()["ids"] == exported
        assert response.json()["customer_id"] == api.customer_id_of({"registered": "merged"})


@pytest.mark.parametrize("value", ["2", "true", "yes", "", "-1", "1.0", " 1", "01", "\u0661"])
def test_other_include_ids_values_are_refused(api, customer, value):
    response = api.get_customer(customer, query={"include_ids": value})
    assert response.status == 400
    error = response.json()["error"]
    assert error.startswith("include_ids=")
    assert "use 1" in error
    assert "0 / leave it out" in error


def test_reading_by_an_external_id(api, customer):
    for id_type, value in (("registered", "mgalik"), ("cookie", "c1")):
        response = api.get_customer(value, query={"id_type": id_type})
        assert response.json() == {"properties": {"first_name": "Marian", "tier": "gold"}}
    missing = api.get_customer("nobody", query={"id_type": "registered"})
    assert missing.status == 404


def test_tombstoned_properties_are_not_shown(api, customer):
    deleted = api.track({"registered": "mgalik"}, {"tier": None}, 1570001050)
    if not api.queued:
        assert deleted["applied"] == ["tier"]
    else:
        assert deleted == accepted()
    assert api.get_customer(customer).json() == {"properties": {"first_name": "Marian"}}


@pytest.mark.parametrize("customer_id", ["01JDQ6Z0Q9X6V1N0K3W9M5T2RB", "not-an-id", "a%3Ab"])
def test_unknown_customer_is_404(api, customer_id):
    response = api.get_customer(customer_id)
    assert response.status == 404
    assert response.json() == {"success": False, "error": "Customer does not exist"}


def test_a_path_segment_with_an_encoded_hash_is_not_found(api):
    assert api.get_customer("a%23b").status == 404


def test_patch_stamps_server_time_and_returns_the_customer(api, customer):
    before = time.time()
    response = api.patch_customer(customer, {"properties": {"tier": "platinum", "note": "vip"}})
    assert response.status == 200
    body = response.json()
    assert body["success"] is True
    assert sorted(body["applied"]) == ["note", "tier"]
    assert body["stale"] == []
    properties = body["properties"]
    assert properties["first_name"] == {"value": "Marian", "last_update": 1570001049}
    assert properties["tier"]["value"] == "platinum"
    assert before - 1 <= properties["tier"]["last_update"] <= time.time()
    # an older tracked value cannot undo the UI edit
    older = api.track({"registered": "mgalik"}, {"tier": "bronze"}, 1570001100)
    if not api.queued:
        assert older["stale"] == ["tier"]
    else:
        assert older == accepted()
        assert_all_applied(api)
    assert api.get_customer(customer).json()["properties"]["tier"] == "platinum"


def test_patch_of_an_unknown_customer_is_404_and_creates_nothing(api):
    response = api.patch_customer("01JDQ6Z0Q9X6V1N0K3W9M5T2RB", {"properties": {"a": 1}})
    assert response.status == 404
    assert api.get_customer("01JDQ6Z0Q9X6V1N0K3W9M5T2RB").status == 404


BAD_PATCH_BODIES = [
    ({}, "properties is required"),
    ({"properties": [1]}, "properties must be an object, got a list"),
    ({"properties": {"": 1}}, "must not be empty"),
    ({"properties": {"a": "x" * 17000}}, "at most 16384 bytes"),
]


@pytest.mark.parametrize(("payload", "message"), BAD_PATCH_BODIES)
def test_bad_patch_bodies_are_refused(api, customer, payload, message):
    response = api.patch_customer(customer, payload)
    assert response.status == 400
    assert message in response.json()["error"]
    assert api.get_customer(customer).json()["properties"] == {
        "first_name": "Marian",
        "tier": "gold",
    }


@pytest.mark.parametrize(("payload", "message"), BAD_PATCH_BODIES)
@pytest.mark.parametrize(
    ("path_id", "query"),
    [
        ("01JDQ6Z0Q9X6V1N0K3W9M5T2RB", {}),  # a ULID no customer has
        ("not-a-ulid", {}),
        ("nobody", {"id_type": "registered"}),
        ("mgalik", {"id_type": "bad type!"}),
        ("x" * 1025, {"id_type": "registered"}),
    ],
)
def test_a_bad_patch_body_is_a_400_whatever_the_path_names(
    api, customer, path_id, query, payload, message
):
    """The body is checked before the path is resolved: a client learns what
    is wrong with its edit, and the same body never gets 400 on one unknown
    customer and 404 on another."""
    response = api.patch_customer(path_id, payload, query=query)
    assert response.status == 400, response.body
    assert message in response.json()["error"]
    assert api.get_customer("mgalik", query={"id_type": "registered"}).json() == {
        "properties": {"first_name": "Marian", "tier": "gold"}
    }


def test_export_one(api, customer):
    response = api.export_one({"registered": "mgalik"})
    assert response.status == 200
    assert response.json() == {
        "success": True,
        "ids": {"cookie": ["c1"], "registered": "mgalik"},
        "properties": {"first_name": "Marian", "tier": "gold"},
        "events": [],
    }
    assert api.export_one({"registered": "nobody"}).status == 404
    assert api.export_one({}).status == 400


def test_export_one_needs_the_keys_own_project(api, customer):
    api.access.create_project(OTHER_PROJECT, "other")
    response = api.export_one({"registered": "mgalik"}, project=OTHER_PROJECT)
    assert response.status == 403
    assert "No permission" in response.json()["error"]


def test_a_key_of_another_project_never_sees_or_changes_this_projects_customer(api, customer):
    api.access.create_project(OTHER_PROJECT, "other")
    other = api.new_key(OTHER_PROJECT, frozenset(p.value for p in Permission))

    assert api.get_customer(customer, authorization=other).status == 404
    assert (
        api.get_customer("mgalik", query={"id_type": "registered"}, authorization=other).status
        == 404
    )
    assert (
        api.patch_customer(customer, {"properties": {"tier": "x"}}, authorization=other).status
        == 404
    )
    assert (
        api.export_one({"registered": "mgalik"}, project=OTHER_PROJECT, authorization=other).status
        == 404
    )
    assert api.get_customer(customer).json()["properties"]["tier"] == "gold"


@pytest.mark.parametrize(
    ("permissions", "allowed"),
    [
        (frozenset({Permission.GET_CUSTOMER_PROPERTIES.value}), {"get", "export"}),
        (frozenset({Permission.SET_CUSTOMER_PROPERTIES.value}), {"patch"}),
        (frozenset(), set()),
    ],
)
def test_permissions_are_enforced_per_route(api, customer, permissions, allowed):
    key = api.new_key(PROJECT, permissions)
    statuses = {
        "get": api.get_customer(customer, authorization=key),
        "export": api.export_one({"registered": "mgalik"}, authorization=key),
        "patch": api.patch_customer(customer, {"properties": {"tier": "x"}}, authorization=key),
    }
    for route, response in statuses.items():
        if route in allowed:
            assert response.status == 200, route
        else:
            assert response.status == 403, route
            assert response.json()["error"].startswith("No permission to ")


SET_ONLY = frozenset({Permission.SET_CUSTOMER_PROPERTIES.value})


@pytest.mark.parametrize(
    "payload",
    [
        {"properties": {}},
        {"properties": {"tier": "platinum"}},
        {"properties": {"tier": None, "note": {"nested": ["x"]}}},
    ],
)
def test_the_answer_of_an_edit_shows_no_values_to_a_set_only_key(api, customer, payload):
    key = api.new_key(PROJECT, SET_ONLY)
    response = api.patch_customer(customer, payload, authorization=key)
    assert response.status == 200
    body = response.json()
    assert set(body) == {"success", "customer_id", "applied", "stale"}
    assert sorted(body["applied"]) == sorted(payload["properties"])
    for stored in ("Marian", "gold", "platinum", "nested"):
        assert stored not in response.body


def test_the_answer_of_an_edit_shows_the_customer_to_a_key_that_may_read_it(api, customer):
    response = api.patch_customer(customer, {"properties": {}})
    assert response.json()["properties"]["first_name"] == {
        "value": "Marian",
        "last_update": 1570001049,
    }


def test_patch_resolves_an_external_id_as_get_does(api, customer):
    for id_type, value in (("registered", "mgalik"), ("cookie", "c1")):
        response = api.patch_customer(
            value, {"properties": {"note": id_type}}, query={"id_type": id_type}
        )
        assert response.status == 200, response.body
        assert response.json()["customer_id"] == customer
        assert api.get_customer(customer).json()["properties"]["note"] == id_type


@pytest.mark.parametrize(
    ("path_id", "id_type"),
    [
        ("mgalik", "registered"),
        ("c1", "cookie"),
        ("nobody", "registered"),
        ("mgalik", "cookie"),
        ("mgalik", "bad type!"),
        ("mgalik", ""),
        ("x" * 1025, "registered"),
        ("01JDQ6Z0Q9X6V1N0K3W9M5T2RB", "registered"),
        ("a%01b", "registered"),
    ],
)
def test_get_and_patch_find_the_same_customer_for_any_id(api, customer, path_id, id_type):
    """One resolver for both routes: the same status, the same error, the same customer."""
    read = api.get_customer(path_id, query={"id_type": id_type})
    edit = api.patch_customer(path_id, {"properties": {}}, query={"id_type": id_type})
    assert edit.status == read.status, (read.body, edit.body)
    if read.status == 200:
        assert (
            edit.json()["properties"]
            == api.get_customer(customer, query={"include_timestamps": "1"}).json()["properties"]
        )
    else:
        assert edit.json() == read.json()
