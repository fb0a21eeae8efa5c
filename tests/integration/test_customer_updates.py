"""The shared write path (validation, identity, merge rule) and the read shapes."""

import time

import pytest

from propsync.customer_updates import update_customer
from propsync.customer_view import export_ids, plain_properties, properties_with_timestamps
from propsync.errors import (
    CustomerTooLargeError,
    InvalidCustomerIdsError,
    InvalidPropertyError,
    InvalidTimestampError,
)
from propsync.id_types import DEFAULT_ID_TYPES
from propsync.store.conditional import customer_key
from tests.conftest import PROJECT

NOW = 1_700_000_000.0


def exported(store, result):
    return export_ids(store.read_customer(PROJECT, result.customer_id), DEFAULT_ID_TYPES)


def update(store, ids, properties, update_timestamp=None, received_at=NOW):
    return update_customer(
        store,
        PROJECT,
        ids,
        properties,
        update_timestamp=update_timestamp,
        received_at=received_at,
    )


def test_a_command_is_stamped_with_its_update_timestamp(store):
    result = update(store, {"registered": "mgalik"}, {"first_name": "Marian"}, 1570001049)
    record = store.read_customer(PROJECT, result.customer_id)
    assert properties_with_timestamps(record) == {
        "first_name": {"value": "Marian", "last_update": 1570001049}
    }


def test_without_update_timestamp_the_receive_time_is_used(store):
    result = update(store, {"registered": "mgalik"}, {"a": 1}, received_at=NOW + 0.5)
    record = store.read_customer(PROJECT, result.customer_id)
    assert properties_with_timestamps(record)["a"]["last_update"] == NOW + 0.5


def test_result_reports_applied_and_stale_properties(store):
    update(store, {"registered": "m"}, {"email": "new@example.com"}, NOW - 10)
    result = update(
        store, {"registered": "m"}, {"email": "old@example.com", "tier": "gold"}, NOW - 20
    )
    assert result.applied == ("tier",)
    assert result.stale == ("email",)
    assert not result.created


def test_an_existing_customer_whose_properties_all_win_costs_one_read_and_one_write(
    store, request_log
):
    update(store, {"registered": "m", "cookie": "c"}, {"a": 1}, NOW - 10)
    request_log.clear()
    update(store, {"registered": "m", "cookie": "c"}, {"a": 2, "b": 3}, NOW - 5)
    assert request_log.counts == {"BatchGetItem": 1, "UpdateItem": 1}


def test_a_new_customer_costs_its_claim_and_one_write_that_records_its_id(store, request_log):
    result = update(store, {"registered": "new"}, {"a": 1, "b": "x"}, NOW - 5)

    assert result.created
    assert request_log.counts == {"BatchGetItem": 1, "PutItem": 1, "UpdateItem": 1}
    record = store.read_customer(PROJECT, result.customer_id)
    assert export_ids(record, DEFAULT_ID_TYPES) == {"registered": "new"}
    assert plain_properties(record) == {"a": 1, "b": "x"}


def test_a_new_customer_without_properties_still_gets_its_id_recorded(store, request_log):
    result = update(store, {"cookie": "c1"}, {})

    assert request_log.counts == {"BatchGetItem": 1, "PutItem": 1, "UpdateItem": 1}
    assert export_ids(store.read_customer(PROJECT, result.customer_id), DEFAULT_ID_TYPES) == {
        "cookie": ["c1"]
    }


def test_a_new_customer_with_several_ids_records_them_in_one_update(store, request_log):
    result = update(store, {"registered": "r", "cookie": "c", "email": "e"}, {"a": 1})

    # claim of registered, one update with all three ids, claims of the other two, properties
    assert request_log.counts == {"BatchGetItem": 1, "PutItem": 3, "UpdateItem": 2}
    record = store.read_customer(PROJECT, result.customer_id)
    assert export_ids(record, DEFAULT_ID_TYPES) == {
        "cookie": ["c"],
        "email": ["e"],
        "registered": "r",
    }


def test_a_new_customer_whose_properties_are_refused_keeps_its_id(store):
    huge = {f"p{i}": "x" * (16 * 1024 - 2) for i in range(30)}  # over the 400 KB item limit

    with pytest.raises(CustomerTooLargeError):
        update(store, {"registered": "big"}, huge)

    again = update(store, {"registered": "big"}, {"a": 1})
    assert not again.created
    assert export_ids(store.read_customer(PROJECT, again.customer_id), DEFAULT_ID_TYPES) == {
        "registered": "big"
    }


