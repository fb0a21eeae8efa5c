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
from propsync.limits import MAX_SOFT_IDS_PER_TYPE
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
        f"crm_id='hc1-k2', registered='hc1-r'; {customer} holds another crm_id, "
        "registered='hc1-r'); customers with different hard ids are never merged"
    )


def test_a_merge_whose_destination_grew_too_large_meanwhile_completes_with_what_fits(
    store, monkeypatch, caplog
):
    """The size check passed; by the copy, the account had grown (other
    writers): DynamoDB refuses the copy. The merge must not stay half done
    (the cookie would be locked behind it)."""
    account = track(store, {"registered": "grow-r"}, {"name": "Anna"}, 10).customer_id
    anonymous = track(store, {"cookie": "grow-c"}, {"page": "/shoes"}, 10).customer_id
    copied = {}
    real_write = store.write_properties

    def refuse_the_copy(project, customer_id, updates, **kw):
        if customer_id == account and "page" in updates and not copied:
            copied["refused"] = True
            raise CustomerTooLargeError("too large")
        return real_write(project, customer_id, updates, **kw)

    monkeypatch.setattr(store, "write_properties", refuse_the_copy)
    login = track(store, {"registered": "grow-r", "cookie": "grow-c"}, {}, 30)
    monkeypatch.undo()

    assert copied == {"refused": True}
    assert login.customer_id == account
    source = store.read_customer(PROJECT, anonymous)
    assert (source.merged_into, source.merge_done) == (account, True)
    assert owner(store, "cookie", "grow-c") == account
    assert store.read_customer(PROJECT, account).ids == {
        "cookie": ["grow-c"],
        "registered": ["grow-r"],
    }
    assert "properties left on the source" in caplog.text
    # the cookie is usable: its writes land on the account
    assert track(store, {"cookie": "grow-c"}, {"later": 1}, 40).customer_id == account


def test_a_merge_into_a_customer_merged_on_meanwhile_ends_at_the_end_of_the_chain(store):
    """S was marked merged into D (its merge not completed: a crash), then D
    was merged into E: completing S brings its data and ids to E."""
    e = track(store, {"registered": "e"}, {"from_e": 1}, 10).customer_id
    d = track(store, {"cookie": "d"}, {"from_d": 1}, 10).customer_id
    s = track(store, {"cookie": "s"}, {"from_s": 1}, 10).customer_id
    # the first two steps of merging s into d, then the crash
    store.identities.add_to_customer(PROJECT, d, {"cookie": ["s"]}, frozenset())
    assert store.mark_merged(PROJECT, s, d, {"registered": None}).marked
    track(store, {"registered": "e", "cookie": "d"}, {}, 20)  # d merged into e

    record = read_following_merges(store, PROJECT, s)

    assert record.customer_id == e
    assert plain_properties(record) == {"from_e": 1, "from_d": 1, "from_s": 1}
    assert owner(store, "cookie", "s") == e
    assert "s" in record.ids["cookie"]


def test_a_soft_id_that_moved_elsewhere_while_it_was_being_taken_is_decided_again(
    store, monkeypatch
):
    """anna takes bob's cookie; just before the identity item moves, carl
    takes it: anna's command must not leave the cookie listed on anna."""
    bob = resolve_customer(store, PROJECT, {"registered": "bob", "cookie": "shared"}).customer_id
    carl = resolve_customer(store, PROJECT, {"registered": "carl"}).customer_id
    real_move = store.identities.move
    raced = []

    def carl_first(project, id_type, id_value, holder, destination):
        if not raced and holder == bob:
            raced.append(True)
            assert real_move(project, id_type, id_value, bob, carl)
            store.identities.add_to_customer(project, carl, {id_type: [id_value]}, frozenset())
            store.identities.remove_from_customer(project, bob, {id_type: [id_value]})
        return real_move(project, id_type, id_value, holder, destination)

    monkeypatch.setattr(store.identities, "move", carl_first)
    anna = resolve_customer(store, PROJECT, {"registered": "anna", "cookie": "shared"})
    monkeypatch.undo()

    assert raced
    # anna looked again and took it from carl, by the same rule
    assert owner(store, "cookie", "shared") == anna.customer_id
    assert store.read_customer(PROJECT, anna.customer_id).ids["cookie"] == ["shared"]
    assert "cookie" not in store.read_customer(PROJECT, carl).ids
    assert "cookie" not in store.read_customer(PROJECT, bob).ids


