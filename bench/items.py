"""`make bench`, measurement 8: what a one-property update costs as a
customer's item grows, with and without compaction of its tombstones.

DynamoDB bills an UpdateItem (a failed conditional one too) one write unit
per started KB of the larger of the item before and after it. The items here
are the ones propsync's store writes, through its own write path
(``CustomerStore.write_properties``), held by moto in this process (its
conditions are DynamoDB's, so the compaction a write triggers happens as it
would on AWS); the units come from the item-size formula
(``propsync.store.capacity``) applied to each item before and after each
request, read back after the request. moto's own ConsumedCapacity is 0.5
for every write whatever the item, so it is not used; dynalite's follows the
formula (tests/integration/test_compaction.py checks the two agree).

Profiles: N live properties (a 12-character name, a short string value) and
M tombstones (15-character names, deleted 40 days before "now"). Without
compaction (a grace longer than any of their ages) every write carries the M
tombstones; with it (the default grace of 30 days), the first write compacts
them (a first attempt that fails, the compaction's requests, the write) and
the next writes are billed on the live properties and the horizon. And a
year of daily deletions of new names (5 a day): the item after 365 days,
without and with compaction.
"""

from __future__ import annotations

import math
import time
from typing import Any

import boto3
from moto import mock_aws

from propsync.limits import DEFAULT_TOMBSTONE_GRACE_DAYS
from propsync.merge_rule import PropertyVersion
from propsync.store.capacity import item_size, write_units
from propsync.store.compaction import DAY_SECONDS, CompactionPolicy
from propsync.store.conditional import PROPERTIES_PER_REQUEST, customer_key
from propsync.store.customers import CustomerStore
from propsync_local.cfn_template import create_table_kwargs, load_template

