"""The accepted edge of every limit the store meets, and one past it: the
operator cap of an expression (and why 4 KB is never reached), DynamoDB's 100
keys per BatchGetItem, its 400 KB item, the largest sequence, ids and values of
the largest size, the deepest value, and the bounded retries of a write."""

import pytest

from propsync.errors import CustomerTooLargeError, WriteContentionError
from propsync.identity import resolve_customer
from propsync.limits import (
    MAX_CONDITIONAL_RETRIES,
    MAX_EXPRESSION_BYTES,
    MAX_EXPRESSION_OPERATORS,
    MAX_ID_TYPE_CHARS,
    MAX_ID_VALUE_BYTES,
    MAX_PROPERTY_NAME_BYTES,
    MAX_PROPERTY_VALUE_BYTES,
    MAX_VALUE_NESTING,
)
from propsync.merge_rule import MAX_SEQUENCE, PropertyVersion
from propsync.store.conditional import customer_key
from tests.conftest import PROJECT
from tests.support.builders import expression_operators, values_of, versions

CUSTOMER = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
PROPERTIES_PER_REQUEST = 35  # (MAX_EXPRESSION_OPERATORS - 18 per request) // 8 per property


def stored(store):
    return values_of(store.read_customer(PROJECT, CUSTOMER))


# ------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    ("count", "requests"),
    [(1, [1]), (35, [35]), (36, [35, 1]), (70, [35, 35]), (71, [35, 35, 1])],
)
def test_a_request_carries_at_most_35_properties(store, request_log, count, requests):
    properties = {f"p{i}": i for i in range(count)}

    result = store.write_properties(PROJECT, CUSTOMER, versions(properties, 1.0))

    assert sorted(result.applied) == sorted(properties)
    sent = [
        len({n for n in update["ExpressionAttributeNames"].values() if n.startswith("p:")})
        for update in request_log.params_of("UpdateItem")
    ]
    assert sent == requests
    assert stored(store) == {name: (value, 1.0) for name, value in properties.items()}


def largest_request(store, request_log, name_of, value_of) -> dict:
    """The UpdateItem of the largest single request: 35 properties, each with
    its own timestamp (so each gets its own placeholder), one of them a
    deletion (which notes its time for compaction), written for a new
    customer whose id rides along, refreshing the seen time of 3 soft ids."""
    updates = {
        name_of(i): PropertyVersion(
            value_of(i) if i else "null", 1_000_000_000.0 + i / 7, MAX_SEQUENCE
        )
        for i in range(PROPERTIES_PER_REQUEST)
    }
    request_log.clear()
    new_id = {"t" * MAX_ID_TYPE_CHARS: "v" * MAX_ID_VALUE_BYTES}
    seen = {(f"{i}" * MAX_ID_TYPE_CHARS, "v" * MAX_ID_VALUE_BYTES): 1e9 for i in range(3)}
    store.write_properties(
        PROJECT, CUSTOMER + str(len(name_of(0))), updates, new_ids=new_id, seen=seen
    )
    [update] = request_log.params_of("UpdateItem")
    return update


