"""The write path every source shares: tracking commands, imports and UI edits.

Everything is validated before the first request, so bad input changes no data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from propsync import erasure
from propsync.container import per_container_closed_by
from propsync.errors import InvalidPropertyError, WriteContentionError
from propsync.identity import HARD_ID_TYPES, resolve_customer, validate_customer_ids
from propsync.limits import MAX_CONCURRENT_COMMANDS, MAX_MERGE_HOPS, MAX_RESOLVE_ROUNDS
from propsync.merge_rule import PropertyVersion
from propsync.merging import final_customer, read_following_merges
from propsync.properties import encode_property_value, validate_property_name
from propsync.store.conditional import MAX_SEEN_PER_WRITE, CustomerErased, CustomerMergedAway
from propsync.store.customers import CustomerStore, WriteResult
from propsync.timestamps import normalize_timestamp

logger = logging.getLogger(__name__)
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class UpdateResult:
    """What happened to one customer update: the customer it resolved to,
    whether that customer was created by it, and which properties were stored
    and which lost to a newer stored value or an erasure (stale: the API's
    word)."""

    customer_id: str | None  # None: held back by an erasure, nothing written
    created: bool
    applied: tuple[str, ...]
    stale: tuple[str, ...]
    # customers merged into customer_id by this update, and soft ids it took
    # from other customers (propsync.identity)
    merged: tuple[str, ...] = ()
    moved_ids: tuple[tuple[str, str], ...] = ()
    # the update's id types erased after its time (propsync.erasure)
    erased_id_types: tuple[str, ...] = ()


def prepare_property_versions(properties: Any, timestamp: float) -> dict[str, PropertyVersion]:
    """Validate names and values and encode them; no I/O."""
    if not isinstance(properties, Mapping):
        raise InvalidPropertyError(
            'properties must be an object of property name to value, e.g. {"first_name": "Marian"}'
        )
    return {
        validate_property_name(name): PropertyVersion(encode_property_value(name, value), timestamp)
        for name, value in properties.items()
    }


def update_customer(
    store: CustomerStore,
    project: str,
    customer_ids: Any,
    properties: Any,
    *,
    update_timestamp: Any | None,
    received_at: float,
    known_owners: Mapping[tuple[str, str], str | None] | None = None,
    known_erasures: Mapping[tuple[str, str], float] | None = None,
    hard_id_types: frozenset[str] = HARD_ID_TYPES,
) -> UpdateResult:
    """Apply one ``customers`` update with the merge rule.

    ``update_timestamp`` (any accepted form, see :mod:`propsync.timestamps`)
    applies to every property; without it the update is stamped with
    ``received_at``, the server time when the request arrived.
    """
    ids, versions, timestamp = prepare_update(
        customer_ids, properties, update_timestamp, received_at
    )
    return write_update(
        store,
        project,
        ids,
        versions,
        known_owners,
        timestamp=timestamp,
        known_erasures=known_erasures,
        hard_id_types=hard_id_types,
    )


def prepare_update(
    customer_ids: Any, properties: Any, update_timestamp: Any | None, received_at: float
) -> tuple[dict[str, str], dict[str, PropertyVersion], float]:
    """Every check of one ``customers`` update that needs no I/O, and what
    it writes: its ids, its properties stamped with ``update_timestamp``
    (``received_at`` without one), and that time. The queued tracking routes
    run it to answer a bad command at once (propsync.tracking_queue)."""
    ids = validate_customer_ids(customer_ids)
    timestamp = (
        received_at
        if update_timestamp is None
        else normalize_timestamp(update_timestamp, now=received_at)
    )
    return ids, prepare_property_versions(properties, timestamp), timestamp


def write_update(
    store: CustomerStore,
    project: str,
    ids: dict[str, str],
    versions: Mapping[str, PropertyVersion],
    known_owners: Mapping[tuple[str, str], str | None] | None = None,
    *,
    timestamp: float,
    known_erasures: Mapping[tuple[str, str], float] | None = None,
    hard_id_types: frozenset[str] = HARD_ID_TYPES,
) -> UpdateResult:
    """Resolve validated ids and write validated versions with the merge rule
    (``hard_id_types``: the project's, propsync.id_types), after the erasure
    rule (propsync.erasure) with the update's time, ``timestamp``.
    ``known_erasures``: lookup_ids' answer for a batch (None: looked up
    here)."""
    erased = known_erasures
    for _round in range(MAX_RESOLVE_ROUNDS):
        if erased is None:  # and the owners, by the same request
            owners, erased = erasure.look_up(store, project, ids.items())
            known_owners = {pair: owners.get(pair) for pair in ids.items()}
        rule = erasure.held_back(ids, versions, timestamp, erased)
        if rule.blocked:
            return UpdateResult(
                customer_id=None,
                created=False,
                applied=(),
                stale=rule.dropped,
                erased_id_types=rule.erased_id_types,
            )
        try:
            result = _resolve_and_write(
                store, project, ids, rule.versions, known_owners, hard_id_types=hard_id_types
            )
        except CustomerErased as met:
            # the customer the ids named was erased after they were looked up
            erasure.erase_ids_of(store, project, ids.items(), met)
            erased = known_owners = None
            continue
        if not rule.dropped:
            return result
        return replace(result, stale=result.stale + rule.dropped)
    raise WriteContentionError(
        f"the customer these customer_ids name was being erased during each of "
        f"{MAX_RESOLVE_ROUNDS} attempts; retry the command"
    )


def _resolve_and_write(
    store: CustomerStore,
    project: str,
    ids: dict[str, str],
    versions: Mapping[str, PropertyVersion],
    known_owners: Mapping[tuple[str, str], str | None] | None,
    *,
    hard_id_types: frozenset[str],
) -> UpdateResult:
    resolution = resolve_customer(
        store, project, ids, known_owners, record_first_id=False, hard_id_types=hard_id_types
    )
    customer_id = resolution.customer_id
    written = None
    if versions or resolution.unrecorded_ids:
        # the customer was identified by its soft ids now: refreshed by the
        # same request (which of its soft ids it keeps past 64 depends on it)
        now = time.time()
        soft = sorted(pair for pair in ids.items() if pair[0] not in hard_id_types)
        seen = dict.fromkeys(soft[:MAX_SEEN_PER_WRITE], now)
        customer_id, written = _write_following_merges(
            store, project, customer_id, versions, new_ids=resolution.unrecorded_ids, seen=seen
        )
    return UpdateResult(
        customer_id=customer_id,
        created=resolution.created,
        applied=written.applied if written else (),
        stale=written.stale if written else (),
        merged=resolution.merged,
        moved_ids=resolution.moved_ids,
    )


def _write_following_merges(
    store: CustomerStore,
    project: str,
    customer_id: str,
    versions: Mapping[str, PropertyVersion],
    *,
    new_ids: Mapping[str, str] | None = None,
    seen: Mapping[tuple[str, str], float] | None = None,
) -> tuple[str, WriteResult]:
    """Write to the customer, or, when it was merged away since it was
    resolved, to the customer it was merged into (completing that merge): an
    update for a merged-away customer lands on its destination, however late."""
    for _hop in range(MAX_MERGE_HOPS):
        try:
            return customer_id, store.write_properties(
                project, customer_id, versions, new_ids=new_ids, seen=seen
            )
        except CustomerMergedAway as merged:
            customer_id = final_customer(store, project, merged.customer_id)
            new_ids = None  # the merge recorded the customer's ids on its destination
    raise WriteContentionError(f"customer {customer_id} kept being merged; retry the command")


def lookup_ids(
    store: CustomerStore, project: str, id_sets: Iterable[Mapping[str, str]]
) -> tuple[dict[tuple[str, str], str | None] | None, dict[tuple[str, str], float] | None]:
    """Owners of every id of many updates (None for an id nobody owns yet),
    and when those that were erased were, in as few BatchGetItem requests as
    possible. (None, None) if the lookup failed: each update then looks up
    its own ids, so a read error costs no update."""
    pairs = sorted({pair for ids in id_sets for pair in ids.items()})
    try:
        found, erased = erasure.look_up(store, project, pairs)
    except Exception:
        logger.exception("batched identity lookup failed; updates will look up their own ids")
        return None, None
    return {pair: found.get(pair) for pair in pairs}, erased


def same_customer_groups(
    id_sets: Mapping[int, Mapping[str, str]],
    known: Mapping[tuple[str, str], str | None] | None,
) -> list[list[int]]:
    """The indexes of ``id_sets`` (the ids of a batch's updates: tracking
    commands, or import rows) in groups that may write the same customer, each
    group in index order: updates that share an id, or whose ids one known
    customer owns, transitively (a union-find over the updates). Updates in
    different groups cannot meet on one customer within the batch, so groups
    may be written concurrently; the updates of a group must be written one
    after another, or two first sightings of one person race to claim its ids
    and split it into two customers."""
    parent = {index: index for index in id_sets}

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    first_with: dict[object, int] = {}  # an id pair or an owner -> the first command naming it
    for index, ids in id_sets.items():
        for pair in ids.items():
            owner = known.get(pair) if known is not None else None
            for token in (pair,) if owner is None else (pair, owner):
                parent[root(index)] = root(first_with.setdefault(token, index))
    groups: dict[int, list[int]] = {}
    for index in sorted(id_sets):
        groups.setdefault(root(index), []).append(index)
    return list(groups.values())


def with_owner(
    known: Mapping[tuple[str, str], str | None] | None, ids: Mapping[str, str], customer_id: str
) -> Mapping[tuple[str, str], str | None] | None:
    """``known`` (from lookup_ids) after an update of ``customer_id`` with
    ``ids`` succeeded: its ids are that customer's now, so the next update of
    the same group need not claim them. A new mapping: ``known`` is shared by
    the writer threads and never changed."""
    if known is None:
        return None
    return {**known, **dict.fromkeys(ids.items(), customer_id)}


def run_concurrently(items: Sequence[ItemT], work: Callable[[ItemT], ResultT]) -> list[ResultT]:
    """``work`` over ``items`` on at most MAX_CONCURRENT_COMMANDS threads,
    results in order. The threads belong to one pool per process (a Lambda
    container), created on first use and kept: starting threads for every batch
    cost more CPU than the batch's own work (make bench). ``work`` must not
    itself call run_concurrently (it would wait on its own pool)."""
    if len(items) <= 1:
        return [work(item) for item in items]
    pool = _shared_pool()
    futures = [pool.submit(work, item) for item in items]
    # One wake-up when all are done, not one per result: every wake-up of this
    # thread takes the interpreter lock from a writer.
    wait(futures)
    return [future.result() for future in futures]


# The threads are the container's own: a container restored from a SnapStart
# snapshot (or a test's new container) shuts them down and starts its own.
@per_container_closed_by(ThreadPoolExecutor.shutdown)
def _shared_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(MAX_CONCURRENT_COMMANDS, thread_name_prefix="write")


def edit_customer(
    store: CustomerStore, project: str, customer_id: str, versions: Mapping[str, PropertyVersion]
) -> UpdateResult | None:
    """A UI edit of an existing customer, its properties already validated by
    ``prepare_property_versions`` (stamped with the server's time): the caller
    checks the body before it resolves the customer, so a bad body is a 400
    whichever customer the path names. None if the customer does not exist,
    or was erased (nothing is created)."""
    record = read_following_merges(store, project, customer_id)
    if record is None:
        return None
    customer_id = record.customer_id
    written = None
    if versions:
        try:
            customer_id, written = _write_following_merges(store, project, customer_id, versions)
        except CustomerErased:
            return None  # erased since it was read
    return UpdateResult(
        customer_id=customer_id,
        created=False,
        applied=written.applied if written else (),
        stale=written.stale if written else (),
    )
