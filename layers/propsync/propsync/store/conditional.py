"""The requests that write customer items, built without I/O: one
``UpdateItem`` per group of properties, each property conditional on the
stored version losing to it (:func:`propsync.merge_rule.wins` in DynamoDB's
condition language), and the readers of the stored attributes. Pure, so the
conditions are tested against the merge rule without an engine
(tests/unit/test_conditional_updates.py) and on both engines
(tests/integration/test_store_matches_merge_rule.py).

Customer item attributes: one per property, ``p:<name>`` = ``{"v": <order
key>, "t": <update time>}`` (a property written before synchronization has no
``t`` and its ``v`` is the canonical JSON alone); one string set per id type,
``i:<id_type>``; ``cid`` and ``created``; once tombstones were compacted
(propsync.merge_rule.Horizon), ``horizon`` (a number) and ``horizon_buckets``
(a string set); while it holds tombstones, ``tombstones_since``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from propsync.limits import MAX_EXPRESSION_OPERATORS, MAX_ITEM_BYTES
from propsync.merge_rule import Compaction, Horizon, PropertyVersion, horizon_bucket
from propsync.store.dynamo import number

PROPERTY_PREFIX = "p:"
ID_SET_PREFIX = "i:"
# On a customer merged into another: the destination's customer id. Every
# property write is conditional on its absence, so nothing lands on a customer
# after it was merged away (propsync.identity: "Merging").
MERGED_INTO = "merged_into"
MERGE_DONE = "merge_done"
# On a customer merged into others: their customer ids (a string set), so
# that an erasure finds every item that holds the person's data.
MERGED_FROM = "merged_from"
# On an erased customer: when it was erased. The item holds nothing else, and
# every write is conditional on its absence (propsync.erasure).
ERASED_AT = "erased_at"
# When a customer was last identified by each of its soft ids: ``s:<type>:<value>``
# (id types hold no ':'), the time a command named it, for the 64-per-type cap.
SEEN_PREFIX = "s:"
# A property write refreshes the seen time of at most this many of the
# command's soft ids (each costs one operator of the request's budget).
MAX_SEEN_PER_WRITE = 3
# What a customer keeps of the tombstones it compacted (merge_rule.Horizon):
# the time of the newest, and the buckets of their names.
HORIZON = "horizon"
HORIZON_BUCKETS = "horizon_buckets"
# The update time of a tombstone the customer holds, set by the first write
# that stores one while none is noted: a write fails its condition when this
# is older than the compaction delay (store.compaction), and compacts.
TOMBSTONES_SINCE = "tombstones_since"
HORIZON_NAMES = {"#h": HORIZON, "#hb": HORIZON_BUCKETS}


def seen_attribute(id_type: str, id_value: str) -> str:
    return f"{SEEN_PREFIX}{id_type}:{id_value}"


class CustomerMergedAway(Exception):
    """A write met a customer that was merged into ``destination``: the
    caller completes that merge and writes to the destination instead
    (propsync.identity). Never reaches a client."""

    def __init__(self, customer_id: str, destination: str):
        super().__init__(f"customer {customer_id} was merged into {destination}")
        self.customer_id = customer_id
        self.destination = destination


class CustomerErased(Exception):
    """A write or a merge met a customer that was erased at ``erased_at``:
    the caller treats the command's ids as erased then (propsync.erasure).
    Never reaches a client."""

    def __init__(self, customer_id: str, erased_at: float):
        super().__init__(f"customer {customer_id} was erased")
        self.customer_id = customer_id
        self.erased_at = erased_at


def refusal_of(customer_id: str, item: Mapping[str, Any]) -> Exception | None:
    """Why a customer item refuses every write (merged away, erased), as the
    exception the write raises; None if it does not. The one reading of the
    guard that :data:`NOT_CLOSED` writes."""
    if ERASED_AT in item:
        return CustomerErased(customer_id, float(item[ERASED_AT]["N"]))
    if MERGED_INTO in item:
        return CustomerMergedAway(customer_id, item[MERGED_INTO]["S"])
    return None


# The guard of every write to a customer item: not merged away, not erased.
# Its placeholders: CLOSED_NAMES.
NOT_CLOSED = "attribute_not_exists(#merged) AND attribute_not_exists(#erased)"
CLOSED_NAMES = {"#merged": MERGED_INTO, "#erased": ERASED_AT}


class HardIdClashError(Exception):
    """Recording ids would give a customer a second value of a hard id type
    (the store's condition refused it): propsync.identity decides again with
    what is stored now. Never reaches a client."""


def customer_key(project: str, customer_id: str) -> str:
    return f"{project}#c#{customer_id}"


# Operators and functions one property adds to a request: the condition
# "NOT (a > b OR (a = b AND c >= d))" has 6, the AND joining it to the next
# one 1, and its "x = :y" in the SET clause 1.
_OPERATORS_PER_PROPERTY = 8
# And once per request: NOT_CLOSED and its AND, guarding against a
# merged-away or erased customer (4), the new customer's
# "cid = :c, created = if_not_exists(created, :n)" (3), "s:... = :now" per
# soft id whose seen time it refreshes (MAX_SEEN_PER_WRITE), the horizon's
# "AND NOT #h >= :t" (3), the compaction's "AND NOT #since <= :due" (3) and
# "#since = if_not_exists(#since, :t)" (2).
_OPERATORS_PER_REQUEST = 7 + MAX_SEEN_PER_WRITE + 8
# The operator limit is the only expression limit a request can reach: names
# and values are placeholders, so an expression's length depends only on how
# many properties it carries, and at this many it stays far under 4 KB
# (tests/integration/test_store_limits.py sends the largest request).
PROPERTIES_PER_REQUEST = (
    MAX_EXPRESSION_OPERATORS - _OPERATORS_PER_REQUEST
) // _OPERATORS_PER_PROPERTY  # 35
# A compaction removes at most this many tombstones per request: 4 operators
# each ("#r.#t = :t AND #r.#v = :v" and its AND), 8 per request (NOT_CLOSED,
# "AND NOT #h > :h", and two assignments).
TOMBSTONES_PER_COMPACTION = (MAX_EXPRESSION_OPERATORS - 8) // 4  # 73


def chunks(
    table: str,
    key: str,
    updates: Mapping[str, PropertyVersion],
    new_ids: IdsToRecord | None,
    seen: Mapping[tuple[str, str], float] | None = None,
    *,
    compaction_due: float | None = None,
) -> Iterable[tuple[dict[str, PropertyVersion], dict[str, Any]]]:
    """Split updates into groups of at most ``PROPERTIES_PER_REQUEST``, each
    with its UpdateItem arguments (the first also recording ``new_ids`` and
    ``seen``). Nearly every command is one group."""
    items = list(updates.items())
    for start in range(0, len(items), PROPERTIES_PER_REQUEST):
        chunk = dict(items[start : start + PROPERTIES_PER_REQUEST])
        first = start == 0
        yield (
            chunk,
            conditional_update(
                table,
                key,
                chunk,
                new_ids if first else None,
                seen if first else None,
                compaction_due=compaction_due,
            ),
        )


@dataclass(frozen=True)
class IdsToRecord:
    """Ids to record on a customer item by the request that writes its
    properties (the first id of a customer the command created)."""

    customer_id: str
    ids: Mapping[str, str]


@dataclass(frozen=True)
class StoredProperties:
    """What a write is decided against, as a customer item holds it: its
    property versions, its horizon, and the tombstone time it notes."""

    properties: dict[str, PropertyVersion]
    horizon: Horizon | None = None
    tombstones_since: float | None = None


def conditional_update(
    table: str,
    key: str,
    updates: Mapping[str, PropertyVersion],
    new_ids: IdsToRecord | None = None,
    seen: Mapping[tuple[str, str], float] | None = None,
    *,
    stored: StoredProperties | None = None,
    compaction_due: float | None = None,
) -> dict[str, Any]:
    """``UpdateItem`` arguments that SET every property iff it wins (merge rule).

    Without ``stored`` (a first attempt, the item unread), per property: no
    stored timestamp, or an older one, or the same one and a smaller order
    key; and for the request, the customer's horizon (if any) older than
    every update's time, so that a property the item does not hold (never
    set, or compacted) is won by each of them, as
    merge_rule.wins_where_absent says. That is :func:`merge_rule.wins_against`
    in DynamoDB's condition language, except that an update at or before the
    horizon fails the whole request even where its property is held: the
    caller then reads the item and sends what still wins with ``stored``,
    the item as read, whose conditions require each property to be as read
    in what decides the rule (held with a time, held without one, absent and
    covered by the horizon or not) and the update to win against that.
    Property names only ever appear as placeholders. A version without a
    timestamp (written before synchronization, copied by a merge) is stored
    as such, and only where the property is absent (and not covered) or also
    untimestamped with a smaller value. Whatever the properties, the
    customer must not have been merged away or erased (NOT_CLOSED).
    ``compaction_due``: the first attempt also fails when the customer notes
    a tombstone at or before this time (store.compaction: the caller
    compacts, then writes). A request that stores a tombstone notes its time
    in ``tombstones_since``, unless one is noted already.
    ``new_ids`` are added to the customer's id sets by the same request, with
    ``cid`` and ``created`` as IdentityStore.add_to_customer sets them, and
    ``seen`` ((soft id type, value) -> time, at most MAX_SEEN_PER_WRITE) sets
    when the customer was last identified by those soft ids.
    """
    if seen and len(seen) > MAX_SEEN_PER_WRITE:
        raise ValueError(f"at most {MAX_SEEN_PER_WRITE} seen times per write")
    names = {"#t": "t", "#v": "v", "#since": TOMBSTONES_SINCE, **CLOSED_NAMES, **HORIZON_NAMES}
    values: dict[str, Any] = {}
    timestamps: dict[float, str] = {}  # each update time's placeholder
    assignments: list[str] = []
    conditions: list[str] = [NOT_CLOSED]
    for index, (name, version) in enumerate(updates.items()):
        attr = f"#p{index}"
        names[attr] = PROPERTY_PREFIX + name
        ts = None
        stored_value: dict[str, Any] = {"v": {"S": version.encoded_value}}
        if version.timestamp is not None:
            ts = timestamps.get(version.timestamp)
            if ts is None:
                ts = timestamps[version.timestamp] = f":t{len(timestamps)}"
                values[ts] = {"N": number(version.timestamp)}
            stored_value = {"v": {"S": version.order_key}, "t": values[ts]}
        values[f":m{index}"] = {"M": stored_value}
        values[f":v{index}"] = stored_value["v"]
        assignments.append(f"{attr} = :m{index}")
        if stored is None:
            conditions.append(_unread_condition(attr, f":v{index}", ts))
        else:
            conditions.append(
                _read_condition(attr, f":v{index}", ts, name=name, stored=stored, values=values)
            )
    if stored is None:
        conditions += _unread_request_conditions(updates, timestamps, compaction_due, values)
    tombstones = [
        v.timestamp for v in updates.values() if v.is_tombstone and v.timestamp is not None
    ]
    if tombstones:
        assignments.append(f"#since = if_not_exists(#since, {timestamps[min(tombstones)]})")
    assignments += seen_clauses(seen or {}, names, values)
    update_expression = "SET " + ", ".join(assignments)
    if new_ids is not None and new_ids.ids:
        sets, adds = id_clauses(
            new_ids.customer_id, {t: [v] for t, v in new_ids.ids.items()}, names, values
        )
        update_expression += f", {sets} ADD {adds}"
    condition = " AND ".join(conditions)
    return _update_request(table, key, update_expression, condition, names=names, values=values)


_PLACEHOLDER = re.compile(r"[#:]\w+")


def _update_request(
    table: str,
    key: str,
    update: str,
    condition: str,
    *,
    names: Mapping[str, str],
    values: Mapping[str, Any],
) -> dict[str, Any]:
    """UpdateItem arguments with only the placeholders the expressions use:
    DynamoDB refuses any other, and not every shape uses every one (a
    property absent and covered compares no "t" or "v"; a compaction may
    remove no property)."""
    used = set(_PLACEHOLDER.findall(update)) | set(_PLACEHOLDER.findall(condition))
    request: dict[str, Any] = {
        "TableName": table,
        "Key": {"pk": {"S": key}},
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {k: v for k, v in names.items() if k in used},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if any(k in used for k in values):
        request["ExpressionAttributeValues"] = {k: v for k, v in values.items() if k in used}
    return request


def _unread_condition(attr: str, value: str, ts: str | None) -> str:
    """The condition of one property when the item was not read: it wins
    against the stored version, where one is stored (the request's horizon
    condition decides the absent ones)."""
    if ts is None:  # only where absent or untimestamped with a smaller value
        return (
            f"(attribute_not_exists({attr})"
            f" OR (attribute_not_exists({attr}.#t) AND {attr}.#v < {value}))"
        )
    # a comparison with a missing attribute is false, so this holds where the
    # property is absent or untimestamped too: "no t, or an older t, or the
    # same t and a smaller order key", in 6 operators (the OR form takes 7)
    return f"NOT ({attr}.#t > {ts} OR ({attr}.#t = {ts} AND {attr}.#v >= {value}))"


def _unread_request_conditions(
    updates: Mapping[str, PropertyVersion],
    timestamps: Mapping[float, str],
    compaction_due: float | None,
    values: dict[str, Any],
) -> list[str]:
    """What a first attempt requires of the item as a whole: a horizon older
    than every update (none at all if one is untimestamped), and no
    compaction due."""
    conditions = []
    times = [version.timestamp for version in updates.values()]
    if None in times:
        conditions.append("attribute_not_exists(#h)")
    elif times:
        conditions.append(f"NOT #h >= {timestamps[min(t for t in times if t is not None)]}")
    if compaction_due is not None:
        values[":due"] = {"N": number(compaction_due)}
        conditions.append("NOT #since <= :due")
    return conditions


def _read_condition(
    attr: str,
    value: str,
    ts: str | None,
    *,
    name: str,
    stored: StoredProperties,
    values: dict[str, Any],
) -> str:
    """The condition of one property against the item as read: it is still
    held (or absent) as read, in what decides the merge rule, and the update
    wins against that. A horizon only ever grows (a later time, more
    buckets) while the item is open, so "covered" stays true and "not
    covered" is what is checked."""
    current = stored.properties.get(name)
    if current is None:
        horizon = stored.horizon
        if ts is not None and horizon is not None and horizon.covers(name):
            return f"(attribute_not_exists({attr}) AND NOT #h >= {ts})"
        bucket = f":b{value[2:]}"
        values[bucket] = {"S": horizon_bucket(name)}
        return f"(attribute_not_exists({attr}) AND NOT contains(#hb, {bucket}))"
    if ts is None:  # an untimestamped version wins only against a smaller one
        return f"(attribute_not_exists({attr}.#t) AND {attr}.#v < {value})"
    if current.timestamp is None:
        return f"(attribute_exists({attr}) AND attribute_not_exists({attr}.#t))"
    return f"({attr}.#t < {ts} OR ({attr}.#t = {ts} AND {attr}.#v < {value}))"


