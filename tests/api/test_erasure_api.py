"""The anonymize route (erasure), through the authorizer and the real
handlers, in both tracking modes: the person is gone from every route, and
stale updates (a late SDK batch, an import snapshot) cannot bring them back."""

import json
import logging
import time

import pytest

from propsync.access import Permission
from propsync.store.conditional import customer_key
from tests.conftest import PROJECT
from tests.support.tracking_modes import accepted, assert_all_applied

OTHER_PROJECT = "22222222-2222-2222-2222-222222222222"
EMAIL = "jana.erased@example.com"
IDS = {"registered": "jana-erased", "cookie": "cookie-erased-1"}
PROPERTIES = {"first_name": "Jana", "email": EMAIL}
T_BEFORE = 1_700_000_000  # the properties' time: long before the erasure


def command_result(api, ids, properties, update_timestamp=None):
    """The synchronous result of one command, whatever the mode: the queued
    mode answers `accepted` and its worker's outcome is read back as the
    synchronous one would have been (what these tests check is that)."""
    result = api.track(ids, properties, update_timestamp)
    if api.queued:
        assert result == accepted()
        assert_all_applied(api)
    return result


@pytest.fixture
def jana(api):
    command_result(api, IDS, PROPERTIES, T_BEFORE)
    return api.customer_id_of(IDS)


def table_text(dynamodb_client, table_name) -> str:
    """Every item of the table, as text: what a person reading the table sees."""
    items = []
    for page in dynamodb_client.get_paginator("scan").paginate(TableName=table_name):
        items += page["Items"]
    return json.dumps(items)


def erased_items(dynamodb_client, table_name) -> list[dict]:
    items = dynamodb_client.scan(TableName=table_name)["Items"]
    return [i for i in items if "#erased#" in i["pk"]["S"]]


def test_an_erased_customer_is_gone_from_every_route(api, jana):
    assert api.anonymize({"registered": "jana-erased"}).json() == {"success": True}
    assert api.get_customer(jana).status == 404
    assert api.get_customer("jana-erased", query={"id_type": "registered"}).status == 404
    assert api.get_customer("cookie-erased-1", query={"id_type": "cookie"}).status == 404
    assert api.export_one({"registered": "jana-erased"}).status == 404
    assert api.export_one({"cookie": "cookie-erased-1"}).status == 404
    edit = api.patch_customer(jana, {"properties": {"first_name": "Back"}})
    assert edit.status == 404
    assert edit.json() == {"success": False, "error": "Customer does not exist"}


def test_what_stays_is_a_salted_hash_per_id_and_the_time(api, jana, dynamodb_client, table_name):
    before = time.time()
    api.anonymize({"cookie": "cookie-erased-1"})
    text = table_text(dynamodb_client, table_name)
    for personal in [*IDS.values(), *PROPERTIES.values()]:
        assert personal not in text
    marks = erased_items(dynamodb_client, table_name)
    assert len(marks) == len(IDS)  # one per id of the customer, not only the one named
    for mark in marks:
        assert set(mark) == {"pk", "erased_at"}
        assert before - 1 <= float(mark["erased_at"]["N"]) <= time.time() + 1
    customer = dynamodb_client.get_item(
        TableName=table_name, Key={"pk": {"S": customer_key(PROJECT, jana)}}
    )["Item"]
    assert set(customer) == {"pk", "erased_at"}  # no property, no id, no seen time


def test_the_same_ids_hash_differently_in_another_project(api, dynamodb_client, table_name):
    other = api.with_new_project(dynamodb_client, table_name, OTHER_PROJECT, api.queues)
    for client in (api, other):
        command_result(client, IDS, PROPERTIES, T_BEFORE)
        assert client.anonymize({"registered": "jana-erased"}).status == 200
    marks = [m["pk"]["S"] for m in erased_items(dynamodb_client, table_name)]
    hashes = {
        project: {pk.rsplit("#", 1)[1] for pk in marks if pk.startswith(project)}
        for project in (PROJECT, OTHER_PROJECT)
    }
    assert len(hashes[PROJECT]) == len(hashes[OTHER_PROJECT]) == len(IDS)
    assert not hashes[PROJECT] & hashes[OTHER_PROJECT]


