"""The merge rule with a horizon (tombstones compacted, merge_rule.compact):
which updates it decides, and that no order of writes, deletions and
compactions shows a value the rule without compaction would not show, or
decides a write newer than the horizon otherwise."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync import canonical_json
from propsync.merge_rule import (
    HORIZON_BUCKETS,
    Horizon,
    PropertyVersion,
    compact,
    horizon_bucket,
    merge,
    winners,
    wins,
    wins_against,
    wins_where_absent,
)


def version(value, timestamp, sequence=0):
    return PropertyVersion(canonical_json.dumps(value), timestamp, sequence)


def horizon_over(timestamp, *names):
    return Horizon(timestamp, frozenset(horizon_bucket(name) for name in names))


def other_bucket_name(name: str) -> str:
    """A property name whose bucket is not ``name``'s."""
    return next(
        f"other{i}" for i in range(1000) if horizon_bucket(f"other{i}") != horizon_bucket(name)
    )


def test_a_bucket_is_two_hex_digits_of_256():
    buckets = {horizon_bucket(f"p{i}") for i in range(5000)}
    assert len(buckets) == HORIZON_BUCKETS
    assert all(len(b) == 2 and int(b, 16) < HORIZON_BUCKETS for b in buckets)
    # the same name, the same bucket, whatever its characters
    assert horizon_bucket("žluť 🎉") == horizon_bucket("žluť 🎉")


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (version("a", 101.0), True),  # after the horizon: wins
        (version("a", 100.0, 99), False),  # a tie goes to the horizon, whatever the order key
        (version("a", 99.0), False),  # before it: loses, as to the tombstone it took
        (version(None, 100.0), False),
        (PropertyVersion('"legacy"', None), False),  # untimestamped: loses to any time
    ],
)
def test_a_covered_absent_property_reads_as_deleted_at_the_horizon(candidate, expected):
    horizon = horizon_over(100.0, "email")
    assert wins_where_absent(candidate, "email", horizon) is expected
    assert wins_against("email", candidate, {}, horizon) is expected


@pytest.mark.parametrize(
    "candidate", [version("a", 1.0), version(None, 0.0), PropertyVersion('"x"', None)]
)
def test_an_absent_property_outside_the_horizons_buckets_was_never_set(candidate):
    other = other_bucket_name("email")
    assert wins_where_absent(candidate, other, horizon_over(100.0, "email"))
    assert wins_where_absent(candidate, "email", None)


def test_a_held_property_is_decided_against_its_version_not_the_horizon():
    horizon = horizon_over(100.0, "email")
    stored = {"email": version("old", 50.0)}
    assert wins_against("email", version("newer", 60.0), stored, horizon)
    assert not wins_against("email", version("older", 40.0), stored, horizon)


def test_compaction_takes_timestamped_tombstones_at_or_before_the_cutoff_oldest_first():
    state = {
        "a": version(None, 10.0),
        "b": version(None, 20.0, 3),
        "c": version(None, 30.0),  # after the cutoff: kept
        "d": version("value", 5.0),  # a value: never taken
        "e": PropertyVersion("null", None),  # untimestamped: never taken
        "f": version(None, 15.0),  # named in keep
    }
    result = compact(state, None, 20.0, keep={"f"})
    assert result.removed == ("a", "b")
    assert result.horizon == horizon_over(20.0, "a", "b")
    limited = compact(state, None, 20.0, limit=1)
    assert limited.removed == ("a",)
    assert limited.horizon == horizon_over(10.0, "a")


def test_compaction_joins_the_horizon_it_had():
    had = horizon_over(50.0, "x")
    result = compact({"a": version(None, 10.0)}, had, 20.0)
    assert result.horizon == Horizon(50.0, had.buckets | {horizon_bucket("a")})
    assert compact({"a": version(None, 30.0)}, had, 20.0).horizon == had  # nothing due


def test_merge_and_winners_take_the_horizon():
    horizon = horizon_over(100.0, "gone")
    updates = [("gone", version("late", 90.0)), ("gone", version("later", 110.0))]
    assert merge({}, updates, horizon) == {"gone": version("later", 110.0)}
    assert winners({"gone": version("late", 90.0)}, {}, horizon) == {}
    # without a horizon, as before
    assert merge({}, updates) == {"gone": version("later", 110.0)}


# ---------------------------------------------------------------- any order

NAMES = ["a", "b", "c", "d", other_bucket_name("a")]
writes = st.tuples(
    st.dictionaries(st.sampled_from(NAMES), st.sampled_from([None, 1, "x", [2]]), min_size=1),
    st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    st.sampled_from([0, 1, 7]),
)
steps = st.lists(
    st.one_of(writes, st.tuples(st.just("compact"), st.sampled_from([0.0, 2.0, 3.5, 5.0, 7.0]))),
    max_size=14,
)


