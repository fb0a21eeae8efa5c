"""Identity: a command's ``customer_ids`` -> one internal customer id.

- The first sighting of an id creates the customer. Its first id is claimed
  with a conditional put, so two concurrent first sightings agree on one
  customer (the loser looks again and finds the winner's customer).
- Each id type of a project is hard (one value per customer, ``registered``)
  or soft (many, ``cookie``): propsync.id_types.
- No two customers share an id. Ids of several customers merge them, unless
  they hold different values of one hard id type (IdentityConflictError); a
  soft id of a customer with another hard id moves instead
  (:func:`plan_resolution` states the rules; propsync.merging runs a merge).
- Whenever the ids changed owners between the lookup and a write (a lost
  claim, a concurrent merge), the command looks again, at most
  MAX_RESOLVE_ROUNDS times.
"""

from __future__ import annotations

import os
import random
import re
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from propsync.errors import (
    IdentityConflictError,
    InvalidCustomerIdsError,
    WriteContentionError,
)
from propsync.id_types import DEFAULT_ID_TYPES, check_id_type_name
from propsync.limits import MAX_ID_VALUE_BYTES, MAX_RESOLVE_ROUNDS
from propsync.merging import (
    final_customer,
    keep_soft_ids_within_cap,
    merge_into,
    move_identity,
)
from propsync.store.conditional import CustomerErased, CustomerMergedAway, HardIdClashError
from propsync.store.customers import CustomerRecord, CustomerStore

# the hard id types of a project created with the defaults (tests, tools)
HARD_ID_TYPES = DEFAULT_ID_TYPES.hard
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CUSTOMER_ID = re.compile(f"[{_CROCKFORD}]{{26}}")


@dataclass(frozen=True)
class Resolution:
    customer_id: str
    created: bool
    # Ids claimed for a customer created by this resolution that are not on
    # its item yet (only with record_first_id=False): the caller's property
    # write records them (CustomerStore.write_properties(new_ids=...)).
    unrecorded_ids: Mapping[str, str] = field(default_factory=dict)
    # customers merged into customer_id by this resolution, oldest first
    merged: tuple[str, ...] = ()
    # soft ids taken from other customers for customer_id ("stolen")
    moved_ids: tuple[tuple[str, str], ...] = ()


def validate_customer_ids(customer_ids: Any) -> dict[str, str]:
    """Check the shape of ``customer_ids`` and return it as a plain dict."""
    if not isinstance(customer_ids, Mapping):
        raise InvalidCustomerIdsError(
            'customer_ids must be an object of id type to id value, e.g. {"registered": "jane"}'
        )
    if not customer_ids:
        raise InvalidCustomerIdsError("At least one id should be specified.")
    validated: dict[str, str] = {}
    for id_type, id_value in customer_ids.items():
        check_id_type_name(id_type)
        if not isinstance(id_value, str):
            raise InvalidCustomerIdsError(
                f"customer_ids.{id_type} must be a string, got {type(id_value).__name__}"
            )
        _check_id_value(id_type, id_value)
        validated[id_type] = id_value
    return validated