def test_a_source_that_gained_another_hard_id_before_the_mark_is_not_merged(store, monkeypatch):
    """Between the login's read and its mark, the anonymous customer got
    bob's registered id: the mark is refused, the ids the account was given
    for the merge are taken back, and the login decides again (the cookie
    moves; bob's customer stays bob's)."""
    anna = resolve_customer(store, PROJECT, {"registered": "anna"}).customer_id
    anonymous = resolve_customer(store, PROJECT, {"cookie": "c1", "device": "d1"}).customer_id
    real_mark = store.mark_merged
    raced = []

    def bob_first(project, customer_id, destination, hard_ids):
        if not raced:
            raced.append(True)
            assert resolve_customer(store, PROJECT, {"device": "d1", "registered": "bob"})
        return real_mark(project, customer_id, destination, hard_ids)

    monkeypatch.setattr(store, "mark_merged", bob_first)
    login = resolve_customer(store, PROJECT, {"registered": "anna", "cookie": "c1"})
    monkeypatch.undo()

    assert raced
    assert (login.customer_id, login.merged, login.moved_ids) == (anna, (), (("cookie", "c1"),))
    assert store.read_customer(PROJECT, anna).ids == {"cookie": ["c1"], "registered": ["anna"]}
    bob = store.read_customer(PROJECT, anonymous)
    assert bob.merged_into is None
    assert bob.ids == {"device": ["d1"], "registered": ["bob"]}


def test_a_mark_that_fails_takes_back_the_ids_given_to_the_destination(store, monkeypatch):
    anna = resolve_customer(store, PROJECT, {"registered": "anna"}).customer_id
    anonymous = resolve_customer(store, PROJECT, {"cookie": "c1", "device": "d1"}).customer_id

    def unreachable(*_args, **_kwargs):
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(store, "mark_merged", unreachable)
    with pytest.raises(ConnectionError):
        resolve_customer(store, PROJECT, {"registered": "anna", "cookie": "c1"})
    monkeypatch.undo()

    assert store.read_customer(PROJECT, anna).ids == {"registered": ["anna"]}
    assert store.read_customer(PROJECT, anonymous).merged_into is None
    assert owner(store, "device", "d1") == anonymous


def test_soft_ids_without_a_seen_time_are_dropped_first(store, dynamodb_client, table_name):
    """Ids recorded before seen times existed count as seen longest ago."""
    anna = resolve_customer(store, PROJECT, {"registered": "anna"}).customer_id
    legacy = [f"old{n}" for n in range(3)]
    for value in legacy:  # recorded and claimed as the code before seen times did
        store.identities.add_to_customer(PROJECT, anna, {"cookie": [value]}, frozenset())
        assert store.identities.claim(PROJECT, "cookie", value, anna) == anna
    for n in range(MAX_SOFT_IDS_PER_TYPE - len(legacy)):
        resolve_customer(store, PROJECT, {"registered": "anna", "cookie": f"new{n}"})

    resolve_customer(store, PROJECT, {"registered": "anna", "cookie": "one-more"})

    cookies = store.read_customer(PROJECT, anna).ids["cookie"]
    assert len(cookies) == MAX_SOFT_IDS_PER_TYPE
    assert sum(value in cookies for value in legacy) == len(legacy) - 1
    assert "one-more" in cookies


def test_the_destination_holds_the_sources_hard_id_before_the_mark(store, monkeypatch):
    """The anonymous customer is the older (the destination) and anna's
    account merges into it. A command giving the destination another
    registered id right after the mark must not succeed: step 1 recorded
    anna's on it first, so the other one's cookie moves instead."""
    anonymous = resolve_customer(store, PROJECT, {"cookie": "c0"}).customer_id
    anna = resolve_customer(store, PROJECT, {"registered": "anna"}).customer_id
    real_mark = store.mark_merged
    raced = []

    def zed_after_the_mark(project, customer_id, destination, hard_ids):
        marked = real_mark(project, customer_id, destination, hard_ids)
        if not raced:
            raced.append(resolve_customer(store, PROJECT, {"registered": "zed", "cookie": "c0"}))
        return marked

    monkeypatch.setattr(store, "mark_merged", zed_after_the_mark)
    login = resolve_customer(store, PROJECT, {"registered": "anna", "cookie": "c0"})
    monkeypatch.undo()

    assert (login.customer_id, login.merged) == (anonymous, (anna,))
    assert store.read_customer(PROJECT, anonymous).ids["registered"] == ["anna"]
    zed = raced[0]
    assert zed.customer_id != anonymous
    assert zed.moved_ids == (("cookie", "c0"),)


def test_a_chain_of_unfinished_merges_is_completed_link_by_link(store):
    """s was marked merged into d and d into e, and both crashed right after
    their marks: reading s completes d's merge too, and everything ends at e."""
    e = track(store, {"registered": "e"}, {"from_e": 1}, 10).customer_id
    d = track(store, {"cookie": "d"}, {"from_d": 1}, 10).customer_id
    s = track(store, {"cookie": "s"}, {"from_s": 1}, 10).customer_id
    for source, destination, cookie in ((s, d, "s"), (d, e, "d")):  # steps 1 and 2 only
        store.identities.add_to_customer(PROJECT, destination, {"cookie": [cookie]}, frozenset())
        assert store.mark_merged(PROJECT, source, destination, {"registered": None}).marked

    record = read_following_merges(store, PROJECT, s)

    assert record.customer_id == e
    assert plain_properties(record) == {"from_e": 1, "from_d": 1, "from_s": 1}
    assert owner(store, "cookie", "s") == e
    assert owner(store, "cookie", "d") == e
    for merged_away in (s, d):
        assert store.read_customer(PROJECT, merged_away).merge_done
