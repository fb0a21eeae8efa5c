"""Merging at the edges a first trial of it found: merges of customers with no
hard id, merges too large for one item, long chains of merges, an id claimed
while its customer was merged away, customers that disagree on a hard id the
command does not name, two commands completing one merge, and the conflict
message for one customer. Both engines."""

import pytest

from propsync.customer_updates import update_customer
from propsync.customer_view import plain_properties
from propsync.errors import CustomerTooLargeError, IdentityConflictError
from propsync.identity import resolve_customer
from propsync.merging import read_following_merges
from tests.conftest import PROJECT

TWO_HARD = frozenset({"registered", "crm_id"})


def owner(store, id_type, value):
    return store.identities.lookup(PROJECT, [(id_type, value)]).get((id_type, value))


def track(store, ids, properties, timestamp, hard_id_types=frozenset({"registered"})):
    return update_customer(
        store,
        PROJECT,
        ids,
        properties,
        update_timestamp=timestamp,
        received_at=2e9,
        hard_id_types=hard_id_types,
    )


def test_customers_without_any_hard_id_merge(store):
    """Before the fix the mark's request carried an unused value whenever no
    hard id was involved: DynamoDB refused it, every time."""
    by_cookie = track(store, {"cookie": "m1-c"}, {"a": 1}, 1000)
    by_email = track(store, {"email": "m1-e"}, {"b": 1}, 1000)

    both = track(store, {"cookie": "m1-c", "email": "m1-e"}, {"c": 1}, 1001)

    assert (both.customer_id, both.merged) == (by_cookie.customer_id, (by_email.customer_id,))
    merged = store.read_customer(PROJECT, by_cookie.customer_id)
    assert plain_properties(merged) == {"a": 1, "b": 1, "c": 1}
    assert merged.ids == {"cookie": ["m1-c"], "email": ["m1-e"]}
    assert owner(store, "email", "m1-e") == by_cookie.customer_id


def test_a_merge_too_large_for_one_item_is_refused_and_changes_nothing(store):
    big = '"' + "x" * 15_000 + '"'
    account = track(store, {"registered": "big-r"}, {f"r{i}": big[1:-1] for i in range(18)}, 10)
    anonymous = track(store, {"cookie": "big-c"}, {f"c{i}": big[1:-1] for i in range(18)}, 10)
    before = {
        c: store.read_customer(PROJECT, c) for c in (account.customer_id, anonymous.customer_id)
    }

    with pytest.raises(CustomerTooLargeError, match="merging these customers would exceed"):
        track(store, {"registered": "big-r", "cookie": "big-c"}, {"login": True}, 20)

    for customer, record in before.items():
        assert store.read_customer(PROJECT, customer) == record
    assert track(store, {"cookie": "big-c"}, {"small": 1}, 30).customer_id == (
        anonymous.customer_id
    )


def test_a_long_chain_of_merges_reads_and_is_shortened(store, request_log):
    customers = [
        track(store, {"cookie": f"chain-{i}"}, {f"p{i}": i}, 10).customer_id for i in range(20)
    ]
    # each newer customer merged into the one before it: 19 <- 18 <- ... <- 0
    for i in range(19, 0, -1):
        track(store, {"cookie": f"chain-{i - 1}", "session": f"s{i}"}, {}, 10)
        track(store, {"cookie": f"chain-{i}", "session": f"s{i}"}, {}, 10)

    record = read_following_merges(store, PROJECT, customers[19])

    assert record.customer_id == customers[0]
    assert plain_properties(record) == {f"p{i}": i for i in range(20)}
    request_log.clear()
    assert read_following_merges(store, PROJECT, customers[19]).customer_id == customers[0]
    assert request_log.counts == {"GetItem": 2}  # one hop now


def test_an_id_claimed_while_its_customer_is_merged_away_is_repointed(store, monkeypatch):
    """{cookie: c, email: e} records e on the anonymous customer; before it
    claims e, a login merges that customer away."""
    account = resolve_customer(store, PROJECT, {"registered": "R"}).customer_id
    anonymous = resolve_customer(store, PROJECT, {"cookie": "c"}).customer_id
    real_claim = store.identities.claim
    raced = []

    def claim(project, id_type, id_value, customer_id):
        if (id_type, id_value) == ("email", "e") and not raced:
            raced.append(True)
            resolve_customer(store, PROJECT, {"registered": "R", "cookie": "c"})
        return real_claim(project, id_type, id_value, customer_id)

    monkeypatch.setattr(store.identities, "claim", claim)
    first = resolve_customer(store, PROJECT, {"cookie": "c", "email": "e"})
    monkeypatch.undo()

    assert raced
    assert first.customer_id == account
    assert owner(store, "email", "e") == account
    assert "e" in store.read_customer(PROJECT, account).ids["email"]
    assert resolve_customer(store, PROJECT, {"email": "e", "session": "s1"}).customer_id == account
    assert read_following_merges(store, PROJECT, anonymous).customer_id == account


def test_soft_ids_of_customers_with_different_hard_ids_merge_nothing_and_move_nothing(store):
    """The command names no hard id: which account is meant cannot be told."""
    first = resolve_customer(store, PROJECT, {"registered": "r1", "email": "e1"}).customer_id
    second = resolve_customer(store, PROJECT, {"registered": "r2", "cookie": "c2"}).customer_id

    with pytest.raises(IdentityConflictError, match="never merged"):
        resolve_customer(store, PROJECT, {"cookie": "c2", "email": "e1"})

    assert owner(store, "cookie", "c2") == second
    assert owner(store, "email", "e1") == first


def test_a_merge_another_command_marked_first_is_not_reported_twice(store, monkeypatch):
    account = resolve_customer(store, PROJECT, {"registered": "anna"}).customer_id
    anonymous = resolve_customer(store, PROJECT, {"cookie": "c1"}).customer_id
    real_mark = store.mark_merged
    others = []

    def mark_merged(project, customer_id, destination, hard_ids):
        if not others:  # the same login, a moment earlier, from another request
            others.append(real_mark(project, customer_id, destination, hard_ids))
        return real_mark(project, customer_id, destination, hard_ids)

    monkeypatch.setattr(store, "mark_merged", mark_merged)
    login = resolve_customer(store, PROJECT, {"registered": "anna", "cookie": "c1"})

    assert others[0].marked is True
    assert (login.customer_id, login.merged) == (account, ())
    assert read_following_merges(store, PROJECT, anonymous).customer_id == account


def test_a_second_value_of_a_hard_id_names_both_values(store):
    customer = resolve_customer(
        store, PROJECT, {"registered": "hc1-r", "crm_id": "hc1-k1"}, hard_id_types=TWO_HARD
    ).customer_id

    with pytest.raises(IdentityConflictError) as raised:
        resolve_customer(
            store, PROJECT, {"registered": "hc1-r", "crm_id": "hc1-k2"}, hard_id_types=TWO_HARD
        )

    assert str(raised.value) == (
        "customer_ids name customers with different values of a hard id (the command names "
        f"crm_id='hc1-k2', registered='hc1-r'; {customer} holds crm_id='hc1-k1', "
        "registered='hc1-r'); customers with different hard ids are never merged"
    )