def test_a_new_customer_split_over_several_writes_records_its_id_once(store, request_log):
    properties = {f"property number {i} with a long name {'x' * 200}": i for i in range(300)}

    result = update(store, {"registered": "wide"}, properties)

    updates = request_log.params_of("UpdateItem")
    assert len(updates) > 1
    assert ["ADD" in u["UpdateExpression"] for u in updates] == [True] + [False] * (
        len(updates) - 1
    )
    record = store.read_customer(PROJECT, result.customer_id)
    assert export_ids(record, DEFAULT_ID_TYPES) == {"registered": "wide"}
    assert len(plain_properties(record)) == 300


@pytest.mark.parametrize(
    ("ids", "properties", "update_timestamp", "error"),
    [
        ({}, {"a": 1}, None, InvalidCustomerIdsError),
        ({"registered": 1}, {"a": 1}, None, InvalidCustomerIdsError),
        ({"registered": "m"}, ["a"], None, InvalidPropertyError),
        ({"registered": "m"}, {"": 1}, None, InvalidPropertyError),
        ({"registered": "m"}, {"a": "x" * 20000}, None, InvalidPropertyError),
        ({"registered": "m"}, {"a": 1}, "soon", InvalidTimestampError),
        ({"registered": "m"}, {"a": 1}, NOW * 1000, InvalidTimestampError),
        ({"registered": "m"}, {"a": 1}, -5, InvalidTimestampError),
    ],
)
def test_bad_input_is_refused_before_any_request(
    store, request_log, ids, properties, update_timestamp, error
):
    with pytest.raises(error):
        update(store, ids, properties, update_timestamp)
    assert request_log.calls == []


def test_a_login_merges_the_profiles_and_each_property_keeps_its_newest_value(store):
    jane = update(store, {"registered": "jane"}, {"a": "jane", "b": "jane-new"}, NOW - 10)
    anonymous = update(store, {"cookie": "c"}, {"a": "anon-new", "b": "anon-old"}, NOW - 5)
    update(store, {"cookie": "c"}, {"b": "anon-old"}, NOW - 20)  # stale: nothing changes
    update(store, {"registered": "jane"}, {"b": "jane-new"}, NOW - 1)

    login = update(store, {"registered": "jane", "cookie": "c"}, {"c": "login"}, NOW)

    assert (login.customer_id, login.merged) == (jane.customer_id, (anonymous.customer_id,))
    assert plain_properties(store.read_customer(PROJECT, jane.customer_id)) == {
        "a": "anon-new",  # the anonymous side's value is newer
        "b": "jane-new",  # the registered side's value is newer
        "c": "login",
    }


def test_plain_and_timestamped_reads_hide_tombstones_and_show_legacy_as_minus_one(
    store, dynamodb_client, table_name
):
    result = update(
        store, {"registered": "mgalik"}, {"first_name": "Marian", "tier": "gold"}, 1570001049
    )
    update(store, {"registered": "mgalik"}, {"tier": None}, 1570001050.5)
    dynamodb_client.update_item(
        TableName=table_name,
        Key={"pk": {"S": customer_key(PROJECT, result.customer_id)}},
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "p:last_name"},
        ExpressionAttributeValues={":v": {"M": {"v": {"S": '"Galik"'}}}},
    )
    record = store.read_customer(PROJECT, result.customer_id)

    assert plain_properties(record) == {"first_name": "Marian", "last_name": "Galik"}
    assert properties_with_timestamps(record) == {
        "first_name": {"value": "Marian", "last_update": 1570001049},
        "last_name": {"value": "Galik", "last_update": -1},
    }
    assert record.properties["tier"].timestamp == 1570001050.5  # the tombstone is kept
    assert record.ids == {"registered": ["mgalik"]}


def test_unknown_customer_reads_as_none(store):
    assert store.read_customer(PROJECT, "01HNOSUCHCUSTOMER000000000") is None


def test_empty_properties_still_resolve_the_customer(store):
    result = update(store, {"registered": "only-ids"}, {})
    assert result.created
    assert (result.applied, result.stale) == ((), ())
    assert store.read_customer(PROJECT, result.customer_id).ids == {"registered": ["only-ids"]}


def test_default_clock_is_real_time(store):
    before = time.time()
    result = update(store, {"registered": "clock"}, {"a": 1}, received_at=time.time())
    stamp = store.read_customer(PROJECT, result.customer_id).properties["a"].timestamp
    assert before <= stamp <= time.time()