def compaction_update(
    table: str,
    key: str,
    stored: StoredProperties,
    compaction: Compaction,
    tombstones_since: float | None,
) -> dict[str, Any]:
    """``UpdateItem`` arguments of a compaction (merge_rule.compact): the
    removed tombstones go, each only if it is still the version read (a
    newer write to it meanwhile fails the request, and is kept); the horizon
    becomes the compaction's, unless a later one was stored meanwhile (it
    never moves back; its buckets are added to); ``tombstones_since``
    becomes the time of the oldest tombstone left (removed: none left). At
    most TOMBSTONES_PER_COMPACTION tombstones."""
    if len(compaction.removed) > TOMBSTONES_PER_COMPACTION:
        raise ValueError(f"at most {TOMBSTONES_PER_COMPACTION} tombstones per compaction")
    names = {"#t": "t", "#v": "v", "#since": TOMBSTONES_SINCE, **CLOSED_NAMES}
    values: dict[str, Any] = {}
    placeholders: dict[tuple[str, str], str] = {}

    def placeholder(kind: str, value: dict[str, str]) -> str:
        (text,) = value.values()
        found = placeholders.get((kind, text))
        if found is None:
            found = placeholders[(kind, text)] = f":{kind}{len(placeholders)}"
            values[found] = value
        return found

    conditions = [NOT_CLOSED]
    sets: list[str] = []
    removes: list[str] = []
    for index, name in enumerate(compaction.removed):
        version = stored.properties[name]
        if not version.is_tombstone or version.timestamp is None:
            raise ValueError(f"{name!r} is not a timestamped tombstone")
        attr = f"#r{index}"
        names[attr] = PROPERTY_PREFIX + name
        removes.append(attr)
        t = placeholder("t", {"N": number(version.timestamp)})
        v = placeholder("v", {"S": version.order_key})
        conditions.append(f"{attr}.#t = {t} AND {attr}.#v = {v}")
    adds = ""
    if compaction.horizon is not None:
        names.update(HORIZON_NAMES)
        values[":h"] = {"N": number(compaction.horizon.timestamp)}
        values[":hb"] = {"SS": sorted(compaction.horizon.buckets)}
        sets.append("#h = :h")
        conditions.append("NOT #h > :h")
        adds = " ADD #hb :hb"
    if tombstones_since is None:
        removes.append("#since")
    else:
        values[":since"] = {"N": number(tombstones_since)}
        sets.append("#since = :since")
    expression = " ".join(
        part
        for part in (
            "SET " + ", ".join(sets) if sets else "",
            "REMOVE " + ", ".join(removes) if removes else "",
        )
        if part
    )
    condition = " AND ".join(conditions)
    return _update_request(table, key, expression + adds, condition, names=names, values=values)


