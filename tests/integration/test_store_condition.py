"""The store's condition is merge_rule.wins in DynamoDB's language: for any
stored version and any candidate, the engine accepts the conditional write
exactly when ``wins`` says the candidate must replace what is stored. Which
UpdateItem calls the engine refused is seen through a botocore hook."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync import canonical_json
from propsync.identity import new_customer_id
from propsync.merge_rule import PropertyVersion, wins
from propsync.store.conditional import customer_key
from tests.conftest import PROJECT
from tests.support.builders import versions

CUSTOMER = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
REFUSED = "ConditionalCheckFailedException"


class UpdateOutcomes:
    """For every UpdateItem on a client: "ok", or the engine's error code."""

    def __init__(self, client) -> None:
        self.calls: list[str] = []
        client.meta.events.register("after-call.dynamodb.UpdateItem", self.record)

    def record(self, parsed, **_kwargs) -> None:
        self.calls.append(parsed.get("Error", {}).get("Code", "ok"))

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def outcomes(dynamodb_client) -> UpdateOutcomes:
    return UpdateOutcomes(dynamodb_client)


def raw_item(dynamodb_client, table_name, customer=CUSTOMER):
    return dynamodb_client.get_item(
        TableName=table_name, Key={"pk": {"S": customer_key(PROJECT, customer)}}
    )["Item"]


@pytest.mark.parametrize("sequence", [0, 7])
def test_an_identical_version_delivered_again_fails_the_condition_and_writes_nothing(
    store, outcomes, dynamodb_client, table_name, sequence
):
    command = versions({"tier": "gold", "visits": 3}, 100.0, sequence)
    store.write_properties(PROJECT, CUSTOMER, command)
    before = raw_item(dynamodb_client, table_name)
    outcomes.clear()

    again = store.write_properties(PROJECT, CUSTOMER, command)

    # wins() is False for an equal version: the engine refuses the write ...
    assert outcomes.calls == [REFUSED]
    assert raw_item(dynamodb_client, table_name) == before
    # ... and the command still reports what it sent as stored: it is there
    assert (again.applied, again.stale) == (("tier", "visits"), ())


def test_a_duplicate_beside_a_newer_property_is_not_written_again(
    store, outcomes, request_log, dynamodb_client, table_name
):
    store.write_properties(PROJECT, CUSTOMER, versions({"tier": "gold"}, 100.0))
    stored_tier = raw_item(dynamodb_client, table_name)["p:tier"]
    outcomes.clear()
    request_log.clear()

    result = store.write_properties(
        PROJECT,
        CUSTOMER,
        {**versions({"tier": "gold"}, 100.0), **versions({"email": "e"}, 200.0)},
    )

    assert outcomes.calls == [REFUSED, "ok"]
    written = request_log.params_of("UpdateItem")[-1]
    # email was absent from the item as read: required still absent and its
    # name not covered by a horizon (store.conditional)
    assert set(written["ExpressionAttributeNames"].values()) == {
        "p:email",
        "horizon_buckets",
        "merged_into",
        "erased_at",
    }
    assert raw_item(dynamodb_client, table_name)["p:tier"] == stored_tier
    assert set(result.applied) == {"tier", "email"}


# A small domain, so that equal timestamps, sequences and values are common.
candidate_versions = st.builds(
    lambda value, timestamp, sequence: PropertyVersion(
        canonical_json.dumps(value), timestamp, sequence
    ),
    st.sampled_from([None, "a", "b", 9, 10, [1]]),
    st.sampled_from([1.0, 2.0, 2.000001]),
    st.sampled_from([0, 1, 10]),
)
untimestamped_versions = st.builds(  # written before synchronization
    lambda value: PropertyVersion(value, None), st.sampled_from(['"a"', '"m"', '"z"'])
)
stored_versions = st.one_of(st.none(), untimestamped_versions, candidate_versions)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stored=stored_versions, candidate=st.one_of(candidate_versions, untimestamped_versions))
def test_the_engine_accepts_a_write_exactly_when_wins_says_so(
    store, outcomes, dynamodb_client, table_name, stored, candidate
):
    customer = new_customer_id()
    if stored is not None and stored.timestamp is None:  # written before synchronization
        dynamodb_client.put_item(
            TableName=table_name,
            Item={
                "pk": {"S": customer_key(PROJECT, customer)},
                "p:x": {"M": {"v": {"S": stored.encoded_value}}},
            },
        )
    elif stored is not None:
        store.write_properties(PROJECT, customer, {"x": stored})
    outcomes.clear()

    store.write_properties(PROJECT, customer, {"x": candidate})

    should_win = wins(candidate, stored)
    assert outcomes.calls == (["ok"] if should_win else [REFUSED])
    kept = store.read_customer(PROJECT, customer).properties["x"]
    assert kept == (candidate if should_win else stored)
