"""Writing properties: newer wins inside DynamoDB, in as few requests as possible."""

from decimal import Decimal

import pytest

from propsync import canonical_json
from propsync.errors import CustomerTooLargeError, WriteContentionError
from propsync.store.conditional import customer_key
from tests.conftest import PROJECT
from tests.support.builders import expression_operators, values_of, versions

CUSTOMER = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
HOUR = 3600.0
EIGHT, NINE, TEN = 8 * HOUR, 9 * HOUR, 10 * HOUR


def stored(store):
    return values_of(store.read_customer(PROJECT, CUSTOMER))


def test_all_newer_properties_cost_exactly_one_write(store, request_log):
    store.write_properties(PROJECT, CUSTOMER, versions({"a": 1, "b": 2}, 100.0))
    request_log.clear()

    result = store.write_properties(PROJECT, CUSTOMER, versions({"a": 3, "b": 4, "c": 5}, 200.0))

    assert result.applied == ("a", "b", "c")
    assert result.stale == ()
    assert request_log.counts == {"UpdateItem": 1}
    assert stored(store) == {"a": (3, 200.0), "b": (4, 200.0), "c": (5, 200.0)}


def test_first_write_creates_the_item_in_one_request(store, request_log):
    result = store.write_properties(PROJECT, CUSTOMER, versions({"first_name": "Marian"}, 1.0))
    assert result.applied == ("first_name",)
    assert request_log.counts == {"UpdateItem": 1}


# dynalite ignores ReturnValuesOnConditionCheckFailure: there, every
# conditional failure costs one GetItem more (DynamoDB behaves as moto does).
def reads_after_failures(engine: str, failures: int) -> dict:
    return {"GetItem": failures} if engine == "dynalite" else {}


def test_stale_properties_cost_one_extra_request_and_only_winners_are_written(
    store, request_log, engine
):
    store.write_properties(PROJECT, CUSTOMER, versions({"email": "fresh@example.com"}, 500.0))
    request_log.clear()

    result = store.write_properties(
        PROJECT, CUSTOMER, versions({"email": "old@example.com", "tier": "gold"}, 400.0)
    )

    assert result.applied == ("tier",)
    assert result.stale == ("email",)
    # the failed conditional write, then one retry with the winners only; the
    # stored item came back with the failure, so nothing was read
    assert request_log.counts == {"UpdateItem": 2, **reads_after_failures(engine, 1)}
    retry = request_log.params_of("UpdateItem")[1]
    # tier was absent from the item as read: the retry requires it still
    # absent and its name still not covered by a horizon (store.conditional)
    assert set(retry["ExpressionAttributeNames"].values()) == {
        "p:tier",
        "horizon_buckets",
        "merged_into",
        "erased_at",
    }
    assert stored(store) == {"email": ("fresh@example.com", 500.0), "tier": ("gold", 400.0)}


def test_when_every_property_is_stale_nothing_is_written(store, request_log, engine):
    store.write_properties(PROJECT, CUSTOMER, versions({"a": 1, "b": 2}, 500.0))
    request_log.clear()

    result = store.write_properties(PROJECT, CUSTOMER, versions({"a": 9, "b": 9}, 100.0))

    assert result.applied == ()
    assert result.stale == ("a", "b")
    assert request_log.counts == {"UpdateItem": 1, **reads_after_failures(engine, 1)}
    assert stored(store) == {"a": (1, 500.0), "b": (2, 500.0)}


def test_engines_that_return_no_item_on_failure_are_served_by_a_read(
    store, dynamodb_client, request_log
):
    """dynalite ignores ReturnValuesOnConditionCheckFailure: the store then reads the item."""

    def drop_item(parsed, **_kwargs):
        parsed.pop("Item", None)

    dynamodb_client.meta.events.register("after-call.dynamodb.UpdateItem", drop_item)
    store.write_properties(PROJECT, CUSTOMER, versions({"email": "fresh"}, 500.0))
    request_log.clear()

    result = store.write_properties(PROJECT, CUSTOMER, versions({"email": "old", "x": 1}, 400.0))

    assert (result.applied, result.stale) == (("x",), ("email",))
    assert request_log.counts == {"UpdateItem": 2, "GetItem": 1}
    assert stored(store) == {"email": ("fresh", 500.0), "x": (1, 400.0)}


def test_a_write_that_loses_a_race_retries_with_what_still_wins(store, dynamodb_client):
    """Another writer stores a newer email between our decision and our write."""
    competitor_ran = []

    def competing_write(params, **_kwargs):
        if not competitor_ran:
            competitor_ran.append(True)
            store.write_properties(PROJECT, CUSTOMER, versions({"email": "racer"}, 300.0))

    dynamodb_client.meta.events.register(
        "provide-client-params.dynamodb.UpdateItem", competing_write
    )

    result = store.write_properties(
        PROJECT, CUSTOMER, versions({"email": "mine", "tier": "gold"}, 200.0)
    )

    assert (result.applied, result.stale) == (("tier",), ("email",))
    assert stored(store) == {"email": ("racer", 300.0), "tier": ("gold", 200.0)}


