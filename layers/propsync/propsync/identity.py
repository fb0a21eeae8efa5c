"""Identity: a command's ``customer_ids`` -> one internal customer id.

- The first sighting of an id creates the customer. Its first id is claimed
  with a conditional put, so two concurrent first sightings agree on one
  customer (the loser adopts the winner's customer).
- ``registered`` is the hard id: one value per customer. Other id types
  (``cookie``, ...) are soft: a customer may collect many values.
- Ids that belong to two different customers, or that would give a customer a
  second hard id, fail the command with IdentityConflictError. Merging
  customers is not supported yet.
"""

from __future__ import annotations

import os
import re
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from propsync.errors import IdentityConflictError, InvalidCustomerIdsError, shown
from propsync.limits import MAX_ID_TYPE_CHARS, MAX_ID_VALUE_BYTES
from propsync.store.customers import CustomerStore

HARD_ID_TYPES = frozenset({"registered"})
_ID_TYPE = re.compile(r"[A-Za-z0-9_.\-]+")
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
        if (
            not isinstance(id_type, str)
            or len(id_type) > MAX_ID_TYPE_CHARS
            or not _ID_TYPE.fullmatch(id_type)
        ):
            raise InvalidCustomerIdsError(
                f"id type {shown(id_type)} is not allowed: use 1 to {MAX_ID_TYPE_CHARS} letters, "
                "digits, '_', '.' or '-'"
            )
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
    """The customer an external id belongs to, without creating anything."""
    ids = validate_customer_ids({id_type: id_value})
    return store.identities.lookup(project, ids.items()).get((id_type, id_value))


def resolve_customer(
    store: CustomerStore,
    project: str,
    customer_ids: Mapping[str, str],
    known_owners: Mapping[tuple[str, str], str | None] | None = None,
    *,
    record_first_id: bool = True,
) -> Resolution:
    """Find (or create) the one customer that ``customer_ids`` name.

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
    unknown = [pair for pair in ids.items() if pair not in looked_up]
    if unknown:
        found = store.identities.lookup(project, unknown)
        looked_up.update({pair: found.get(pair) for pair in unknown})
    owners = {pair: owner for pair in ids.items() if (owner := looked_up[pair]) is not None}

    distinct = set(owners.values())
    if len(distinct) > 1:
        raise IdentityConflictError(
            "customer_ids belong to different customers ("
            + ", ".join(f"{t}={v!r} -> {owners[(t, v)]}" for t, v in sorted(owners))
            + "); merging customers is not supported"
        )
    if distinct:
        customer_id = distinct.pop()
        missing = {t: v for t, v in ids.items() if (t, v) not in owners}
        _attach(store, project, customer_id, missing)
        return Resolution(customer_id, created=False)

    # First sighting: claim one id, hard id first, so that concurrent first
    # sightings of the same ids race on the same identity item.
    first_type = min(ids, key=lambda t: (t not in HARD_ID_TYPES, t))
    candidate = new_customer_id()
    owner = store.identities.claim(project, first_type, ids[first_type], candidate)
    created = owner == candidate
    rest = {t: v for t, v in ids.items() if t != first_type}
    if not created:
        _attach(store, project, owner, rest)
        return Resolution(owner, created=False)
    first = {first_type: ids[first_type]}
    if not rest and not record_first_id:
        return Resolution(owner, created=True, unrecorded_ids=first)
    _attach(store, project, owner, rest, claimed=first)
    return Resolution(owner, created=True)


def _attach(
    store: CustomerStore,
    project: str,
    customer_id: str,
    ids: dict[str, str],
    claimed: dict[str, str] | None = None,
) -> None:
    """Give ``customer_id`` ids it does not have yet.

    The customer item is updated first (its condition enforces one hard id per
    customer), then each identity item is claimed. An id claimed by another
    customer in the meantime is removed again and the command fails.
    ``claimed``: ids already claimed for it, recorded by the same update.
    """
    if not ids and not claimed:
        return
    store.identities.add_to_customer(
        project, customer_id, {**(claimed or {}), **ids}, HARD_ID_TYPES
    )
    taken: dict[str, tuple[str, str]] = {}
    for id_type, id_value in sorted(ids.items()):
        owner = store.identities.claim(project, id_type, id_value, customer_id)
        if owner != customer_id:
            taken[id_type] = (id_value, owner)
    if taken:
        store.identities.remove_from_customer(
            project, customer_id, {t: v for t, (v, _) in taken.items()}
        )
        raise IdentityConflictError(
            "customer_ids belong to different customers ("
            + ", ".join(f"{t}={v!r} -> {o}" for t, (v, o) in sorted(taken.items()))
            + f", the other ids -> {customer_id}); merging customers is not supported"
        )
