"""The tracking API through API Gateway's routing and the real handler, in
both modes of the tracking routes: the synchronous mode answers what it wrote
(``applied``/``stale``, ``customer_id``); the queued mode answers
``{"success": true}`` for a command it queued, and its worker stores exactly
what the synchronous mode stores (ApiClient delivers the queue before a
tracking request returns)."""

import time

from tests.conftest import PROJECT
from tests.support.tracking_calls import TrackingCalls
from tests.support.tracking_modes import accepted

OTHER_PROJECT = "11111111-1111-1111-1111-111111111111"


def test_the_product_documents_batch(api):
    response = api.batch(
        [
            {"name": "system/time"},
            {"name": "system/cookie"},
            {
                "name": "customers",
                "data": {
                    "customer_ids": {"registered": "mgalik"},
                    "properties": {"first_name": "Marian", "last_name": "Galik"},
                    "update_timestamp": 1570001049,
                },
            },
        ]
    )
    assert response.status == 200
    body = response.json()
    assert body["success"] is True
    assert body["start_time"] <= body["end_time"]
    time_result, cookie_result, customers_result = body["results"]
    assert time_result["success"] is True
    assert abs(time_result["time"] - time.time()) < 60
    assert cookie_result["success"] is True
    assert len(cookie_result["cookie"]) == 36
    customer = api.customer_id_of({"registered": "mgalik"})
    if api.queued:
        assert customers_result == accepted()
    else:
        assert customers_result["success"] is True
        assert sorted(customers_result["applied"]) == ["first_name", "last_name"]
        assert customers_result["stale"] == []
        assert customers_result["customer_id"] == customer

    read = api.get_customer(customer, query={"include_timestamps": "1"})
    assert read.json() == {
        "properties": {
            "first_name": {"value": "Marian", "last_update": 1570001049},
            "last_name": {"value": "Galik", "last_update": 1570001049},
        }
    }


def test_results_answer_commands_in_order_and_echo_command_ids(api):
    commands = [
        {"name": "customers", "command_id": "a", "data": {"customer_ids": {"registered": "x"}}},
        {"name": "nope", "command_id": "b"},
        {"name": "system/time", "command_id": "c"},
        {"name": "customers", "data": {"customer_ids": {}}},
    ]
    results = api.batch(commands).json()["results"]
    assert [r.get("command_id") for r in results] == ["a", "b", "c", None]
    assert [r["success"] for r in results] == [True, False, True, False]
    if api.queued:
        assert results[0] == accepted("a")
    assert results[1]["errors"] == [
        "unknown command name 'nope'; known commands: customers, customers/events, "
        "system/time, system/cookie"
    ]
    assert results[3]["errors"] == ["At least one id should be specified."]


def test_an_older_update_is_reported_stale_and_not_applied(api):
    first = api.track({"registered": "m"}, {"email": "new@example.com"}, 1570001100)
    older = api.track({"registered": "m"}, {"email": "old@example.com", "tier": "gold"}, 1570001000)
    customer = api.customer_id_of({"registered": "m"})
    if api.queued:
        assert first == older == accepted()
    else:
        assert first["customer_id"] == customer
        assert older == {
            "success": True,
            "customer_id": customer,
            "applied": ["tier"],
            "stale": ["email"],
        }
    read = api.get_customer(customer, query={"include_timestamps": "1"}).json()
    assert read == {
        "properties": {
            "email": {"value": "new@example.com", "last_update": 1570001100},
            "tier": {"value": "gold", "last_update": 1570001000},
        }
    }


def test_without_update_timestamp_the_request_arrival_time_is_used(api):
    before = time.time()
    result = api.track({"registered": "now"}, {"a": 1})
    if api.queued:
        assert result == accepted()
    else:
        assert result["applied"] == ["a"]
    customer = api.customer_id_of({"registered": "now"})
    stamp = api.get_customer(customer, query={"include_timestamps": "1"}).json()
    assert before - 1 <= stamp["properties"]["a"]["last_update"] <= time.time()


def test_customers_events_are_answered_with_a_per_command_error(api):
    results = api.batch(
        [
            {
                "name": "customers/events",
                "data": {"customer_ids": {"registered": "x"}, "event_type": "view"},
            },
            {"name": "system/time"},
        ]
    ).json()["results"]
    assert results[0]["success"] is False
    assert "not supported yet" in results[0]["errors"][0]
    assert results[1]["success"] is True


def test_single_customers_route(api):
    response = api.track_customer(
        {"customer_ids": {"registered": "solo"}, "properties": {"a": 1}, "update_timestamp": 10}
    )
    assert response.status == 200
    if api.queued:
        assert response.json() == accepted()
    else:
        assert response.json()["applied"] == ["a"]
    read = api.get_customer(
        api.customer_id_of({"registered": "solo"}), query={"include_timestamps": "1"}
    )
    assert read.json() == {"properties": {"a": {"value": 1, "last_update": 10}}}
    # a bad command: the same error in both modes, answered at once (nothing queued)
    calls = TrackingCalls(api.queued)
    bad = api.track_customer({"customer_ids": {}, "properties": {"a": 1}})
    assert calls.queue_requests == []
    assert bad.status == 400
    assert bad.json() == {"success": False, "errors": ["At least one id should be specified."]}


