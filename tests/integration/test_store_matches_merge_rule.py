"""Property-based: the store, on both engines, ends where the pure rule ends,
and reports as applied exactly the updates the pure rule lets win at that
moment, with and without a horizon (compacted tombstones)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync.identity import new_customer_id
from propsync.merge_rule import Horizon, horizon_bucket, merge, wins, wins_against
from tests.conftest import PROJECT
from tests.support.builders import versions

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from(["", "a", "b", "ž"]),
    st.lists(st.integers(0, 1), max_size=2),
    st.dictionaries(st.sampled_from(["k", "l"]), st.integers(0, 1), max_size=2),
)
commands = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(["first_name", "email", "a.b", "#x"]), values, min_size=1),
        st.sampled_from([1.0, 2.0, 2.5, 3.0]),  # few timestamps: many ties
        st.sampled_from([0, 0, 1, 9, 10]),  # sequences: tracking (0) and import rows
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(commands=commands)
def test_store_converges_to_the_pure_rule(store, commands):
    customer = new_customer_id()  # a fresh customer per example, same table
    expected_state: dict = {}
    for properties, timestamp, sequence in commands:
        command = versions(properties, timestamp, sequence)
        # applied: it wins, or exactly this version is already stored (a duplicate)
        should_apply = {
            n
            for n, v in command.items()
            if wins(v, expected_state.get(n)) or expected_state.get(n) == v
        }
        result = store.write_properties(PROJECT, customer, command)
        assert set(result.applied) == should_apply
        assert set(result.stale) == set(command) - should_apply
        expected_state = merge(expected_state, command.items())

    assert store.read_customer(PROJECT, customer).properties == expected_state


# A customer with a horizon (tombstones compacted: store.compaction) covering
# some of the names, at one of the commands' times: a first attempt that the
# horizon fails, and the retries against the item as read, decide as
# merge_rule.wins_against does; untimestamped versions (copied by a merge)
# among them.
NAMES = ["first_name", "email", "a.b", "#x"]
horizons = st.one_of(
    st.none(),
    st.builds(
        lambda timestamp, names: Horizon(timestamp, frozenset(map(horizon_bucket, names))),
        st.sampled_from([1.0, 2.0, 2.5]),
        st.sets(st.sampled_from(NAMES), min_size=1),
    ),
)
commands_with_legacy = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(NAMES), values, min_size=1),
        st.sampled_from([None, 1.0, 2.0, 2.5, 3.0]),  # None: written before synchronization
        st.sampled_from([0, 1, 10]),
    ),
    min_size=1,
    max_size=10,
)


AGAINST_A_HORIZON = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@AGAINST_A_HORIZON
@given(horizon=horizons, commands=commands_with_legacy)
def test_store_decides_as_the_pure_rule_against_a_horizon(store, horizon, commands):
    customer = new_customer_id()
    if horizon is not None:
        store.absorb_horizon(PROJECT, customer, horizon)
    expected_state: dict = {}
    for properties, timestamp, sequence in commands:
        command = versions(properties, timestamp, sequence if timestamp is not None else 0)
        should_apply = {
            n
            for n, v in command.items()
            if wins_against(n, v, expected_state, horizon) or expected_state.get(n) == v
        }
        result = store.write_properties(PROJECT, customer, command)
        assert set(result.applied) == should_apply
        assert set(result.stale) == set(command) - should_apply
        expected_state = merge(expected_state, command.items(), horizon)

    record = store.read_customer(PROJECT, customer)
    assert record.properties == expected_state
    assert record.horizon == horizon
