"""Every answer a route can give, received through ApiClient, so that its
status and body are checked against docs/openapi.json (tests/support/api.py
validates every answer). These are the answers no other API test receives:
the gateway's and the handlers' 413 on every route, 401 on every private
route, 500 and the 503 of a store that did not answer in time on every
route, the 503s of reads, edits and the single-command route, and the
partial answers (``applied``) of each route that writes.

In the queued mode the tracking routes write nothing: their 503 is the queue
failing, and a command that fails when the worker writes it was answered
``{"success": true}``; the worker sends it to the dead-letter queue with the
error the synchronous mode answers."""

import json

import pytest

from propsync import merging, tracking_queue
from propsync.api import OUT_OF_TIME
from propsync.store.access import AccessStore
from propsync.store.customers import CustomerStore
from propsync.store.dynamo import client_and_table_from_environment
from propsync.store.imports import ImportStore
from propsync.tracking import RETRY_LATER
from propsync_local import apigw
from tests.support.api import reset_service_caches
from tests.support.faults import FaultInjector
from tests.support.tracking_modes import accepted

IDS = {"registered": "documented"}
SERVER_FAILED = {"success": False, "error": "internal server error; retry"}
# over API Gateway's 10 MB payload limit, and over Lambda's 6 MB below it
OVER_GATEWAY_LIMIT = "x" * (10 * 1024 * 1024 + 1)
OVER_LAMBDA_LIMIT = json.dumps({"properties": {"p": "x" * (7 * 1024 * 1024)}})
TOO_LARGE_FOR_ONE_CUSTOMER = {f"p{i}": "x" * 16000 for i in range(30)}  # 480 KB


@pytest.fixture
def customer(api):
    api.track(IDS, {"tier": "gold"}, 1570001049)
    return api.customer_id_of(IDS)


def routes(api, customer):
    track = f"/track/v2/projects/{api.project}"
    return {
        "batch": ("POST", f"{track}/batch"),
        "single": ("POST", f"{track}/customers"),
        "time": ("GET", f"{track}/system/time"),
        "get": ("GET", f"/api/customers/{customer}"),
        "patch": ("PATCH", f"/api/customers/{customer}"),
        "export": ("POST", f"/data/v2/projects/{api.project}/customers/export-one"),
        "attributes": ("POST", f"/data/v2/projects/{api.project}/customers/attributes"),
        "anonymize": ("POST", f"/data/v2/projects/{api.project}/customers/anonymize"),
        "key": ("GET", "/api/key"),
        "preview": ("POST", "/api/imports/preview"),
        "start": ("POST", "/api/imports"),
        "imports": ("GET", "/api/imports"),
        "import": ("GET", f"/api/imports/{'0' * 32}"),
    }


# answers given before anything reaches DynamoDB: the same on either engine
GATEWAY_ONLY = pytest.mark.parametrize("engine", ["moto"], indirect=True)

IMPORT_ROUTES = ["preview", "start", "imports", "import"]
ROUTES = [
    *("batch", "single", "time", "get", "patch", "export", "attributes", "anonymize", "key"),
    *IMPORT_ROUTES,
]
WITH_BODY = ["batch", "single", "patch", "export", "attributes", "anonymize", "preview", "start"]
PRIVATE = ["get", "patch", "export", "attributes", "anonymize"]
# private routes that read no customer
PRIVATE_OTHERS = ["key", *IMPORT_ROUTES]
# The body each private route reads, naming ``ids``.
ATTRIBUTES = [{"type": "property", "property": "tier"}, {"type": "id", "id": "registered"}]


def private_body(route, ids):
    if route in ("export", "anonymize"):
        return {"customer_ids": ids}
    if route == "attributes":
        return {"customer_ids": ids, "attributes": ATTRIBUTES}
    return {"properties": {"tier": "silver"}}


