"""Deleted properties compacted behind the API (store.compaction), in both
tracking modes (the synchronous routes and the queued worker) on both
engines: the grace period comes from the environment as template.yaml sets
it, the first write past it compacts, and every read (GET with
include_timestamps, export-one, attributes) answers as before; a late update
older than the deletion is stale, as it was against the tombstone."""

import time

from propsync.store.compaction import DAY_SECONDS
from propsync.store.conditional import HORIZON, customer_key
from propsync.store.dynamo import get_item
from tests.conftest import PROJECT
from tests.support.api import reset_service_caches
from tests.support.tracking_modes import accepted, assert_all_applied

IDS = {"registered": "compacted"}


def track(api, properties, timestamp):
    result = api.track(IDS, properties, timestamp)
    if api.queued:
        assert result == accepted()
        assert_all_applied(api)
    return result


def test_a_compacted_deletion_reads_and_decides_as_the_tombstone_did(
    api, monkeypatch, dynamodb_client, table_name
):
    monkeypatch.setenv("PROPSYNC_TOMBSTONE_GRACE_DAYS", "1")
    reset_service_caches()  # the functions' store reads it when it is made
    now = time.time()
    deleted_at = now - 10 * DAY_SECONDS
    track(api, {"coupon": "C-1", "color": "red"}, deleted_at - 1)
    track(api, {"coupon": None}, deleted_at)
    shown_before = api.export_one(IDS).json()["properties"]

    track(api, {"visits": 1}, None)  # the first write past the grace period compacts
    customer = api.customer_id_of(IDS)
    item = get_item(dynamodb_client, table_name, customer_key(PROJECT, customer))
    assert "p:coupon" not in item
    assert float(item[HORIZON]["N"]) == deleted_at

    late = track(api, {"coupon": "C-0"}, deleted_at - DAY_SECONDS)
    if not api.queued:
        assert (late["applied"], late["stale"]) == ([], ["coupon"])
    assert shown_before == {"color": "red"}
    assert api.export_one(IDS).json()["properties"] == {"color": "red", "visits": 1}
    timed = api.get_customer(customer, query={"include_timestamps": "1"}).json()["properties"]
    assert timed["color"] == {"value": "red", "last_update": deleted_at - 1}
    assert timed.keys() == {"color", "visits"}
    answered = api.attributes(
        IDS,
        [{"type": "property", "property": "coupon"}, {"type": "property", "property": "color"}],
    ).json()["results"]
    assert answered == [{"success": True, "value": None}, {"success": True, "value": "red"}]