def test_the_product_documents_import_example(store):
    """An import snapshot taken at 8:00 and written at 10:00 must not overwrite
    what real-time tracking updated at 9:00; its other properties are written."""
    store.write_properties(
        PROJECT,
        CUSTOMER,
        versions({"first_name": "Marian", "email": "m@old.example"}, EIGHT - HOUR),
    )
    store.write_properties(PROJECT, CUSTOMER, versions({"email": "m@new.example"}, NINE))

    snapshot = {"first_name": "Marián", "email": "m@old.example", "city": "Bratislava"}
    result = store.write_properties(PROJECT, CUSTOMER, versions(snapshot, EIGHT))  # runs at 10:00

    assert set(result.applied) == {"first_name", "city"}
    assert result.stale == ("email",)
    assert stored(store) == {
        "first_name": ("Marián", EIGHT),
        "email": ("m@new.example", NINE),
        "city": ("Bratislava", EIGHT),
    }


def test_equal_timestamps_resolve_to_the_greater_value_in_any_order(store):
    store.write_properties(PROJECT, CUSTOMER, versions({"x": "b"}, TEN))
    assert store.write_properties(PROJECT, CUSTOMER, versions({"x": "a"}, TEN)).stale == ("x",)
    assert store.write_properties(PROJECT, CUSTOMER, versions({"x": "c"}, TEN)).applied == ("x",)
    assert stored(store) == {"x": ("c", TEN)}


def test_at_equal_timestamps_the_later_import_row_wins_whichever_is_written_first(store):
    store.write_properties(PROJECT, CUSTOMER, versions({"tier": "zzz"}, TEN, sequence=2))
    result = store.write_properties(PROJECT, CUSTOMER, versions({"tier": "aaa"}, TEN, sequence=9))
    assert result.applied == ("tier",)
    late = store.write_properties(PROJECT, CUSTOMER, versions({"tier": "zzz"}, TEN, sequence=2))
    assert late.stale == ("tier",)
    assert stored(store) == {"tier": ("aaa", TEN)}


def test_a_deletion_leaves_a_tombstone_an_older_write_cannot_undo(store):
    store.write_properties(PROJECT, CUSTOMER, versions({"tier": "gold"}, 100.0))
    store.write_properties(PROJECT, CUSTOMER, versions({"tier": None}, 200.0))
    result = store.write_properties(PROJECT, CUSTOMER, versions({"tier": "silver"}, 150.0))
    assert result.stale == ("tier",)
    assert stored(store) == {"tier": (None, 200.0)}
    assert store.write_properties(PROJECT, CUSTOMER, versions({"tier": "bronze"}, 201.0)).applied


NAMES = [
    "first.name",
    "with space",
    "#hash",
    "a:b",
    "$price",
    "Ünïcødé 日本語 🎉",
    "p:nested",
    "#p0",
    ":v0",
    "x" * 256,
    "🎉" * 64,  # 256 bytes of UTF-8
    "attribute_not_exists(t)",
]


def test_property_names_of_any_characters_round_trip(store):
    properties = {name: index for index, name in enumerate(NAMES)}
    result = store.write_properties(PROJECT, CUSTOMER, versions(properties, 1.0))
    assert sorted(result.applied) == sorted(NAMES)
    assert stored(store) == {name: (index, 1.0) for index, name in enumerate(NAMES)}


VALUES = {
    "string": "Marian",
    "empty": "",
    "int": 42,
    "negative": -7,
    "huge_int": 123456789012345678901234567890123456789012345678901234567890,
    "exact_decimal": Decimal("0.1000000000000000055511151231257827021181583404541015625"),
    "float": 0.1,
    "true": True,
    "false": False,
    "list": [1, "two", [3.5], {"four": None}],
    "object": {"nested": {"deep": [True, None]}, "unicode": "Žilina"},
}


def test_values_of_every_json_type_round_trip_exactly(store):
    store.write_properties(PROJECT, CUSTOMER, versions(VALUES, 1.0))
    record = store.read_customer(PROJECT, CUSTOMER)
    for name, value in VALUES.items():
        assert record.properties[name].encoded_value == canonical_json.dumps(value)
    back = {name: value for name, (value, _) in stored(store).items()}
    assert back["huge_int"] == VALUES["huge_int"]
    assert back["exact_decimal"] == VALUES["exact_decimal"]
    assert str(back["exact_decimal"]) == "0.1000000000000000055511151231257827021181583404541015625"
    assert back["float"] == Decimal("0.1")
    assert back["list"] == [1, "two", [Decimal("3.5")], {"four": None}]


def test_a_command_too_large_for_one_expression_is_split(store, request_log):
    properties = {f"property number {i} with a long name {'x' * 200}": i for i in range(500)}

    result = store.write_properties(PROJECT, CUSTOMER, versions(properties, 1.0))

    assert len(result.applied) == 500
    updates = request_log.params_of("UpdateItem")
    assert len(updates) > 1
    for update in updates:
        assert len(update["UpdateExpression"].encode()) <= 4096
        assert len(update["ConditionExpression"].encode()) <= 4096
        assert (
            expression_operators(update["UpdateExpression"])
            + expression_operators(update["ConditionExpression"])
            <= 300
        )
    assert len(stored(store)) == 500