@GATEWAY_ONLY
@pytest.mark.parametrize("tracking_writes", ["sync"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_body_over_api_gateways_limit_is_413_on_every_route(api, customer, route):
    method, path = routes(api, customer)[route]
    response = api.request(method, path, body=OVER_GATEWAY_LIMIT)
    assert response.status == 413
    assert response.json() == {"success": False, "error": "Request too large: at most 6 MB"}


@GATEWAY_ONLY
@pytest.mark.parametrize("tracking_writes", ["sync"])
@pytest.mark.parametrize("route", WITH_BODY)
def test_a_body_over_lambdas_limit_is_413_on_every_route_that_reads_one(api, customer, route):
    """Over Lambda's 6 MB payload, under API Gateway's 10 MB: the function
    never runs, API Gateway answers the same 413 (REQUEST_TOO_LARGE)."""
    method, path = routes(api, customer)[route]
    response = api.request(method, path, body=OVER_LAMBDA_LIMIT)
    assert response.status == 413
    assert response.json() == {"success": False, "error": "Request too large: at most 6 MB"}


@pytest.mark.parametrize("route", PRIVATE + PRIVATE_OTHERS)
def test_a_private_route_without_a_key_is_401(api, customer, route):
    method, path = routes(api, customer)[route]
    response = api.request(method, path, json_body={"customer_ids": IDS}, authorization=None)
    assert response.status == 401
    assert response.json() == {"success": False, "error": "Access key not provided"}


def _fail(*_args, **_kwargs):
    raise RuntimeError("the store failed")


@pytest.mark.parametrize("route", ["single", "time"])
def test_a_tracking_route_whose_project_cannot_be_read_is_500(api, customer, route, monkeypatch):
    monkeypatch.setattr(AccessStore, "project_id_types", _fail)
    reset_service_caches()  # the project is read again
    method, path = routes(api, customer)[route]
    response = api.request(method, path, json_body={"customer_ids": IDS}, authorization=None)
    assert response.status == 500
    assert response.json() == SERVER_FAILED


def test_the_key_route_whose_project_cannot_be_read_is_500(api, monkeypatch):
    monkeypatch.setattr(AccessStore, "project_id_types", _fail)
    reset_service_caches()  # the project is read again
    response = api.request("GET", "/api/key")
    assert response.status == 500
    assert response.json() == SERVER_FAILED


IMPORT_BODIES = {
    "preview": {"mapping": {"ids": [{"from_column": "a", "to_id": "registered"}]}, "sample": "a\n"},
    "start": {
        "import_name": "crm",
        "file_name": "a.csv",
        "mapping": {"ids": [{"from_column": "a", "to_id": "registered"}]},
    },
}


@pytest.mark.parametrize("route", IMPORT_ROUTES)
def test_an_import_route_whose_store_fails_is_500(api, customer, route, monkeypatch):
    monkeypatch.setattr(AccessStore, "project_id_types", _fail)
    for read in ("get", "latest_for_file", "list_for_project"):
        monkeypatch.setattr(ImportStore, read, _fail)
    method, path = routes(api, customer)[route]
    response = api.request(method, path, json_body=IMPORT_BODIES.get(route))
    assert response.status == 500
    assert response.json() == SERVER_FAILED


@pytest.mark.parametrize("route", PRIVATE)
def test_a_customers_route_whose_store_fails_is_500(api, customer, route, monkeypatch):
    monkeypatch.setattr(CustomerStore, "read_customer", _fail)
    method, path = routes(api, customer)[route]
    response = api.request(method, path, json_body=private_body(route, IDS))
    assert response.status == 500
    assert response.json() == SERVER_FAILED


def test_the_single_route_answers_a_write_that_failed_with_a_retry(api, monkeypatch):
    if api.queued:  # the route's one write is its request to the queue
        queue_client = tracking_queue.queue_from_environment().client
        monkeypatch.setattr(queue_client, "send_message", _fail)
    else:
        monkeypatch.setattr(CustomerStore, "write_properties", _fail)
    response = api.track_customer({"customer_ids": IDS, "properties": {"tier": "silver"}})
    assert response.status == 503
    assert response.json() == {"success": False, "errors": [RETRY_LATER]}
    if api.queued:  # nothing was queued: nothing is applied later
        assert api.export_one(IDS).status == 404


@pytest.mark.parametrize("tracking_writes", ["queued"])
def test_a_queued_command_whose_write_failed_is_applied_when_it_comes_back(api, monkeypatch):
    """The queued mode's answer to a write that fails: the route answered
    success, and the worker's failed message comes back (at once here: no
    retry delay) and is applied; it is not dead-lettered."""
    monkeypatch.setattr(tracking_queue, "RETRY_BASE_SECONDS", 0)
    write, failed = CustomerStore.write_properties, []

    def fail_once(store, *args, **kwargs):
        if not failed:
            failed.append(True)
            raise RuntimeError("the store failed")
        return write(store, *args, **kwargs)

    monkeypatch.setattr(CustomerStore, "write_properties", fail_once)
    response = api.track_customer({"customer_ids": IDS, "properties": {"tier": "silver"}})
    assert (response.status, response.json()) == (200, accepted())
    assert failed == [True]
    assert api.export_one(IDS).json()["properties"] == {"tier": "silver"}
    assert api.queues.dead_letters() == []


def dead_letter_of(api, commands):
    """The one dead-letter message, holding ``commands``: each command's
    status and errors, beside it."""
    [letter] = api.queues.dead_letters()
    assert letter["project"] == api.project
    assert letter["commands"] == commands
    return letter["errors"]


def test_the_single_route_answers_a_customer_too_large_with_what_it_stored(api):
    """In the queued mode the route accepts it; the worker stores what the
    synchronous mode stores, and dead-letters the command with its error."""
    data = {"customer_ids": IDS, "properties": TOO_LARGE_FOR_ONE_CUSTOMER}
    response = api.track_customer(data)
    stored = api.export_one(IDS).json()["properties"]
    assert set(stored) < set(TOO_LARGE_FOR_ONE_CUSTOMER)
    if api.queued:
        assert (response.status, response.json()) == (200, accepted())
        [error] = dead_letter_of(api, [{"name": "customers", "data": data}])
        assert error["status"] == 400
        assert "400 KB item limit" in error["errors"][0]
    else:
        assert response.status == 400
        body = response.json()
        assert "400 KB item limit" in body["errors"][0]
        assert set(body["applied"]) < set(TOO_LARGE_FOR_ONE_CUSTOMER)
        assert set(body["applied"]) == set(stored)


def test_a_batch_whose_every_command_fails_repeats_each_command_id(api):
    response = api.batch(
        [
            {
                "name": "customers",
                "command_id": "big",
                "data": {"customer_ids": IDS, "properties": TOO_LARGE_FOR_ONE_CUSTOMER},
            },
            {"name": "customers", "command_id": "bad", "data": {"customer_ids": {}}},
            {"name": "customers/events", "command_id": "events"},
            {"name": "nope", "command_id": "unknown"},
            7,
        ]
    )
    assert response.status == 200
    results = response.json()["results"]
    assert [r.get("command_id") for r in results] == ["big", "bad", "events", "unknown", None]
    if api.queued:  # the too large customer fails in the worker
        assert results[0] == accepted("big")
        assert [r["success"] for r in results[1:]] == [False] * 4
        big = {
            "name": "customers",
            "command_id": "big",
            "data": {"customer_ids": IDS, "properties": TOO_LARGE_FOR_ONE_CUSTOMER},
        }
        [error] = dead_letter_of(api, [big])
        assert error["status"] == 400
        assert "400 KB item limit" in error["errors"][0]
    else:
        assert [r["success"] for r in results] == [False] * 5
        assert "applied" in results[0]


def test_an_edit_that_other_writers_keep_winning_is_503_with_what_it_stored(api, customer):
    FaultInjector(
        probability=1.0,
        kinds=("condition-failed",),
        should_fail=lambda op, params: op == "UpdateItem" and b"contended" in params["body"],
    ).attach(client_and_table_from_environment()[0])
    response = api.patch_customer(customer, {"properties": {"contended": 1}})
    assert response.status == 503
    body = response.json()
    assert "retry the command" in body["error"]
    assert body["applied"] == []


@pytest.fixture
def merged_away(api, customer, monkeypatch):
    """A customer merged into ``customer``, read where the merges it is at the
    end of are more than the limit (MAX_MERGE_HOPS, a guard against a damaged
    table: 1 here, so that one merge passes it); ``cookie=away`` still
    names it, as between a merge's mark and the move of its ids."""
    api.track({"cookie": "anonymous"}, {"seen": 1}, 1570001000)
    anonymous = api.customer_id_of({"cookie": "anonymous"})
    login = api.track({**IDS, "cookie": "anonymous"}, {}, 1570001050)
    if api.queued:
        assert login == accepted()
    else:
        assert login["merged"] == [anonymous]
    assert api.customer_id_of({"cookie": "anonymous"}) == customer != anonymous
    store = CustomerStore(*client_and_table_from_environment())
    store.identities.claim(api.project, "cookie", "away", anonymous)
    monkeypatch.setattr(merging, "MAX_MERGE_HOPS", 1)
    return anonymous


@pytest.mark.parametrize("route", PRIVATE)
def test_a_read_past_too_many_merges_is_a_503_to_retry(api, merged_away, route):
    method, path = routes(api, merged_away)[route]
    body = {"properties": {}} if route == "patch" else private_body(route, {"cookie": "away"})
    response = api.request(method, path, json_body=body)
    assert response.status == 503
    assert "is at the end of more than 1 merges; retry" in response.json()["error"]


# the routes that call AWS (system/time answers from the clock alone)
CALLING_THE_STORE = [route for route in ROUTES if route != "time"]


def route_body(route):
    if route in ("batch",):
        return {"commands": [{"name": "customers", "data": {"customer_ids": IDS}}]}
    if route == "single":
        return {"customer_ids": IDS, "properties": {"tier": "silver"}}
    return IMPORT_BODIES.get(route) or (private_body(route, IDS) if route in PRIVATE else None)


@GATEWAY_ONLY  # no request reaches the engine
@pytest.mark.parametrize("route", CALLING_THE_STORE)
def test_a_route_whose_store_cannot_answer_in_time_is_503(
    api, customer, route, monkeypatch, request
):
    """Half a second left of the function's time: no request to the store
    could end before the answer is due, so none is sent
    (store.throttling.RetryWithinDeadline), and the route says so with a 503
    worth retrying, not a 500 (the server did not fail) nor API Gateway's 504
    (docs/API.md, "Conventions")."""
    if route in IMPORT_ROUTES:
        monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", request.getfixturevalue("imports").bucket)
    reset_service_caches()  # the project is read again
    monkeypatch.setattr(apigw.LambdaContext, "get_remaining_time_in_millis", lambda _self: 500)
    method, path = routes(api, customer)[route]
    tracking = path.startswith("/track/")
    response = api.request(
        method, path, json_body=route_body(route), authorization=None if tracking else "default"
    )
    assert response.status == 503, response.body
    assert response.json() == {"success": False, "error": OUT_OF_TIME}
    monkeypatch.undo()
    assert api.export_one(IDS).json()["properties"] == {"tier": "gold"}  # nothing was written


def test_an_edit_that_stops_part_way_is_503_naming_what_it_stored(api, customer):
    """An edit of more properties than one request carries is written in
    several requests; when one after the first fails (here the store failing
    past botocore's retries), the answer names what the earlier ones stored
    and says to retry for the rest, whatever the failure was."""
    updates = iter(range(1_000))
    faults = FaultInjector(
        probability=1.0,
        kinds=("internal",),
        should_fail=lambda op, _params: op == "UpdateItem" and next(updates) > 0,
    ).attach(client_and_table_from_environment()[0])
    properties = {f"p{i:02}": i for i in range(60)}

    response = api.patch_customer(customer, {"properties": properties})

    faults.detach(client_and_table_from_environment()[0])
    assert response.status == 503, response.body
    body = response.json()
    assert body["error"].startswith("the store failed part way")
    stored = api.export_one(IDS).json()["properties"]
    assert 0 < len(body["applied"]) < len(properties)
    assert set(body["applied"]) == set(stored) - {"tier"}
    assert faults.injected["internal"] > 0