def oldest_tombstone(properties: Mapping[str, PropertyVersion]) -> float | None:
    """The time of the oldest timestamped tombstone among ``properties``."""
    return min(
        (v.timestamp for v in properties.values() if v.is_tombstone and v.timestamp is not None),
        default=None,
    )


def id_clauses(
    customer_id: str,
    ids: Mapping[str, list[str]],
    names: dict[str, str],
    values: dict[str, Any],
) -> tuple[str, str]:
    """The SET and ADD clauses that record ``ids`` on a customer item (``cid``,
    ``created`` once, one string set per id type), their placeholders
    (``#i<n>``, ``:i<n>`` in sorted id-type order) added to ``names`` and
    ``values``."""
    values[":cid"] = {"S": customer_id}
    values[":now"] = {"N": number(time.time())}
    adds = []
    for index, (id_type, id_values) in enumerate(sorted(ids.items())):
        names[f"#i{index}"] = ID_SET_PREFIX + id_type
        values[f":i{index}"] = {"SS": sorted(set(id_values))}
        adds.append(f"#i{index} :i{index}")
    return "cid = :cid, created = if_not_exists(created, :now)", ", ".join(adds)


def seen_clauses(
    seen: Mapping[tuple[str, str], float], names: dict[str, str], values: dict[str, Any]
) -> list[str]:
    """``#s<n> = :s<n>`` assignments of seen times, placeholders added."""
    clauses = []
    for index, ((id_type, id_value), when) in enumerate(sorted(seen.items())):
        names[f"#s{index}"] = seen_attribute(id_type, id_value)
        values[f":s{index}"] = {"N": number(when)}
        clauses.append(f"#s{index} = :s{index}")
    return clauses


