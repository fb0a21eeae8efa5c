"""What a merge must leave, checked without helping it along.

A ``Ledger`` records every customers update a test sends: the versions of the
commands that returned (acknowledged) and of those that raised (they may or
may not have landed). ``merge_problems`` reads the stored items as they are
(``read_customer`` and identity lookups never complete a merge) and lists
everything that differs from "one customer, reachable by every id, holding
the merge rule over every acknowledged version": an empty list is a complete
merge.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from propsync.customer_updates import (
    UpdateResult,
    prepare_property_versions,
    update_customer,
)
from propsync.limits import MAX_MERGE_HOPS
from propsync.merge_rule import PropertyVersion, merge, wins
from propsync.store.access import AccessStore
from propsync.store.conditional import customer_key
from propsync.store.customers import CustomerRecord, CustomerStore, WriteResult

RECEIVED_AT = 2_000_000_000.0  # every update_timestamp of these tests is before it
Versions = Mapping[str, PropertyVersion]
Result = TypeVar("Result", UpdateResult, WriteResult)


def new_project(store: CustomerStore) -> str:
    """A project of its own for each scenario: many scenarios share one table.
    It exists, as wherever propsync writes (its erasure salt is read once)."""
    project = str(uuid.uuid4())
    AccessStore(store._client, store._table).create_project(project, "scenario")
    return project


class Ledger:
    """Every update sent, by outcome; safe to share between threads."""

    def __init__(self) -> None:
        self.acknowledged: list[tuple[str, PropertyVersion]] = []
        self.unacknowledged: list[tuple[str, PropertyVersion]] = []
        self.stale: list[tuple[str, PropertyVersion]] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def update(
        self,
        store: CustomerStore,
        project: str,
        ids: Mapping[str, str],
        properties: Mapping[str, Any],
        timestamp: float,
    ) -> UpdateResult:
        """update_customer, recorded: acknowledged if it returns, else
        unacknowledged (and the exception raised again)."""
        versions = prepare_property_versions(properties, timestamp)

        def send() -> UpdateResult:
            return update_customer(
                store,
                project,
                dict(ids),
                dict(properties),
                update_timestamp=timestamp,
                received_at=RECEIVED_AT,
            )

        return self._recorded(versions, send)

    def write_new(
        self,
        store: CustomerStore,
        project: str,
        customer_id: str,
        ids: Mapping[str, str],
        versions: Versions,
    ) -> WriteResult:
        """The write of a customer whose ids were just claimed for it
        (store.write_properties recording them), recorded like ``update``."""
        return self._recorded(
            versions, lambda: store.write_properties(project, customer_id, versions, new_ids=ids)
        )

    def _recorded(self, versions: Versions, send: Callable[[], Result]) -> Result:
        try:
            result = send()
        except BaseException as error:
            with self._lock:
                self.unacknowledged += versions.items()
                self.errors.append(error)
            raise
        assert sorted([*result.applied, *result.stale]) == sorted(versions), result
        with self._lock:
            self.acknowledged += versions.items()
            self.stale += [(name, v) for name, v in versions.items() if name in result.stale]
        return result

    def allowed(self) -> dict[str, set[PropertyVersion | None]]:
        """Property -> every version the merge rule may have kept: the rule
        over the acknowledged versions, or any unacknowledged version that
        beats it (None: the property may be absent)."""
        acknowledged = merge({}, self.acknowledged)
        names = {name for name, _ in [*self.acknowledged, *self.unacknowledged]}
        allowed: dict[str, set[PropertyVersion | None]] = {
            name: {acknowledged.get(name)} for name in names
        }
        for name, version in self.unacknowledged:
            if wins(version, acknowledged.get(name)):
                allowed[name].add(version)
        return allowed

    def property_problems(self, stored: Mapping[str, PropertyVersion]) -> list[str]:
        allowed = self.allowed()
        problems = [
            f"property {name!r} is {stored.get(name)}, the merge rule allows only {sorted_(ok)}"
            for name, ok in sorted(allowed.items())
            if stored.get(name) not in ok
        ]
        return problems + [
            f"property {name!r} is stored but was never sent"
            for name in stored
            if name not in allowed
        ]

    def stale_problems(self) -> list[str]:
        """A property answered stale lost to a strictly newer version that
        some command sent (never to a value nobody wrote)."""
        sent = [*self.acknowledged, *self.unacknowledged]
        return [
            f"{name!r} {version} was answered stale, but nothing newer was sent"
            for name, version in self.stale
            if not any(n == name and wins(other, version) for n, other in sent)
        ]


def sorted_(versions: Iterable[PropertyVersion | None]) -> list[str]:
    return sorted(str(v) for v in versions)


def chain_end(
    store: CustomerStore,
    project: str,
    customer_id: str,
    records: dict[str, CustomerRecord | None] | None = None,
) -> str:
    """The customer ``customer_id``'s data ends on, following ``merged_into``
    as stored: read only, no merge is completed on the way. ``records``
    caches the items read."""
    records = {} if records is None else records
    for _hop in range(MAX_MERGE_HOPS):
        if customer_id not in records:
            records[customer_id] = store.read_customer(project, customer_id)
        record = records[customer_id]
        if record is None or record.merged_into is None:
            return customer_id
        customer_id = record.merged_into
    raise AssertionError(f"merge chain from {customer_id} deeper than {MAX_MERGE_HOPS}")


def merge_problems(
    store: CustomerStore,
    project: str,
    ids: Mapping[str, str] | Iterable[tuple[str, str]],
    customers: Iterable[str],
    ledger: Ledger,
) -> list[str]:
    """Everything that keeps this state from being one merged customer:
    ``customers`` (every customer the scenario created) and the owner of
    every id of ``ids`` (type -> value, or pairs) must end on one unmerged
    customer that records exactly ``ids`` and holds what the merge rule
    allows."""
    pairs = sorted(ids.items() if isinstance(ids, Mapping) else ids)
    records: dict[str, CustomerRecord | None] = {}
    owners = store.identities.lookup(project, pairs)
    problems = [f"id {pair} has no identity item" for pair in pairs if pair not in owners]
    ends = {c: chain_end(store, project, c, records) for c in [*customers, *owners.values()]}
    finals = set(ends.values())
    if len(finals) != 1:
        return [*problems, f"not one customer: {ends} (customer -> where its data ends)"]
    (final,) = finals
    record = records[final]
    if record is None:
        return [*problems, f"the final customer {final} has no item"]
    expected_ids: dict[str, list[str]] = {}
    for id_type, value in pairs:
        expected_ids.setdefault(id_type, []).append(value)
    if record.ids != expected_ids:
        problems.append(f"{final} records ids {record.ids}, not {expected_ids}")
    return problems + ledger.property_problems(record.properties)


def project_items(client: Any, table: str, project: str) -> tuple[dict[str, str], list[str]]:
    """Every identity item of the project (key -> owner) and every customer
    it has an item for (a Scan: only tests look at a whole project)."""
    identities: dict[str, str] = {}
    customers: list[str] = []
    paginator = client.get_paginator("scan")
    for page in paginator.paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            key = item["pk"]["S"]
            if key.startswith(f"{project}#id#"):
                identities[key] = item["cid"]["S"]
            elif key.startswith(customer_key(project, "")):
                customers.append(key.rsplit("#", 1)[-1])
    return identities, customers
