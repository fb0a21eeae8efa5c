"""The store: the only module that talks to DynamoDB.

One table, keyed by ``pk`` (see template.yaml and docs/ARCHITECTURE.md):

- customer item ``<project>#c#<customer_id>``: one top-level attribute per
  property, ``p:<name>`` = ``{"v": <order key>, "t": <update time>}`` where
  the order key is the 10-digit sequence then the canonical JSON (see
  merge_rule); a property written before synchronization has no ``t`` and its
  ``v`` is the canonical JSON alone. One string set per id type, ``i:<id_type>``;
- identity item ``<project>#id#<id_type>#<id_value>``: ``cid`` = the customer
  the id belongs to.

Writes follow the merge rule (:mod:`propsync.merge_rule`) inside DynamoDB:
every property of an ``UpdateItem`` carries a condition on its stored
timestamp, so a write never replaces a newer value, whatever runs beside it.
The low-level client is used on purpose: values are plain strings and numbers
here, and the client is cheaper to import and call than the resource layer.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

# Loaded when a function's module is imported (Lambda's init phase), as AWS
# advises: the first request pays only for creating its client.
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from propsync import merge_rule
from propsync.errors import (
    CustomerTooLargeError,
    IdentityConflictError,
    PartiallyAppliedError,
    WriteContentionError,
)
from propsync.limits import (
    MAX_CONCURRENT_COMMANDS,
    MAX_CONDITIONAL_RETRIES,
    MAX_EXPRESSION_OPERATORS,
    MAX_ITEM_BYTES,
)
from propsync.merge_rule import PropertyVersion

if TYPE_CHECKING:  # stubs are a dev dependency only
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

Item = dict[str, Any]  # a DynamoDB item in attribute-value form

TABLE_NAME_ENV = "PROPSYNC_TABLE_NAME"
PROPERTY_PREFIX = "p:"
ID_SET_PREFIX = "i:"
_BATCH_GET_MAX_KEYS = 100

_TOO_LARGE = (
    "the customer would exceed DynamoDB's 400 KB item limit; "
    "store fewer or smaller properties (at most 16 KB each)"
)

# Operators and functions one property adds to a request: the condition
# "(attribute_not_exists(a) OR a < b OR (a = b AND c < d))" has 7, the AND
# joining it to the next one 1, and its "x = :y" in the SET clause 1.
_OPERATORS_PER_PROPERTY = 9
# The operator limit is the only expression limit a request can reach: names
# and values are placeholders, so an expression's length depends only on how
# many properties it carries, and at this many it stays far under 4 KB
# (tests/integration/test_store_limits.py sends the largest request).
_PROPERTIES_PER_REQUEST = MAX_EXPRESSION_OPERATORS // _OPERATORS_PER_PROPERTY  # 33


@dataclass(frozen=True)
class WriteResult:
    """Which properties a write stored, and which lost to a newer stored value."""

    applied: tuple[str, ...]
    ignored: tuple[str, ...]


@dataclass(frozen=True)
class CustomerRecord:
    """A customer as stored: ids by type, and every property version
    (tombstones included; :mod:`propsync.customer_view` hides them)."""

    customer_id: str
    ids: dict[str, list[str]]
    properties: dict[str, PropertyVersion] = field(default_factory=dict)


def customer_key(project: str, customer_id: str) -> str:
    return f"{project}#c#{customer_id}"


def identity_key(project: str, id_type: str, id_value: str) -> str:
    # id types never contain "#" (propsync.identity validates them), so the key
    # is unambiguous even when the id value does.
    return f"{project}#id#{id_type}#{id_value}"


class CustomerStore:
    """Customer and identity items of one DynamoDB table."""

    def __init__(self, client: DynamoDBClient, table_name: str):
        self._client = client
        self._table = table_name

    # ---------------------------------------------------------------- identities

    def lookup_identities(
        self, project: str, ids: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """Owners of the given ``(id_type, id_value)`` pairs, in as few
        ``BatchGetItem`` requests as DynamoDB allows (100 keys each). Unknown
        ids are absent from the result."""
        by_key = {identity_key(project, t, v): (t, v) for t, v in ids}
        found: dict[tuple[str, str], str] = {}
        keys = list(by_key)
        for start in range(0, len(keys), _BATCH_GET_MAX_KEYS):
            request = {
                self._table: {
                    "Keys": [{"pk": {"S": k}} for k in keys[start : start + _BATCH_GET_MAX_KEYS]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "pk, cid",
                }
            }
            for item in _batch_get(self._client, self._table, request):
                found[by_key[item["pk"]["S"]]] = item["cid"]["S"]
        return found

    def claim_identity(self, project: str, id_type: str, id_value: str, customer_id: str) -> str:
        """Point the id at ``customer_id`` unless it already points somewhere.

        Returns the id's owner: ``customer_id`` when the claim won (or the id
        was already ours), the other customer when someone else was first. The
        conditional put makes two concurrent first sightings agree on one owner.
        """
        key = identity_key(project, id_type, id_value)
        for _attempt in range(MAX_CONDITIONAL_RETRIES + 1):
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        "pk": {"S": key},
                        "cid": {"S": customer_id},
                        "created": {"N": _number(time.time())},
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return customer_id
            except ClientError as error:
                if not _is_conditional_failure(error):
                    raise
                item = _returned_item(error) or self._get_item(key, "cid")
            if item:
                return str(item["cid"]["S"])
            # The owner released the id between our put and our read: claim again.
        raise WriteContentionError(f"identity {id_type}={id_value!r} kept changing; retry")

    def add_customer_ids(
        self,
        project: str,
        customer_id: str,
        ids: Mapping[str, str],
        hard_id_types: frozenset[str],
    ) -> None:
        """Record ids on the customer item (creating it if needed).

        A hard id type holds one value per customer: adding a second value
        fails with IdentityConflictError and changes nothing.
        """
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, adds = _id_clauses(customer_id, ids, names, values)
        conditions: list[str] = []
        for index, (id_type, id_value) in enumerate(sorted(ids.items())):
            if id_type in hard_id_types:  # #i{index}: the placeholders of _id_clauses
                values[f":h{index}"] = {"S": id_value}
                conditions.append(
                    f"(attribute_not_exists(#i{index}) OR contains(#i{index}, :h{index}))"
                )
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": customer_key(project, customer_id)}},
            "UpdateExpression": f"SET {sets} ADD {adds}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if conditions:
            request["ConditionExpression"] = " AND ".join(conditions)
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            self._client.update_item(**request)
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            item = _returned_item(error) or self._get_item(customer_key(project, customer_id), None)
            existing = _ids_of(item or {})
            clashes = [
                f"{t}={existing[t][0]!r} (not {v!r})"
                for t, v in sorted(ids.items())
                if t in hard_id_types and existing.get(t) and v not in existing[t]
            ]
            raise IdentityConflictError(
                "the customer already has "
                + (", ".join(clashes) or "another value of a hard id")
                + "; a customer has at most one value of each hard id type"
            ) from None

    def remove_customer_ids(self, project: str, customer_id: str, ids: Mapping[str, str]) -> None:
        """Undo :meth:`add_customer_ids` for ids that turned out to belong elsewhere."""
        if not ids:
            return
        id_types = sorted(ids)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": customer_key(project, customer_id)}},
                UpdateExpression="DELETE "
                + ", ".join(f"#i{i} :i{i}" for i in range(len(id_types))),
                # without it, DELETE on a missing item would create an empty one
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={
                    f"#i{i}": ID_SET_PREFIX + t for i, t in enumerate(id_types)
                },
                ExpressionAttributeValues={
                    f":i{i}": {"SS": [ids[t]]} for i, t in enumerate(id_types)
                },
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise

    # ---------------------------------------------------------------- properties

    def write_properties(
        self,
        project: str,
        customer_id: str,
        updates: Mapping[str, PropertyVersion],
        *,
        new_ids: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """Store every update that wins against the stored version.

        Common case: one ``UpdateItem``. When a condition fails, the stored
        item (from the error, or read when the engine does not return it) tells
        which properties still win; only those are retried, at most
        ``MAX_CONDITIONAL_RETRIES`` times. Commands too large for one request
        are split into several, each with its own conditions.

        ``new_ids``: the id a command has just claimed for a customer it
        created (identity.resolve_customer), recorded on the customer item by
        the same request as the properties: a new customer costs its claim and
        one write. Without the hard-id condition of add_customer_ids, which a
        customer created by this command cannot fail. Recorded on their own if
        no property gets written.
        """
        key = customer_key(project, customer_id)
        ids = _NewIds(customer_id, dict(new_ids)) if new_ids else None
        if _may_exceed_item(updates) and _stored_size(updates) > MAX_ITEM_BYTES:
            self._record_new_ids(project, ids)
            raise CustomerTooLargeError(_TOO_LARGE)
        applied: list[str] = []
        ignored: list[str] = []
        unrecorded = ids
        try:
            for index, (chunk, request) in enumerate(_chunks(self._table, key, updates, ids)):
                carried = ids if index == 0 else None  # _chunks puts them in the first request
                try:
                    chunk_applied, chunk_ignored, recorded = self._write_chunk(
                        key, chunk, request, carried
                    )
                except PartiallyAppliedError as error:
                    raise type(error)(str(error), tuple(applied)) from None
                if recorded:
                    unrecorded = None
                applied += chunk_applied
                ignored += chunk_ignored
        except Exception:
            # The properties failed; the new customer's ids must not fail with
            # them (its identity is claimed already): record them on their own,
            # as they were before the property write existed.
            with contextlib.suppress(Exception):
                self._record_new_ids(project, unrecorded)
            raise
        self._record_new_ids(project, unrecorded)
        return WriteResult(applied=tuple(applied), ignored=tuple(ignored))

    def _record_new_ids(self, project: str, new_ids: _NewIds | None) -> None:
        if new_ids is not None:
            self.add_customer_ids(project, new_ids.customer_id, new_ids.ids, frozenset())

    def _write_chunk(
        self,
        key: str,
        chunk: dict[str, PropertyVersion],
        request: dict[str, Any],
        new_ids: _NewIds | None,
    ) -> tuple[list[str], list[str], bool]:
        """Applied and stale property names, and whether ``new_ids`` were
        recorded (by a request that succeeded). ``request`` is the chunk's
        UpdateItem as _chunks built it, with ``new_ids`` if given; retries build
        their own for the properties that still win, with the same ids."""
        pending = chunk
        applied: list[str] = []
        ignored: list[str] = []
        for attempt in range(MAX_CONDITIONAL_RETRIES + 1):
            if not pending:
                return applied, ignored, False
            if attempt:
                request = _conditional_update(self._table, key, pending, new_ids)
            try:
                self._client.update_item(**request)
                return applied + list(pending), ignored, new_ids is not None
            except ClientError as error:
                if _is_item_too_large(error):
                    raise CustomerTooLargeError(_TOO_LARGE) from None
                if not _is_conditional_failure(error):
                    raise
                stored_item = _returned_item(error)
                if stored_item is None:  # engines without ReturnValuesOnConditionCheckFailure
                    stored_item = self._get_item(key, None) or {}
            stored = _properties_of(stored_item)
            still_winning = merge_rule.winners(pending, stored)
            for name, version in pending.items():
                if name in still_winning:
                    continue
                # Already stored exactly (a retry whose first attempt landed but
                # whose answer was lost, or the same update delivered twice):
                # the value is there, so it counts as applied, not as stale.
                (applied if stored.get(name) == version else ignored).append(name)
            pending = still_winning
        raise WriteContentionError(
            f"{len(pending)} properties were changed by other writers during each of "
            f"{MAX_CONDITIONAL_RETRIES + 1} attempts; retry the command"
        )

    # ---------------------------------------------------------------- reading

    def read_customer(self, project: str, customer_id: str) -> CustomerRecord | None:
        item = self._get_item(customer_key(project, customer_id), None)
        if item is None:
            return None
        return CustomerRecord(
            customer_id=customer_id, ids=_ids_of(item), properties=_properties_of(item)
        )

    # ---------------------------------------------------------------- helpers

    def _get_item(self, key: str, projection: str | None) -> dict[str, Any] | None:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": key}},
            # A reader must see the writes that were acknowledged to it.
            "ConsistentRead": True,
        }
        if projection:
            request["ProjectionExpression"] = projection
        return self._client.get_item(**request).get("Item")


# -------------------------------------------------------------------- requests


def _batch_get(client: DynamoDBClient, table: str, request: dict[str, Any]) -> list[Item]:
    """BatchGetItem until DynamoDB has answered every key (it may leave some
    unprocessed under load; those are asked again after a jittered pause)."""
    items: list[Item] = []
    attempt = 0
    while request:
        response = client.batch_get_item(RequestItems=request)
        items += response["Responses"].get(table, [])
        request = dict(response.get("UnprocessedKeys") or {})
        if request:
            attempt += 1
            time.sleep(min(1.0, 0.02 * 2**attempt) * random.random())
    return items


def _chunks(
    table: str, key: str, updates: Mapping[str, PropertyVersion], new_ids: _NewIds | None
) -> Iterable[tuple[dict[str, PropertyVersion], dict[str, Any]]]:
    """Split updates into groups of at most ``_PROPERTIES_PER_REQUEST``, each
    with its UpdateItem arguments (the first also recording ``new_ids``).
    Nearly every command is one group."""
    items = list(updates.items())
    for start in range(0, len(items), _PROPERTIES_PER_REQUEST):
        chunk = dict(items[start : start + _PROPERTIES_PER_REQUEST])
        yield chunk, _conditional_update(table, key, chunk, new_ids if start == 0 else None)


@dataclass(frozen=True)
class _NewIds:
    """Ids to record on a customer item created by the command being written."""

    customer_id: str
    ids: Mapping[str, str]


def _conditional_update(
    table: str,
    key: str,
    updates: Mapping[str, PropertyVersion],
    new_ids: _NewIds | None = None,
) -> dict[str, Any]:
    """``UpdateItem`` arguments that SET every property iff it wins (merge rule).

    Per property: no stored timestamp, or an older one, or the same one and a
    smaller canonical value. This is :func:`merge_rule.wins` in DynamoDB's
    condition language; property names only ever appear as placeholders.
    ``new_ids`` are added to the customer's id sets by the same request, with
    ``cid`` and ``created`` as add_customer_ids sets them.
    """
    names = {"#t": "t", "#v": "v"}
    values: dict[str, Any] = {}
    timestamp_placeholders: dict[float, str] = {}
    assignments: list[str] = []
    conditions: list[str] = []
    for index, (name, version) in enumerate(updates.items()):
        if version.timestamp is None:
            raise ValueError(f"update of {name!r} has no timestamp")
        ts = timestamp_placeholders.get(version.timestamp)
        if ts is None:
            ts = timestamp_placeholders[version.timestamp] = f":t{len(timestamp_placeholders)}"
            values[ts] = {"N": _number(version.timestamp)}
        attr = f"#p{index}"
        names[attr] = PROPERTY_PREFIX + name
        values[f":m{index}"] = {"M": {"v": {"S": version.order_key}, "t": values[ts]}}
        values[f":v{index}"] = {"S": version.order_key}
        assignments.append(f"{attr} = :m{index}")
        conditions.append(
            f"(attribute_not_exists({attr}.#t) OR {attr}.#t < {ts}"
            f" OR ({attr}.#t = {ts} AND {attr}.#v < :v{index}))"
        )
    update_expression = "SET " + ", ".join(assignments)
    if new_ids is not None and new_ids.ids:
        sets, adds = _id_clauses(new_ids.customer_id, new_ids.ids, names, values)
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


def _id_clauses(
    customer_id: str, ids: Mapping[str, str], names: dict[str, str], values: dict[str, Any]
) -> tuple[str, str]:
    """The SET and ADD clauses that record ``ids`` on a customer item (``cid``,
    ``created`` once, one string set per id type), their placeholders
    (``#i<n>``, ``:i<n>`` in sorted id-type order) added to ``names`` and
    ``values``."""
    values[":cid"] = {"S": customer_id}
    values[":now"] = {"N": _number(time.time())}
    adds = []
    for index, (id_type, id_value) in enumerate(sorted(ids.items())):
        names[f"#i{index}"] = ID_SET_PREFIX + id_type
        values[f":i{index}"] = {"SS": [id_value]}
        adds.append(f"#i{index} :i{index}")
    return "cid = :cid, created = if_not_exists(created, :now)", ", ".join(adds)


# -------------------------------------------------------------------- items


def _may_exceed_item(updates: Mapping[str, PropertyVersion]) -> bool:
    """False when even 4 bytes of UTF-8 per character stay under the item
    limit: nearly every command, which then needs no encoding to measure."""
    characters = sum(len(name) + len(version.order_key) for name, version in updates.items())
    return (characters + len(PROPERTY_PREFIX) * len(updates)) * 4 > MAX_ITEM_BYTES


def _stored_size(updates: Mapping[str, PropertyVersion]) -> int:
    """Lower bound of the bytes these properties take in an item (names and
    values; DynamoDB adds a few bytes of overhead per attribute)."""
    return sum(
        len(PROPERTY_PREFIX.encode()) + len(name.encode()) + len(version.order_key.encode())
        for name, version in updates.items()
    )


def _properties_of(item: Mapping[str, Any]) -> dict[str, PropertyVersion]:
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


def _ids_of(item: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        attribute[len(ID_SET_PREFIX) :]: sorted(value["SS"])
        for attribute, value in item.items()
        if attribute.startswith(ID_SET_PREFIX) and "SS" in value
    }


def _number(value: float) -> str:
    # repr() is the shortest text that reads back as the same float, so the
    # stored number compares in DynamoDB exactly as the float does in Python.
    return str(Decimal(repr(float(value))))


def _returned_item(error: ClientError) -> Item | None:
    """The old item a conditional failure carries (ReturnValuesOnConditionCheckFailure)."""
    item = error.response.get("Item")
    return cast(Item, item) if item is not None else None


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _is_conditional_failure(error: ClientError) -> bool:
    return _error_code(error) == "ConditionalCheckFailedException"


def _is_item_too_large(error: ClientError) -> bool:
    message = error.response.get("Error", {}).get("Message", "")
    return _error_code(error) == "ValidationException" and "item size" in message.lower()


# AWS answers that say the request itself can never succeed: built from data
# DynamoDB refuses (a key or item over a limit), or naming an object that is gone.
_REFUSALS_OF_THE_REQUEST = frozenset(
    {"ValidationException", "NoSuchKey", "404", "InvalidRange", "KeyTooLongError"}
)


def is_transient_error(error: BaseException) -> bool:
    """True when the same work may succeed if it is simply tried again later:
    throttling, AWS's own faults, a lost connection or a timeout, and any AWS
    refusal that is not about the request itself (access denied, a missing
    table: fixed by an operator, not by the data). False for everything the
    data causes (a DynamoDB ValidationException, a file that is gone, a value
    Python cannot handle), which fails the same way on every try."""
    if isinstance(error, ClientError):
        return _error_code(error) not in _REFUSALS_OF_THE_REQUEST
    return isinstance(error, BotoCoreError | ConnectionError | TimeoutError)


# -------------------------------------------------------------------- factory


@functools.cache
def _client_and_table_from_environment() -> tuple[DynamoDBClient, str]:
    """One client per Lambda container: table from ``PROPSYNC_TABLE_NAME``;
    endpoint, region and credentials the standard boto3 way
    (``AWS_ENDPOINT_URL_DYNAMODB`` points it at a local engine)."""
    table = os.environ.get(TABLE_NAME_ENV)
    if not table:
        raise RuntimeError(f"{TABLE_NAME_ENV} is not set: name the DynamoDB table of propsync")
    return boto3.client("dynamodb", config=client_config()), table


def client_config() -> Config:
    """The botocore configuration of every DynamoDB client propsync makes."""
    return Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=2,
        read_timeout=5,
        # commands of a batch run on up to this many threads (propsync.tracking)
        max_pool_connections=MAX_CONCURRENT_COMMANDS,
        # Requests are built by this module, never from raw input, and DynamoDB
        # validates them anyway; botocore's client-side check costs about a
        # fifth of the CPU of a request (make bench).
        parameter_validation=False,
    )


@functools.cache
def store_from_environment() -> CustomerStore:
    return CustomerStore(*_client_and_table_from_environment())


@functools.cache
def access_store_from_environment() -> AccessStore:
    return AccessStore(*_client_and_table_from_environment())


# ------------------------------------------------------------------ projects and keys


def project_key(project: str) -> str:
    return f"project#{project}"


def api_key_key(key_id: str) -> str:
    return f"apikey#{key_id}"


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as stored: only a salted hash of its secret."""

    key_id: str
    project: str
    permissions: frozenset[str]
    salt: str
    secret_hash: str
    iterations: int
    created: float
    revoked: bool


class AccessStore:
    """Projects and API keys (same table as the customers, other key prefixes)."""

    def __init__(self, client: DynamoDBClient, table_name: str):
        self._client = client
        self._table = table_name

    def create_project(self, project: str, name: str) -> bool:
        """Create the project; False if it already existed (nothing changed)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": project_key(project)},
                    "name": {"S": name},
                    "created": {"N": _number(time.time())},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            return False

    def project_exists(self, project: str) -> bool:
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": project_key(project)}},
            ProjectionExpression="pk",
        )
        return "Item" in response

    def put_api_key(self, record: ApiKeyRecord) -> None:
        """Store a new key and list it on its project (the project must exist)."""
        self._client.put_item(
            TableName=self._table,
            Item=_api_key_item(record),
            ConditionExpression="attribute_not_exists(pk)",
        )
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": project_key(record.project)}},
            UpdateExpression="ADD api_keys :k",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":k": {"SS": [record.key_id]}},
        )

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": api_key_key(key_id)}}, ConsistentRead=True
        ).get("Item")
        return _api_key_record(item) if item else None

    def list_api_keys(self, project: str) -> list[ApiKeyRecord]:
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": project_key(project)}},
            ConsistentRead=True,
        ).get("Item")
        key_ids = sorted(item.get("api_keys", {}).get("SS", [])) if item else []
        records: list[ApiKeyRecord] = []
        for start in range(0, len(key_ids), _BATCH_GET_MAX_KEYS):
            keys = [{"pk": {"S": api_key_key(k)}} for k in key_ids[start : start + 100]]
            request = {self._table: {"Keys": keys, "ConsistentRead": True}}
            records += [_api_key_record(i) for i in _batch_get(self._client, self._table, request)]
        return sorted(records, key=lambda r: r.created)

    def revoke_api_key(self, key_id: str) -> bool:
        """Mark the key revoked; False if there is no such key."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": api_key_key(key_id)}},
                UpdateExpression="SET revoked = :yes",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
            return True
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            return False