def visible(state):
    return {name: v for name, v in state.items() if not v.is_tombstone}


ANY_ORDER = settings(max_examples=400, deadline=None)


@ANY_ORDER
@given(steps=steps)
def test_compaction_never_shows_what_the_rule_would_not_and_keeps_writes_newer_than_the_horizon(
    steps,
):
    uncompacted: dict = {}
    properties: dict = {}
    horizon = None
    exact = True  # every write so far was newer than the horizon, or to a property held
    for step in steps:
        if step[0] == "compact":
            result = compact(properties, horizon, step[1])
            assert all(properties[name].is_tombstone for name in result.removed)
            properties = {n: v for n, v in properties.items() if n not in result.removed}
            horizon = result.horizon
        else:
            command = {name: version(value, step[1], step[2]) for name, value in step[0].items()}
            for name, candidate in command.items():
                decided_by_horizon = (
                    name not in properties
                    and horizon is not None
                    and horizon.covers(name)
                    and candidate.timestamp <= horizon.timestamp
                )
                if exact and not decided_by_horizon:
                    # the write the contract promises is decided as without compaction
                    assert wins_against(name, candidate, properties, horizon) == wins(
                        candidate, uncompacted.get(name)
                    )
                exact = exact and not decided_by_horizon
            properties = merge(properties, command.items(), horizon)
            uncompacted = merge(uncompacted, command.items())
        # never a value the rule without compaction does not show (no deleted
        # value comes back), and each one with the same version
        shown = visible(properties)
        assert all(uncompacted.get(name) == v for name, v in shown.items())
        if exact:
            assert shown == visible(uncompacted)


# ------------------------------------------------------------ merges

merge_write = st.tuples(
    st.sampled_from(["S", "D"]),
    st.dictionaries(st.sampled_from(NAMES), st.sampled_from([None, 1, "x"]), min_size=1),
    st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    st.sampled_from([0, 1]),
)
merge_compaction = st.tuples(
    st.just("compact"), st.sampled_from(["S", "D"]), st.sampled_from([2.0, 3.5, 5.0, 7.0])
)
merge_steps = st.lists(st.one_of(merge_write, merge_compaction), max_size=10)
later_writes = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(NAMES), st.sampled_from([None, 2, "y"]), min_size=1),
        st.sampled_from([1.0, 3.0, 5.0, 6.5, 8.0, 9.0]),
    ),
    max_size=5,
)


@settings(max_examples=400, deadline=None)
@given(steps=merge_steps, later=later_writes)
def test_a_merge_shows_only_what_the_rule_would_or_the_documented_exception(steps, later):
    props = {"S": {}, "D": {}}
    horizon = {"S": None, "D": None}
    plain = {"S": {}, "D": {}}
    for step in steps:
        if step[0] == "compact":
            _, who, cutoff = step
            result = compact(props[who], horizon[who], cutoff)
            props[who] = {n: v for n, v in props[who].items() if n not in result.removed}
            horizon[who] = result.horizon
        else:
            who, values, t, seq = step
            command = {n: version(v, t, seq) for n, v in values.items()}
            props[who] = merge(props[who], command.items(), horizon[who])
            plain[who] = merge(plain[who], command.items())
    # the merge: the source's versions copied against the destination (and
    # its horizon), then the source's horizon joins the destination's
    held_by_destination = set(props["D"])
    merged = merge(props["D"], props["S"].items(), horizon["D"])
    h = horizon["D"].absorb(horizon["S"]) if horizon["D"] else horizon["S"]
    uncompacted = merge(plain["D"], plain["S"].items())
    exceptions = set()
    if horizon["S"] is not None:
        # documented: a property the destination holds stays, even one older
        # than a deletion of the same name the source compacted
        exceptions = {n for n in held_by_destination if horizon["S"].covers(n) and n in merged}
    for values, t in later:
        command = {n: version(v, t) for n, v in values.items()}
        newer_than_horizon = h is None or t > h.timestamp
        for name, cand in command.items():
            if newer_than_horizon and name not in exceptions:
                assert wins_against(name, cand, merged, h) == wins(cand, uncompacted.get(name)), (
                    name,
                    cand,
                    merged.get(name),
                    uncompacted.get(name),
                    h,
                )
        merged = merge(merged, command.items(), h)
        uncompacted = merge(uncompacted, command.items())
        exceptions -= set(command) if newer_than_horizon else set()
    shown = visible(merged)
    for name, v in shown.items():
        if name in exceptions:
            continue
        assert uncompacted.get(name) == v, (name, v, uncompacted.get(name), steps)
