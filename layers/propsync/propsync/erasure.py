"""Erasure (the anonymize route): a customer's properties and ids are removed
for good, and stale data cannot bring the person back.

What stays of an erased customer is, for each of its ids, a salted hash and
the erasure time (store.erasures), and its item holding only that time (so
that a write aimed at it before the erasure fails: store.conditional's
NOT_CLOSED). The salt is the project's own (store.access), so a hash says
nothing about an id to anyone who does not hold the table.

The rule every write applies (:func:`held_back`): an update naming an id
erased at ``E`` keeps only the property versions newer than ``E``; if the
update itself is not newer than ``E`` it writes nothing and creates nothing,
and its properties are reported stale. A newer update starts a new customer
(the erased one's identity items are gone). A tie goes to the erasure.

An erasure runs as steps that are each safe to repeat (a retry of the route
completes a crashed one):

1. mark every id of the customer and of the customers merged into it;
2. replace the customers merged into it by erased items;
3. replace the customer by an erased item that lists its ids, conditional
   on it being as read (not merged away since, no customer merged in since);
4. delete the identity items that still point at any of them, the request's
   ids last, then the list (:func:`_complete`).

Until 4 ends, one of the request's ids leads to the erased item and its
list, so a retry finishes a crashed erasure; a write that meets the erased
item finishes it too, with the ids it names (:func:`erase_ids_of`), then
applies the rule.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from propsync.container import forgotten_with
from propsync.errors import UnknownProjectError, WriteContentionError
from propsync.limits import MAX_RESOLVE_ROUNDS
from propsync.merge_rule import PropertyVersion
from propsync.merging import follow_merges
from propsync.store.conditional import CustomerErased
from propsync.store.customers import CustomerRecord, CustomerStore

IdPair = tuple[str, str]

_salts: dict[str, str] = {}  # project -> its erasure salt (never changes once made)


@forgotten_with
def forget_salts() -> None:
    _salts.clear()


def id_hash(salt: str, id_type: str, id_value: str) -> str:
    """HMAC-SHA256 of the id under the project's salt, hex: what an erasure
    keeps of an id."""
    message = f"{id_type}\0{id_value}".encode("utf-8", errors="surrogatepass")
    return hmac.new(bytes.fromhex(salt), message, hashlib.sha256).hexdigest()


def _salt(store: CustomerStore, project: str) -> str | None:
    """The project's salt; None when there is no such project (only tests
    write customers of no project)."""
    salt = _salts.get(project)
    if salt is None:
        salt = store.erasures.salt(project)
        if salt is not None:
            _salts[project] = salt
    return salt


def look_up(
    store: CustomerStore, project: str, ids: Iterable[IdPair]
) -> tuple[dict[IdPair, str], dict[IdPair, float]]:
    """Who owns each id, and when the ids that were erased were, by the same
    requests."""
    pairs = set(ids)
    salt = _salt(store, project) if pairs else None
    by_hash = {id_hash(salt, t, v): (t, v) for t, v in pairs} if salt else {}
    found, erased = store.identities.lookup_with_erasures(project, pairs, by_hash)
    return found, {by_hash[h]: at for h, at in erased.items()}


@dataclass(frozen=True)
class HeldBack:
    """What the erasure rule leaves of an update."""

    versions: dict[str, PropertyVersion]  # the versions newer than the erasure
    dropped: tuple[str, ...]  # properties held back (reported stale)
    erased_id_types: tuple[str, ...]  # id types of the update erased after it
    blocked: bool  # the update is not newer than the erasure: it writes nothing


def held_back(
    ids: Mapping[str, str],
    versions: Mapping[str, PropertyVersion],
    timestamp: float,
    erased: Mapping[IdPair, float],
) -> HeldBack:
    """The rule (module docstring), without I/O. ``timestamp``: the update's
    time (an import's merged rows: the newest of them)."""
    times = {pair: erased[pair] for pair in ids.items() if pair in erased}
    if not times:
        return HeldBack(dict(versions), (), (), blocked=False)
    erased_at = max(times.values())
    kept = {
        name: version
        for name, version in versions.items()
        if version.timestamp is not None and version.timestamp > erased_at
    }
    blocked = timestamp <= erased_at
    if blocked:
        kept = {}
    return HeldBack(
        versions=kept,
        dropped=tuple(name for name in versions if name not in kept),
        erased_id_types=tuple(sorted(t for (t, _v), at in times.items() if at >= timestamp)),
        blocked=blocked,
    )


def erase_ids_of(
    store: CustomerStore, project: str, ids: Iterable[IdPair], met: CustomerErased
) -> None:
    """A write met ``met.customer_id`` erased: the erasure is completed (it
    may have crashed before its identity items were deleted) with the ids the
    write named that still point at that customer."""
    pairs = sorted(set(ids))
    owners = store.identities.lookup(project, pairs)
    named = {pair for pair in pairs if owners.get(pair) == met.customer_id}
    record = store.read_customer(project, met.customer_id)
    if named and record is not None and record.erased_at is not None:
        _complete(store, project, record, named, ())


def anonymize(store: CustomerStore, project: str, ids: Mapping[str, str], erased_at: float) -> bool:
    """Erase the one customer ``ids`` name (each id must be one of its ids,
    as export-one requires). True when it is erased (now, or before: a
    retried erasure answers as the first did, and completes it if it
    crashed); False when the ids name no customer, or several."""
    named = set(ids.items())
    for _round in range(MAX_RESOLVE_ROUNDS):
        owners, erased_before = look_up(store, project, named)
        unknown = named - owners.keys()
        if unknown - erased_before.keys():
            return False  # an id nobody holds and nobody erased: no such customer
        if not owners:
            return True  # every id erased already: a repeated erasure answers as the first
        # A customer whose first write failed after its id was claimed has
        # no item, only identity items: those ids are its, and are erased.
        finals = [
            follow_merges(store, project, owner) or CustomerRecord(owner, {})
            for owner in sorted(set(owners.values()))
        ]
        customer = finals[0]
        if any(other.customer_id != customer.customer_id for other in finals):
            return False
        if customer.erased_at is not None:  # erased, but it stopped before the end
            _complete(store, project, customer, set(owners), set(owners.values()))
            return True
        if unknown:
            return False  # erased ids beside a customer that is not erased: not one person
        sources = _merged_into(store, project, customer)
        every_id = set(named).union(*(_pairs(record.ids) for record in (customer, *sources)))
        _mark(store, project, every_id, erased_at)
        for source in sources:
            store.erase_merged_away(project, source, erased_at)
        # the item keeps the ids of every customer erased with it until the end
        erased = replace(customer, ids=_by_type(every_id), erased_at=erased_at)
        replaced = store.erase(project, erased, erased_at)
        if replaced is None:
            continue  # merged away or merged into since it was read: read again
        # ids recorded on it since it was read (a write that raced this one)
        since = _pairs(replaced.ids) - every_id
        if since:
            _mark(store, project, since, erased_at)
            store.identities.release(project, sorted(since), [customer.customer_id])
        _complete(store, project, erased, named, {s.customer_id for s in sources})
        return True
    raise WriteContentionError(
        f"the customer changed during each of {MAX_RESOLVE_ROUNDS} attempts to erase it "
        "(other commands merging it); retry the request"
    )


def _complete(
    store: CustomerStore,
    project: str,
    erased: CustomerRecord,
    named: set[IdPair],
    others: Iterable[str],
) -> None:
    """The end of an erasure, safe to repeat: every id the erased item lists
    marked and its identity item deleted, then the list removed, and the ids
    the caller ``named`` last. Until then at least one of those ids leads to
    the erased item, so a crash anywhere leaves something the next request
    naming the person completes (an erasure retried, a late write)."""
    assert erased.erased_at is not None
    listed = _pairs(erased.ids)
    owners = {erased.customer_id, *others}
    _mark(store, project, listed | named, erased.erased_at)
    store.identities.release(project, sorted(listed - named), owners)
    store.identities.remove_from_customer(project, erased.customer_id, erased.ids)
    store.identities.release(project, sorted(named), owners)


def _mark(store: CustomerStore, project: str, ids: Iterable[IdPair], erased_at: float) -> None:
    salt = _salt(store, project)
    if salt is None:
        raise UnknownProjectError(project)
    store.erasures.mark(project, (id_hash(salt, t, v) for t, v in ids), erased_at)


def _pairs(ids: Mapping[str, Iterable[str]]) -> set[IdPair]:
    """Ids by type (as a customer item lists them) as (type, value) pairs."""
    return {(id_type, value) for id_type, values in ids.items() for value in values}


def _by_type(ids: Iterable[IdPair]) -> dict[str, list[str]]:
    """The inverse of _pairs: (type, value) pairs as sorted values by type."""
    by_type: dict[str, list[str]] = {}
    for id_type, id_value in sorted(ids):
        by_type.setdefault(id_type, []).append(id_value)
    return by_type


def _merged_into(
    store: CustomerStore, project: str, customer: CustomerRecord
) -> list[CustomerRecord]:
    """Every customer merged into ``customer``, directly or through others."""
    found: dict[str, CustomerRecord] = {}
    pending = sorted(customer.merged_from)
    while pending:
        customer_id = pending.pop()
        if customer_id in found or customer_id == customer.customer_id:
            continue
        record = store.read_customer(project, customer_id) or CustomerRecord(customer_id, {})
        found[customer_id] = record
        pending += sorted(record.merged_from - found.keys())
    return list(found.values())
