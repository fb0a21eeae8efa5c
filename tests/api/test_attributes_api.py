"""POST /data/v2/projects/{project_token}/customers/attributes through the
authorizer and the real handler: one result per requested attribute, in the
order asked; properties and ids answered, the attribute types propsync does
not have answered "not supported" in their place; the customer found as
export-one finds it (merges followed). Every answer is checked against
docs/openapi.json by the client (tests/support/api.py)."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync.access import Permission
from propsync.errors import shown
from propsync.id_type_cache import forget_id_types
from propsync.limits import MAX_ATTRIBUTES, MAX_REQUEST_BYTES
from propsync.store.conditional import customer_key
from tests.conftest import PROJECT
from tests.support.tracking_modes import accepted, assert_all_applied

OTHER_PROJECT = "22222222-2222-2222-2222-222222222222"
IDS = {"registered": "mgalik"}
PROPERTIES = {"first_name": "Marian", "email": "m@example.com", "tier": "gold"}
UPDATED = 1570001049
KNOWN_ID_TYPES = "known id types: cookie (soft), registered (hard)"
NOT_KEPT = "propsync keeps customer properties and ids only"
UNSUPPORTED = {
    "segmentation": f"segmentations are not supported: {NOT_KEPT}",
    "expression": f"expressions are not supported: {NOT_KEPT}",
    "aggregate": f"aggregates are not supported: {NOT_KEPT}",
    "prediction": f"predictions are not supported: {NOT_KEPT}",
    "consent": f"consents are not supported: {NOT_KEPT}",
}


def prop(name):
    return {"type": "property", "property": name}


def id_of(id_type):
    return {"type": "id", "id": id_type}


def unsupported(kind):
    if kind == "consent":
        return {"type": "consent", "category": "newsletter"}
    return {"type": kind, "id": f"{kind}-1"}


def value(v, **extra):
    return {"success": True, "value": v, **extra}


def failure(error):
    return {"success": False, "error": error}


def track(api, ids, properties, update_timestamp):
    result = api.track(ids, properties, update_timestamp)
    if api.queued:
        assert result == accepted()
        assert_all_applied(api)
    else:
        assert result["success"] is True, result
    return api.customer_id_of(ids)


@pytest.fixture
def customer(api):
    track(api, {**IDS, "cookie": "c1"}, PROPERTIES, UPDATED)
    return track(api, {**IDS, "cookie": "c2"}, {}, UPDATED + 1)


def results(response):
    assert response.status == 200, response.body
    body = response.json()
    assert body["success"] is True
    return body["results"]


def test_each_attribute_is_answered_in_the_order_asked(api, customer):
    exported_ids = api.export_one(IDS).json()["ids"]
    asked = [
        unsupported("segmentation"),
        prop("email"),
        id_of("cookie"),
        unsupported("consent"),
        prop("no_such_property"),
        unsupported("expression"),
        id_of("registered"),
        unsupported("aggregate"),
        prop("first_name"),
        unsupported("prediction"),
        prop("email"),  # asked twice, answered twice
    ]

    answered = results(api.attributes(IDS, asked))

    assert answered == [
        failure(UNSUPPORTED["segmentation"]),
        value("m@example.com"),
        value(exported_ids["cookie"]),
        failure(UNSUPPORTED["consent"]),
        value(None),
        failure(UNSUPPORTED["expression"]),
        value("mgalik"),
        failure(UNSUPPORTED["aggregate"]),
        value("Marian"),
        failure(UNSUPPORTED["prediction"]),
        value("m@example.com"),
    ]


def test_an_id_is_what_export_one_shows_for_it(api, customer):
    """A hard id type's one value; a soft id type's list of values (a
    customer may have many cookies), as export-one lists them."""
    exported_ids = api.export_one(IDS).json()["ids"]
    assert sorted(exported_ids["cookie"]) == ["c1", "c2"]

    answered = results(api.attributes({"cookie": "c2"}, [id_of("registered"), id_of("cookie")]))

    assert answered == [value("mgalik"), value(exported_ids["cookie"])]


def test_an_id_type_the_customer_has_no_value_of_is_null(api):
    api.access.add_id_type(api.project, "crm_id", hard=True)
    api.access.add_id_type(api.project, "device", hard=False)
    forget_id_types()  # a new container: the id types are known at once
    track(api, IDS, {"tier": "gold"}, UPDATED)

    answered = results(api.attributes(IDS, [id_of("crm_id"), id_of("device")]))

    assert answered == [value(None), value(None)]


def test_an_id_type_the_project_does_not_have_fails_alone(api, customer):
    answered = results(
        api.attributes(IDS, [id_of("registred"), prop("tier"), id_of("crm_id"), id_of("cookie")])
    )

    assert answered[0] == failure(
        "id type 'registred' is not known to this project; "
        f"{KNOWN_ID_TYPES}; an administrator adds id types with `propsync set-id-type`"
    )
    assert answered[1] == value("gold")
    assert answered[2]["success"] is False
    assert answered[2]["error"].startswith("id type 'crm_id' is not known to this project")
    assert answered[3]["success"] is True


def test_a_property_the_customer_does_not_have_or_deleted_is_null(api, customer):
    track(api, IDS, {"tier": None}, UPDATED + 2)  # null deletes it

    answered = results(api.attributes(IDS, [prop("tier"), prop("never_set"), prop("email")]))

    assert answered == [value(None), value(None), value("m@example.com")]


def test_values_come_back_exactly_as_stored(api):
    stored = {"n": 0.1000000000000000055511151231257827, "list": [1, {"a": None}], "t": True}
    track(api, IDS, stored, UPDATED)

    answered = results(api.attributes(IDS, [prop(name) for name in stored]))

    assert [result["value"] for result in answered] == list(stored.values())


def test_unsupported_types_answer_not_supported_and_the_rest_still_answers(api, customer):
    kinds = list(UNSUPPORTED)
    asked = [unsupported(kind) for kind in kinds] + [prop("tier")]

    answered = results(api.attributes(IDS, asked))

    assert answered == [failure(UNSUPPORTED[kind]) for kind in kinds] + [value("gold")]


# ------------------------------------------------------------- timestamps


def test_include_timestamps_adds_last_update_as_the_get_route_words_it(
    api, customer, dynamodb_client, table_name
):
    dynamodb_client.update_item(  # a property from before synchronization
        TableName=table_name,
        Key={"pk": {"S": customer_key(PROJECT, customer)}},
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "p:last_name"},
        ExpressionAttributeValues={":v": {"M": {"v": {"S": '"Galik"'}}}},
    )
    track(api, IDS, {"score": 7}, 1570002000.25)
    asked = [prop("first_name"), prop("last_name"), prop("score"), prop("none"), id_of("cookie")]

    answered = results(api.attributes(IDS, asked, query={"include_timestamps": "1"}))

    got = api.get_customer(customer, query={"include_timestamps": "1"}).json()["properties"]
    assert answered[:3] == [
        {"success": True, **got["first_name"]},
        {"success": True, **got["last_name"]},
        {"success": True, **got["score"]},
    ]
    assert answered[:3] == [
        value("Marian", last_update=UPDATED),
        value("Galik", last_update=-1),
        value(7, last_update=1570002000.25),
    ]
    # no value, no update time to show; ids have none
    assert answered[3] == value(None)
    assert answered[4] == value(api.export_one(IDS).json()["ids"]["cookie"])


def test_without_include_timestamps_or_with_0_values_only(api, customer):
    for query in (None, {"include_timestamps": "0"}):
        answered = results(api.attributes(IDS, [prop("first_name")], query=query))
        assert answered == [value("Marian")]


@pytest.mark.parametrize("include", ["2", "true", "", "01", " 1"])
def test_other_include_timestamps_values_are_refused_as_by_the_get_route(api, customer, include):
    response = api.attributes(IDS, [prop("first_name")], query={"include_timestamps": include})
    get = api.get_customer(customer, query={"include_timestamps": include})
    assert response.status == get.status == 400
    assert response.json() == get.json()
    assert "use 1 (values with last_update) or 0" in response.json()["error"]


# ------------------------------------------------------------- merges


def test_a_merged_away_customers_ids_answer_the_destination(api):
    """An anonymous cookie, then the login that merges it into the account:
    the cookie, the account's id, or both name the merged customer."""
    account = track(api, {"registered": "anna"}, {"tier": "gold", "email": "old@x"}, 100)
    anonymous = track(api, {"cookie": "c1"}, {"email": "new@x", "page": "/shoes"}, 200)
    track(api, {"registered": "anna", "cookie": "c1"}, {"in": True}, 300)
    assert api.customer_id_of({"cookie": "c1"}) == account != anonymous
    asked = [prop("tier"), prop("email"), prop("page"), prop("in"), id_of("registered")]
    expected = [value("gold"), value("new@x"), value("/shoes"), value(True), value("anna")]

    for ids in ({"cookie": "c1"}, {"registered": "anna"}, {"registered": "anna", "cookie": "c1"}):
        assert results(api.attributes(ids, asked)) == expected, ids
    assert results(api.attributes({"cookie": "c1"}, [id_of("cookie")])) == [value(["c1"])]