def test_system_time_route(api):
    response = api.request("GET", f"/track/v2/projects/{PROJECT}/system/time", authorization=None)
    assert response.status == 200
    assert response.json()["success"] is True
    assert abs(response.json()["time"] - time.time()) < 60


def test_an_unknown_project_is_an_invalid_project_id(api):
    for project in (OTHER_PROJECT, "not-a-token"):
        response = api.batch([{"name": "system/time"}], project=project)
        assert response.status == 400
        assert response.json() == {"success": False, "error": "Invalid project id"}
    response = api.request(
        "GET", f"/track/v2/projects/{OTHER_PROJECT}/system/time", authorization=None
    )
    assert response.status == 400


def test_exact_numbers_survive_tracking_and_reading(api):
    body = (
        '{"commands": [{"name": "customers", "data": {"customer_ids": {"registered": "n"}, '
        '"properties": {"big": 123456789012345678901234567890, '
        '"precise": 0.1000000000000000055511151231257827, "list": [1.50, 2E+3]}}}]}'
    )
    result = api.batch(body=body).json()["results"][0]
    if api.queued:
        assert result == accepted()
    else:
        assert result["applied"] == ["big", "precise", "list"]
    raw = api.get_customer(api.customer_id_of({"registered": "n"})).body
    assert '"big":123456789012345678901234567890' in raw
    assert '"precise":0.1000000000000000055511151231257827' in raw
    assert '"list":[1.50,2E+3]' in raw


def test_a_batch_of_50_existing_customers_costs_50_writes_and_at_most_2_reads(api):
    """In the queued mode the route writes nothing and makes one queue
    request; the worker makes the synchronous mode's requests."""
    commands = [
        {
            "name": "customers",
            "data": {
                "customer_ids": {"registered": f"c{i}"},
                "properties": {"n": i},
                "update_timestamp": 100,
            },
        }
        for i in range(50)
    ]
    assert all(r["success"] for r in api.batch(commands).json()["results"])
    newer = [
        {**c, "data": {**c["data"], "properties": {"n": -1, "m": 2}, "update_timestamp": 200}}
        for c in commands
    ]
    calls = TrackingCalls(api.queued)

    results = api.batch(newer).json()["results"]

    if api.queued:
        assert results == [accepted()] * 50
        assert calls.route.writes == 0
        assert calls.queue_requests == ["SendMessage"]  # the 50 commands are one message
        log = calls.worker
    else:
        assert all(r["applied"] == ["n", "m"] for r in results)
        log = calls.route
    assert log.writes == 50
    assert log.counts["UpdateItem"] == 50
    assert log.reads <= 2
    for i in (0, 49):
        read = api.get_customer(f"c{i}", query={"id_type": "registered"}).json()
        assert read == {"properties": {"n": -1, "m": 2}}


def test_commands_of_a_batch_run_concurrently_and_bounded(api):
    import threading  # noqa: PLC0415

    from propsync.store.customers import store_from_environment  # noqa: PLC0415

    in_flight, peak, lock = [0], [0], threading.Lock()

    def enter(**_kwargs):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.02)  # a slow network round trip

    def leave(**_kwargs):
        with lock:
            in_flight[0] -= 1

    events = store_from_environment()._client.meta.events
    events.register("before-call.dynamodb.UpdateItem", enter)
    events.register("after-call.dynamodb.UpdateItem", leave)
    commands = [
        {
            "name": "customers",
            "data": {"customer_ids": {"registered": f"p{i}"}, "properties": {"a": i}},
        }
        for i in range(40)
    ]
    results = api.batch(commands).json()["results"]
    assert all(r["success"] for r in results)
    if api.queued:  # the worker's writes, through the synchronous mode's code
        assert results == [accepted()] * 40
    assert 1 < peak[0] <= 16


def test_the_single_route_refuses_a_command_over_800_kb_as_a_batch_does(api):
    """One limit for one command on both routes: refused whole, nothing stored
    (without it, the write stopped at the 400 KB item limit part way)."""
    properties = {f"p{i}": "x" * 16_000 for i in range(52)}
    data = {"customer_ids": {"registered": "big"}, "properties": properties}
    calls = TrackingCalls(api.queued)
    single = api.track_customer(data)
    in_batch = api.batch([{"name": "customers", "data": data}]).json()["results"][0]
    assert calls.queue_requests == []  # the queued mode refuses it at once, as sync does
    assert single.status == 400
    assert single.json()["errors"][0].startswith("command is ")
    assert "at most 819200 bytes (800 KB)" in single.json()["errors"][0]
    assert in_batch["errors"][0].startswith("command is ")
    empty = api.track({"registered": "big"}, {}, None)
    if api.queued:
        assert empty == accepted()
    else:
        assert empty["applied"] == []
    customer = api.customer_id_of({"registered": "big"})
    assert api.get_customer(customer).json() == {"properties": {}}