@pytest.mark.parametrize(
    "late_ids", [IDS, {"registered": "jana-erased"}, {"cookie": "cookie-erased-1"}]
)
def test_a_late_command_for_an_erased_id_is_stale_and_creates_nothing(api, jana, late_ids):
    api.anonymize({"registered": "jana-erased"})
    late = command_result(api, late_ids, {"first_name": "Jana", "city": "Brno"}, T_BEFORE + 60)
    if not api.queued:
        assert late == {
            "success": True,
            "applied": [],
            "stale": ["first_name", "city"],
            "erased_id_types": sorted(late_ids),
        }
    for id_type, id_value in late_ids.items():
        assert api.export_one({id_type: id_value}).status == 404
    assert api.get_customer(jana).status == 404


def test_a_late_command_without_properties_creates_no_customer_either(api, jana):
    api.anonymize(IDS)
    late = command_result(api, {"registered": "jana-erased"}, {}, T_BEFORE + 60)
    if not api.queued:
        assert late["stale"] == []
        assert late["erased_id_types"] == ["registered"]
    assert api.export_one({"registered": "jana-erased"}).status == 404


def test_a_newer_command_starts_a_new_customer_without_the_old_data(api, jana):
    api.anonymize({"registered": "jana-erased"})
    newer = command_result(api, {"registered": "jana-erased"}, {"city": "Praha"}, time.time() + 5)
    new_id = api.customer_id_of({"registered": "jana-erased"})
    assert new_id != jana
    if not api.queued:
        assert newer["customer_id"] == new_id
        assert newer["applied"] == ["city"]
    exported = api.export_one({"registered": "jana-erased"}).json()
    assert exported["properties"] == {"city": "Praha"}  # nothing of before the erasure
    assert exported["ids"] == {"registered": "jana-erased"}
    # and a late command still loses to the erasure, not only to the new values
    command_result(api, {"registered": "jana-erased"}, {"email": EMAIL}, T_BEFORE + 120)
    assert api.export_one({"registered": "jana-erased"}).json()["properties"] == {"city": "Praha"}
    # the cookie was erased with her: a late command naming it is stale too
    command_result(api, {"cookie": "cookie-erased-1"}, {"email": EMAIL}, T_BEFORE + 120)
    assert api.export_one({"cookie": "cookie-erased-1"}).status == 404


def test_a_command_without_update_timestamp_after_the_erasure_is_newer(api, jana):
    api.anonymize({"registered": "jana-erased"})
    time.sleep(0.01)  # a later request: its arrival is the command's time
    command_result(api, {"registered": "jana-erased"}, {"city": "Praha"})
    assert api.export_one({"registered": "jana-erased"}).json()["properties"] == {"city": "Praha"}


def test_customers_merged_into_it_are_erased_with_it(api, dynamodb_client, table_name):
    """An anonymous profile (a cookie) merged into the registered one: its
    merged-away item held the same person's data, and goes too."""
    command_result(api, {"cookie": "anon-1"}, {"viewed": "shoes", "email": EMAIL}, T_BEFORE)
    anonymous = api.customer_id_of({"cookie": "anon-1"})
    command_result(api, {"registered": "jana-erased"}, {"first_name": "Jana"}, T_BEFORE + 1)
    registered = api.customer_id_of({"registered": "jana-erased"})
    command_result(api, {"registered": "jana-erased", "cookie": "anon-1"}, {}, T_BEFORE + 2)
    merged = api.customer_id_of({"cookie": "anon-1"})
    assert merged == min(anonymous, registered)  # one customer now
    assert api.anonymize({"registered": "jana-erased"}).status == 200
    for customer_id in (anonymous, registered):
        assert api.get_customer(customer_id).status == 404
    text = table_text(dynamodb_client, table_name)
    for personal in ("anon-1", "jana-erased", "shoes", EMAIL, "Jana"):
        assert personal not in text


