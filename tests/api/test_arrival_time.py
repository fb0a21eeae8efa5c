"""The tracking routes measure the future guard from the request's arrival
(API Gateway's requestTimeEpoch), not from when the function runs. In the
queued mode, so does the worker: it runs a message's commands with the
arrival of their request, never with the time it gets to them."""

import json

import pytest

from propsync.limits import DEFAULT_MAX_FUTURE_SKEW_SECONDS as SKEW
from propsync_local.apigw import LambdaContext, find_route, load_handler, rest_event
from tests.support.tracking_modes import accepted

# Far from the clock of the machine running the tests, before and after it.
ARRIVALS = [1_000_000_000.0, 4_000_000_000.0]


def post(api, route_name: str, payload: dict, arrived: float) -> tuple[int, dict]:
    """POST to a tracking route as API Gateway would for a request that arrived
    at ``arrived``; in the queued mode, the worker then applies what it queued."""
    found = find_route("POST", f"/track/v2/projects/{api.project}/{route_name}")
    assert found is not None
    route, params = found
    event = rest_event(
        route,
        path_parameters=params,
        headers={"Content-Type": "application/json"},
        body=json.dumps(payload),
        request_time=arrived,
    )
    answer = load_handler(route.function)(event, LambdaContext(route.function))
    if api.queued:
        api.queues.deliver()
    return int(answer["statusCode"]), json.loads(answer["body"])


def stored_tier(api, registered: str) -> dict:
    response = api.get_customer(
        api.customer_id_of({"registered": registered}), query={"include_timestamps": "1"}
    )
    return response.json()["properties"]["tier"]


def customers_data(registered: str, update_timestamp: float) -> dict:
    return {
        "customer_ids": {"registered": registered},
        "properties": {"tier": "gold"},
        "update_timestamp": update_timestamp,
    }


@pytest.mark.parametrize("arrived", ARRIVALS)
def test_a_batch_command_is_guarded_from_the_arrival_of_its_request(api, arrived):
    status, body = post(
        api,
        "batch",
        {
            "commands": [
                {"name": "customers", "data": customers_data("at-the-edge", arrived + SKEW)},
                {"name": "customers", "data": customers_data("too-far", arrived + SKEW + 1)},
            ]
        },
        arrived,
    )
    assert status == 200
    at_edge, too_far = body["results"]
    if api.queued:
        assert at_edge == accepted()
    else:
        assert at_edge["success"], at_edge
        assert at_edge["applied"] == ["tier"]
    assert not too_far["success"]
    assert "in the future" in too_far["errors"][0]
    assert body["start_time"] == arrived
    assert stored_tier(api, "at-the-edge") == {"value": "gold", "last_update": arrived + SKEW}
    assert api.export_one({"registered": "too-far"}).status == 404
    if api.queued:  # the worker applied the command: none was refused there
        assert api.queues.dead_letters() == []


@pytest.mark.parametrize("arrived", ARRIVALS)
def test_the_single_command_route_is_guarded_from_the_arrival_of_its_request(api, arrived):
    status, body = post(api, "customers", customers_data("edge", arrived + SKEW), arrived)
    assert (status, body["success"]) == (200, True)
    if api.queued:
        assert body == accepted()
    status, body = post(api, "customers", customers_data("late", arrived + SKEW + 1), arrived)
    assert status == 400
    assert "in the future" in body["errors"][0]
    assert stored_tier(api, "edge") == {"value": "gold", "last_update": arrived + SKEW}
    assert api.export_one({"registered": "late"}).status == 404
    if api.queued:
        assert api.queues.dead_letters() == []


# API Gateway's arrival is in milliseconds: one that is not a whole second
# must reach the store unchanged (in the queued mode, through the message).
@pytest.mark.parametrize("arrived", [ARRIVALS[0], 1_234_567_890.123])
def test_without_update_timestamp_a_command_is_stamped_with_its_arrival(api, arrived):
    data = {"customer_ids": {"registered": "stamped"}, "properties": {"tier": "gold"}}
    status, body = post(api, "customers", data, arrived)
    assert status == 200
    if api.queued:
        assert body == accepted()
    else:
        assert body["customer_id"] == api.customer_id_of({"registered": "stamped"})
    assert stored_tier(api, "stamped") == {"value": "gold", "last_update": arrived}
