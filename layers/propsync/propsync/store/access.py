"""Projects and API keys: items of the customers' table under their own key
prefixes (``project#<token>``, ``apikey#<key id>``, and
``apikeyfailures#<key id>`` for the wrong secrets given for a key: the only
items the authorizer may write, see KeyFailures). A project item also holds
the project's id types (``id_types``: id type -> ``"hard"`` or ``"soft"``,
see propsync.id_types); a project created before it had them reads as
id_types.DEFAULT_ID_TYPES. And its erasure salt (``erasure_salt``: the key
of the hashes an erasure keeps, propsync.erasure), made with the project or,
for a project from before erasures, on first use."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from propsync.container import per_container
from propsync.errors import UnknownProjectError
from propsync.id_types import DEFAULT_ID_TYPES, IdTypes
from propsync.limits import MAX_CONDITIONAL_RETRIES
from propsync.store.dynamo import (
    BATCH_GET_MAX_KEYS,
    Item,
    batch_get,
    client_and_table_from_environment,
    is_conditional_failure,
    number,
)

if TYPE_CHECKING:  # stubs are a dev dependency only
    from mypy_boto3_dynamodb import DynamoDBClient


def project_key(project: str) -> str:
    return f"project#{project}"


def api_key_key(key_id: str) -> str:
    return f"apikey#{key_id}"


# template.yaml's AuthorizerFunction may update items of this prefix only
# (dynamodb:LeadingKeys): its role can count and lock, never rewrite a key
KEY_FAILURES_PREFIX = "apikeyfailures#"


def key_failures_key(key_id: str) -> str:
    return f"{KEY_FAILURES_PREFIX}{key_id}"


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


@dataclass(frozen=True)
class KeyFailures:
    """The wrong secrets given for one key, in an item of its own (one per
    key that ever got one: it never grows, and needs no expiry): how many
    since ``since`` (the first of the current window), and the end of the
    key's lock if one was set."""

    failed_secrets: int
    since: float
    locked_until: float | None

    def locked(self, now: float) -> bool:
        return self.locked_until is not None and now < self.locked_until