PROJECT = "00000000-0000-0000-0000-000000000000"
TABLE = "bench-items"
NOW = 1_700_000_000.0
GRACE = DEFAULT_TOMBSTONE_GRACE_DAYS * DAY_SECONDS
PROFILES = [(10, 0), (10, 100), (10, 1000), (100, 0), (100, 1000)]
YEAR_DAYS = 365
DELETIONS_PER_DAY = 5


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Bill:
    """The write units of every UpdateItem a client sends, from the item
    before and after it (read by a client of its own, not counted)."""

    def __init__(self, client: Any, reader: Any):
        self.units: list[int] = []
        self.enabled = True
        self._reader = reader
        self._before: dict[str, Any] | None = None
        client.meta.events.register("provide-client-params.dynamodb.UpdateItem", self._ask)
        client.meta.events.register("after-call.dynamodb.UpdateItem", self._answered)

    def _item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        answer = self._reader.get_item(TableName=TABLE, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def _ask(self, params: dict[str, Any], **_kwargs: Any) -> None:
        if self.enabled:
            self._key = params["Key"]
            self._before = self._item(self._key)

    def _answered(self, **_kwargs: Any) -> None:
        if self.enabled:
            self.units.append(write_units(self._before, self._item(self._key)))

    def taken(self) -> list[int]:
        units, self.units = self.units, []
        return units


def live(count: int) -> dict[str, PropertyVersion]:
    return {
        f"property_{i:03d}": PropertyVersion(f'"value {i}"', NOW - 60 * DAY_SECONDS)
        for i in range(count)
    }


def deleted(names: list[str], timestamp: float) -> dict[str, PropertyVersion]:
    return {name: PropertyVersion("null", timestamp) for name in names}


def write(store: CustomerStore, customer: str, versions: dict[str, PropertyVersion]) -> None:
    items = list(versions.items())
    for start in range(0, len(items), PROPERTIES_PER_REQUEST):
        store.write_properties(
            PROJECT, customer, dict(items[start : start + PROPERTIES_PER_REQUEST])
        )


def one_property(store: CustomerStore, customer: str, timestamp: float) -> None:
    store.write_properties(PROJECT, customer, {"visits": PropertyVersion("7", timestamp)})


def profile(
    kept: CustomerStore, compacting: CustomerStore, bill: Bill, reader: Any, *, n: int, m: int
) -> dict[str, Any]:
    customer = f"01PROFILE{n:05d}{m:05d}0000000"
    key = _key(customer)
    bill.enabled = False  # the profile's making is not measured
    write(kept, customer, live(n))
    write(kept, customer, deleted([f"cart_item_{i:05d}" for i in range(m)], NOW - 40 * DAY_SECONDS))
    size_before = item_size(reader.get_item(TableName=TABLE, Key=key)["Item"])
    bill.enabled = True
    one_property(kept, customer, NOW)
    uncompacted = bill.taken()
    one_property(compacting, customer, NOW + 1)
    compaction = bill.taken()
    size_after = item_size(reader.get_item(TableName=TABLE, Key=key)["Item"])
    one_property(compacting, customer, NOW + 2)
    compacted = bill.taken()
    return {
        "properties": n,
        "tombstones": m,
        "item_bytes": size_before,
        "compacted_item_bytes": size_after,
        "update_units": sum(uncompacted),
        "compacting_write_units": sum(compaction),
        "compacting_write_requests": len(compaction),
        "compacted_update_units": sum(compacted),
    }


def year(
    kept: CustomerStore, compacting: CustomerStore, reader: Any, clock: Clock
) -> dict[str, Any]:
    """Each day 5 new names are deleted (a cart emptied of items never seen
    again): the customer's item after a year. Without compaction the order
    of the deletions changes nothing, so they are written 35 at a time."""
    days = [[f"cart_item_{d:03d}_{i}" for i in range(DELETIONS_PER_DAY)] for d in range(YEAR_DAYS)]
    kept_customer, compacted_customer = "01YEARKEPT0000000000000000", "01YEARCOMPACTED00000000000"
    write(kept, kept_customer, live(10))
    write(kept, kept_customer, deleted([n for names in days for n in names], NOW))
    write(compacting, compacted_customer, live(10))
    base = item_size(reader.get_item(TableName=TABLE, Key=_key(compacted_customer))["Item"])
    for day, names in enumerate(days):
        clock.now = NOW + day * DAY_SECONDS
        compacting.write_properties(PROJECT, compacted_customer, deleted(names, clock.now))
    clock.now = NOW
    sizes = {
        name: item_size(reader.get_item(TableName=TABLE, Key=_key(customer))["Item"])
        for name, customer in (("kept", kept_customer), ("compacted", compacted_customer))
    }
    # tombstones of the grace period and a quarter (and the day that is due),
    # the horizon's time and at most 256 buckets of 2 bytes
    tombstone = item_size(
        {"p:cart_item_000_0": {"M": {"v": {"S": "0000000000null"}, "t": {"N": str(NOW)}}}}
    )
    due_days = math.ceil(DEFAULT_TOMBSTONE_GRACE_DAYS * 1.25) + 1
    horizon = item_size({"horizon": {"N": str(NOW)}, "horizon_buckets": {"SS": ["00"] * 256}})
    since = item_size({"tombstones_since": {"N": str(NOW)}})
    return {
        "days": YEAR_DAYS,
        "deletions_per_day": DELETIONS_PER_DAY,
        "item_bytes": sizes["kept"],
        "compacted_item_bytes": sizes["compacted"],
        "update_units": math.ceil(sizes["kept"] / 1024),
        "compacted_update_units": math.ceil(sizes["compacted"] / 1024),
        "bound_bytes": base + due_days * DELETIONS_PER_DAY * tombstone + horizon + since,
    }


def _key(customer: str) -> dict[str, Any]:
    return {"pk": {"S": customer_key(PROJECT, customer)}}


def item_write_units() -> dict[str, Any]:
    started = time.time()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        reader = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(**create_table_kwargs(load_template(), "PropsyncTable", TABLE))
        clock = Clock()
        kept = CustomerStore(client, TABLE, CompactionPolicy(GRACE * 1e6, clock))
        compacting = CustomerStore(client, TABLE, CompactionPolicy(GRACE, clock))
        bill = Bill(client, reader)
        profiles = [profile(kept, compacting, bill, reader, n=n, m=m) for n, m in PROFILES]
        bill.enabled = False
        grown = year(kept, compacting, reader, clock)
    without_tombstones = {
        p["properties"]: p["update_units"] for p in profiles if not p["tombstones"]
    }
    # with compaction, a profile's update costs what it costs without its old
    # tombstones: its horizon (a time and at most 256 two-byte buckets) adds
    # at most one unit
    bars_met = all(
        p["compacted_update_units"] <= without_tombstones[p["properties"]] + 1 for p in profiles
    )
    return {
        "grace_days": DEFAULT_TOMBSTONE_GRACE_DAYS,
        "profiles": profiles,
        "year": grown,
        "bars_met": bars_met and grown["compacted_item_bytes"] <= grown["bound_bytes"],
        "seconds": round(time.time() - started),
    }


def render_items(r: dict[str, Any]) -> list[tuple[str, Any, str, bool | None]]:
    """The rows of the items table."""
    rows: list[tuple[str, Any, str, bool | None]] = []
    without = {p["properties"]: p["update_units"] for p in r["profiles"] if not p["tombstones"]}
    for p in r["profiles"]:
        label = (
            f"{p['properties']} properties, {p['tombstones']:,} tombstones older than the grace: "
            "item bytes; WCU of a one-property update kept / compacted; the write that "
            "compacts (requests)"
        )
        measured = (
            f"{p['item_bytes']:,} B -> {p['compacted_item_bytes']:,} B; "
            f"{p['update_units']} / {p['compacted_update_units']} WCU; "
            f"{p['compacting_write_units']} WCU ({p['compacting_write_requests']})"
        )
        bar = f"<= {without[p['properties']] + 1} WCU compacted"
        rows.append(
            (label, measured, bar, p["compacted_update_units"] <= without[p["properties"]] + 1)
        )
    y = r["year"]
    rows.append(
        (
            f"a year of {y['deletions_per_day']} new names deleted a day: item bytes and "
            "WCU of an update, kept / compacted",
            f"{y['item_bytes']:,} B ({y['update_units']} WCU) / {y['compacted_item_bytes']:,} B "
            f"({y['compacted_update_units']} WCU)",
            f"<= {y['bound_bytes']:,} B compacted (the grace and a quarter of tombstones, "
            "the horizon)",
            y["compacted_item_bytes"] <= y["bound_bytes"],
        )
    )
    return rows