def test_ids_of_two_customers_do_not_exist_as_one(api):
    track(api, {"registered": "anna"}, {"name": "Anna"}, 100)
    track(api, {"registered": "bob2", "cookie": "bobs"}, {"name": "Bob"}, 100)

    response = api.attributes({"registered": "anna", "cookie": "bobs"}, [prop("name")])

    assert response.status == 404
    assert response.json() == {"success": False, "error": "Customer does not exist"}


# ------------------------------------------------------------- who may ask


def test_an_unknown_customer_is_404(api, customer):
    for ids in ({"registered": "nobody"}, {"registered": "mgalik", "cookie": "unknown"}):
        response = api.attributes(ids, [prop("email")])
        assert response.status == 404, ids
        assert response.json() == {"success": False, "error": "Customer does not exist"}


@pytest.mark.parametrize(
    ("permissions", "allowed"),
    [
        (frozenset({Permission.GET_CUSTOMER_PROPERTIES.value}), True),
        (frozenset({Permission.SET_CUSTOMER_PROPERTIES.value}), False),
        (frozenset(), False),
    ],
)
def test_the_key_needs_the_get_permission(api, customer, permissions, allowed):
    key = api.new_key(PROJECT, permissions)
    response = api.attributes(IDS, [prop("tier")], authorization=key)
    if allowed:
        assert results(response) == [value("gold")]
    else:
        assert response.status == 403
        assert response.json()["error"] == (
            "No permission to get customer properties "
            "(the key needs the customer_properties:get permission)"
        )


