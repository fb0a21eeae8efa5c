"""customer_ids -> one customer, against moto."""

import pytest

from propsync.errors import IdentityConflictError, InvalidCustomerIdsError
from propsync.identity import find_customer_id, resolve_customer
from propsync.store.identities import identity_key
from tests.conftest import PROJECT

OTHER_PROJECT = "11111111-1111-1111-1111-111111111111"


def stale_once(store, monkeypatch, keep):
    """The next lookup answers as if it ran before other commands' claims:
    it shows only the owners ``keep(pair, owner)`` accepts; later lookups are
    real (a command that loses a claim looks again)."""
    real_lookup = store.identities.lookup
    calls = []

    def lookup(project, ids):
        found = real_lookup(project, ids)
        calls.append(1)
        if len(calls) > 1:
            return found
        return {pair: owner for pair, owner in found.items() if keep(pair, owner)}

    monkeypatch.setattr(store.identities, "lookup", lookup)


def identity_owner(store, id_type, id_value, project=PROJECT):
    return store.identities.lookup(project, [(id_type, id_value)]).get((id_type, id_value))


def test_first_sighting_creates_a_customer_and_later_sightings_find_it(store):
    first = resolve_customer(store, PROJECT, {"registered": "mgalik"})
    again = resolve_customer(store, PROJECT, {"registered": "mgalik"})
    assert first.created
    assert not again.created
    assert again.customer_id == first.customer_id
    assert store.read_customer(PROJECT, first.customer_id).ids == {"registered": ["mgalik"]}


def test_any_known_id_finds_the_customer_and_new_soft_ids_are_added(store, dynamodb_client):
    created = resolve_customer(store, PROJECT, {"registered": "mgalik", "cookie": "c1"})
    by_cookie = resolve_customer(store, PROJECT, {"cookie": "c1"})
    with_new_cookie = resolve_customer(store, PROJECT, {"registered": "mgalik", "cookie": "c2"})

    assert by_cookie.customer_id == with_new_cookie.customer_id == created.customer_id
    assert identity_owner(store, "cookie", "c2") == created.customer_id
    assert store.read_customer(PROJECT, created.customer_id).ids == {
        "registered": ["mgalik"],
        "cookie": ["c1", "c2"],
    }


def test_an_existing_customer_costs_one_batched_read(store, request_log):
    resolve_customer(store, PROJECT, {"registered": "a", "cookie": "b", "email": "c"})
    request_log.clear()
    resolve_customer(store, PROJECT, {"registered": "a", "cookie": "b", "email": "c"})
    assert request_log.counts == {"BatchGetItem": 1}


def test_ids_of_two_customers_merge_them_into_the_older(store):
    jane = resolve_customer(store, PROJECT, {"registered": "jane"})
    anonymous = resolve_customer(store, PROJECT, {"cookie": "johns-cookie"})

    login = resolve_customer(store, PROJECT, {"registered": "jane", "cookie": "johns-cookie"})

    assert (login.customer_id, login.merged) == (jane.customer_id, (anonymous.customer_id,))
    assert store.read_customer(PROJECT, jane.customer_id).ids == {
        "registered": ["jane"],
        "cookie": ["johns-cookie"],
    }
    assert identity_owner(store, "cookie", "johns-cookie") == jane.customer_id
    assert store.read_customer(PROJECT, anonymous.customer_id).merged_into == jane.customer_id


def test_a_soft_id_of_a_customer_with_another_hard_id_moves(store):
    jane = resolve_customer(store, PROJECT, {"registered": "jane", "cookie": "c"})

    janet = resolve_customer(store, PROJECT, {"registered": "janet", "cookie": "c"})

    assert janet.created
    assert janet.customer_id != jane.customer_id
    assert janet.moved_ids == (("cookie", "c"),)
    assert identity_owner(store, "cookie", "c") == janet.customer_id
    assert store.read_customer(PROJECT, jane.customer_id).ids == {"registered": ["jane"]}
    assert store.read_customer(PROJECT, janet.customer_id).ids == {
        "registered": ["janet"],
        "cookie": ["c"],
    }


def test_a_soft_id_customer_can_later_get_its_hard_id(store):
    anonymous = resolve_customer(store, PROJECT, {"cookie": "c"})
    registered = resolve_customer(store, PROJECT, {"cookie": "c", "registered": "jane"})
    assert registered.customer_id == anonymous.customer_id
    assert resolve_customer(store, PROJECT, {"registered": "jane"}).customer_id == (
        anonymous.customer_id
    )


def test_concurrent_first_sightings_end_with_one_customer(store, monkeypatch):
    """Both requests look up the id before either claims it (the race); the
    conditional put on the identity item lets only one customer be born."""
    first = resolve_customer(store, PROJECT, {"registered": "race", "cookie": "c1"})
    stale_once(store, monkeypatch, lambda pair, owner: False)
    second = resolve_customer(store, PROJECT, {"registered": "race", "cookie": "c2"})

    assert first.created is True
    assert second.created is False
    assert second.customer_id == first.customer_id
    assert store.read_customer(PROJECT, first.customer_id).ids == {
        "registered": ["race"],
        "cookie": ["c1", "c2"],
    }


