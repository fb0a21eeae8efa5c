"""A login that merges two customers, crashed before each of its requests in
turn, then followed by one other request; and the same login with the answer
of each request lost. Whatever happened, the state is completed by the next
request that reaches the half-merged customer or by a retry of the login, and
ends as one customer holding the merge rule over every acknowledged update
(tests/support/merge_checks.py).

Which request completes which crash (asserted below as a table over every
request of the login, on both engines, with either customer the older):

- crashed before the mark (step 2, ``merged_into`` on the source) was
  written: only a retry of the login merges; other requests leave the two
  customers apart (nothing they acknowledge is lost: the retry merges it in);
- crashed after the mark: any request that reaches the source (its ids, its
  internal id) completes the merge; a request that reaches only the
  destination completes nothing, and until the source's properties are
  copied (step 3) the destination lacks them, until a request reaches the
  source or the login is retried.
"""

from __future__ import annotations

import time

import pytest

from propsync.customer_view import plain_properties
from propsync.merge_rule import merge
from propsync.merging import read_following_merges
from propsync.store.customers import CustomerRecord
from tests.support.faults import Crash, CrashAt, FaultInjector, nth_request
from tests.support.merge_checks import Ledger, merge_problems, new_project
from tests.support.merge_scenario import (
    COOKIE,
    JANE,
    LOGIN,
    LOGIN_WRITE,
    ORDERS,
    LoginRequests,
    Scenario,
)

COOKIE_WRITE = ({"f": "cookie-f", "b": "cookie-b"}, 25.0)
JANE_WRITE = ({"f": "jane-f", "a": "jane-a2"}, 25.0)
AFTER_CRASH = ("retry", "read-anonymous", "cookie-alone", "jane-alone")
LOST_ANSWERS = ("lost-answer-timeout", "lost-answer-reset")
COMPLETE = "complete"
NOT_MERGED = "not merged"
NOT_COPIED = "marked, properties not copied"


def follow_up(scenario: Scenario, what: str) -> None:
    """The one request after the crash."""
    if what == "retry":
        scenario.login()
    elif what == "read-anonymous":
        read_following_merges(scenario.store, scenario.project, scenario.anonymous)
    elif what == "cookie-alone":
        scenario.update(COOKIE, COOKIE_WRITE)
    else:
        scenario.update(JANE, JANE_WRITE)


def outcome(scenario: Scenario) -> str:
    problems = scenario.problems()
    if not problems:
        return COMPLETE
    source = scenario.store.read_customer(scenario.project, scenario.source)
    destination = scenario.store.read_customer(scenario.project, scenario.destination)
    assert source is not None
    assert destination is not None
    if source.merged_into is None and destination.merged_into is None:
        return NOT_MERGED
    if source.merged_into == scenario.destination and not scenario.ledger.property_problems(
        merge(destination.properties, source.properties.items())
    ):
        return NOT_COPIED  # exactly the source's properties are missing
    return "; ".join(problems)


def expected_outcome(requests: LoginRequests, n: int, after_crash: str, order: str) -> str:
    """The outcome of a crash before request ``n``, then ``after_crash``."""
    if after_crash == "retry":
        return COMPLETE
    if n <= requests.mark:
        return NOT_MERGED
    reaches_source = (
        after_crash in ("read-anonymous", "cookie-alone")
        if order == "jane-first"
        else after_crash == "jane-alone"
    )
    return COMPLETE if reaches_source or n > requests.last_copy else NOT_COPIED


@pytest.fixture
def crash(dynamodb_client) -> CrashAt:
    return CrashAt().attach(dynamodb_client)


@pytest.fixture
def _no_backoff_sleep(monkeypatch):
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("after_crash", AFTER_CRASH)
def test_a_login_crashed_before_any_request_is_completed_by_the_next_one(
    store, request_log, crash, order, after_crash
):
    requests = LoginRequests.count_them(store, request_log, crash, order)
    observed, expected, left = {}, {}, {}
    for n in range(1, requests.count + 1):
        scenario = Scenario.set_up(store, order)
        crash.arm(n)
        with pytest.raises(Crash):
            scenario.login()
        crash.recover()

        follow_up(scenario, after_crash)

        observed[n] = outcome(scenario)
        expected[n] = expected_outcome(requests, n, after_crash, order)
        if observed[n] != COMPLETE:
            scenario.login()  # a retry of the command completes every state
            left[n] = scenario.problems()
        if problems := left.pop(n, []) + scenario.reader_problems():
            left[n] = problems

    assert observed == expected
    assert left == {}