def test_a_split_command_keeps_newer_wins_in_every_part(store):
    old = {f"p{i}": "old" for i in range(200)}
    store.write_properties(PROJECT, CUSTOMER, versions(old, 100.0))
    store.write_properties(PROJECT, CUSTOMER, versions({"p7": "fresh", "p150": "fresh"}, 300.0))

    result = store.write_properties(
        PROJECT, CUSTOMER, versions({f"p{i}": "new" for i in range(200)}, 200.0)
    )

    assert set(result.stale) == {"p7", "p150"}
    assert len(result.applied) == 198
    values = stored(store)
    assert values["p7"] == ("fresh", 300.0)
    assert values["p8"] == ("new", 200.0)


def test_a_customer_that_would_outgrow_400_kb_gets_a_clear_error(store):
    big = "x" * (15 * 1024)
    first = {f"a{i}": big for i in range(20)}  # about 300 KB
    store.write_properties(PROJECT, CUSTOMER, versions(first, 1.0))

    with pytest.raises(CustomerTooLargeError, match="400 KB item limit") as raised:
        store.write_properties(PROJECT, CUSTOMER, versions({f"b{i}": big for i in range(10)}, 2.0))

    assert raised.value.applied == ()
    # What was stored before is intact. (Real DynamoDB refuses the whole
    # UpdateItem; moto applies SET clauses one by one and may leave some b*
    # behind, a leniency of the engine, not of propsync.)
    kept = {k: v for k, v in stored(store).items() if k.startswith("a")}
    assert kept == dict.fromkeys(first, (big, 1.0))


def test_a_command_larger_than_an_item_is_refused_before_any_request(store, request_log):
    huge = {f"p{i}": "x" * (16 * 1024 - 2) for i in range(30)}  # 480 KB of values
    with pytest.raises(CustomerTooLargeError, match="400 KB item limit"):
        store.write_properties(PROJECT, CUSTOMER, versions(huge, 1.0))
    assert request_log.calls == []


def test_legacy_property_without_timestamp_loses_to_any_timestamped_write(
    store, dynamodb_client, table_name
):
    dynamodb_client.put_item(
        TableName=table_name,
        Item={
            "pk": {"S": customer_key(PROJECT, CUSTOMER)},
            "p:last_name": {"M": {"v": {"S": '"Galik"'}}},
            "p:first_name": {"M": {"v": {"S": '"Marian"'}}},
        },
    )
    assert stored(store) == {"last_name": ("Galik", None), "first_name": ("Marian", None)}

    result = store.write_properties(PROJECT, CUSTOMER, versions({"first_name": "Mario"}, 0.0))

    assert result.applied == ("first_name",)
    assert stored(store) == {"last_name": ("Galik", None), "first_name": ("Mario", 0.0)}


def test_timestamps_keep_full_float_precision(store):
    ts = 1570001049.123456
    store.write_properties(PROJECT, CUSTOMER, versions({"a": 1}, ts))
    assert stored(store)["a"] == (1, ts)
    assert store.write_properties(PROJECT, CUSTOMER, versions({"a": 2}, ts + 1e-6)).applied == (
        "a",
    )


def test_contention_on_a_later_part_reports_what_earlier_parts_stored(
    store, dynamodb_client, table_name, monkeypatch
):
    """Every attempt of the second update loses to a newer competing write."""
    monkeypatch.setattr("propsync.store.customers.MAX_CONDITIONAL_RETRIES", 2)
    properties = {f"p{i}": "mine" for i in range(60)}  # two updates
    updates_seen = []

    def competitor(params, **_kwargs):
        if (
            params["Key"]["pk"]["S"] != customer_key(PROJECT, CUSTOMER)
            or "ConditionExpression" not in params
        ):
            return  # the competitor's own write
        updates_seen.append(params)
        if len(updates_seen) >= 2:  # from the second update on, someone is always newer
            name = sorted(
                n for n in params["ExpressionAttributeNames"].values() if n.startswith("p:")
            )[0]
            dynamodb_client.update_item(
                TableName=table_name,
                Key={"pk": {"S": customer_key(PROJECT, CUSTOMER)}},
                UpdateExpression="SET #n = :m",
                ExpressionAttributeNames={"#n": name},
                ExpressionAttributeValues={
                    ":m": {
                        "M": {
                            "v": {"S": '0000000000"theirs"'},
                            "t": {"N": str(1000 + len(updates_seen))},
                        }
                    }
                },
            )

    dynamodb_client.meta.events.register("provide-client-params.dynamodb.UpdateItem", competitor)

    with pytest.raises(WriteContentionError, match="retry the command") as raised:
        store.write_properties(PROJECT, CUSTOMER, versions(properties, 500.0))

    first_part = {
        n for n in updates_seen[0]["ExpressionAttributeNames"].values() if n.startswith("p:")
    }
    assert len(first_part) < len(properties)
    assert {f"p:{name}" for name in raised.value.applied} == first_part