def seen_of(item: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """(id type, value) -> when the customer was last identified by it."""
    seen = {}
    for attribute, value in item.items():
        if attribute.startswith(SEEN_PREFIX) and "N" in value:
            id_type, _, id_value = attribute[len(SEEN_PREFIX) :].partition(":")
            seen[(id_type, id_value)] = float(value["N"])
    return seen


def may_exceed_item(updates: Mapping[str, PropertyVersion]) -> bool:
    """False when even 4 bytes of UTF-8 per character stay under the item
    limit: nearly every command, which then needs no encoding to measure."""
    characters = sum(len(name) + len(version.order_key) for name, version in updates.items())
    return (characters + len(PROPERTY_PREFIX) * len(updates)) * 4 > MAX_ITEM_BYTES


def stored_size(updates: Mapping[str, PropertyVersion]) -> int:
    """Lower bound of the bytes these properties take in an item (names and
    values; DynamoDB adds a few bytes of overhead per attribute)."""
    return sum(
        len(PROPERTY_PREFIX.encode()) + len(name.encode()) + len(version.order_key.encode())
        for name, version in updates.items()
    )


def properties_of(item: Mapping[str, Any]) -> dict[str, PropertyVersion]:
    properties: dict[str, PropertyVersion] = {}
    for attribute, value in item.items():
        if not attribute.startswith(PROPERTY_PREFIX) or "M" not in value:
            continue
        stored = value["M"]
        name = attribute[len(PROPERTY_PREFIX) :]
        if "t" in stored:  # v = order key: sequence digits, then canonical JSON
            properties[name] = PropertyVersion.from_order_key(
                stored["v"]["S"], float(stored["t"]["N"])
            )
        else:  # written before synchronization: v is the canonical JSON alone
            properties[name] = PropertyVersion(encoded_value=stored["v"]["S"], timestamp=None)
    return properties


def horizon_of(item: Mapping[str, Any]) -> Horizon | None:
    if HORIZON not in item:
        return None
    buckets = item.get(HORIZON_BUCKETS, {}).get("SS", [])
    return Horizon(float(item[HORIZON]["N"]), frozenset(buckets))


def stored_properties_of(item: Mapping[str, Any]) -> StoredProperties:
    since = item.get(TOMBSTONES_SINCE)
    return StoredProperties(
        properties_of(item),
        horizon_of(item),
        float(since["N"]) if since is not None else None,
    )


def ids_of(item: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        attribute[len(ID_SET_PREFIX) :]: sorted(value["SS"])
        for attribute, value in item.items()
        if attribute.startswith(ID_SET_PREFIX) and "SS" in value
    }
