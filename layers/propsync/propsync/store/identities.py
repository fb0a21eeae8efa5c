"""Identity items (``<project>#id#<id_type>#<id_value>``, ``cid`` = the
customer the id belongs to) and the ids a customer item records (``i:<type>``
string sets). The identity item is the truth of who owns an id; the customer
item's sets are its record of them, which export-one shows and which the
one-value-per-hard-id-type condition reads."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from propsync.errors import WriteContentionError
from propsync.limits import MAX_CONDITIONAL_RETRIES
from propsync.store.conditional import (
    CLOSED_NAMES,
    ID_SET_PREFIX,
    MERGED_FROM,
    NOT_CLOSED,
    HardIdClashError,
    customer_key,
    id_clauses,
    ids_of,
    refusal_of,
    seen_attribute,
    seen_clauses,
)
from propsync.store.dynamo import (
    BATCH_GET_MAX_KEYS,
    batch_get,
    get_item,
    is_conditional_failure,
    number,
    returned_item,
)
from propsync.store.erasures import erasure_key

if TYPE_CHECKING:  # stubs are a dev dependency only
    from mypy_boto3_dynamodb import DynamoDBClient


def identity_key(project: str, id_type: str, id_value: str) -> str:
    # id types never contain "#" (propsync.identity validates them), so the key
    # is unambiguous even when the id value does.
    return f"{project}#id#{id_type}#{id_value}"


class IdentityStore:
    """Who owns each id, and the ids each customer records."""

    def __init__(self, client: DynamoDBClient, table_name: str):
        self._client = client
        self._table = table_name

    def lookup(self, project: str, ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Owners of the given ``(id_type, id_value)`` pairs, in as few
        ``BatchGetItem`` requests as DynamoDB allows (100 keys each). Unknown
        ids are absent from the result."""
        return self.lookup_with_erasures(project, ids, ())[0]

    def lookup_with_erasures(
        self, project: str, ids: Iterable[tuple[str, str]], id_hashes: Iterable[str]
    ) -> tuple[dict[tuple[str, str], str], dict[str, float]]:
        """Owners of the ids, and when the ``id_hashes`` (store.erasures)
        were erased, read by the same ``BatchGetItem`` requests: the erasure
        rule costs a write no request of its own."""
        owner_keys = {identity_key(project, t, v): (t, v) for t, v in ids}
        mark_keys = {erasure_key(project, h): h for h in id_hashes}
        owners: dict[tuple[str, str], str] = {}
        erased: dict[str, float] = {}
        keys = [*owner_keys, *mark_keys]
        for start in range(0, len(keys), BATCH_GET_MAX_KEYS):
            request = {
                self._table: {
                    "Keys": [{"pk": {"S": k}} for k in keys[start : start + BATCH_GET_MAX_KEYS]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "pk, cid, erased_at",
                }
            }
            for item in batch_get(self._client, self._table, request):
                key = item["pk"]["S"]
                if key in owner_keys and "cid" in item:
                    owners[owner_keys[key]] = item["cid"]["S"]
                elif key in mark_keys and "erased_at" in item:
                    erased[mark_keys[key]] = float(item["erased_at"]["N"])
        return owners, erased

    def claim(self, project: str, id_type: str, id_value: str, customer_id: str) -> str:
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
                        "created": {"N": number(time.time())},
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return customer_id
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise
                item = returned_item(error) or get_item(self._client, self._table, key, "cid")
            if item:
                return str(item["cid"]["S"])
            # The owner released the id between our put and our read: claim again.
        raise WriteContentionError(f"identity {id_type}={id_value!r} kept changing; retry")

    def add_to_customer(
        self,
        project: str,
        customer_id: str,
        ids: Mapping[str, list[str]],
        hard_id_types: frozenset[str],
        seen: Mapping[tuple[str, str], float] | None = None,
        *,
        merged_from: str | None = None,
    ) -> dict[str, int]:
        """Record ids on the customer item (creating it if needed), unless it
        was merged away (CustomerMergedAway names its destination) or erased
        (CustomerErased), with when it was last identified by the soft ones
        (``seen``); how many values of each of these id types it holds now.
        ``merged_from``: a customer being merged into this one, recorded by
        the same request (an erasure finds it there).

        A hard id type holds one value per customer: adding a second value
        fails with HardIdClashError and changes nothing.
        """
        ids = {t: values for t, values in ids.items() if values}
        if not ids and merged_from is None:
            return {}
        names: dict[str, str] = dict(CLOSED_NAMES)
        values: dict[str, Any] = {}
        sets, adds = id_clauses(customer_id, ids, names, values)
        seen_sets = seen_clauses(seen or {}, names, values)
        if seen_sets:
            sets = ", ".join([sets, *seen_sets])
        if merged_from is not None:
            names["#from"] = MERGED_FROM
            values[":from"] = {"SS": [merged_from]}
            adds = ", ".join(filter(None, [adds, "#from :from"]))
        conditions = [NOT_CLOSED]
        for index, (id_type, id_values) in enumerate(sorted(ids.items())):
            if id_type in hard_id_types:  # #i{index}: the placeholders of id_clauses
                if len(set(id_values)) > 1:
                    raise HardIdClashError(_clash_message({id_type: sorted(set(id_values))}, ids))
                values[f":h{index}"] = {"S": id_values[0]}
                conditions.append(
                    f"(attribute_not_exists(#i{index}) OR contains(#i{index}, :h{index}))"
                )
        key = customer_key(project, customer_id)
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression=f"SET {sets} ADD {adds}",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return {t: len(v) for t, v in ids_of(response.get("Attributes", {})).items()}
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            item = returned_item(error) or get_item(self._client, self._table, key) or {}
            refusal = refusal_of(customer_id, item)
            if refusal is not None:
                raise refusal from None
            raise HardIdClashError(_clash_message(ids_of(item), ids, hard_id_types)) from None

    def move(self, project: str, id_type: str, id_value: str, owner: str, new_owner: str) -> bool:
        """Point the id at ``new_owner`` if ``owner`` (or already ``new_owner``)
        holds it; False if it belongs to someone else (or to nobody) now."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": identity_key(project, id_type, id_value)}},
                UpdateExpression="SET cid = :new",
                ConditionExpression="cid = :old OR cid = :new",
                ExpressionAttributeValues={":old": {"S": owner}, ":new": {"S": new_owner}},
            )
            return True
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return False

    def drop_soft_ids(self, project: str, customer_id: str, drop: Mapping[str, list[str]]) -> None:
        """Take soft ids from the customer for good: each identity item is
        deleted if it still points at the customer (a later sighting of the id
        starts a new customer), then the ids and their seen times leave the
        customer item."""
        self.release(project, [(t, v) for t in sorted(drop) for v in drop[t]], [customer_id])
        self.remove_from_customer(project, customer_id, drop)

    def release(
        self, project: str, ids: Iterable[tuple[str, str]], customer_ids: Iterable[str]
    ) -> None:
        """Delete the identity items of ``ids`` that still point at one of
        ``customer_ids`` (a later sighting of such an id starts a new
        customer); an id someone else owns now is left alone."""
        owners = {f":c{n}": {"S": c} for n, c in enumerate(sorted(set(customer_ids)))}
        for id_type, id_value in ids:
            try:
                self._client.delete_item(
                    TableName=self._table,
                    Key={"pk": {"S": identity_key(project, id_type, id_value)}},
                    ConditionExpression=f"cid IN ({', '.join(owners)})",
                    ExpressionAttributeValues=owners,
                )
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise

    def remove_from_customer(
        self,
        project: str,
        customer_id: str,
        ids: Mapping[str, list[str]],
        *,
        merged_from: str | None = None,
    ) -> None:
        """Take ids off the customer's record: ids that turned out to belong
        elsewhere, or that moved to another customer; ``merged_from``: a
        customer whose merge into this one was called off."""
        id_types = sorted(t for t, values in ids.items() if values)
        if not id_types and merged_from is None:
            return
        # and their seen times (soft ids; absent attributes are no error)
        seen = {
            f"#s{n}": seen_attribute(t, v)
            for n, (t, v) in enumerate((t, v) for t in id_types for v in sorted(set(ids[t])))
        }
        names = {**{f"#i{i}": ID_SET_PREFIX + t for i, t in enumerate(id_types)}, **seen}
        values = {f":i{i}": {"SS": sorted(set(ids[t]))} for i, t in enumerate(id_types)}
        deletes = [f"#i{i} :i{i}" for i in range(len(id_types))]
        if merged_from is not None:
            names["#from"] = MERGED_FROM
            values[":from"] = {"SS": [merged_from]}
            deletes.append("#from :from")
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": customer_key(project, customer_id)}},
                UpdateExpression="DELETE "
                + ", ".join(deletes)
                + (" REMOVE " + ", ".join(seen) if seen else ""),
                # without it, DELETE on a missing item would create an empty one
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise

    # ---------------------------------------------------------------- properties


def _clash_message(
    existing: Mapping[str, Sequence[str]],
    added: Mapping[str, Sequence[str]],
    hard_id_types: frozenset[str] | None = None,
) -> str:
    clashes = [
        f"{t}={existing[t][0]!r} (not {v!r})"
        for t, values in sorted(added.items())
        for v in sorted(set(values))
        if (hard_id_types is None or t in hard_id_types)
        and existing.get(t)
        and v not in existing[t]
    ]
    return (
        "the customer already has "
        + (", ".join(clashes) or "another value of a hard id")
        + "; a customer has at most one value of each hard id type"
    )
