"""Erasure against the store, on each engine: what an erasure leaves, the
rule every later write meets, and writes that race an erasure (before it,
during it, after a crash in the middle of it)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from propsync import erasure
from propsync.customer_updates import update_customer
from propsync.identity import new_customer_id
from propsync.merging import read_following_merges
from propsync.store.conditional import CustomerErased
from propsync.store.customers import CustomerStore
from tests.conftest import PROJECT
from tests.support.faults import Crash, CrashAt
from tests.support.servers import dynamodb_client_for

ERASED_AT = 1_700_000_100.0
BEFORE = ERASED_AT - 100  # the time of the late updates
AFTER = ERASED_AT + 100
IDS = {"registered": "ida", "cookie": "ida-phone"}


def update(store, ids, properties, timestamp, received_at=AFTER + 1000):
    return update_customer(
        store,
        PROJECT,
        ids,
        properties,
        update_timestamp=timestamp,
        received_at=received_at,
    )


def table_text(client, table) -> str:
    items = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items += page["Items"]
    return json.dumps(items)


def identity_keys(client, table) -> list[str]:
    return [
        key
        for key in (i["pk"]["S"] for i in json.loads(table_text(client, table)))
        if key.startswith(f"{PROJECT}#id#")
    ]


def test_an_update_held_back_by_an_erasure_costs_no_request_more(store, request_log):
    """Erasure marks are read with the identity items, by the same BatchGetItem."""
    update(store, IDS, {"a": 1}, BEFORE - 10)
    assert erasure.anonymize(store, PROJECT, {"registered": "ida"}, ERASED_AT)
    request_log.clear()
    result = update(store, IDS, {"a": 2}, BEFORE)
    assert result.customer_id is None
    assert result.erased_id_types == ("cookie", "registered")
    assert result.stale == ("a",)
    assert request_log.counts == {"BatchGetItem": 1}


def test_an_update_of_an_id_never_erased_costs_what_it_did(store, request_log):
    update(store, IDS, {"a": 1}, BEFORE)
    request_log.clear()
    update(store, IDS, {"a": 2}, AFTER)
    assert request_log.counts == {"BatchGetItem": 1, "UpdateItem": 1}


def test_an_id_whose_customer_was_never_written_is_erased_too(store, dynamodb_client, table_name):
    """The first write of a new customer failed after its id was claimed: the
    identity item is all there is, and the erasure takes it."""
    ghost = new_customer_id()
    assert store.identities.claim(PROJECT, "registered", "ghost-id", ghost) == ghost
    assert erasure.anonymize(store, PROJECT, {"registered": "ghost-id"}, ERASED_AT)
    assert "ghost-id" not in table_text(dynamodb_client, table_name)
    assert update(store, {"registered": "ghost-id"}, {"a": 1}, BEFORE).customer_id is None
    assert read_following_merges(store, PROJECT, ghost) is None


def test_a_tie_goes_to_the_erasure(store):
    update(store, IDS, {"a": 1}, BEFORE)
    erasure.anonymize(store, PROJECT, IDS, ERASED_AT)
    assert update(store, IDS, {"a": 2}, ERASED_AT).customer_id is None
    assert update(store, IDS, {"a": 3}, ERASED_AT + 0.001).customer_id is not None


def test_an_erasure_keeps_the_later_time_of_two(store):
    update(store, IDS, {"a": 1}, BEFORE)
    erasure.anonymize(store, PROJECT, IDS, ERASED_AT)
    update(store, IDS, {"a": 2}, AFTER)  # a new customer, erased in turn
    assert erasure.anonymize(store, PROJECT, IDS, AFTER + 10)
    assert update(store, IDS, {"a": 3}, AFTER + 5).customer_id is None
    _, erased = erasure.look_up(store, PROJECT, IDS.items())
    assert set(erased.values()) == {AFTER + 10}
    # an older erasure repeated later does not move the time back
    erasure.anonymize(store, PROJECT, IDS, ERASED_AT)
    assert set(erasure.look_up(store, PROJECT, IDS.items())[1].values()) == {AFTER + 10}


def test_a_write_that_resolved_the_customer_before_the_erasure_fails_and_is_held_back(
    store, dynamodb_client, table_name
):
    """The write looked the ids up before the erasure, and writes after it:
    the erased item refuses it, the write looks again and meets the rule."""
    first = update(store, IDS, {"a": 1}, BEFORE - 10)
    known = dict.fromkeys(IDS.items(), first.customer_id)
    erasure.anonymize(store, PROJECT, IDS, ERASED_AT)
    late = update_customer(
        store,
        PROJECT,
        IDS,
        {"a": 2},
        update_timestamp=BEFORE,
        received_at=AFTER,
        known_owners=known,
        known_erasures={},
    )
    assert late.customer_id is None
    assert "ida" not in table_text(dynamodb_client, table_name)


def test_an_id_attached_while_the_erasure_ran_is_erased_too(store, dynamodb_client, table_name):
    """A write gave the customer a new id after the erasure read it and before
    it replaced the item: the replaced item tells, and that id goes too."""
    customer = update(store, IDS, {"a": 1}, BEFORE).customer_id
    real_merged_into = erasure._merged_into

    def racing_write(store_, project, record):
        store.identities.add_to_customer(PROJECT, customer, {"cookie": ["ida-laptop"]}, frozenset())
        assert store.identities.claim(PROJECT, "cookie", "ida-laptop", customer) == customer
        return real_merged_into(store_, project, record)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(erasure, "_merged_into", racing_write)
        assert erasure.anonymize(store, PROJECT, {"registered": "ida"}, ERASED_AT)
    assert "ida-laptop" not in table_text(dynamodb_client, table_name)
    assert update(store, {"cookie": "ida-laptop"}, {"a": 2}, BEFORE).customer_id is None


@pytest.mark.parametrize("named", [("registered",), ("registered", "cookie")])
def test_a_crash_before_any_request_of_an_erasure_is_completed_by_its_retry(
    store, dynamodb_client, table_name, named
):
    """The erasure dies before its 1st, 2nd, ... request (each time for
    another person); a late write comes between the crash and the client's
    retry. After the retry nothing of the person is left, and a late update
    is held back."""
    crash = CrashAt().attach(dynamodb_client)
    for n in range(1, 40):
        ids = {"registered": f"ida-{n}", "cookie": f"ida-phone-{n}"}
        update(store, ids, {"a": f"secret-{n}"}, BEFORE)
        request = {t: ids[t] for t in named}
        crash.arm(n)
        try:
            erasure.anonymize(store, PROJECT, request, ERASED_AT)
            crashed = False
        except Crash:
            crashed = True
        crash.recover()
        update(store, {"cookie": ids["cookie"]}, {"b": f"secret-late-{n}"}, BEFORE + 1)
        assert erasure.anonymize(store, PROJECT, request, ERASED_AT)
        assert update(store, ids, {"c": 1}, BEFORE + 2).customer_id is None
        text = table_text(dynamodb_client, table_name)
        assert "secret-" not in text, n
        assert "ida-" not in text, n
        if not crashed:
            break  # the erasure made fewer than n requests: every point was tried
    else:
        pytest.fail("the erasure never finished without crashing")


def test_merging_into_an_erased_customer_is_refused_and_looked_at_again(store):
    update(store, {"registered": "ida"}, {"a": 1}, BEFORE)
    update(store, {"cookie": "anon"}, {"b": 1}, BEFORE)
    erasure.anonymize(store, PROJECT, {"registered": "ida"}, ERASED_AT)
    # a late login (before the erasure): held back, the anonymous profile untouched
    login = update(store, {"registered": "ida", "cookie": "anon"}, {"c": 1}, BEFORE + 1)
    assert login.customer_id is None
    anon = erasure.look_up(store, PROJECT, [("cookie", "anon")])[0][("cookie", "anon")]
    record = read_following_merges(store, PROJECT, anon)
    assert record is not None
    assert set(record.properties) == {"b"}
    # a newer login merges the anonymous profile into a new customer
    newer = update(store, {"registered": "ida", "cookie": "anon"}, {"c": 2}, AFTER)
    merged = read_following_merges(store, PROJECT, newer.customer_id)
    assert merged is not None
    assert set(merged.properties) == {"b", "c"}


def test_the_final_customer_of_an_erased_chain_is_erased(store):
    update(store, {"cookie": "anon"}, {"b": 1}, BEFORE)
    update(store, {"registered": "ida"}, {"a": 1}, BEFORE)
    joined = update(store, {"registered": "ida", "cookie": "anon"}, {}, BEFORE + 1)
    erasure.anonymize(store, PROJECT, {"cookie": "anon"}, ERASED_AT)
    from propsync.merging import final_customer  # noqa: PLC0415

    with pytest.raises(CustomerErased):
        final_customer(store, PROJECT, joined.customer_id)


WRITERS = 4
WRITES_EACH = 8


@pytest.mark.parametrize("run", range(3))
def test_late_writes_racing_an_erasure_leave_nothing_of_the_person(
    store, dynamodb_client, table_name, run
):
    """Writers keep sending updates from before the erasure (the person's
    ids, some with a new cookie) while it runs. Whatever the interleaving,
    nothing of the person is left: no value, no id, no customer to read."""
    update(store, IDS, {"name": "value-0"}, BEFORE - 50)
    start = threading.Barrier(WRITERS + 1)

    def writer(number: int) -> None:
        start.wait()
        for step in range(WRITES_EACH):
            ids = [IDS, {"registered": "ida"}, {"cookie": "ida-phone"}][step % 3]
            if step % 4 == 1:  # the person seen on a new device
                ids = {"registered": "ida", "cookie": f"ida-cookie-{number}-{step}"}
            update(store, ids, {"name": f"value-{number}-{step}"}, BEFORE + step)

    with ThreadPoolExecutor(WRITERS) as pool:
        futures = [pool.submit(writer, n) for n in range(WRITERS)]
        start.wait()
        assert erasure.anonymize(store, PROJECT, {"registered": "ida"}, ERASED_AT)
        for future in futures:
            future.result()
    text = table_text(dynamodb_client, table_name)
    assert "value-" not in text, [i for i in json.loads(text) if "value-" in json.dumps(i)]
    assert "ida" not in text, identity_keys(dynamodb_client, table_name)


class _EraseBeforeRequest:
    """A botocore hook: before the n-th request of the client it watches,
    run ``erase`` (with another client) once."""

    def __init__(self, n: int, erase):
        self.n, self.erase, self.sent, self.fired = n, erase, 0, False

    def __call__(self, **_kwargs):
        self.sent += 1
        if self.sent == self.n and not self.fired:
            self.fired = True
            self.erase()


@pytest.mark.parametrize("older", ["cookie", "registered"])
def test_an_erasure_at_any_point_of_a_login_that_merges_the_person_leaves_nothing(
    store, dynamodb_client, dynamodb_endpoint, table_name, older
):
    """A login older than the erasure merges the person's registered profile
    and an anonymous one (either the older, so either is the destination);
    the erasure of the registered id runs before the login's 1st, 2nd, ...
    request. Whatever the point, the result is one of the two orders: the
    login first (the merged customer erased) or the erasure first (the login
    held back): nothing of the registered person or of the login is left,
    and the erased id reads nothing."""
    eraser = CustomerStore(dynamodb_client_for(dynamodb_endpoint), table_name)
    for n in range(1, 80):
        tag = f"{older[0]}{n}"
        ids = {"registered": f"{tag}-reg", "cookie": f"{tag}-ck"}
        first, second = ("cookie", "registered") if older == "cookie" else ("registered", "cookie")
        update(store, {first: ids[first]}, {f"{first}_data": f"{tag}-data-1"}, BEFORE - 60)
        time.sleep(0.002)  # ULIDs a few milliseconds apart: the first is the older
        update(store, {second: ids[second]}, {f"{second}_data": f"{tag}-data-2"}, BEFORE - 50)
        named = {"registered": ids["registered"]}
        hook = _EraseBeforeRequest(
            n, lambda named=named: erasure.anonymize(eraser, PROJECT, named, ERASED_AT)
        )
        dynamodb_client.meta.events.register("before-send.dynamodb", hook)
        try:
            update(store, ids, {"login": f"{tag}-login"}, BEFORE)
        finally:
            dynamodb_client.meta.events.unregister("before-send.dynamodb", hook)
        if not hook.fired:  # the login made fewer than n requests: erase after it
            assert erasure.anonymize(eraser, PROJECT, named, ERASED_AT)
        text = table_text(dynamodb_client, table_name)
        assert f"{tag}-reg" not in text, n
        assert f"{tag}-login" not in text, n
        assert f"{tag}-data-{1 if first == 'registered' else 2}" not in text, n
        owners, _ = erasure.look_up(store, PROJECT, [("registered", ids["registered"])])
        assert owners == {}, n
        if not hook.fired:
            break  # every point of the login was tried
    else:
        pytest.fail("the login never finished before the erasure's turn")