def _check_id_value(id_type: str, id_value: str) -> None:
    if not id_value:
        raise InvalidCustomerIdsError(f"customer_ids.{id_type} must not be empty")
    try:
        size = len(id_value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidCustomerIdsError(f"customer_ids.{id_type} is not valid unicode") from None
    if size > MAX_ID_VALUE_BYTES:
        raise InvalidCustomerIdsError(
            f"customer_ids.{id_type} is {size} bytes; at most {MAX_ID_VALUE_BYTES} are allowed"
        )
    if any(unicodedata.category(char) == "Cc" for char in id_value):
        raise InvalidCustomerIdsError(
            f"customer_ids.{id_type} contains a control character; they are not allowed in ids"
        )


def new_customer_id(now: float | None = None) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, 26 characters of
    Crockford base32, so ids sort by creation time and never collide in practice."""
    millis = int((time.time() if now is None else now) * 1000)
    number = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        number, digit = divmod(number, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def is_customer_id(value: str) -> bool:
    """True for a well-formed internal customer id (a ULID)."""
    return bool(_CUSTOMER_ID.fullmatch(value))


def find_customer_id(store: CustomerStore, project: str, id_type: str, id_value: str) -> str | None:
    """The customer an external id's identity item names, without creating
    anything. It may be one merged away a moment ago, whose identity items
    were not moved yet: readers follow it (merging.read_following_merges)."""
    ids = validate_customer_ids({id_type: id_value})
    return store.identities.lookup(project, ids.items()).get((id_type, id_value))


class _LookAgain(Exception):
    """The ids changed owners between the lookup and a write (a concurrent
    first sighting, merge or move): resolve again from a fresh lookup."""


def resolve_customer(
    store: CustomerStore,
    project: str,
    customer_ids: Mapping[str, str],
    known_owners: Mapping[tuple[str, str], str | None] | None = None,
    *,
    record_first_id: bool = True,
    hard_id_types: frozenset[str] = HARD_ID_TYPES,
) -> Resolution:
    """Find (or create) the one customer that ``customer_ids`` name, merging
    the customers they belong to where the rules allow (module docstring).

    A new customer gets its first id recorded on its item here, unless
    ``record_first_id`` is False and the command has no other id: then the
    caller records it with its property write (one request fewer per new
    customer) and finds it in ``unrecorded_ids``.

    ``customer_ids`` must have passed :func:`validate_customer_ids`.
    ``known_owners`` lets a caller pass what it already looked up for a whole
    batch (one ``BatchGetItem`` for many commands): ``(id_type, id_value)`` ->
    owner, or ``None`` for an id that was looked up and not found. Ids it does
    not mention are looked up here.
    """
    ids = dict(customer_ids)
    looked_up = dict(known_owners or {})
    for _round in range(MAX_RESOLVE_ROUNDS):
        unknown = [pair for pair in ids.items() if pair not in looked_up]
        if unknown:
            found = store.identities.lookup(project, unknown)
            looked_up.update({pair: found.get(pair) for pair in unknown})
        owners = {pair: owner for pair in ids.items() if (owner := looked_up[pair]) is not None}
        try:
            return _resolve(
                store,
                project,
                ids,
                owners,
                record_first_id=record_first_id,
                hard_id_types=hard_id_types,
            )
        except CustomerMergedAway as merged:
            # an identity item still names a customer merged away: point it
            # at where that customer went, then look again
            stale = [pair for pair, owner in owners.items() if owner == merged.customer_id]
            _repoint(store, project, stale, merged.customer_id)
            looked_up = {}
        except _LookAgain:
            looked_up = {}
        # others are identifying the same people right now: let them finish
        time.sleep(random.uniform(0, 0.005 * 2**_round))
    raise WriteContentionError(
        f"the owners of these customer_ids changed during each of {MAX_RESOLVE_ROUNDS} "
        "attempts (other commands identifying the same people); retry the command"
    )


def _resolve(
    store: CustomerStore,
    project: str,
    ids: dict[str, str],
    owners: dict[tuple[str, str], str],
    *,
    record_first_id: bool,
    hard_id_types: frozenset[str],
) -> Resolution:
    distinct = set(owners.values())
    if not distinct:
        return _first_sighting(store, project, ids, record_first_id, hard_id_types)
    if len(distinct) == 1:
        # The common case, at today's cost: ids of one customer, perhaps with
        # new ones to give it. Only a clash of hard ids needs the full plan.
        customer_id = next(iter(distinct))
        missing = {t: v for t, v in ids.items() if (t, v) not in owners}
        try:
            _attach(store, project, customer_id, missing, hard_id_types=hard_id_types)
            return Resolution(customer_id, created=False)
        except HardIdClashError:
            pass
    return _merge_or_move(store, project, ids, owners, hard_id_types)


def _first_sighting(
    store: CustomerStore,
    project: str,
    ids: dict[str, str],
    record_first_id: bool,
    hard_id_types: frozenset[str],
) -> Resolution:
    """Claim one id, hard id first, so that concurrent first sightings of the
    same ids race on the same identity item; the loser looks again."""
    first_type = _first_id_type(ids, hard_id_types)
    candidate = new_customer_id()
    if store.identities.claim(project, first_type, ids[first_type], candidate) != candidate:
        raise _LookAgain
    first = {first_type: ids[first_type]}
    rest = {t: v for t, v in ids.items() if t != first_type}
    if not rest and not record_first_id:
        return Resolution(candidate, created=True, unrecorded_ids=first)
    _attach(store, project, candidate, rest, hard_id_types=hard_id_types, claimed=first)
    return Resolution(candidate, created=True)


def _first_id_type(ids: Mapping[str, str], hard_id_types: frozenset[str]) -> str:
    """The id a new customer is claimed by: a hard one first, then by name, so
    that every command creating the same person races on the same item."""
    return min(ids, key=lambda t: (t not in hard_id_types, t))


def _merge_or_move(
    store: CustomerStore,
    project: str,
    ids: dict[str, str],
    owners: dict[tuple[str, str], str],
    hard_id_types: frozenset[str],
) -> Resolution:
    """The ids belong to several customers (or to one that holds another value
    of a hard id the command names): merge those that may be merged into the
    oldest of them, and move the soft ids of those that may not."""
    records = {}
    for owner in sorted(set(owners.values())):
        record = store.read_customer(project, owner)
        if record is not None and record.erased_at is not None:
            raise CustomerErased(owner, record.erased_at)
        if record is not None and record.merged_into is not None:
            raise CustomerMergedAway(owner, record.merged_into)
        # A customer's item may not list every id it owns yet (its first
        # write failed after the claim, or is still on its way): what it
        # holds is also what the identity items say.
        record = record or CustomerRecord(owner, {})
        held = {t: set(v) for t, v in record.ids.items()}
        for (t, v), o in owners.items():
            if o == owner:
                held.setdefault(t, set()).add(v)
        records[owner] = replace(record, ids={t: sorted(v) for t, v in held.items()})
    plan = plan_resolution(ids, owners, {c: r.ids for c, r in records.items()}, hard_id_types)

    created = plan.destination is None
    if plan.destination is None:
        destination = new_customer_id()
        first_type = _first_id_type(plan.unowned, hard_id_types)
        first = (first_type, plan.unowned[first_type])
        if store.identities.claim(project, *first, destination) != destination:
            raise _LookAgain
        store.identities.add_to_customer(
            project, destination, {first_type: [first[1]]}, hard_id_types
        )
        unowned = {t: v for t, v in plan.unowned.items() if t != first_type}
        destination_record = CustomerRecord(destination, {first_type: [first[1]]})
    else:
        destination = plan.destination
        unowned = dict(plan.unowned)
        destination_record = records[destination]
    try:
        merged = []  # by this command: a merge another command marked first is its own
        for source in plan.merged:
            outcome = merge_into(
                store,
                project,
                records[source],
                destination_record,
                hard_ids=plan.hard_ids,
                hard_id_types=hard_id_types,
            )
            if outcome is False:
                raise _LookAgain
            if outcome:
                merged.append(source)
        moved = []
        for (id_type, id_value), holder in sorted(plan.moved.items()):
            _move(
                store,
                project,
                id_type,
                id_value,
                holder,
                destination=destination,
                hard_id_types=hard_id_types,
            )
            moved.append((id_type, id_value))
        _attach(store, project, destination, unowned, hard_id_types=hard_id_types)
    except (HardIdClashError, CustomerMergedAway):
        raise _LookAgain from None
    return Resolution(destination, created=created, merged=tuple(merged), moved_ids=tuple(moved))


def _repoint(
    store: CustomerStore, project: str, pairs: list[tuple[str, str]], merged_away: str
) -> None:
    """Identity items that still name a customer merged away (its merge was
    completed before they were claimed, or is being completed now): recorded
    on the customer at the end of its merges, then pointed at it."""
    final = final_customer(store, project, merged_away)
    for id_type, id_value in pairs:
        store.identities.add_to_customer(project, final, {id_type: [id_value]}, frozenset())
        move_identity(store, project, (id_type, id_value), merged_away, final)


def _move(
    store: CustomerStore,
    project: str,
    id_type: str,
    id_value: str,
    holder: str,
    *,
    destination: str,
    hard_id_types: frozenset[str],
) -> None:
    """A soft id "stolen" from ``holder`` by the customer a command
    identifies: recorded on the destination, pointed at it, taken off the
    holder. A crash between the steps leaves the id listed on both, owned by
    one of them; a retry of the command completes it."""
    sizes = store.identities.add_to_customer(
        project,
        destination,
        {id_type: [id_value]},
        hard_id_types,
        seen={(id_type, id_value): time.time()},
    )
    if not store.identities.move(project, id_type, id_value, holder, destination):
        store.identities.remove_from_customer(project, destination, {id_type: [id_value]})
        raise _LookAgain
    store.identities.remove_from_customer(project, holder, {id_type: [id_value]})
    keep_soft_ids_within_cap(store, project, destination, sizes)


@dataclass(frozen=True)
class ResolutionPlan:
    """What a command's ids do to the customers that hold them (no I/O)."""

    destination: str | None  # None: a new customer, created from ``unowned``
    merged: tuple[str, ...]  # merged into the destination, oldest first
    moved: dict[tuple[str, str], str]  # soft id -> the customer it is taken from
    unowned: dict[str, str]  # ids of the command nobody holds yet
    hard_ids: dict[str, str | None]  # every hard id type -> the merged customer's value


def plan_resolution(
    ids: Mapping[str, str],
    owners: Mapping[tuple[str, str], str],
    held: Mapping[str, Mapping[str, list[str]]],
    hard_id_types: frozenset[str],
) -> ResolutionPlan:
    """The rules of identification, as a pure function of the command's ids,
    who owns them, and the ids each owner holds.

    - The customers that hold the command's hard ids are the one it
      identifies: they merge, unless they and the command hold two values of
      one hard id type between them (IdentityConflictError: such customers
      never merge).
    - Every other owner merges too when its hard ids agree (oldest first).
      One that holds another value of a hard id type the command names keeps
      everything but the command's soft ids it held, which move to the
      customer the command identifies. One that disagrees only on a hard id
      type the command does not name cannot be told apart from the others:
      IdentityConflictError, nothing changes.
    - The destination is the oldest customer that merges (ULIDs sort by
      creation time); with none, the command creates one.
    """
    named = {t: v for t, v in ids.items() if t in hard_id_types}
    union: dict[str, str] = dict(named)

    def hard_of(customer: str) -> dict[str, set[str]]:
        return {t: set(v) for t, v in held[customer].items() if t in hard_id_types and v}

    def clashes(customer: str) -> set[str]:
        """The hard id types on which the customer disagrees with the union."""
        return {
            t
            for t, values in hard_of(customer).items()
            if len(values) > 1 or union.get(t, next(iter(values))) not in values
        }

    def refuse(customers: list[str]) -> IdentityConflictError:
        # A value the command did not send is another person's: named by its
        # type only (the public tracking route answers this, and logs keep it)
        held_text = "; ".join(
            f"{c} holds "
            + ", ".join(
                f"{t}={v!r}" if named.get(t) == v else f"another {t}"
                for t, values in sorted(hard_of(c).items())
                for v in sorted(values)
            )
            for c in customers
        )
        command = ", ".join(f"{t}={v!r}" for t, v in sorted(named.items())) or "no hard id"
        return IdentityConflictError(
            "customer_ids name customers with different values of a hard id (the command names "
            f"{command}; {held_text}); customers with different hard ids are never merged"
        )

    identified = sorted({owners[(t, v)] for t, v in named.items() if (t, v) in owners})
    group: list[str] = []
    for customer in identified:
        if clashes(customer):
            raise refuse(identified)
        group.append(customer)
        union.update({t: next(iter(v)) for t, v in hard_of(customer).items()})
    moved: dict[tuple[str, str], str] = {}
    for customer in sorted(set(owners.values()) - set(identified)):
        conflict = clashes(customer)
        if not conflict:
            group.append(customer)
            union.update({t: next(iter(v)) for t, v in hard_of(customer).items()})
        elif conflict & named.keys():
            moved.update({pair: o for pair, o in owners.items() if o == customer})
        else:
            raise refuse([*group, customer])
    ordered = sorted(group)
    return ResolutionPlan(
        destination=ordered[0] if ordered else None,
        merged=tuple(ordered[1:]),
        moved=moved,
        unowned={t: v for t, v in ids.items() if (t, v) not in owners},
        hard_ids={t: union.get(t) for t in sorted(hard_id_types)},
    )


def _attach(
    store: CustomerStore,
    project: str,
    customer_id: str,
    ids: dict[str, str],
    *,
    hard_id_types: frozenset[str],
    claimed: dict[str, str] | None = None,
) -> None:
    """Give ``customer_id`` ids nobody held at the lookup.

    The customer item is updated first (its condition enforces one hard id per
    customer: HardIdClashError), then each identity item is claimed. An id
    another customer claimed in the meantime is taken off again, and the
    command looks again (the two customers may merge now).
    ``claimed``: ids already claimed for it, recorded by the same update.
    """
    if not ids and not claimed:
        return
    both = {**(claimed or {}), **ids}
    now = time.time()
    sizes = store.identities.add_to_customer(
        project,
        customer_id,
        {t: [v] for t, v in both.items()},
        hard_id_types,
        seen={(t, v): now for t, v in both.items() if t not in hard_id_types},
    )
    taken = {}
    for id_type, id_value in sorted(ids.items()):
        if store.identities.claim(project, id_type, id_value, customer_id) != customer_id:
            taken[id_type] = [id_value]
    if taken:
        store.identities.remove_from_customer(project, customer_id, taken)
        raise _LookAgain
    keep_soft_ids_within_cap(store, project, customer_id, sizes)
