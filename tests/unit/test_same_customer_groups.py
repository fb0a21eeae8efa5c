"""Which updates of a batch may meet on one customer (tracking commands and
import rows alike): those must be written one after another, the rest may run
concurrently."""

from hypothesis import given, settings
from hypothesis import strategies as st

from propsync.customer_updates import same_customer_groups, with_owner

id_pairs = st.tuples(st.sampled_from(["registered", "cookie"]), st.sampled_from("abcd"))
id_sets = st.dictionaries(
    st.integers(0, 30),
    st.dictionaries(st.sampled_from(["registered", "cookie"]), st.sampled_from("abcd"), min_size=1),
    max_size=12,
)
owners = st.dictionaries(id_pairs, st.sampled_from(["C1", "C2", None]), max_size=6)


def _tokens(ids, known):
    pairs = set(ids.items())
    return pairs | {known[p] for p in pairs if known and known.get(p) is not None}


@settings(max_examples=300)
@given(id_sets=id_sets, known=st.one_of(st.none(), owners))
def test_groups_are_exactly_the_updates_that_can_meet_on_one_customer(id_sets, known):
    groups = same_customer_groups(id_sets, known)
    assert sorted(i for group in groups for i in group) == sorted(id_sets)  # each once
    assert all(group == sorted(group) for group in groups)  # in batch order
    # no two groups share an id or a known owner ...
    tokens = [set().union(*(_tokens(id_sets[i], known) for i in group)) for group in groups]
    for a, first in enumerate(tokens):
        for second in tokens[a + 1 :]:
            assert not first & second
    # ... and each group is connected: no smaller split would do
    for group in groups:
        reached, frontier = {group[0]}, [group[0]]
        while frontier:
            current = frontier.pop()
            for other in group:
                if other not in reached and _tokens(id_sets[current], known) & _tokens(
                    id_sets[other], known
                ):
                    reached.add(other)
                    frontier.append(other)
        assert reached == set(group)


def test_an_anonymous_row_and_its_login_are_one_group():
    groups = same_customer_groups(
        {0: {"cookie": "c1"}, 1: {"registered": "anna"}, 2: {"cookie": "c1", "registered": "x"}},
        None,
    )
    assert groups == [[0, 2], [1]]


def test_ids_one_known_customer_owns_are_one_group():
    known = {("cookie", "c1"): "C1", ("registered", "anna"): "C1", ("cookie", "c2"): None}
    groups = same_customer_groups(
        {0: {"cookie": "c1"}, 1: {"registered": "anna"}, 2: {"cookie": "c2"}}, known
    )
    assert groups == [[0, 1], [2]]


def test_with_owner_gives_a_new_mapping_and_leaves_the_shared_one_alone():
    known = {("cookie", "c1"): None}
    after = with_owner(known, {"cookie": "c1", "registered": "anna"}, "C9")
    assert after == {("cookie", "c1"): "C9", ("registered", "anna"): "C9"}
    assert known == {("cookie", "c1"): None}
    assert with_owner(None, {"cookie": "c1"}, "C9") is None
