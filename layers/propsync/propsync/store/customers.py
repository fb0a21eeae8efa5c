"""Customer items (``<project>#c#<customer_id>``): their properties, written
with the merge rule inside DynamoDB, and read back. The requests are built by
:mod:`propsync.store.conditional`; the ids a customer records are
:mod:`propsync.store.identities`' business."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from propsync import merge_rule
from propsync.container import per_container
from propsync.errors import CustomerTooLargeError, PartiallyAppliedError, WriteContentionError
from propsync.limits import MAX_CONDITIONAL_RETRIES, MAX_ITEM_BYTES
from propsync.merge_rule import Horizon, PropertyVersion
from propsync.store.compaction import CompactionPolicy
from propsync.store.conditional import (
    CLOSED_NAMES,
    ERASED_AT,
    HORIZON,
    HORIZON_BUCKETS,
    ID_SET_PREFIX,
    MERGE_DONE,
    MERGED_FROM,
    MERGED_INTO,
    NOT_CLOSED,
    TOMBSTONES_PER_COMPACTION,
    IdsToRecord,
    StoredProperties,
    chunks,
    compaction_update,
    conditional_update,
    customer_key,
    horizon_of,
    ids_of,
    may_exceed_item,
    oldest_tombstone,
    properties_of,
    refusal_of,
    seen_of,
    stored_properties_of,
    stored_size,
)
from propsync.store.dynamo import (
    Item,
    client_and_table_from_environment,
    get_item,
    is_conditional_failure,
    is_item_too_large,
    number,
    returned_item,
)
from propsync.store.erasures import ErasureStore
from propsync.store.identities import IdentityStore

if TYPE_CHECKING:  # stubs are a dev dependency only
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)

_TOO_LARGE = (
    "the customer would exceed DynamoDB's 400 KB item limit; "
    "store fewer or smaller properties (at most 16 KB each)"
)
_STOPPED_PART_WAY = (
    "the store failed part way (throttled, slow or failing); "
    "the properties in applied were stored, retry the request for the rest"
)


@dataclass(frozen=True)
class WriteResult:
    """Which properties a write stored, and which lost to a newer stored value."""

    applied: tuple[str, ...]
    stale: tuple[str, ...]


@dataclass(frozen=True)
class CustomerRecord:
    """A customer as stored: ids by type, and every property version
    (tombstones included; :mod:`propsync.customer_view` hides them)."""

    customer_id: str
    ids: dict[str, list[str]]
    properties: dict[str, PropertyVersion] = field(default_factory=dict)
    # set when the customer was merged into another: its destination, and
    # whether the merge finished (properties copied, identity items moved)
    merged_into: str | None = None
    merge_done: bool = False
    # (soft id type, value) -> when a command last named it (store.conditional)
    seen: dict[tuple[str, str], float] = field(default_factory=dict)
    # customers merged into this one (recorded since erasure existed)
    merged_from: frozenset[str] = frozenset()
    # set when the customer was erased (it then holds nothing else)
    erased_at: float | None = None
    # what it keeps of the tombstones it compacted (store.compaction)
    horizon: Horizon | None = None


@dataclass(frozen=True)
class MergeMark:
    """What :meth:`CustomerStore.mark_merged` did: ``marked`` when this call
    set the mark (not when it was there already); ``refused``: the customer
    as stored when the mark was refused."""

    marked: bool
    refused: CustomerRecord | None = None


class CustomerStore:
    """Customer items of one DynamoDB table, (``identities``) the identity
    items that point at them, and (``erasures``) the marks of erased ids."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        compaction: CompactionPolicy | None = None,
    ):
        self._client = client
        self._table = table_name
        # the grace period from the environment, read once (per container)
        self.compaction = compaction or CompactionPolicy()
        self.identities = IdentityStore(client, table_name)
        self.erasures = ErasureStore(client, table_name)

    def write_properties(
        self,
        project: str,
        customer_id: str,
        updates: Mapping[str, PropertyVersion],
        *,
        new_ids: Mapping[str, str] | None = None,
        seen: Mapping[tuple[str, str], float] | None = None,
    ) -> WriteResult:
        """Store every update that wins against the stored version.

        Common case: one ``UpdateItem``. When a condition fails, the stored
        item (from the error, or read when the engine does not return it) tells
        which properties still win; only those are retried, at most
        ``MAX_CONDITIONAL_RETRIES`` times, each against the item as read. A
        customer whose tombstones are due for compaction fails the first
        attempt too: it is compacted (store.compaction) before the retry.
        Commands too large for one request are split into several, each with
        its own conditions.

        ``new_ids``: the id a command has just claimed for a customer it
        created (identity.resolve_customer), recorded on the customer item by
        the same request as the properties, so that a new customer costs its
        claim and one write (docs/DECISIONS.md: "A new customer's first id
        rides on its first property write"). Recorded on their own if no
        property gets written. ``seen``: the soft ids the command named, and
        when (at most MAX_SEEN_PER_WRITE), refreshed by the same request.
        """
        key = customer_key(project, customer_id)
        ids = IdsToRecord(customer_id, dict(new_ids)) if new_ids else None
        if may_exceed_item(updates) and stored_size(updates) > MAX_ITEM_BYTES:
            self._record_new_ids(project, ids)
            raise CustomerTooLargeError(_TOO_LARGE)
        applied: list[str] = []
        stale: list[str] = []
        unrecorded = ids
        try:
            due = self.compaction.due(self.compaction.clock())
            parts = chunks(self._table, key, updates, ids, seen, compaction_due=due)
            for index, (chunk, request) in enumerate(parts):
                # chunks() puts the ids and seen times in the first request
                carried = (ids, seen) if index == 0 else (None, None)
                try:
                    chunk_applied, chunk_stale, recorded = self._write_chunk(
                        key, chunk, request, *carried
                    )
                except PartiallyAppliedError as error:
                    raise type(error)(str(error), tuple(applied)) from None
                except Exception as error:
                    if not applied:
                        raise
                    # an earlier request stored properties: the answer must
                    # name them, whatever stopped this one
                    raise PartiallyAppliedError(_STOPPED_PART_WAY, tuple(applied)) from error
                if recorded:
                    unrecorded = None
                applied += chunk_applied
                stale += chunk_stale
        except Exception:
            # The properties failed; the new customer's ids must not fail with
            # them (its identity is claimed already): record them on their own.
            # A failure here is logged, and the first error is the one raised.
            try:
                self._record_new_ids(project, unrecorded)
            except Exception:
                logger.exception("recording a new customer's ids failed after its write failed")
            raise
        self._record_new_ids(project, unrecorded)
        return WriteResult(applied=tuple(applied), stale=tuple(stale))

    def _record_new_ids(self, project: str, new_ids: IdsToRecord | None) -> None:
        if new_ids is not None:
            self.identities.add_to_customer(
                project,
                new_ids.customer_id,
                {t: [v] for t, v in new_ids.ids.items()},
                frozenset(),
            )

    def _write_chunk(
        self,
        key: str,
        chunk: dict[str, PropertyVersion],
        request: dict[str, Any],
        new_ids: IdsToRecord | None,
        seen: Mapping[tuple[str, str], float] | None,
    ) -> tuple[list[str], list[str], bool]:
        """Applied and stale property names, and whether ``new_ids`` were
        recorded (by a request that succeeded). ``request`` is the chunk's
        UpdateItem as chunks() built it, with ``new_ids`` if given; retries
        build their own for the properties that still win against the item
        as the failure returned it, with the same ids."""
        pending = chunk
        applied: list[str] = []
        stale: list[str] = []
        stored: StoredProperties | None = None  # as the last failure found it
        for attempt in range(MAX_CONDITIONAL_RETRIES + 1):
            if not pending:
                return applied, stale, False
            if attempt:
                request = conditional_update(
                    self._table, key, pending, new_ids, seen, stored=stored
                )
            try:
                self._client.update_item(**request)
                return applied + list(pending), stale, new_ids is not None
            except ClientError as error:
                if is_item_too_large(error):
                    raise CustomerTooLargeError(_TOO_LARGE) from None
                if not is_conditional_failure(error):
                    raise
                stored = self._stored_after_failure(key, error)
            if self.compaction.is_due(stored, self.compaction.clock()):
                # the properties this write decides keep their tombstones: it
                # replaces those it wins, and those it loses to stay as they are
                stored = self._compact(key, stored, keep=pending)
            still_winning = merge_rule.winners(pending, stored.properties, stored.horizon)
            for name, version in pending.items():
                if name in still_winning:
                    continue
                # Already stored exactly (a retry whose first attempt landed but
                # whose answer was lost, or the same update delivered twice):
                # the value is there, so it counts as applied, not as stale.
                (applied if stored.properties.get(name) == version else stale).append(name)
            pending = still_winning
        raise WriteContentionError(
            f"{len(pending)} properties were changed by other writers during each of "
            f"{MAX_CONDITIONAL_RETRIES + 1} attempts; retry the command"
        )

    def _stored_after_failure(self, key: str, error: ClientError) -> StoredProperties:
        """The item a conditional failure found (returned with the error, or
        read on engines that do not return it), or the refusal it holds."""
        stored_item: Item | None = returned_item(error)
        if stored_item is None:  # engines without ReturnValuesOnConditionCheckFailure
            stored_item = get_item(self._client, self._table, key) or {}
        refusal = refusal_of(key.rsplit("#", 1)[-1], stored_item)
        if refusal is not None:
            raise refusal from None
        return stored_properties_of(stored_item)

    def _compact(
        self, key: str, stored: StoredProperties, *, keep: Iterable[str] = ()
    ) -> StoredProperties:
        """Compact the customer as read (merge_rule.compact, with the grace
        period's cutoff), in requests of up to TOMBSTONES_PER_COMPACTION
        tombstones, and correct its noted tombstone time; what it holds
        after. A request that finds the customer changed (a tombstone
        written again, a later horizon) ends it: the caller goes on with the
        customer as that failure found it, and a later write compacts."""
        cutoff = self.compaction.cutoff(self.compaction.clock())
        while True:
            plan = merge_rule.compact(
                stored.properties,
                stored.horizon,
                cutoff,
                keep=keep,
                limit=TOMBSTONES_PER_COMPACTION,
            )
            left = {n: v for n, v in stored.properties.items() if n not in plan.removed}
            since = oldest_tombstone(left)
            if not plan.removed and since == stored.tombstones_since:
                return stored
            try:
                self._client.update_item(**compaction_update(self._table, key, stored, plan, since))
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise
                return self._stored_after_failure(key, error)
            logger.info(
                "compacted tombstones",
                extra={"tombstones": len(plan.removed), "tombstones_left": since is not None},
            )
            stored = StoredProperties(left, plan.horizon, since)
            if len(plan.removed) < TOMBSTONES_PER_COMPACTION:
                return stored

    def absorb_horizon(self, project: str, customer_id: str, horizon: Horizon) -> None:
        """Give the customer ``horizon`` too (a customer merged into it had
        compacted tombstones: propsync.merging): its buckets are added, and
        its time unless a later one is stored. CustomerMergedAway or
        CustomerErased if the customer is closed."""
        key = customer_key(project, customer_id)
        names = {**CLOSED_NAMES, "#hb": HORIZON_BUCKETS}
        buckets = {":hb": {"SS": sorted(horizon.buckets)}}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET #h = :h ADD #hb :hb",
                ConditionExpression=f"{NOT_CLOSED} AND NOT #h > :h",
                ExpressionAttributeNames={**names, "#h": HORIZON},
                ExpressionAttributeValues={**buckets, ":h": {"N": number(horizon.timestamp)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            self._stored_after_failure(key, error)  # raises if it is closed
        # a later time is stored: it stays, and the buckets are added
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="ADD #hb :hb",
                ConditionExpression=NOT_CLOSED,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=buckets,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            self._stored_after_failure(key, error)  # it was closed meanwhile

    def read_customer(self, project: str, customer_id: str) -> CustomerRecord | None:
        """The customer item as stored, merged away or not (propsync.identity
        follows ``merged_into``)."""
        item = get_item(self._client, self._table, customer_key(project, customer_id))
        if item is None:
            return None
        return CustomerRecord(
            customer_id=customer_id,
            ids=ids_of(item),
            properties=properties_of(item),
            merged_into=item[MERGED_INTO]["S"] if MERGED_INTO in item else None,
            merge_done=bool(item.get(MERGE_DONE, {}).get("BOOL", False)),
            seen=seen_of(item),
            merged_from=frozenset(item.get(MERGED_FROM, {}).get("SS", [])),
            erased_at=float(item[ERASED_AT]["N"]) if ERASED_AT in item else None,
            horizon=horizon_of(item),
        )

    def erase(
        self, project: str, customer: CustomerRecord, erased_at: float
    ) -> CustomerRecord | None:
        """Replace the customer's item by one that holds only ``erased_at``
        and the ids it was read with (no property, no seen time), if it is
        still as ``customer`` was read: not merged away, and merged from the
        same customers (one merged in since would keep its data). The ids
        stay until their identity items are deleted (propsync.erasure: so
        that whoever completes a crashed erasure knows them). The item as it
        was replaced (with any id recorded since it was read), or None if it
        changed: the caller reads it again. From here on every write to it
        fails (NOT_CLOSED)."""
        names = dict(CLOSED_NAMES)
        names["#from"] = MERGED_FROM
        values: dict[str, Any] = {}
        conditions = [NOT_CLOSED]
        if customer.merged_from:
            values[":from"] = {"SS": sorted(customer.merged_from)}
            conditions.append("#from = :from")
        else:
            conditions.append("attribute_not_exists(#from)")
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "pk": {"S": customer_key(project, customer.customer_id)},
                ERASED_AT: {"N": number(erased_at)},
                **{
                    ID_SET_PREFIX + id_type: {"SS": sorted(set(values))}
                    for id_type, values in customer.ids.items()
                    if values
                },
            },
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_OLD",
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            old = self._client.put_item(**request).get("Attributes", {})
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return None
        return CustomerRecord(customer.customer_id, ids=ids_of(old), properties=properties_of(old))

    def erase_merged_away(self, project: str, source: CustomerRecord, erased_at: float) -> None:
        """Replace a customer merged into an erased one by an erased item
        (whatever it holds: its data went to the erased customer). One
        marked merged keeps the mark, done, so that a merge still running
        finishes (and writes nothing: its destination is erased)."""
        item: dict[str, Any] = {
            "pk": {"S": customer_key(project, source.customer_id)},
            ERASED_AT: {"N": number(erased_at)},
        }
        if source.merged_into is not None:
            item[MERGED_INTO] = {"S": source.merged_into}
            item[MERGE_DONE] = {"BOOL": True}
        self._client.put_item(TableName=self._table, Item=item)

    def mark_merged(
        self,
        project: str,
        customer_id: str,
        destination: str,
        hard_ids: Mapping[str, str | None],
    ) -> MergeMark:
        """Mark the customer merged into ``destination``: from now on no write
        lands on it (every write requires ``merged_into`` absent). Only if it
        is not merged elsewhere, and holds no hard id other than
        ``hard_ids`` (type -> the one value the merged customer may have, or
        None: none at all), as it did when the merge was decided. Refused:
        the customer as stored, for the caller to decide again."""
        names = dict(CLOSED_NAMES)
        values: dict[str, Any] = {":dest": {"S": destination}}
        # merged_into absent: so that this call knows it set the mark (one
        # marked for the same destination by another request is read below);
        # erased_at absent: an erased customer is merged nowhere.
        # No attribute_exists(pk): a customer whose first write failed after
        # its id was claimed has no item, and is merged like any other.
        conditions = [NOT_CLOSED]
        for index, (id_type, value) in enumerate(sorted(hard_ids.items())):
            names[f"#h{index}"] = ID_SET_PREFIX + id_type
            if value is None:
                conditions.append(f"attribute_not_exists(#h{index})")
            else:
                values[f":h{index}"] = {"S": value}
                values[":one"] = {"N": "1"}
                conditions.append(
                    f"(attribute_not_exists(#h{index})"
                    f" OR (size(#h{index}) = :one AND contains(#h{index}, :h{index})))"
                )
        key = customer_key(project, customer_id)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET #merged = :dest",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return MergeMark(marked=True)
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
        stored = self.read_customer(project, customer_id)
        if stored is not None and stored.merged_into == destination:
            return MergeMark(marked=False)  # another request decided the same merge first
        return MergeMark(
            marked=False, refused=stored or CustomerRecord(customer_id=customer_id, ids={})
        )

    def shorten_merge_chain(
        self, project: str, customer_id: str, merged_into: str, final: str
    ) -> None:
        """Point a finished merged-away customer straight at the end of its
        chain of merges (``final``), if it still points at ``merged_into``:
        the next read by its internal id takes one hop."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": customer_key(project, customer_id)}},
                UpdateExpression="SET #merged = :final",
                ConditionExpression="#merged = :old AND #done = :yes",
                ExpressionAttributeNames={"#merged": MERGED_INTO, "#done": MERGE_DONE},
                ExpressionAttributeValues={
                    ":final": {"S": final},
                    ":old": {"S": merged_into},
                    ":yes": {"BOOL": True},
                },
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise

    def finish_merge(self, project: str, customer_id: str) -> None:
        """Record that a merged-away customer's properties and ids are all at
        its destination: later visitors need not help any more."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": customer_key(project, customer_id)}},
            UpdateExpression="SET #done = :yes",
            ConditionExpression="attribute_exists(#merged)",
            ExpressionAttributeNames={"#done": MERGE_DONE, "#merged": MERGED_INTO},
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )


@per_container
def store_from_environment() -> CustomerStore:
    return CustomerStore(*client_and_table_from_environment())