def _api_key_item(record: ApiKeyRecord) -> Item:
    return {
        "pk": {"S": api_key_key(record.key_id)},
        "project": {"S": record.project},
        # a list, not a string set: a key may have no permission, and DynamoDB
        # refuses empty sets
        "permissions": {"L": [{"S": p} for p in sorted(record.permissions)]},
        "salt": {"S": record.salt},
        "secret_hash": {"S": record.secret_hash},
        "iterations": {"N": str(record.iterations)},
        "created": {"N": _number(record.created)},
        "revoked": {"BOOL": record.revoked},
    }


def _api_key_record(item: Item) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=str(item["pk"]["S"]).removeprefix("apikey#"),
        project=item["project"]["S"],
        permissions=frozenset(p["S"] for p in item["permissions"]["L"]),
        salt=item["salt"]["S"],
        secret_hash=item["secret_hash"]["S"],
        iterations=int(item["iterations"]["N"]),
        created=float(item["created"]["N"]),
        revoked=bool(item.get("revoked", {}).get("BOOL", False)),
    )


# ------------------------------------------------------------------ import executions

COUNTERS = (
    "rows_read",
    "rows_written",
    "rows_rejected",
    "properties_applied",
    "properties_ignored",
    "bytes_done",
)


def execution_key(execution_id: str) -> str:
    return f"import#{execution_id}"