def test_erasing_again_answers_as_the_first_time(api, jana):
    assert api.anonymize({"registered": "jana-erased"}).status == 200
    again = api.anonymize({"registered": "jana-erased"})
    assert again.status == 200
    assert again.json() == {"success": True}
    both = api.anonymize(IDS)
    assert both.status == 200


def test_unknown_customers_and_ids_of_two_customers_are_not_found(api, jana):
    command_result(api, {"registered": "someone-else"}, {"a": 1}, T_BEFORE)
    for ids in ({"registered": "nobody"}, {"registered": "jana-erased", "cookie": "nobody"}):
        answer = api.anonymize(ids)
        assert answer.status == 404, ids
        assert answer.json() == {"success": False, "error": "Customer does not exist"}
    two = api.anonymize({"registered": "someone-else", "cookie": "cookie-erased-1"})
    assert two.status == 404
    # nothing was erased by the refusals
    assert api.get_customer(jana).status == 200
    assert api.export_one({"registered": "someone-else"}).status == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "customer_ids"),
        ({"customer_ids": {}}, "At least one id should be specified."),
        ({"customer_ids": {"registered": 5}}, "must be a string"),
        ({"customer_ids": {"registred": "jana-erased"}}, "registred"),
    ],
)
def test_bad_bodies_are_refused_and_erase_nothing(api, jana, body, words):
    answer = api.request("POST", f"/data/v2/projects/{PROJECT}/customers/anonymize", json_body=body)
    assert answer.status == 400, answer.body
    assert words in answer.json()["error"]
    assert api.get_customer(jana).status == 200


@pytest.mark.parametrize(
    "permissions",
    [
        frozenset(),
        frozenset({Permission.GET_CUSTOMER_PROPERTIES.value}),
        frozenset(
            {Permission.GET_CUSTOMER_PROPERTIES.value, Permission.SET_CUSTOMER_PROPERTIES.value}
        ),
    ],
)
def test_only_a_key_with_the_anonymize_permission_may_erase(api, jana, permissions):
    answer = api.anonymize(IDS, authorization=api.new_key(PROJECT, permissions))
    assert answer.status == 403
    assert answer.json()["error"] == (
        "No permission to anonymize customers (the key needs the customers:anonymize permission)"
    )
    assert api.get_customer(jana).status == 200


def test_an_anonymize_only_key_erases_but_cannot_read(api, jana):
    key = api.new_key(PROJECT, frozenset({Permission.ANONYMIZE_CUSTOMERS.value}))
    assert api.get_customer(jana, authorization=key).status == 403
    assert api.anonymize(IDS, authorization=key).status == 200
    assert api.get_customer(jana).status == 404


def test_a_key_of_another_project_cannot_erase_here(api, jana, dynamodb_client, table_name):
    other = api.with_new_project(dynamodb_client, table_name, OTHER_PROJECT)
    answer = api.anonymize(IDS, authorization=other.authorization)
    assert answer.status == 403
    # and its own project has no such customer
    assert other.anonymize(IDS).status == 404
    assert api.get_customer(jana).status == 200


def test_without_credentials_the_route_is_refused(api, jana):
    answer = api.anonymize(IDS, authorization=None)
    assert answer.status == 401
    assert api.get_customer(jana).status == 200


def test_nothing_personal_is_logged_at_info(api, jana, caplog):
    caplog.set_level(logging.INFO)
    api.anonymize(IDS)
    command_result(api, IDS, PROPERTIES, T_BEFORE + 60)  # held back: logged as what?
    logged = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    for personal in [*IDS.values(), *PROPERTIES.values()]:
        assert personal not in logged
