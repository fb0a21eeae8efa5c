"""A command's result says what happened to it in the order the batch was
sent: the commands of one customer in one batch answer exactly what applying
them one after another, in batch order, with the merge rule would answer,
while the commands of different customers still run in parallel.

The queued mode answers ``{"success": true}`` for each of them (nothing is
applied yet); its worker runs the message's commands through the same code,
so what it stores must be exactly what those answers describe."""

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync import canonical_json
from propsync.merge_rule import PropertyVersion, wins
from tests.support.tracking_calls import TrackingCalls
from tests.support.tracking_modes import accepted

BATCHES = 3  # batches of PAIRS newer-then-older pairs, one customer per pair
PAIRS = 25
ORDER = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_unique = itertools.count()


def customers_command(ids, properties, timestamp):
    return {
        "name": "customers",
        "data": {"customer_ids": ids, "properties": properties, "update_timestamp": timestamp},
    }


def test_newer_then_older_for_one_customer_answers_applied_then_stale(api):
    """Before commands of one customer were ordered, each pair was a coin toss
    (both "applied" about half of the time): 75 pairs never all came out right."""
    for batch in range(BATCHES):
        ids = [{"registered": f"pair-{batch}-{i}"} for i in range(PAIRS)]
        for customer in ids:  # known customers: each command is one UpdateItem
            api.track(customer, {"tier": "first"}, 50)
        commands = []
        for customer in ids:
            commands.append(customers_command(customer, {"tier": "newer"}, 200 + batch))
            commands.append(customers_command(customer, {"tier": "older"}, 100 + batch))

        results = api.batch(commands).json()["results"]

        if api.queued:
            assert results == [accepted()] * 2 * PAIRS
        else:
            answers = [(r["applied"], r["stale"]) for r in results]
            assert answers == [(["tier"], []), ([], ["tier"])] * PAIRS
        for customer in ids:
            read = api.get_customer(
                customer["registered"],
                query={"id_type": "registered", "include_timestamps": "1"},
            )
            assert read.json() == {
                "properties": {"tier": {"value": "newer", "last_update": 200 + batch}}
            }


def applied_in_order(state, properties, timestamp):
    """What the merge rule answers for one command applied after ``state``
    (changed in place): the store counts a version already stored exactly as
    applied (a duplicate delivery), as store.write_properties documents."""
    applied, stale = [], []
    for name, value in properties.items():
        candidate = PropertyVersion(canonical_json.dumps(value), float(timestamp))
        stored = state.get(name)
        if wins(candidate, stored):
            state[name] = candidate
            applied.append(name)
        elif stored == candidate:
            applied.append(name)
        else:
            stale.append(name)
    return sorted(applied), sorted(stale)


ID_FORMS = ("both", "registered", "cookie")
planned_commands = st.lists(
    st.fixed_dictionaries(
        {
            "customer": st.integers(0, 2),
            "ids": st.sampled_from(ID_FORMS),
            "properties": st.dictionaries(
                st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y", 1, None]), max_size=3
            ),
            "timestamp": st.sampled_from([100, 200, 300]),
        }
    ),
    min_size=2,
    max_size=12,
)


@ORDER
@given(plan=planned_commands, known=st.sets(st.integers(0, 2)))
def test_any_sequence_answers_what_applying_it_in_batch_order_answers(api, plan, known):
    """Up to 3 customers, interleaved; each addressed by its registered id, its
    cookie or both (one group even when two commands share no id, because a
    known customer owns both); ``known`` customers exist before the batch."""
    run = next(_unique)
    ids = {c: {"registered": f"order-{run}-{c}", "cookie": f"cookie-{run}-{c}"} for c in range(3)}
    models: dict[int, dict[str, PropertyVersion]] = {c: {} for c in range(3)}
    for c in known:
        api.track(ids[c], {"a": "before"}, 200)
        applied_in_order(models[c], {"a": "before"}, 200)
    commands, expected, seen = [], [], set(known)
    for step in plan:
        c = step["customer"]
        form = step["ids"] if c in seen else "both"  # a new customer is created with both ids
        seen.add(c)
        chosen = ids[c] if form == "both" else {form: ids[c][form]}
        commands.append(customers_command(chosen, step["properties"], step["timestamp"]))
        expected.append(applied_in_order(models[c], step["properties"], step["timestamp"]))

    results = api.batch(commands).json()["results"]

    assert all(r["success"] for r in results), results
    if api.queued:
        assert results == [accepted()] * len(commands)
    else:
        assert [(sorted(r["applied"]), sorted(r["stale"])) for r in results] == expected
    for c in seen:
        read = api.get_customer(
            ids[c]["registered"], query={"id_type": "registered", "include_timestamps": "1"}
        )
        assert read.json()["properties"] == {
            name: {
                "value": canonical_json.loads(version.encoded_value),
                "last_update": version.timestamp,
            }
            for name, version in models[c].items()
            if not version.is_tombstone
        }


def test_a_later_command_of_a_new_customer_reuses_the_customer_the_first_created(api):
    """In the queued mode the route writes nothing; the worker runs both
    commands of the message as the synchronous route runs them."""
    api.batch([{"name": "system/time"}])  # the project is known, the client built
    calls = TrackingCalls(api.queued)
    ids = {"registered": "new-twice"}
    commands = [customers_command(ids, {"a": 1}, 100), customers_command(ids, {"b": 2}, 100)]

    first, second = api.batch(commands).json()["results"]

    customer = api.customer_id_of(ids)
    if api.queued:
        assert first == second == accepted()
        assert calls.route.writes == 0
        assert calls.queue_requests == ["SendMessage"]
        log = calls.worker
    else:
        assert first["customer_id"] == second["customer_id"] == customer
        log = calls.route
    # one claim of the id, one write each: the second command claims nothing
    assert log.counts["PutItem"] == 1
    assert log.counts["UpdateItem"] == 2
    assert api.get_customer(customer).json() == {"properties": {"a": 1, "b": 2}}
