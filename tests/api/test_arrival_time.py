"""The tracking routes measure the future guard from the request's arrival
(API Gateway's requestTimeEpoch), not from when the function runs."""

import json

import pytest

from propsync.limits import DEFAULT_MAX_FUTURE_SKEW_SECONDS as SKEW
from propsync_local.apigw import LambdaContext, find_route, load_handler, rest_event

# Far from the clock of the machine running the tests, before and after it.
ARRIVALS = [1_000_000_000.0, 4_000_000_000.0]


def post(api, route_name: str, payload: dict, arrived: float) -> tuple[int, dict]:
    """POST to a tracking route as API Gateway would for a request that arrived at ``arrived``."""
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
    return int(answer["statusCode"]), json.loads(answer["body"])


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
    assert at_edge["success"], at_edge
    assert at_edge["applied"] == ["tier"]
    assert not too_far["success"]
    assert "in the future" in too_far["errors"][0]
    assert body["start_time"] == arrived


@pytest.mark.parametrize("arrived", ARRIVALS)
def test_the_single_command_route_is_guarded_from_the_arrival_of_its_request(api, arrived):
    status, body = post(api, "customers", customers_data("edge", arrived + SKEW), arrived)
    assert (status, body["success"]) == (200, True)
    status, body = post(api, "customers", customers_data("late", arrived + SKEW + 1), arrived)
    assert status == 400
    assert "in the future" in body["errors"][0]


def test_without_update_timestamp_a_command_is_stamped_with_its_arrival(api):
    arrived = ARRIVALS[0]
    data = {"customer_ids": {"registered": "stamped"}, "properties": {"tier": "gold"}}
    status, body = post(api, "customers", data, arrived)
    assert status == 200
    response = api.get_customer(body["customer_id"], query={"include_timestamps": "1"})
    assert response.json()["properties"]["tier"]["last_update"] == arrived
