"""Writers to both sides of a login while it merges them, on each engine (a
single-threaded moto server and dynalite: each item write atomic, as in
DynamoDB): threads update the anonymous customer by its cookie and jane by
her registered id, with few timestamps (many ties), while one login runs, or
two logins of the same pair at once, or a login while the cookie is seen for
the first time. Afterwards the project holds one customer, every identity
item and every customer item leads to it, and it holds the merge rule over
every acknowledged update (tests/support/merge_checks.py)."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from propsync.errors import WriteContentionError
from propsync.identity import find_customer_id
from propsync.merging import read_following_merges
from propsync.store.customers import CustomerStore
from tests.support.faults import CrashAt
from tests.support.merge_checks import (
    Ledger,
    chain_end,
    merge_problems,
    new_project,
    project_items,
)
from tests.support.merge_scenario import (
    COOKIE,
    JANE,
    LOGIN,
    LOGIN_WRITE,
    ORDERS,
    LoginRequests,
    Scenario,
)
from tests.support.servers import dynamodb_client_for

WRITERS_PER_SIDE = 2
UPDATES_PER_WRITER = 6
NAMES = ("a", "b", "c", "d")
VALUES = ("x", "y", "z", None, 1)
TIMESTAMPS = (1.0, 2.0, 3.0)  # few: many ties, decided by the value
SEEDS = (1, 2)  # odd: the anonymous customer is the older


@dataclass(frozen=True)
class Race:
    logins: int
    cookie_known: bool  # False: the cookie's first command runs during the login


RACES = {
    "one login": Race(logins=1, cookie_known=True),
    "two logins at once": Race(logins=2, cookie_known=True),
    "the cookie first seen during the login": Race(logins=1, cookie_known=False),
}


def random_properties(rng: random.Random) -> dict:
    return {name: rng.choice(VALUES) for name in rng.sample(NAMES, rng.randint(1, 3))}


class Progress:
    """How many updates the writers have made; logins start after some."""

    def __init__(self) -> None:
        self._done = 0
        self._changed = threading.Condition()

    def one_more(self) -> None:
        with self._changed:
            self._done += 1
            self._changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self._changed:
            # a hang guard only (the writers always get there): never a timing assertion
            assert self._changed.wait_for(lambda: self._done >= count, timeout=120)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("race", RACES)
def test_writers_to_both_sides_during_a_login_lose_nothing(
    store, dynamodb_client, table_name, race, seed
):
    setup = random.Random(seed)
    project, ledger = new_project(store), Ledger()
    sides = [JANE, COOKIE] if RACES[race].cookie_known else [JANE]
    if seed % 2:  # the anonymous customer is the older one: jane is merged into it
        sides.reverse()
    for ids in sides:
        ledger.update(store, project, ids, random_properties(setup), setup.choice(TIMESTAMPS))
        time.sleep(0.002)  # the next customer's ULID is from a later millisecond
    progress = Progress()
    writers = [COOKIE, JANE] * WRITERS_PER_SIDE
    start = threading.Barrier(len(writers) + RACES[race].logins)
    # An unknown cookie is first seen by one command, racing the login; the
    # other cookie writers wait for it. (Two first commands of a cookie at
    # once during a login: see the test below.)
    cookie_seen = threading.Event()
    if RACES[race].cookie_known:
        cookie_seen.set()

    def write(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        start.wait()
        if writers[index] == COOKIE and index > 0:
            assert cookie_seen.wait(timeout=120)  # a hang guard only
        for _ in range(UPDATES_PER_WRITER):
            properties, timestamp = random_properties(rng), rng.choice(TIMESTAMPS)
            try:
                ledger.update(store, project, writers[index], properties, timestamp)
            except WriteContentionError:
                pass  # a clean failure, recorded as unacknowledged: checked below
            finally:
                if index == 0:
                    cookie_seen.set()
            progress.one_more()

    def login(index: int) -> None:
        rng = random.Random(seed * 1000 + 100 + index)
        start.wait()
        if RACES[race].cookie_known:
            progress.wait_for(rng.randint(0, len(writers) * UPDATES_PER_WRITER // 2))
        ledger.update(store, project, LOGIN, random_properties(rng), rng.choice(TIMESTAMPS))

    with ThreadPoolExecutor(len(writers) + RACES[race].logins) as pool:
        done = [pool.submit(write, i) for i in range(len(writers))]
        done += [pool.submit(login, i) for i in range(RACES[race].logins)]
        for future in done:
            future.result()

    assert_merged(store, dynamodb_client, table_name, project, ledger)


def assert_merged(store, dynamodb_client, table_name, project: str, ledger: Ledger) -> None:
    """One customer in the project, reached from every identity item and
    every customer item, holding the merge rule over every acknowledged
    update; reads and the next login find it."""
    identities, customers = project_items(dynamodb_client, table_name, project)
    owners = store.identities.lookup(project, LOGIN.items())
    final = chain_end(store, project, owners[("registered", "jane")])
    assert {key: chain_end(store, project, owner) for key, owner in identities.items()} == (
        dict.fromkeys(identities, final)
    )
    assert {c: chain_end(store, project, c) for c in customers} == dict.fromkeys(customers, final)
    assert merge_problems(store, project, LOGIN, customers, ledger) == []
    assert ledger.stale_problems() == []
    assert [type(e) for e in ledger.errors] == [WriteContentionError] * len(ledger.errors)
    assert len(ledger.errors) <= 2, ledger.errors  # contention fails a command only rarely
    for pair in LOGIN.items():
        assert find_customer_id(store, project, *pair) == final
    for customer in customers:
        assert read_following_merges(store, project, customer).customer_id == final
    again = ledger.update(store, project, LOGIN, {"after": True}, 4.0)
    assert (again.customer_id, again.merged, again.moved_ids) == (final, (), ())


class PauseAt:
    """Holds a client's n-th request (each HTTP attempt counts) until
    ``release()``: a command stopped between two of its steps while others
    run."""

    def __init__(self) -> None:
        self.sent = 0
        self._at: int | None = None
        self.paused = threading.Event()
        self._resume = threading.Event()

    def attach(self, client) -> PauseAt:
        client.meta.events.register("before-send.dynamodb", self._before_send)
        return self

    def arm(self, n: int) -> None:
        self.sent, self._at = 0, n
        self.paused.clear()
        self._resume.clear()

    def release(self) -> None:
        self._resume.set()

    def _before_send(self, **_kwargs) -> None:
        self.sent += 1
        if self.sent == self._at:
            self.paused.set()
            assert self._resume.wait(timeout=60)  # a hang guard only


@pytest.mark.parametrize("order", ORDERS)
def test_writes_to_either_side_between_any_two_requests_of_the_login_are_kept(
    store, dynamodb_client, dynamodb_endpoint, table_name, request_log, order
):
    """The login stopped before each of its requests in turn while a command
    for the anonymous side and one for jane run to the end: either lands
    before the mark and is copied, or meets the mark and follows it."""
    login_client = dynamodb_client_for(dynamodb_endpoint)
    login_store = CustomerStore(login_client, table_name)
    pause = PauseAt().attach(login_client)
    counter = CrashAt().attach(dynamodb_client)
    requests = LoginRequests.count_them(store, request_log, counter, order)
    left = {}
    for n in range(1, requests.count + 1):
        scenario = Scenario.set_up(store, order)
        pause.arm(n)
        with ThreadPoolExecutor(1) as pool:
            login = pool.submit(
                scenario.ledger.update, login_store, scenario.project, LOGIN, *LOGIN_WRITE
            )
            assert pause.paused.wait(timeout=60)  # a hang guard only
            # newer than everything before, and a tie between the two sides
            scenario.update(COOKIE, ({"a": f"cookie-{n}", "w": "cookie"}, 25.0))
            scenario.update(JANE, ({"b": f"jane-{n}", "w": "jane"}, 25.0))
            pause.release()
            assert login.result().customer_id == scenario.destination
        if problems := scenario.problems():
            left[n] = problems

    assert left == {}


def test_an_id_the_anonymous_customer_claims_during_the_login_stays_usable(
    store, dynamodb_endpoint, table_name
):
    project, ledger = new_project(store), Ledger()
    jane = ledger.update(store, project, JANE, {"a": "jane"}, 1.0).customer_id
    time.sleep(0.002)
    anonymous = ledger.update(store, project, COOKIE, {"b": "anonymous"}, 1.0).customer_id
    # the command with the new id runs on a client of its own, held just
    # before the claim of its new id's identity item
    adder_client = dynamodb_client_for(dynamodb_endpoint)
    adder = CustomerStore(adder_client, table_name)
    at_claim, login_done = threading.Event(), threading.Event()

    def hold_the_claim(**_kwargs) -> None:
        at_claim.set()
        assert login_done.wait(timeout=60)  # a hang guard only

    adder_client.meta.events.register("before-call.dynamodb.PutItem", hold_the_claim)
    with ThreadPoolExecutor(1) as pool:
        adding = pool.submit(
            ledger.update, adder, project, {**COOKIE, "email": "e1"}, {"c": "new id"}, 2.0
        )
        assert at_claim.wait(timeout=60)
        login = ledger.update(store, project, LOGIN, {"d": "login"}, 2.0)
        login_done.set()
        assert adding.result().customer_id == jane
    assert login.merged == (anonymous,)
    # the merge found e1 listed on the anonymous customer but not claimed yet:
    # it claimed it for jane, and the held claim then lost and looked again
    assert store.identities.lookup(project, [("email", "e1")]) == {("email", "e1"): jane}

    ledger.update(store, project, {**JANE, "email": "e1"}, {"e": "later"}, 3.0)

    ids = {**LOGIN, "email": "e1"}
    assert merge_problems(store, project, ids, [jane, anonymous], ledger) == []


def test_a_login_during_the_first_two_commands_of_a_new_cookie_merges_it(
    store, dynamodb_endpoint, table_name
):
    project, ledger = new_project(store), Ledger()
    jane = ledger.update(store, project, JANE, {"a": "jane"}, 1.0).customer_id
    time.sleep(0.002)
    # the cookie's first command, on a client of its own, held after its claim
    # and before the write that records the cookie on its new customer's item
    first_client = dynamodb_client_for(dynamodb_endpoint)
    first = CustomerStore(first_client, table_name)
    at_write, go_on = threading.Event(), threading.Event()

    def hold_the_write(**_kwargs) -> None:
        at_write.set()
        assert go_on.wait(timeout=60)  # a hang guard only

    first_client.meta.events.register("before-call.dynamodb.UpdateItem", hold_the_write)
    with ThreadPoolExecutor(1) as pool:
        seeing = pool.submit(ledger.update, first, project, COOKIE, {"b": "first"}, 2.0)
        assert at_write.wait(timeout=60)
        anonymous = store.identities.lookup(project, COOKIE.items())[("cookie", "c1")]
        second = ledger.update(store, project, COOKIE, {"c": "second"}, 2.0)
        assert second.customer_id == anonymous
        assert store.read_customer(project, anonymous).ids == {}
        try:
            ledger.update(store, project, LOGIN, {"d": "login"}, 2.0)
        finally:
            go_on.set()
            seeing.result()

    assert merge_problems(store, project, LOGIN, [jane, anonymous], ledger) == []
    again = ledger.update(store, project, LOGIN, {"e": "again"}, 3.0)
    assert again.customer_id == jane
