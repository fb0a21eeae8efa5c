"""Property-based: the store, against moto, ends where the pure rule ends, and
reports as applied exactly the updates the pure rule lets win at that moment."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync.identity import new_customer_id
from propsync.merge_rule import merge, wins
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