class AccessStore:
    """Projects and API keys (same table as the customers, other key prefixes)."""

    def __init__(self, client: DynamoDBClient, table_name: str):
        self._client = client
        self._table = table_name

    def create_project(self, project: str, name: str, id_types: IdTypes = DEFAULT_ID_TYPES) -> bool:
        """Create the project; False if it already existed (nothing changed)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": project_key(project)},
                    "name": {"S": name},
                    "created": {"N": number(time.time())},
                    "id_types": _id_types_value(id_types),
                    "erasure_salt": {"S": secrets.token_hex(32)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return False

    def erasure_salt(self, project: str) -> str | None:
        """The project's erasure salt (hex), made now if the project has none
        yet; None without the project (nothing of it can have been erased).
        Every caller gets the same one: a salt is only ever set where there
        is none."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": project_key(project)}},
            ProjectionExpression="pk, erasure_salt",
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        if "erasure_salt" in item:
            return str(item["erasure_salt"]["S"])
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": project_key(project)}},
                UpdateExpression="SET erasure_salt = if_not_exists(erasure_salt, :salt)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":salt": {"S": secrets.token_hex(32)}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return None  # the project was deleted meanwhile
        return str(response["Attributes"]["erasure_salt"]["S"])

    def project_exists(self, project: str) -> bool:
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": project_key(project)}},
            ProjectionExpression="pk",
        )
        return "Item" in response

    def project_id_types(self, project: str) -> IdTypes | None:
        """The project's id types (one consistent read), None if there is no project."""
        item = self._project_id_types_item(project)
        return None if item is None else _id_types_of_item(item)

    def add_id_type(self, project: str, id_type: str, *, hard: bool) -> bool:
        """Add a new id type to the project: True if added, False if it was
        there already with this kind. Raises InvalidCustomerIdsError for a name
        no id type may have, IdTypeKindError if it is there with the other
        kind, UnknownProjectError without the project.

        The write is conditional on what was read (the project exists and the
        id type is still absent), so concurrent additions never undo each
        other; a lost race reads again, and decides again."""
        for _ in range(MAX_CONDITIONAL_RETRIES + 1):
            item = self._project_id_types_item(project)
            if item is None:
                raise UnknownProjectError(project)
            current = _id_types_of_item(item)
            wanted = current.adding(id_type, hard=hard)
            if wanted is current:
                return False
            request: dict[str, Any] = {
                "TableName": self._table,
                "Key": {"pk": {"S": project_key(project)}},
            }
            if "id_types" in item:
                request["UpdateExpression"] = "SET id_types.#t = :kind"
                request["ConditionExpression"] = (
                    "attribute_exists(id_types) AND attribute_not_exists(id_types.#t)"
                )
                request["ExpressionAttributeNames"] = {"#t": id_type}
                request["ExpressionAttributeValues"] = {":kind": {"S": wanted.kind(id_type)}}
            else:  # a project from before id types: the defaults are written with it
                request["UpdateExpression"] = "SET id_types = :all"
                request["ConditionExpression"] = (
                    "attribute_exists(pk) AND attribute_not_exists(id_types)"
                )
                request["ExpressionAttributeValues"] = {":all": _id_types_value(wanted)}
            try:
                self._client.update_item(**request)
                return True
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise
        raise RuntimeError(f"the id types of project {project} kept changing; try again")

    def _project_id_types_item(self, project: str) -> Item | None:
        return self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": project_key(project)}},
            ProjectionExpression="pk, id_types",
            ConsistentRead=True,
        ).get("Item")

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
        for start in range(0, len(key_ids), BATCH_GET_MAX_KEYS):
            keys = [{"pk": {"S": api_key_key(k)}} for k in key_ids[start : start + 100]]
            request = {self._table: {"Keys": keys, "ConsistentRead": True}}
            records += [_api_key_record(i) for i in batch_get(self._client, self._table, request)]
        return sorted(records, key=lambda r: r.created)

    def key_failures(self, key_id: str) -> KeyFailures | None:
        """The key's wrong secrets (None if it never had one, or they were cleared)."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": key_failures_key(key_id)}},
            ConsistentRead=True,
        ).get("Item")
        return _key_failures(item) if item else None

    def key_failures_of(self, key_ids: list[str]) -> dict[str, KeyFailures]:
        """key_failures of many keys at once (keys without any are left out)."""
        found: dict[str, KeyFailures] = {}
        for start in range(0, len(key_ids), BATCH_GET_MAX_KEYS):
            chunk = key_ids[start : start + BATCH_GET_MAX_KEYS]
            keys = [{"pk": {"S": key_failures_key(k)}} for k in chunk]
            request = {self._table: {"Keys": keys, "ConsistentRead": True}}
            for item in batch_get(self._client, self._table, request):
                key_id = str(item["pk"]["S"]).removeprefix(KEY_FAILURES_PREFIX)
                found[key_id] = _key_failures(item)
        return found

    def count_failed_secret(
        self,
        key_id: str,
        now: float,
        *,
        window_seconds: float,
        lock_after: int,
        lock_seconds: float,
        current: KeyFailures | None = None,
    ) -> KeyFailures:
        """Count one wrong secret for the key, and lock it for
        ``lock_seconds`` when the window (``window_seconds`` from its first
        wrong secret) holds ``lock_after`` of them. ``current``: the state
        as last read, which only chooses the first write to try.

        Every write is one conditional UpdateItem, so concurrent wrong
        secrets are each counted once: ADD to a window still open, or start
        a new one (count 1) where there is none or it has closed; a request
        that loses the race between the two tries the other. A lock is set
        only where none is in force, so it is never extended or lifted by a
        late request."""
        window_start = now - window_seconds
        open_window = current is not None and current.since > window_start
        writes = [self._one_more_failure, self._first_failure]
        if not open_window:
            writes.reverse()
        for attempt in range(2 * (MAX_CONDITIONAL_RETRIES + 1)):
            item = writes[attempt % 2](key_id, now, window_start)
            if item is not None:
                break
        else:
            raise RuntimeError(f"the wrong secrets of key {key_id} kept changing; not counted")
        failures = _key_failures(item)
        if failures.failed_secrets >= lock_after and not failures.locked(now):
            failures = self._lock(key_id, failures, now, now + lock_seconds)
        return failures

    def _one_more_failure(self, key_id: str, now: float, window_start: float) -> Item | None:
        return self._update_failures(
            key_id,
            UpdateExpression="ADD failed_secrets :one",
            ConditionExpression="failed_since > :window_start",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":window_start": {"N": number(window_start)},
            },
        )

    def _first_failure(self, key_id: str, now: float, window_start: float) -> Item | None:
        # locked_until stays: a lock outlasts its window, and only its end lifts it
        return self._update_failures(
            key_id,
            UpdateExpression="SET failed_secrets = :one, failed_since = :now",
            ConditionExpression="attribute_not_exists(failed_since) OR "
            "failed_since <= :window_start",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":now": {"N": number(now)},
                ":window_start": {"N": number(window_start)},
            },
        )

    def _lock(self, key_id: str, failures: KeyFailures, now: float, until: float) -> KeyFailures:
        item = self._update_failures(
            key_id,
            UpdateExpression="SET locked_until = :until",
            ConditionExpression="failed_since = :since AND "
            "(attribute_not_exists(locked_until) OR locked_until <= :now)",
            ExpressionAttributeValues={
                ":until": {"N": number(until)},
                ":since": {"N": number(failures.since)},
                ":now": {"N": number(now)},
            },
        )
        if item is not None:
            return _key_failures(item)
        # another request locked it (or opened a new window) meanwhile
        return self.key_failures(key_id) or failures

    def _update_failures(self, key_id: str, **update: Any) -> Item | None:
        """The item after a conditional update, or None if the condition failed."""
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key_failures_key(key_id)}},
                ReturnValues="ALL_NEW",
                **update,
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return None
        return response["Attributes"]

    def clear_key_failures(self, key_id: str) -> KeyFailures | None:
        """Forget the key's wrong secrets, and lift its lock; what there was."""
        response = self._client.delete_item(
            TableName=self._table,
            Key={"pk": {"S": key_failures_key(key_id)}},
            ReturnValues="ALL_OLD",
        )
        item = response.get("Attributes")
        return _key_failures(item) if item else None

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
            if not is_conditional_failure(error):
                raise
            return False


def _id_types_value(id_types: IdTypes) -> dict[str, object]:
    return {"M": {t: {"S": kind} for t, kind in id_types.to_item().items()}}


def _id_types_of_item(item: Item) -> IdTypes:
    stored = item.get("id_types")
    if stored is None:
        return DEFAULT_ID_TYPES
    return IdTypes.from_item({t: value["S"] for t, value in stored["M"].items()})


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
        "created": {"N": number(record.created)},
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


def _key_failures(item: Item) -> KeyFailures:
    locked_until = item.get("locked_until")
    return KeyFailures(
        failed_secrets=int(item["failed_secrets"]["N"]),
        since=float(item["failed_since"]["N"]),
        locked_until=float(locked_until["N"]) if locked_until else None,
    )


@per_container
def access_store_from_environment() -> AccessStore:
    return AccessStore(*client_and_table_from_environment())