@pytest.mark.usefixtures("_no_backoff_sleep")
@pytest.mark.parametrize("order", ORDERS)
def test_a_login_whose_answer_to_any_request_is_lost_completes(
    store, dynamodb_client, request_log, crash, order
):
    """The n-th request reaches the engine, which does the work, and its
    answer is lost; botocore retries it (every step is idempotent)."""
    requests = LoginRequests.count_them(store, request_log, crash, order)
    failed, left = {}, {}
    for n in range(1, requests.count + 1):
        # each request meets both kinds over the two orders
        kind = LOST_ANSWERS[(n + ORDERS.index(order)) % len(LOST_ANSWERS)]
        scenario = Scenario.set_up(store, order)
        faults = FaultInjector(1.0, kinds=(kind,), should_fail=nth_request(n))
        faults.attach(dynamodb_client)
        try:
            scenario.login()
        except Exception as error:  # a clean failure: the retry below completes it
            failed[kind, n] = repr(error)
            scenario.login()
        finally:
            faults.detach(dynamodb_client)
        assert faults.injected == {kind: 1}
        if problems := scenario.problems() + scenario.reader_problems():
            left[kind, n] = problems

    assert failed == {}
    assert left == {}


def merged_view(ledger: Ledger) -> dict:
    """The plain properties of the merged customer (no unacknowledged version
    in these scenarios)."""
    assert not ledger.unacknowledged
    return plain_properties(CustomerRecord("merged", {}, merge({}, ledger.acknowledged)))


def test_get_by_a_merged_away_customers_internal_id_shows_the_merged_customer(api, store):
    scenario = Scenario.set_up(store, "jane-first", project=api.project)
    scenario.login()
    expected = {"properties": merged_view(scenario.ledger)}

    assert api.get_customer(scenario.jane).json() == expected
    assert api.get_customer(scenario.anonymous).json() == expected


def test_patch_by_a_merged_away_customers_internal_id_answers_the_merged_customer(api, store):
    scenario = Scenario.set_up(store, "jane-first", project=api.project)
    scenario.login()

    answer = api.patch_customer(scenario.anonymous, {"properties": {"g": "edit"}}).json()

    assert answer["customer_id"] == scenario.jane
    assert answer["properties"]["g"]["value"] == "edit"
    assert (
        answer["properties"]
        == (api.get_customer(scenario.jane, query={"include_timestamps": "1"}).json()["properties"])
    )


def test_export_one_after_a_login_crashed_after_the_mark_shows_the_merged_customer(
    api, store, request_log, crash
):
    requests = LoginRequests.count_them(store, request_log, crash, "jane-first")
    scenario = Scenario.set_up(store, "jane-first", project=api.project)
    crash.arm(requests.mark + 1)
    with pytest.raises(Crash):
        scenario.login()
    crash.recover()
    scenario.ledger.unacknowledged.clear()  # crashed before its own property write
    expected = merged_view(scenario.ledger)

    both = api.export_one(LOGIN)
    by_cookie = api.export_one(COOKIE)

    assert both.status == 200, both.body
    assert both.json()["properties"] == expected
    assert by_cookie.json()["properties"] == expected


def test_a_login_crashed_after_marking_a_customer_whose_first_write_died_is_completed_by_a_retry(
    store, request_log, crash
):
    project, ledger = new_project(store), Ledger()
    jane = ledger.update(store, project, JANE, {"a": "jane"}, 10.0).customer_id
    time.sleep(0.002)
    # the cookie's first command dies after claiming the cookie (request 2),
    # before the write that would record it on its customer's item (3)
    crash.arm(3)
    with pytest.raises(Crash):
        ledger.update(store, project, COOKIE, {"b": "anon"}, 20.0)
    crash.recover()
    anonymous = store.identities.lookup(project, COOKIE.items())[("cookie", "c1")]
    assert store.read_customer(project, anonymous) is None
    # the login dies right after marking the anonymous customer merged (step 2)
    request_log.clear()
    crash.arm(6)
    with pytest.raises(Crash):
        ledger.update(store, project, LOGIN, *LOGIN_WRITE)
    crash.recover()
    assert request_log.calls[-2][1]["UpdateExpression"] == "SET #merged = :dest"

    ledger.update(store, project, LOGIN, *LOGIN_WRITE)  # the retry

    assert merge_problems(store, project, LOGIN, [jane, anonymous], ledger) == []
