"""identity.plan_resolution, the rules of identification as a pure function,
against any command's ids, any owners of them, and any ids those owners
hold (as the store can hold them: at most one value of a hard id type per
customer; the owner of a hard id holds that value or, if its first write
failed after its claim, nothing of that type)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from propsync.errors import IdentityConflictError
from propsync.identity import plan_resolution

ID_TYPES = ("registered", "email", "cookie", "device")
VALUES = ("v1", "v2", "v3")
CUSTOMERS = ("C1", "C2", "C3", "C4")  # sorted as ULIDs are: by creation
HARD_TYPE_SETS = (frozenset({"registered"}), frozenset({"registered", "email"}))
PLANS = settings(max_examples=400, deadline=None)


@st.composite
def situations(draw):
    """(ids, owners, held, hard_id_types) as a command and the store may present them."""
    hard = draw(st.sampled_from(HARD_TYPE_SETS))
    ids = draw(st.dictionaries(st.sampled_from(ID_TYPES), st.sampled_from(VALUES), min_size=1))
    owners = {
        pair: owner
        for pair in ids.items()
        if (owner := draw(st.none() | st.sampled_from(CUSTOMERS))) is not None
    }
    held = {}
    for customer in sorted(set(owners.values())):
        owned = {t: v for (t, v), o in owners.items() if o == customer}
        ids_held: dict[str, list[str]] = {}
        for id_type in ID_TYPES:
            if id_type in hard:
                if id_type in owned:  # its own value, or none (first write failed)
                    choices = [[owned[id_type]], []]
                else:
                    choices = [[], *([v] for v in VALUES)]
                values = draw(st.sampled_from(choices))
            else:
                values = draw(st.lists(st.sampled_from(VALUES), unique=True, max_size=2))
                if id_type in owned and draw(st.booleans()):
                    values = sorted({*values, owned[id_type]})
            if values:
                ids_held[id_type] = values
        held[customer] = ids_held
    return ids, owners, held, hard


def hard_values(customers, held, hard, command_ids):
    """Hard id type -> every value the command and these customers hold."""
    values: dict[str, set[str]] = {t: {v} for t, v in command_ids.items() if t in hard}
    for customer in customers:
        for id_type, held_values in held[customer].items():
            if id_type in hard:
                values.setdefault(id_type, set()).update(held_values)
    return values


def _assert_names_only_sent_values(message, ids, held, hard):
    """A refusal names no hard id value the command did not send: it is
    another person's, and the public tracking route answers the refusal."""
    sent = set(ids.values())
    others = {v for c in held.values() for t, vs in c.items() if t in hard for v in vs} - sent
    assert not any(f"={v!r}" in message for v in others), message


@PLANS
@given(situations())
def test_the_plan_follows_the_rules_of_identification(situation):
    ids, owners, held, hard = situation
    identified = {o for (t, _v), o in owners.items() if t in hard}
    disagree = any(
        len(v) > 1 for v in hard_values(identified, held, hard, ids).values()
    )  # the customers holding the command's hard ids, with the command's hard ids

    named = {t: v for t, v in ids.items() if t in hard}
    try:
        plan = plan_resolution(ids, owners, held, hard)
    except IdentityConflictError as refused:
        _assert_names_only_sent_values(str(refused), ids, held, hard)
        # the customers the command identifies disagree, or another owner
        # disagrees with them on a hard id type the command does not name
        # (which customer is meant cannot be told, so nothing moves)
        assert disagree or any(
            t not in named and set(values) != set(held[other].get(t, values))
            for customer in set(owners.values()) - identified
            for other in set(owners.values()) - {customer}
            for t, values in held[customer].items()
            if t in hard
        )
        return
    assert not disagree

    group = set() if plan.destination is None else {plan.destination, *plan.merged}
    assert identified <= group <= set(owners.values())
    # the destination is the oldest of the customers that merge
    if group:
        assert plan.destination == min(group)
        assert plan.merged == tuple(sorted(group - {plan.destination}))
    else:
        assert plan.merged == ()
        assert plan.unowned  # a new customer is created from ids nobody holds
    # no two values of one hard id type end on the destination
    merged_hard = hard_values(group, held, hard, ids)
    assert all(len(values) == 1 for values in merged_hard.values())
    assert plan.hard_ids == {t: next(iter(merged_hard.get(t, {None}))) for t in sorted(hard)}
    # the command's ids held by owners that do not merge move; no hard id
    # moves, and nobody holding one of the command's hard ids is moved from
    assert plan.moved == {pair: o for pair, o in owners.items() if o not in group}
    assert not any(t in hard for t, _v in plan.moved)
    assert not set(plan.moved.values()) & identified
    # and an owner stays out only when it holds another value of a hard id
    # type the command names
    for outsider in set(plan.moved.values()):
        assert any(len(v) > 1 for v in hard_values([*group, outsider], held, hard, ids).values())
        assert any(set(held[outsider].get(t, [v])) != {v} for t, v in named.items()), outsider
    assert plan.unowned == {t: v for t, v in ids.items() if (t, v) not in owners}
