"""Wrong secrets lock a key (propsync.access.LOCKOUT): 20 within 600 s lock it
for 900 s, during which every request with it is 429, its secret not even
hashed. Counted with conditional UpdateItems on an item of its own, which is
all the authorizer's role may write (template.yaml, held to it here by
propsync_local.iam). Unknown and revoked keys cost one read and say nothing
more, as before. Both engines; the time is given, never waited for."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

import propsync.access
from propsync.access import LOCKOUT, Lockout, authenticate, create_api_key
from propsync.errors import AuthenticationError, InvalidSecretError, KeyLockedError
from propsync.store.access import AccessStore, KeyFailures, key_failures_key
from propsync.store.dynamo import client_and_table_from_environment
from propsync_local import iam
from propsync_local.apigw import LambdaContext, authorizer_event, handle, rest_event, route
from tests.conftest import PROJECT, RequestLog
from tests.support.api import basic

CUSTOMER = "01JDQ6Z0Q9X6V1N0K3W9M5T2RB"
T0 = 1_800_000_000.0
LOCKED_MESSAGE = "too many wrong secrets: this API key is locked until "


@pytest.fixture
def tracking_writes() -> str:
    """The tracking mode changes nothing here: one is enough."""
    return "sync"


def get(header: str) -> tuple[int, str]:
    response = handle("GET", f"/api/customers/{CUSTOMER}", headers={"Authorization": header})
    return response.status, response.json()["error"]


def failures_item(dynamodb_client, table_name, key_id: str) -> dict | None:
    return dynamodb_client.get_item(
        TableName=table_name, Key={"pk": {"S": key_failures_key(key_id)}}, ConsistentRead=True
    ).get("Item")


# ---------------------------------------------------------------- through the API


def test_the_20th_wrong_secret_locks_the_key_and_then_the_right_one_is_refused(api):
    wrong = basic(api.key_id, "wrong")
    for _ in range(LOCKOUT.failures - 1):
        assert get(wrong) == (403, "invalid secret")
    status, message = get(wrong)
    assert status == 429
    assert message.startswith(LOCKED_MESSAGE)
    assert message.endswith(
        "; retry after that time, or ask the project's administrator to unlock it"
    )
    assert get(api.authorization) == (429, message)  # the right secret too, same words
    # another key of the project is not touched
    other = api.new_key(PROJECT, frozenset({"customer_properties:get"}))
    assert get(other)[0] == 404


def test_a_locked_key_is_refused_without_hashing(api, monkeypatch):
    for _ in range(LOCKOUT.failures):
        get(basic(api.key_id, "wrong"))
    hashed = []
    original = propsync.access.hash_secret
    monkeypatch.setattr(
        propsync.access, "hash_secret", lambda *a, **k: hashed.append(1) or original(*a, **k)
    )
    for header in (api.authorization, basic(api.key_id, "another guess")):
        assert get(header)[0] == 429
    assert hashed == []


def test_the_answer_names_the_end_of_the_lock(api):
    for _ in range(LOCKOUT.failures):
        get(basic(api.key_id, "wrong"))
    failures = api.access.key_failures(api.key_id)
    assert failures is not None
    assert failures.locked_until is not None
    expected = propsync.access.locked_error(failures.locked_until)
    assert get(api.authorization) == (429, str(expected))
    assert failures.locked_until - failures.since == pytest.approx(LOCKOUT.lock_seconds, abs=60)


def test_a_lock_ends_by_itself_and_the_next_wrong_secret_counts_from_one(
    api, dynamodb_client, table_name
):
    for _ in range(LOCKOUT.failures):
        get(basic(api.key_id, "wrong"))
    # the lock's time passes: its window and its end are moved into the past
    past = {"N": "1000"}
    dynamodb_client.update_item(
        TableName=table_name,
        Key={"pk": {"S": key_failures_key(api.key_id)}},
        UpdateExpression="SET failed_since = :past, locked_until = :past",
        ExpressionAttributeValues={":past": past},
    )
    assert get(api.authorization)[0] == 404  # accepted: no such customer
    assert get(basic(api.key_id, "wrong")) == (403, "invalid secret")
    item = failures_item(dynamodb_client, table_name, api.key_id)
    assert item is not None
    assert item["failed_secrets"] == {"N": "1"}


def test_unlocking_lifts_the_lock(api):
    for _ in range(LOCKOUT.failures):
        get(basic(api.key_id, "wrong"))
    cleared = api.access.clear_key_failures(api.key_id)
    assert cleared is not None
    assert cleared.failed_secrets == LOCKOUT.failures
    assert get(api.authorization)[0] == 404
    assert api.access.key_failures(api.key_id) is None


def test_a_failed_count_is_still_a_403_not_an_error(api, monkeypatch):
    def refused(*_args, **_kwargs):
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "UpdateItem")

    monkeypatch.setattr(AccessStore, "count_failed_secret", refused)
    assert get(basic(api.key_id, "wrong")) == (403, "invalid secret")


# ---------------------------------------------------------------- concurrency


def guess_at_once(header_of, count: int) -> list[tuple[int, str]]:
    """``count`` requests through the authorizer, released together."""
    barrier = threading.Barrier(count)

    def one(index: int) -> tuple[int, str]:
        barrier.wait()
        return get(header_of(index))

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_as_many_concurrent_wrong_secrets_as_lock_a_key_are_each_counted_once(
    api, dynamodb_client, table_name
):
    """None read a lock (there is none until the last is counted): every one
    is counted, with one count each; exactly one reaches the threshold."""
    answers = guess_at_once(lambda i: basic(api.key_id, f"guess-{i}"), LOCKOUT.failures)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [403] * (LOCKOUT.failures - 1) + [429]
    item = failures_item(dynamodb_client, table_name, api.key_id)
    assert item is not None
    assert item["failed_secrets"] == {"N": str(LOCKOUT.failures)}
    assert "locked_until" in item
    assert get(api.authorization)[0] == 429


def test_twice_as_many_concurrent_wrong_secrets_answer_403_exactly_19_times(
    api, dynamodb_client, table_name
):
    """Counts 1 to 19 answer 403, each once; every other request was either
    counted past the threshold or refused by the lock (429); nothing else."""
    answers = guess_at_once(lambda i: basic(api.key_id, f"guess-{i}"), 2 * LOCKOUT.failures)
    assert sum(status == 403 for status, _ in answers) == LOCKOUT.failures - 1
    assert all(
        status == 429 and message.startswith(LOCKED_MESSAGE)
        for status, message in answers
        if status != 403
    )
    item = failures_item(dynamodb_client, table_name, api.key_id)
    assert item is not None
    counted = int(item["failed_secrets"]["N"])
    assert LOCKOUT.failures <= counted <= 2 * LOCKOUT.failures


# ---------------------------------------------------------------- unknown and revoked keys


@pytest.fixture
def service_calls(api) -> RequestLog:
    """The DynamoDB calls of the handlers' own client (the container's)."""
    log = RequestLog()
    client, _ = client_and_table_from_environment()
    client.meta.events.register("provide-client-params.dynamodb", log.record)
    return log


@pytest.mark.parametrize("which", ["unknown", "revoked"])
def test_unknown_and_revoked_keys_cost_one_read_and_are_never_locked(
    api, service_calls, dynamodb_client, table_name, which
):
    key_id = "no-such-key"
    if which == "revoked":
        key_id = create_api_key(api.access, PROJECT, frozenset()).key_id
        assert api.access.revoke_api_key(key_id)
    service_calls.clear()
    for attempt in range(2 * LOCKOUT.failures):
        assert get(basic(key_id, f"guess-{attempt}")) == (401, "Access key not found")
    assert service_calls.counts == {"GetItem": 2 * LOCKOUT.failures}
    assert failures_item(dynamodb_client, table_name, key_id) is None


# ---------------------------------------------------------------- the authorizer's role


def test_the_authorizer_may_update_failure_items_and_no_other(api):
    assert iam.dynamodb_grants("AuthorizerFunction", "sync") == {
        "GetItem": None,
        "UpdateItem": ("apikeyfailures#*",),
    }
    client, table = client_and_table_from_environment()

    def touch(pk: str) -> None:
        client.update_item(
            TableName=table,
            Key={"pk": {"S": pk}},
            UpdateExpression="SET probe = :x",
            ExpressionAttributeValues={":x": {"S": "x"}},
        )

    with iam.running("AuthorizerFunction"):
        touch(key_failures_key(api.key_id))
        for pk in (f"apikey#{api.key_id}", f"project#{PROJECT}", "apikeyfailures"):
            with pytest.raises(ClientError) as refused:
                touch(pk)
            assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
            assert f"on the item {pk!r}" in str(refused.value)


def test_the_authorizer_handler_counts_under_its_own_role(api, dynamodb_client, table_name):
    """Through apigw.load_handler (propsync_local.iam): a template without the
    UpdateItem grant would leave the count at nothing."""
    event = authorizer_event(
        rest_event(
            route("CustomersReadFunction", "GetCustomer"),
            path_parameters={"customer_id": CUSTOMER},
            headers={"Authorization": basic(api.key_id, "wrong")},
        )
    )
    from propsync_local.apigw import authorizer_handler  # noqa: PLC0415

    answer = authorizer_handler()(event, LambdaContext("AuthorizerFunction"))
    assert answer["context"] == {"auth_status": 403, "auth_error": "invalid secret"}
    item = failures_item(dynamodb_client, table_name, api.key_id)
    assert item is not None
    assert item["failed_secrets"] == {"N": "1"}


def test_a_condition_local_iam_cannot_apply_stops_it():
    with pytest.raises(ValueError, match="applies only ForAllValues:StringLike"):
        iam._leading_key_patterns("F", {"StringEquals": {"aws:SourceVpc": "vpc-1"}})


# ---------------------------------------------------------------- the store, in time


@pytest.fixture
def key(dynamodb_client, table_name) -> tuple[AccessStore, str, str]:
    access = AccessStore(dynamodb_client, table_name)
    access.create_project(PROJECT, "test project")
    new = create_api_key(access, PROJECT, frozenset())
    return access, new.key_id, new.secret


SMALL = Lockout(failures=3, window_seconds=60, lock_seconds=120)


def attempt(key, secret: str, now: float) -> type[Exception] | None:
    access, key_id, _ = key
    try:
        authenticate(access, basic(key_id, secret), now=now, lockout=SMALL)
    except AuthenticationError as error:
        return type(error)
    return None


def test_a_window_closes_60_s_after_its_first_wrong_secret(key):
    access, key_id, secret = key
    assert attempt(key, "w", T0) is InvalidSecretError
    assert attempt(key, "w", T0 + 59) is InvalidSecretError
    # the window of T0 has closed: this one opens a new one, so no lock
    assert attempt(key, "w", T0 + 60) is InvalidSecretError
    assert access.key_failures(key_id) == KeyFailures(1, T0 + 60, None)
    assert attempt(key, secret, T0 + 61) is None


def test_a_lock_lasts_its_time_and_not_a_moment_more(key):
    access, key_id, secret = key
    for second in range(SMALL.failures - 1):
        assert attempt(key, "w", T0 + second) is InvalidSecretError
    assert attempt(key, "w", T0 + 10) is KeyLockedError
    assert access.key_failures(key_id) == KeyFailures(3, T0, T0 + 10 + SMALL.lock_seconds)
    assert attempt(key, secret, T0 + 10 + SMALL.lock_seconds - 0.001) is KeyLockedError
    # refused while locked, and not counted: the lock is not extended
    assert access.key_failures(key_id) == KeyFailures(3, T0, T0 + 10 + SMALL.lock_seconds)
    assert attempt(key, secret, T0 + 10 + SMALL.lock_seconds) is None
    # its window closed before the lock ended: counting starts again at one
    assert attempt(key, "w", T0 + 10 + SMALL.lock_seconds) is InvalidSecretError
    assert access.key_failures(key_id) == KeyFailures(
        1, T0 + 10 + SMALL.lock_seconds, T0 + 10 + SMALL.lock_seconds
    )


def test_a_late_count_neither_lifts_nor_extends_a_lock(key):
    """A request that read the key unlocked, then lost the race to the one
    that locked it, counts into a new window if the old one closed meanwhile:
    the lock in force stays as it was."""
    access, key_id, _ = key
    for second in range(SMALL.failures):
        attempt(key, "w", T0 + second)
    locked = access.key_failures(key_id)
    assert locked is not None
    assert locked.locked_until == T0 + 2 + SMALL.lock_seconds
    later = T0 + SMALL.window_seconds + 5  # window closed, lock in force
    counted = access.count_failed_secret(
        key_id,
        later,
        window_seconds=SMALL.window_seconds,
        lock_after=SMALL.failures,
        lock_seconds=SMALL.lock_seconds,
    )
    assert counted == KeyFailures(1, later, locked.locked_until)


def test_a_lockout_whose_lock_is_shorter_than_its_window_is_refused():
    with pytest.raises(ValueError, match="window <= lock"):
        Lockout(failures=3, window_seconds=600, lock_seconds=60)


def test_make_runs_restart_checks_the_demo_secret_without_counting_or_meeting_a_lock(api):
    """On a persistent engine `make run` checks the demo key's secret at start:
    a lock the demo key got meanwhile must not stop it, and a wrong secret
    there is refused as before, not counted."""
    from propsync_local.stack import create_demo_access  # noqa: PLC0415

    create_demo_access(PROJECT, "demo-lock", "demo-secret")
    for _ in range(LOCKOUT.failures):
        get(basic("demo-lock", "wrong"))
    locked = api.access.key_failures("demo-lock")
    create_demo_access(PROJECT, "demo-lock", "demo-secret")
    with pytest.raises(InvalidSecretError):
        create_demo_access(PROJECT, "demo-lock", "another-secret")
    assert api.access.key_failures("demo-lock") == locked