def test_the_project_in_the_path_must_be_the_keys(api, customer):
    api.access.create_project(OTHER_PROJECT, "other")
    response = api.attributes(IDS, [prop("tier")], project=OTHER_PROJECT)
    assert response.status == 403
    assert response.json() == {
        "success": False,
        "error": "No permission to access this project with this API key",
    }


def test_a_key_of_another_project_never_sees_this_projects_customer(api, customer):
    api.access.create_project(OTHER_PROJECT, "other")
    other = api.new_key(OTHER_PROJECT, frozenset(p.value for p in Permission))
    response = api.attributes(IDS, [prop("tier")], project=OTHER_PROJECT, authorization=other)
    assert response.status == 404


def test_without_a_key_it_is_401(api, customer):
    response = api.attributes(IDS, [prop("tier")], authorization=None)
    assert response.status == 401
    assert response.json() == {"success": False, "error": "Access key not provided"}


# ------------------------------------------------------------- refusals

TYPES = "known types: property, id, segmentation, expression, aggregate, prediction, consent"
REFUSED = [
    ({"customer_ids": IDS}, '"attributes" is required: a list of 1 to 1000 attributes'),
    (
        {"customer_ids": IDS, "attributes": None},
        '"attributes" is required: a list of 1 to 1000 attributes',
    ),
    (
        {"customer_ids": IDS, "attributes": {"type": "property", "property": "email"}},
        '"attributes" must be a list of 1 to 1000 attributes',
    ),
    (
        {"customer_ids": IDS, "attributes": []},
        '"attributes" is empty: ask for 1 to 1000 attributes',
    ),
    (
        {"customer_ids": IDS, "attributes": [prop("email")] * (MAX_ATTRIBUTES + 1)},
        '"attributes" has 1001 attributes; at most 1000 are allowed in one request',
    ),
    (
        {"customer_ids": IDS, "attributes": [prop("email"), "email"]},
        'attributes[1] must be an object such as {"type": "property", "property": "email"}, '
        "got a string",
    ),
    (
        {"customer_ids": IDS, "attributes": [{"property": "email"}]},
        f'attributes[0] has no "type"; {TYPES}',
    ),
    (
        {"customer_ids": IDS, "attributes": [{"type": "event", "id": "x"}]},
        f"attributes[0] has type 'event'; {TYPES}",
    ),
    (
        {"customer_ids": IDS, "attributes": [{"type": 7}]},
        f"attributes[0] has type 7; {TYPES}",
    ),
    (
        {"customer_ids": IDS, "attributes": [prop("a"), {"type": "property", "name": "email"}]},
        "attributes[1] of type 'property' needs \"property\", "
        'e.g. {"type": "property", "property": "email"}',
    ),
    (
        {"customer_ids": IDS, "attributes": [{"type": "id"}]},
        'attributes[0] of type \'id\' needs "id", e.g. {"type": "id", "id": "registered"}',
    ),
    (
        {"customer_ids": IDS, "attributes": [{"type": "consent", "id": "newsletter"}]},
        "attributes[0] of type 'consent' needs \"category\", "
        'e.g. {"type": "consent", "category": "newsletter"}',
    ),
    (
        {"customer_ids": IDS, "attributes": [{"type": "segmentation"}]},
        "attributes[0] of type 'segmentation' needs \"id\", "
        'e.g. {"type": "segmentation", "id": "5f3a..."}',
    ),
    (
        {"customer_ids": IDS, "attributes": [{"type": "property", "property": 5}]},
        'attributes[0]: "property" must be a string, got a number',
    ),
    (
        {"customer_ids": IDS, "attributes": [{"type": "aggregate", "id": ["a"]}]},
        'attributes[0]: "id" must be a string, got a list',
    ),
    (
        {"customer_ids": IDS, "attributes": [{"type": "prediction", "id": ""}]},
        'attributes[0]: "id" must not be empty',
    ),
    (
        {"customer_ids": IDS, "attributes": [{"type": "property", "property": ""}]},
        "attributes[0]: property name must not be empty",
    ),
    (
        {"customer_ids": IDS, "attributes": [{"type": "property", "property": "x" * 257}]},
        f"attributes[0]: property name {shown('x' * 257)} is 257 bytes of UTF-8; "
        "at most 256 are allowed",
    ),
    (
        {"customer_ids": IDS, "attributes": [{"type": "id", "id": "a b"}]},
        "attributes[0]: id type 'a b' is not allowed: use 1 to 64 letters, digits, '_', '.' or '-'",
    ),
    ({"attributes": [prop("email")]}, "customer_ids is required"),
    ({}, 'customer_ids is required; "attributes" is required: a list of 1 to 1000 attributes'),
    ({"customer_ids": {}, "attributes": [prop("email")]}, "At least one id should be specified."),
    ([prop("email")], "expected a JSON object, got a list"),
]


