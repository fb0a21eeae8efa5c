"""A customer keeps at most 64 values of one soft id type: the one it was
least recently identified by goes (its identity item too, so a later sighting
of it starts a new customer). Both engines."""

import itertools
import types

import pytest

from propsync.customer_updates import update_customer
from propsync.limits import MAX_SOFT_IDS_PER_TYPE
from tests.conftest import PROJECT


@pytest.fixture
def clock(monkeypatch):
    """Every reading of the clock by identity and the write path is one
    second later than the one before, so "least recently" is well defined."""
    ticks = itertools.count(1_000_000)
    fake = types.SimpleNamespace(time=lambda: float(next(ticks)))
    monkeypatch.setattr("propsync.identity.time", fake)
    monkeypatch.setattr("propsync.customer_updates.time", fake)
    return fake


def owner(store, id_type, value):
    return store.identities.lookup(PROJECT, [(id_type, value)]).get((id_type, value))


_visits = itertools.count()


def track(store, ids):
    """A command that stores something (a property write refreshes the seen
    times of the soft ids it names; one that stores nothing does not)."""
    visit = next(_visits)
    return update_customer(
        store, PROJECT, ids, {"visits": visit}, update_timestamp=None, received_at=1e9 + visit
    )


def test_the_65th_cookie_drops_the_least_recently_seen(store, clock):
    anna = track(store, {"registered": "anna", "cookie": "c0"}).customer_id
    for n in range(1, MAX_SOFT_IDS_PER_TYPE):
        track(store, {"registered": "anna", "cookie": f"c{n}"})
    track(store, {"cookie": "c0"})  # c0 seen again: c1 is now the least recent

    track(store, {"registered": "anna", "cookie": "c64"})

    cookies = store.read_customer(PROJECT, anna).ids["cookie"]
    assert len(cookies) == MAX_SOFT_IDS_PER_TYPE
    assert "c1" not in cookies
    assert {"c0", "c64"} <= set(cookies)
    assert owner(store, "cookie", "c1") is None
    assert ("cookie", "c1") not in store.read_customer(PROJECT, anna).seen
    again = track(store, {"cookie": "c1"})  # a later sighting: someone new
    assert again.created
    assert again.customer_id != anna


def test_a_merge_keeps_the_64_most_recently_seen_cookies(store, clock):
    per_side = 40  # 80 cookies meet on one customer
    account = track(store, {"registered": "anna", "cookie": "a0"}).customer_id
    for n in range(1, per_side):
        track(store, {"registered": "anna", "cookie": f"a{n}"})  # seen first
    anonymous = track(store, {"session": "s", "cookie": "b0"}).customer_id
    for n in range(1, per_side):
        track(store, {"session": "s", "cookie": f"b{n}"})  # seen later

    login = track(store, {"registered": "anna", "session": "s"})

    assert (login.customer_id, login.merged) == (account, (anonymous,))
    cookies = set(store.read_customer(PROJECT, account).ids["cookie"])
    dropped = {f"a{n}" for n in range(2 * per_side - MAX_SOFT_IDS_PER_TYPE)}  # a0..a15
    kept = {f"a{n}" for n in range(per_side)} - dropped | {f"b{n}" for n in range(per_side)}
    assert cookies == kept
    assert all(owner(store, "cookie", c) is None for c in dropped)
    assert all(owner(store, "cookie", c) == account for c in kept)
