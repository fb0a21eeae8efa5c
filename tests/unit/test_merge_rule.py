"""The merge rule: exhaustive cases and convergence under any delivery order."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync import canonical_json
from propsync.merge_rule import MAX_SEQUENCE, PropertyVersion, merge, winners, wins


def version(value, timestamp, sequence=0):
    return PropertyVersion(canonical_json.dumps(value), timestamp, sequence)


@pytest.mark.parametrize(
    ("candidate", "stored", "expected"),
    [
        # 1. nothing stored, or stored without a timestamp: any timestamped write wins
        (version("a", 0.0), None, True),
        (version("a", 5.0), PropertyVersion('"legacy"', None), True),
        (version("a", 0.0), PropertyVersion('"legacy"', None), True),
        (version(None, 0.0), PropertyVersion('"legacy"', None), True),
        # 2. timestamps differ: the newer wins, whatever the values
        (version("a", 10.0), version("z", 9.0), True),
        (version("z", 9.0), version("a", 10.0), False),
        (version("a", 10.000001), version("a", 10.0), True),
        (version(None, 11.0), version("a", 10.0), True),  # a newer deletion wins
        (version("a", 9.0), version(None, 10.0), False),  # an older write cannot undo it
        # 3. equal timestamps: the greater canonical JSON wins; equal values do not
        (version("b", 10.0), version("a", 10.0), True),
        (version("a", 10.0), version("b", 10.0), False),
        (version("a", 10.0), version("a", 10.0), False),
        (version({"x": 1}, 10.0), version([1], 10.0), True),  # '{' > '['
        (version(None, 10.0), version("a", 10.0), True),  # 'n' > '"'
        (version(2, 10.0), version(10, 10.0), True),  # text order: "2" > "10"
        # 3. equal timestamps: a greater sequence (a later import row) wins first
        (version("a", 10.0, 7), version("z", 10.0, 3), True),
        (version("z", 10.0, 3), version("a", 10.0, 7), False),
        (version("a", 10.0, 1), version("z", 10.0, 0), True),  # import row vs tracking
        (version("a", 9.0, 99), version("z", 10.0, 0), False),  # time still comes first
        (version("a", 10.0, 10), version("a", 10.0, 9), True),  # 10 > 9, not "10" < "9"
    ],
)
def test_wins(candidate, stored, expected):
    assert wins(candidate, stored) is expected


@pytest.mark.parametrize(
    ("candidate", "stored", "expected"),
    [
        # a version from before synchronization, copied by a merge
        (PropertyVersion('"a"', None), None, True),  # fills an absent property
        (PropertyVersion('"a"', None), version("z", 0.5), False),  # loses to any timestamp
        (PropertyVersion('"b"', None), PropertyVersion('"a"', None), True),  # then by value
        (PropertyVersion('"a"', None), PropertyVersion('"b"', None), False),
        (PropertyVersion('"a"', None), PropertyVersion('"a"', None), False),
    ],
)
def test_an_untimestamped_version_loses_to_every_timestamped_one(candidate, stored, expected):
    assert wins(candidate, stored) is expected


def test_winners_keeps_only_the_candidates_that_beat_what_is_stored():
    stored = {"email": version("new@example.com", 9.0), "tier": version("gold", 1.0)}
    candidates = {
        "email": version("old@example.com", 8.0),
        "tier": version("silver", 8.0),
        "first_name": version("Marian", 8.0),
    }
    assert set(winners(candidates, stored)) == {"tier", "first_name"}


def test_tie_break_is_a_total_order_on_every_pair():
    values = [None, True, False, 0, 1, -1, 1.5, "", "a", "b", [], [1], {}, {"a": 1}]
    versions = [version(v, 1.0) for v in values]
    for a, b in itertools.permutations(versions, 2):
        if a.encoded_value != b.encoded_value:
            assert wins(a, b) != wins(b, a)


# Small alphabets force many collisions of names, timestamps and values.
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(["", "a", "b", "é", "日本"]),
    st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.sampled_from(["k", "l"]), st.integers(0, 2), max_size=2),
)
updates = st.lists(
    st.tuples(
        st.sampled_from(["first_name", "email", "tier"]),
        st.builds(
            version, json_values, st.sampled_from([1.0, 2.0, 3.0]), st.sampled_from([0, 1, 2, 10])
        ),
    ),
    max_size=25,
)


@settings(max_examples=300)
@given(updates=updates, data=st.data())
def test_any_permutation_and_duplication_converges(updates, data):
    reference = merge({}, updates)
    shuffled = data.draw(st.permutations(updates))
    duplicated = shuffled + data.draw(
        st.lists(st.sampled_from(updates), max_size=10) if updates else st.just([])
    )
    reordered = data.draw(st.permutations(duplicated))
    assert merge({}, reordered) == reference


@settings(max_examples=200)
@given(updates=updates)
def test_result_is_the_maximum_of_each_property(updates):
    """Equivalent statement of the rule: each property ends at its greatest
    (timestamp, canonical value) pair, independent of order."""
    expected = {}
    for name, candidate in updates:
        best = expected.get(name)
        if best is None or (candidate.timestamp, candidate.sequence, candidate.encoded_value) > (
            best.timestamp,
            best.sequence,
            best.encoded_value,
        ):
            expected[name] = candidate
    assert merge({}, updates) == expected


@given(updates=updates, split=st.integers(0, 25))
def test_merging_in_two_batches_equals_merging_at_once(updates, split):
    assert merge(merge({}, updates[:split]), updates[split:]) == merge({}, updates)


def test_the_order_key_round_trips_and_bad_prefixes_read_as_sequence_0():
    original = version({"k": [1]}, 5.0, 42)
    assert original.order_key == '0000000042{"k":[1]}'
    assert PropertyVersion.from_order_key(original.order_key, 5.0) == original
    assert PropertyVersion.from_order_key('"plain"', 5.0) == PropertyVersion('"plain"', 5.0, 0)


@pytest.mark.parametrize(
    "text",
    [
        '"plain"',  # shorter than a sequence
        '"ten chars or more"',  # long enough, not digits
        "١٢٣٤٥٦٧٨٩٠١",  # ten digits, not ASCII ones (int() would read them)
        "123456789x0",  # nine digits, then not a digit
    ],
)
def test_a_value_stored_without_a_sequence_reads_as_itself_with_sequence_0(text):
    """Values with a timestamp but no sequence (migrated by hand) keep their
    whole text; only ten ASCII digits followed by a value are a sequence."""
    assert PropertyVersion.from_order_key(text, 5.0) == PropertyVersion(text, 5.0, 0)


@pytest.mark.parametrize("sequence", [0, 1, MAX_SEQUENCE - 1, MAX_SEQUENCE])
def test_every_ten_digit_sequence_is_accepted_and_round_trips(sequence):
    original = version("a", 5.0, sequence)
    assert original.order_key == f"{sequence:010d}" + '"a"'
    assert PropertyVersion.from_order_key(original.order_key, 5.0) == original


def test_the_largest_sequence_beats_every_smaller_one_at_equal_timestamps():
    largest = version("a", 5.0, MAX_SEQUENCE)
    for smaller in (0, 9, 10, MAX_SEQUENCE // 10, MAX_SEQUENCE - 1):
        assert wins(largest, version("z", 5.0, smaller))
        assert not wins(version("z", 5.0, smaller), largest)


@pytest.mark.parametrize("sequence", [-1, MAX_SEQUENCE + 1, 10**11])
def test_sequences_outside_ten_digits_are_refused(sequence):
    with pytest.raises(ValueError, match="sequence must be"):
        PropertyVersion('"a"', 1.0, sequence)