def test_a_soft_id_claimed_meanwhile_by_a_customer_with_another_hard_id_moves(store, monkeypatch):
    jane = resolve_customer(store, PROJECT, {"registered": "jane"})
    john = resolve_customer(store, PROJECT, {"registered": "john", "cookie": "shared"})
    # jane's command looked up before john's command claimed the cookie: its
    # claim loses, it looks again, and the rules move the cookie to jane
    stale_once(store, monkeypatch, lambda pair, owner: pair[0] != "cookie")

    login = resolve_customer(store, PROJECT, {"registered": "jane", "cookie": "shared"})

    assert (login.customer_id, login.moved_ids) == (jane.customer_id, (("cookie", "shared"),))
    assert identity_owner(store, "cookie", "shared") == jane.customer_id
    assert store.read_customer(PROJECT, john.customer_id).ids == {"registered": ["john"]}


def test_projects_do_not_share_customers(store):
    mine = resolve_customer(store, PROJECT, {"registered": "same"})
    theirs = resolve_customer(store, OTHER_PROJECT, {"registered": "same"})
    assert theirs.created
    assert theirs.customer_id != mine.customer_id
    assert store.read_customer(OTHER_PROJECT, mine.customer_id) is None


def test_id_values_with_separator_characters_stay_distinct(store):
    a = resolve_customer(store, PROJECT, {"registered": "a#b"})
    b = resolve_customer(store, PROJECT, {"registered": "a"})
    assert a.customer_id != b.customer_id


def test_owners_looked_up_for_a_whole_batch_are_not_read_again(store, request_log):
    created = resolve_customer(store, PROJECT, {"registered": "batched"})
    pairs = [("registered", "batched"), ("cookie", "new")]
    found = store.identities.lookup(PROJECT, pairs)
    known = {pair: found.get(pair) for pair in pairs}  # None: looked up, not found
    request_log.clear()

    again = resolve_customer(store, PROJECT, {"registered": "batched"}, known_owners=known)
    new = resolve_customer(store, PROJECT, {"cookie": "new"}, known_owners=known)

    assert again.customer_id == created.customer_id
    assert new.created
    assert request_log.reads == 0


def test_an_id_released_during_a_claim_is_claimed_again(store, dynamodb_client, table_name):
    """The conditional put fails, but the owner is gone when we read it."""
    dynamodb_client.put_item(
        TableName=table_name,
        Item={"pk": {"S": identity_key(PROJECT, "cookie", "c")}, "cid": {"S": "someone"}},
    )

    released = []

    def release_before_read(parsed, **_kwargs):
        if released:
            return
        released.append(True)
        parsed.pop("Item", None)
        dynamodb_client.delete_item(  # the owner gives the id up
            TableName=table_name, Key={"pk": {"S": identity_key(PROJECT, "cookie", "c")}}
        )

    dynamodb_client.meta.events.register("after-call.dynamodb.PutItem", release_before_read)
    assert store.identities.claim(PROJECT, "cookie", "c", "me") == "me"
    assert identity_owner(store, "cookie", "c") == "me"


TWO_HARD = frozenset({"registered", "email"})


def test_customers_with_different_hard_ids_never_merge(store):
    jane = resolve_customer(store, PROJECT, {"registered": "jane"}, hard_id_types=TWO_HARD)
    john = resolve_customer(
        store, PROJECT, {"registered": "john", "email": "j@x"}, hard_id_types=TWO_HARD
    )

    with pytest.raises(IdentityConflictError) as raised:
        resolve_customer(
            store, PROJECT, {"registered": "jane", "email": "j@x"}, hard_id_types=TWO_HARD
        )

    assert str(raised.value) == (
        "customer_ids name customers with different values of a hard id (the command names "
        f"email='j@x', registered='jane'; {jane.customer_id} holds registered='jane'; "
        f"{john.customer_id} holds email='j@x', another registered); customers with different "
        "hard ids are never merged"
    )
    assert store.read_customer(PROJECT, jane.customer_id).ids == {"registered": ["jane"]}
    assert store.read_customer(PROJECT, john.customer_id).merged_into is None


def test_ids_claimed_meanwhile_by_an_anonymous_customer_merge_it(store, monkeypatch):
    jane = resolve_customer(store, PROJECT, {"registered": "jane"}).customer_id
    john = resolve_customer(store, PROJECT, {"cookie": "c1", "email": "j@x"}).customer_id
    # jane's command looked up before john claimed his ids
    stale_once(store, monkeypatch, lambda pair, owner: owner != john)

    login = resolve_customer(store, PROJECT, {"registered": "jane", "cookie": "c1", "email": "j@x"})

    assert (login.customer_id, login.merged) == (jane, (john,))
    assert store.read_customer(PROJECT, jane).ids == {
        "registered": ["jane"],
        "cookie": ["c1"],
        "email": ["j@x"],
    }


def test_find_customer_id_reads_an_id_and_creates_nothing(store, request_log):
    created = resolve_customer(store, PROJECT, {"registered": "known"}).customer_id
    request_log.clear()

    assert find_customer_id(store, PROJECT, "registered", "known") == created
    assert find_customer_id(store, PROJECT, "registered", "unknown") is None
    assert find_customer_id(store, OTHER_PROJECT, "registered", "known") is None
    assert request_log.writes == 0
    with pytest.raises(InvalidCustomerIdsError, match="id type 'a b'"):
        find_customer_id(store, PROJECT, "a b", "known")