@pytest.mark.parametrize(("body", "sentence"), REFUSED)
def test_a_malformed_request_is_refused_whole_saying_what_is_allowed(api, customer, body, sentence):
    """Malformed attributes are the client's bug, not an attribute propsync
    lacks: the request is refused, never answered in part."""
    response = api.request(
        "POST", f"/data/v2/projects/{api.project}/customers/attributes", json_body=body
    )
    assert response.status == 400, response.body
    assert response.json() == {"success": False, "error": sentence}


def test_a_malformed_request_is_400_whatever_customer_it_names(api):
    """The body is checked before the customer is looked up: an unknown
    customer does not hide what is wrong with the request."""
    response = api.attributes({"registered": "nobody"}, [{"type": "property"}])
    assert response.status == 400


def test_an_id_type_of_customer_ids_the_project_does_not_have_is_400(api, customer):
    response = api.attributes({"registred": "mgalik"}, [prop("tier")])
    assert response.status == 400
    assert response.json()["error"].startswith("id type 'registred' is not known to this project")


def test_the_most_attributes_one_request_may_ask_for_are_answered(api, customer):
    asked = [prop("tier"), id_of("registered"), unsupported("consent")] * (MAX_ATTRIBUTES // 3)
    asked += [prop("email")] * (MAX_ATTRIBUTES - len(asked))
    answered = results(api.attributes(IDS, asked))
    assert len(answered) == MAX_ATTRIBUTES
    assert answered[:3] == [value("gold"), value("mgalik"), failure(UNSUPPORTED["consent"])]
    assert answered[-1] == value("m@example.com")


@pytest.fixture
def table_snapshot(dynamodb_client, table_name):
    def take():
        items = dynamodb_client.scan(TableName=table_name, ConsistentRead=True)["Items"]
        return sorted(json.dumps(item, sort_keys=True) for item in items)

    return take


def lambda_payload_bytes(response):
    """What Lambda's 6 MB response limit counts: the proxy integration's
    envelope, its body a JSON string (ASCII: each non-ASCII character a
    \\u escape, each quote and backslash escaped)."""
    envelope = {"statusCode": response.status, "headers": response.headers, "body": response.body}
    return len(json.dumps(envelope))


@pytest.mark.parametrize(("times", "answered"), [(150, True), (250, False), (1000, False)])
def test_an_answer_larger_than_lambda_may_answer_is_refused_not_failed(
    api, table_snapshot, times, answered
):
    """One property of 15,002 bytes of "€" asked again and again: every
    result repeats it, 30,000 bytes each in Lambda's payload. An answer over
    the 6 MB Lambda returns would be API Gateway's 502; it is a 400 saying
    what to ask instead, before anything is answered."""
    track(api, IDS, {"big": "€" * 5000}, UPDATED)
    before = table_snapshot()

    response = api.attributes(IDS, [prop("big")] * times)

    if answered:
        assert len(results(response)) == times
        assert lambda_payload_bytes(response) <= MAX_REQUEST_BYTES
    else:
        assert response.status == 400, response.body[:200]
        error = response.json()["error"]
        assert error.startswith("the answer would be ")
        assert f"at most {MAX_REQUEST_BYTES} bytes (6 MB) can be answered" in error
        assert "ask for fewer attributes" in error
    assert table_snapshot() == before


# ------------------------------------------------------------- any list of attributes

attributes = st.lists(
    st.one_of(
        st.sampled_from(["tier", "email", "first_name", "nope", "a.b", "#x"]).map(prop),
        st.sampled_from(["registered", "cookie", "crm"]).map(id_of),
        st.sampled_from(list(UNSUPPORTED)).map(unsupported),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(asked=attributes, with_timestamps=st.booleans())
def test_any_list_of_attributes_is_answered_one_by_one_in_order(
    api, customer, asked, with_timestamps
):
    """Each result is what that attribute alone answers, and properties say
    what GET /api/customers/{id} says of them."""
    query = {"include_timestamps": "1"} if with_timestamps else None

    answered = results(api.attributes(IDS, asked, query=query))

    properties = api.get_customer(customer, query=query).json()["properties"]
    ids = api.export_one(IDS).json()["ids"]
    assert len(answered) == len(asked)
    for attribute, result in zip(asked, answered, strict=True):
        if attribute["type"] == "property":
            shown = properties.get(attribute["property"])
            if shown is None:
                assert result == value(None)
            elif with_timestamps:
                assert result == {"success": True, **shown}
            else:
                assert result == value(shown)
        elif attribute["type"] == "id" and attribute["id"] in ids:
            assert result == value(ids[attribute["id"]])
        else:
            assert result["success"] is False
        assert results(api.attributes(IDS, [attribute], query=query)) == [result]