def test_the_largest_request_stays_within_both_expression_limits(store, request_log):
    """Names and values enter an expression only as placeholders, so its text
    is the same for the shortest and the longest names and values: its size
    depends on the number of properties alone, and at the operator cap it is
    still far under 4 KB. That is why the store checks only the operator count."""
    short = largest_request(store, request_log, lambda i: f"{i}", lambda i: "1")
    longest = largest_request(
        store,
        request_log,
        lambda i: f"{i:03d}" + "🎉" * ((MAX_PROPERTY_NAME_BYTES - 3) // 4),
        lambda i: '"' + "€" * 2000 + '"',  # 35 of 16 KB would not fit in one item
    )
    for expression in ("UpdateExpression", "ConditionExpression"):
        assert short[expression] == longest[expression]
        assert len(longest[expression].encode()) <= MAX_EXPRESSION_BYTES
    operators = expression_operators(longest["UpdateExpression"]) + expression_operators(
        longest["ConditionExpression"]
    )
    assert operators <= MAX_EXPRESSION_OPERATORS


# ------------------------------------------------------------- identities


def test_100_ids_are_looked_up_in_one_request_and_101_in_two(store, request_log):
    known = resolve_customer(store, PROJECT, {"registered": "known"}).customer_id
    pairs = [("registered", "known")] + [("cookie", f"c{i}") for i in range(100)]
    for count, requests in ((100, 1), (101, 2)):
        request_log.clear()
        found = store.identities.lookup(PROJECT, pairs[:count])
        assert found == {("registered", "known"): known}
        assert request_log.counts == {"BatchGetItem": requests}


def test_ids_of_the_largest_type_and_value_find_their_customer(store):
    ids = {
        "registered": "🎉" * (MAX_ID_VALUE_BYTES // 4),
        "t" * MAX_ID_TYPE_CHARS: "x" * MAX_ID_VALUE_BYTES,
    }
    created = resolve_customer(store, PROJECT, ids)
    assert created.created
    for id_type, id_value in ids.items():
        again = resolve_customer(store, PROJECT, {id_type: id_value})
        assert (again.customer_id, again.created) == (created.customer_id, False)
    assert store.read_customer(PROJECT, created.customer_id).ids == {t: [v] for t, v in ids.items()}


# ------------------------------------------------------------- values and items


@pytest.mark.parametrize("char", "xé€🎉")
def test_the_largest_value_of_each_character_width_is_stored_exactly(store, char):
    value = char * ((MAX_PROPERTY_VALUE_BYTES - 2) // len(char.encode()))
    store.write_properties(PROJECT, CUSTOMER, versions({"p": value}, 1.0))
    assert stored(store) == {"p": (value, 1.0)}


def test_a_value_nested_64_levels_deep_is_stored_exactly(store):
    value: object = "leaf"
    for level in range(MAX_VALUE_NESTING):
        value = [value] if level % 2 else {"k": value}
    store.write_properties(PROJECT, CUSTOMER, versions({"deep": value}, 1.0))
    assert stored(store) == {"deep": (value, 1.0)}


def wide_values(count: int) -> dict:
    """``count`` values of 16 KB in 4-byte characters: few characters, many bytes."""
    return {f"p{i}": "🎉" * ((MAX_PROPERTY_VALUE_BYTES - 2) // 4) for i in range(count)}


def test_a_command_just_under_the_item_limit_in_wide_characters_is_stored(store):
    properties = wide_values(24)  # 24 x 16,397 bytes stored: 394 KB
    store.write_properties(PROJECT, CUSTOMER, versions(properties, 1.0))
    assert stored(store) == {name: (value, 1.0) for name, value in properties.items()}


def test_a_command_over_the_item_limit_in_wide_characters_is_refused_before_any_request(
    store, request_log
):
    """26 x 16,397 bytes (426 KB) in only 107,000 characters: measured in bytes."""
    with pytest.raises(CustomerTooLargeError, match="400 KB item limit"):
        store.write_properties(PROJECT, CUSTOMER, versions(wide_values(26), 1.0))
    assert request_log.calls == []


# ------------------------------------------------------------- sequences


def test_the_largest_sequence_is_stored_and_compared_as_ten_digits(store):
    store.write_properties(PROJECT, CUSTOMER, versions({"tier": "a"}, 10.0, MAX_SEQUENCE))
    record = store.read_customer(PROJECT, CUSTOMER)
    assert record.properties["tier"].sequence == MAX_SEQUENCE

    smaller = versions({"tier": "zzz"}, 10.0, MAX_SEQUENCE - 1)
    assert store.write_properties(PROJECT, CUSTOMER, smaller).stale == ("tier",)
    newer = versions({"tier": "b"}, 10.000001, 0)
    assert store.write_properties(PROJECT, CUSTOMER, newer).applied == ("tier",)


# ------------------------------------------------------------- retries


def losing_races(store, dynamodb_client, table_name, races: int) -> None:
    """Before each of our first ``races`` conditional writes, another writer
    stores a newer value of one of the properties that write carries."""
    lost = []

    def competitor(params, **_kwargs):
        if "ConditionExpression" not in params or len(lost) >= races:
            return  # the competitor's own write, or the races are over
        names = sorted(n for n in params["ExpressionAttributeNames"].values() if n.startswith("p:"))
        lost.append(names[0])
        dynamodb_client.update_item(
            TableName=table_name,
            Key={"pk": {"S": customer_key(PROJECT, CUSTOMER)}},
            UpdateExpression="SET #n = :m",
            ExpressionAttributeNames={"#n": names[0]},
            ExpressionAttributeValues={
                ":m": {"M": {"v": {"S": '0000000000"theirs"'}, "t": {"N": "1000"}}}
            },
        )

    dynamodb_client.meta.events.register("provide-client-params.dynamodb.UpdateItem", competitor)


def test_a_write_that_loses_8_races_still_lands_on_its_last_attempt(
    store, dynamodb_client, table_name
):
    properties = {f"p{i}": "mine" for i in range(MAX_CONDITIONAL_RETRIES + 2)}
    losing_races(store, dynamodb_client, table_name, MAX_CONDITIONAL_RETRIES)

    result = store.write_properties(PROJECT, CUSTOMER, versions(properties, 500.0))

    assert len(result.stale) == MAX_CONDITIONAL_RETRIES
    assert len(result.applied) == 2
    assert {stored(store)[name][0] for name in result.applied} == {"mine"}


def test_a_write_that_loses_9_races_fails_with_a_retry_hint(store, dynamodb_client, table_name):
    properties = {f"p{i}": "mine" for i in range(MAX_CONDITIONAL_RETRIES + 2)}
    losing_races(store, dynamodb_client, table_name, MAX_CONDITIONAL_RETRIES + 1)

    with pytest.raises(WriteContentionError, match="during each of 9 attempts; retry"):
        store.write_properties(PROJECT, CUSTOMER, versions(properties, 500.0))

    assert "mine" not in {value for value, _ in stored(store).values()}