def encode_plan(plan: dict[str, Any]) -> str:
    """The plan as the execution record stores it (compact JSON, ASCII)."""
    return json.dumps(plan, separators=(",", ":"))


@dataclass(frozen=True)
class ExecutionRecord:
    """An import execution as stored; ``plan`` holds what every chunk needs
    (mapping, header, delimiter) so all chunks use the same ones."""

    execution_id: str
    project: str
    file_key: str
    status: str
    started_at: float
    chunks_total: int
    bytes_total: int
    done_chunks: frozenset[int]
    counters: dict[str, int]
    progress_rows: int
    progress_bytes: int
    plan: dict[str, Any]
    problems: list[str]
    finished_at: float | None
    # chunks given up on (also in done_chunks: they count as done); their
    # errors are in the import's part files, the report names them
    failed_chunks: frozenset[int] = frozenset()

    @property
    def chunks_done(self) -> int:
        return len(self.done_chunks)


class ImportStore:
    """Execution records of imports: the start time fixed once, and counts
    added exactly once per chunk however often a chunk is delivered."""

    def __init__(self, client: DynamoDBClient, table_name: str):
        self._client = client
        self._table = table_name

    def start(self, execution_id: str, project: str, file_key: str, now: float) -> ExecutionRecord:
        """Create the record unless it exists; either way return it. The first
        start time stays: a redelivered event or a rerun reuses it."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": execution_key(execution_id)},
                    "project": {"S": project},
                    "file_key": {"S": file_key},
                    "status": {"S": "running"},
                    "started_at": {"N": _number(now)},
                    "chunks_total": {"N": "0"},
                    **{name: {"N": "0"} for name in COUNTERS},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            # the newest execution of a file, for whoever uploaded it to follow
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"importfile#{file_key}"},
                    "execution_id": {"S": execution_id},
                    "started_at": {"N": _number(now)},
                },
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
        record = self.get(execution_id)
        if record is None:
            raise RuntimeError(f"import execution {execution_id} vanished")
        return record

    def get(self, execution_id: str) -> ExecutionRecord | None:
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            ConsistentRead=True,
        ).get("Item")
        return _execution(item) if item else None

    def latest_for_file(self, file_key: str) -> ExecutionRecord | None:
        """The newest execution started for an object key, if any."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"importfile#{file_key}"}},
            ConsistentRead=True,
        ).get("Item")
        return self.get(item["execution_id"]["S"]) if item else None

    def add_progress(self, execution_id: str, rows: int, bytes_read: int) -> None:
        """Progress while a chunk runs (informational: a retried chunk adds
        again; the report's counts come from complete_chunk only)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            UpdateExpression="ADD progress_rows :rows, progress_bytes :bytes",
            ExpressionAttributeValues={":rows": {"N": str(rows)}, ":bytes": {"N": str(bytes_read)}},
        )

    def set_plan(
        self, execution_id: str, plan: dict[str, Any], chunks_total: int, bytes_total: int
    ) -> None:
        """Store the plan (``encode_plan(plan)`` must be at most MAX_PLAN_BYTES)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            UpdateExpression="SET #plan = :plan, chunks_total = :chunks, bytes_total = :bytes",
            ExpressionAttributeNames={"#plan": "plan"},
            ExpressionAttributeValues={
                ":plan": {"S": encode_plan(plan)},
                ":chunks": {"N": str(chunks_total)},
                ":bytes": {"N": str(bytes_total)},
            },
        )

    def complete_chunk(
        self, execution_id: str, chunk_index: int, counters: dict[str, int]
    ) -> ExecutionRecord | None:
        """Add a chunk's counts, once. None if the chunk was already counted
        (a redelivered message); else the record after the addition."""
        values: dict[str, Any] = {
            ":chunk": {"SS": [str(chunk_index)]},
            ":idx": {"S": str(chunk_index)},
        }
        adds = ["chunks_done :chunk"]
        for name in COUNTERS:
            values[f":{name}"] = {"N": str(counters.get(name, 0))}
            adds.append(f"{name} :{name}")
        return self._mark_chunk_done(execution_id, "ADD " + ", ".join(adds), values)

    def fail_chunk(self, execution_id: str, chunk_index: int) -> ExecutionRecord | None:
        """Give up on a chunk: it counts as done (so the execution can finish)
        and is listed as failed; its rows add nothing to the counts. Once, as
        complete_chunk: None if the chunk was already done or failed."""
        return self._mark_chunk_done(
            execution_id,
            "ADD chunks_done :chunk, chunks_failed :chunk",
            {":chunk": {"SS": [str(chunk_index)]}, ":idx": {"S": str(chunk_index)}},
        )

    def _mark_chunk_done(
        self, execution_id: str, update: str, values: dict[str, Any]
    ) -> ExecutionRecord | None:
        """``update`` (which adds the chunk ``:idx`` to chunks_done) applied
        once per chunk: None when the chunk was already done or failed."""
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": execution_key(execution_id)}},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk) AND NOT contains(chunks_done, :idx)",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            return None
        return _execution(response["Attributes"])

    def finish(
        self, execution_id: str, status: str, now: float, problems: list[str] | None = None
    ) -> None:
        values: dict[str, Any] = {":status": {"S": status}, ":now": {"N": _number(now)}}
        update = "SET #status = :status, finished_at = :now"
        if problems is not None:
            values[":problems"] = {"L": [{"S": p} for p in problems]}
            update += ", problems = :problems"
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            UpdateExpression=update,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )


def _execution(item: Item) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=str(item["pk"]["S"]).removeprefix("import#"),
        project=item["project"]["S"],
        file_key=item["file_key"]["S"],
        status=item["status"]["S"],
        started_at=float(item["started_at"]["N"]),
        chunks_total=int(item.get("chunks_total", {}).get("N", 0)),
        bytes_total=int(item.get("bytes_total", {}).get("N", 0)),
        done_chunks=frozenset(int(i) for i in item.get("chunks_done", {}).get("SS", [])),
        counters={name: int(item.get(name, {}).get("N", 0)) for name in COUNTERS},
        progress_rows=int(item.get("progress_rows", {}).get("N", 0)),
        progress_bytes=int(item.get("progress_bytes", {}).get("N", 0)),
        plan=json.loads(item["plan"]["S"]) if "plan" in item else {},
        problems=[p["S"] for p in item.get("problems", {}).get("L", [])],
        finished_at=float(item["finished_at"]["N"]) if "finished_at" in item else None,
        failed_chunks=frozenset(int(i) for i in item.get("chunks_failed", {}).get("SS", [])),
    )


@functools.cache
def import_store_from_environment() -> ImportStore:
    return ImportStore(*_client_and_table_from_environment())
