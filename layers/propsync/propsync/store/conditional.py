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
``i:<id_type>``; ``cid`` and ``created``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from propsync.limits import MAX_EXPRESSION_OPERATORS, MAX_ITEM_BYTES
from propsync.merge_rule import PropertyVersion
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
# "(attribute_not_exists(a) OR a < b OR (a = b AND c < d))" has 7, the AND
# joining it to the next one 1, and its "x = :y" in the SET clause 1.
_OPERATORS_PER_PROPERTY = 9
# And once per request: NOT_CLOSED and its AND, guarding against a
# merged-away or erased customer (4), the new customer's
# "cid = :c, created = if_not_exists(created, :n)" (3), and "s:... = :now"
# per soft id whose seen time it refreshes (MAX_SEEN_PER_WRITE).
_OPERATORS_PER_REQUEST = 7 + MAX_SEEN_PER_WRITE
# The operator limit is the only expression limit a request can reach: names
# and values are placeholders, so an expression's length depends only on how
# many properties it carries, and at this many it stays far under 4 KB
# (tests/integration/test_store_limits.py sends the largest request).
PROPERTIES_PER_REQUEST = (
    MAX_EXPRESSION_OPERATORS - _OPERATORS_PER_REQUEST
) // _OPERATORS_PER_PROPERTY  # 32


def chunks(
    table: str,
    key: str,
    updates: Mapping[str, PropertyVersion],
    new_ids: IdsToRecord | None,
    seen: Mapping[tuple[str, str], float] | None = None,
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
                table, key, chunk, new_ids if first else None, seen if first else None
            ),
        )


@dataclass(frozen=True)
class IdsToRecord:
    """Ids to record on a customer item by the request that writes its
    properties (the first id of a customer the command created)."""

    customer_id: str
    ids: Mapping[str, str]


def conditional_update(
    table: str,
    key: str,
    updates: Mapping[str, PropertyVersion],
    new_ids: IdsToRecord | None = None,
    seen: Mapping[tuple[str, str], float] | None = None,
) -> dict[str, Any]:
    """``UpdateItem`` arguments that SET every property iff it wins (merge rule).

    Per property: no stored timestamp, or an older one, or the same one and a
    smaller canonical value. This is :func:`merge_rule.wins` in DynamoDB's
    condition language; property names only ever appear as placeholders. A
    version without a timestamp (written before synchronization, copied by a
    merge) is stored as such, and only where the property is absent or also
    untimestamped with a smaller value. Whatever the properties, the customer
    must not have been merged away or erased (NOT_CLOSED).
    ``new_ids`` are added to the customer's id sets by the same request, with
    ``cid`` and ``created`` as IdentityStore.add_to_customer sets them, and
    ``seen`` ((soft id type, value) -> time, at most MAX_SEEN_PER_WRITE) sets
    when the customer was last identified by those soft ids.
    """
    if seen and len(seen) > MAX_SEEN_PER_WRITE:
        raise ValueError(f"at most {MAX_SEEN_PER_WRITE} seen times per write")
    names = {"#t": "t", "#v": "v", **CLOSED_NAMES}
    values: dict[str, Any] = {}
    timestamp_placeholders: dict[float, str] = {}
    assignments: list[str] = []
    conditions: list[str] = [NOT_CLOSED]
    for index, (name, version) in enumerate(updates.items()):
        attr = f"#p{index}"
        names[attr] = PROPERTY_PREFIX + name
        if version.timestamp is None:
            values[f":m{index}"] = {"M": {"v": {"S": version.encoded_value}}}
            values[f":v{index}"] = {"S": version.encoded_value}
            assignments.append(f"{attr} = :m{index}")
            conditions.append(
                f"(attribute_not_exists({attr})"
                f" OR (attribute_not_exists({attr}.#t) AND {attr}.#v < :v{index}))"
            )
            continue
        ts = timestamp_placeholders.get(version.timestamp)
        if ts is None:
            ts = timestamp_placeholders[version.timestamp] = f":t{len(timestamp_placeholders)}"
            values[ts] = {"N": number(version.timestamp)}
        values[f":m{index}"] = {"M": {"v": {"S": version.order_key}, "t": values[ts]}}
        values[f":v{index}"] = {"S": version.order_key}
        assignments.append(f"{attr} = :m{index}")
        conditions.append(
            f"(attribute_not_exists({attr}.#t) OR {attr}.#t < {ts}"
            f" OR ({attr}.#t = {ts} AND {attr}.#v < :v{index}))"
        )
    assignments += seen_clauses(seen or {}, names, values)
    update_expression = "SET " + ", ".join(assignments)
    if new_ids is not None and new_ids.ids:
        sets, adds = id_clauses(
            new_ids.customer_id, {t: [v] for t, v in new_ids.ids.items()}, names, values
        )
        update_expression += f", {sets} ADD {adds}"
    return {
        "TableName": table,
        "Key": {"pk": {"S": key}},
        "UpdateExpression": update_expression,
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


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


def ids_of(item: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        attribute[len(ID_SET_PREFIX) :]: sorted(value["SS"])
        for attribute, value in item.items()
        if attribute.startswith(ID_SET_PREFIX) and "SS" in value
    }
