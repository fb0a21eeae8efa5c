"""Merging customers: one person's profiles become one, the newer property
winning, without transactions (dynalite, the second engine, has none).

A merge of ``source`` into ``destination`` is a sequence of idempotent steps,
each a single conditional request, that anyone who meets a half-merged
customer completes ("helping"):

1. ``destination`` records the source's ids (conditional on its hard ids:
   two values of one hard id type never meet on one customer);
2. ``source`` is marked ``merged_into = destination`` (conditional on it not
   being merged elsewhere and still holding the hard ids the merge was decided
   on). From here on no write lands on the source: every property write and
   every id recorded requires ``merged_into`` absent, and one that finds it
   follows the pointer instead. So every write acknowledged on the source
   happened before the mark, and step 3 reads after it;
3. the source's property versions are copied into the destination with the
   newer-wins condition of every write (repeating or reordering copies changes
   nothing: the merge rule is a join), then the source's horizon (the
   tombstones it compacted) joins the destination's: after the copy, so
   that it never beats the source's own properties;
4. the source's identity items are pointed at the destination (conditional on
   still pointing at the source);
5. the source is marked done.

A crash between two steps leaves a state the next request that touches either
customer completes: after 1, a retry of the command does it all again (the
destination lists ids it will own); after 2, any write to the source, any
read of it, and any lookup of one of its ids finds the mark and runs 3-5.
The destination of a merge is the customer created first (ULIDs sort by
creation time), so chains of merges are acyclic; a read that follows one
shortens it, and ``MAX_MERGE_HOPS`` bounds it only against a damaged table.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace

from propsync import merge_rule
from propsync.errors import CustomerTooLargeError, WriteContentionError
from propsync.limits import MAX_ITEM_BYTES, MAX_MERGE_HOPS, MAX_SOFT_IDS_PER_TYPE
from propsync.store.conditional import CustomerErased, CustomerMergedAway, stored_size
from propsync.store.customers import CustomerRecord, CustomerStore

logger = logging.getLogger(__name__)


def complete_merge(store: CustomerStore, project: str, source: CustomerRecord) -> str:
    """Steps 3-5 for a customer already marked merged; the customer its data
    ends on (the end of the chain of merges). Idempotent: any number of
    helpers may run it at once."""
    if source.merged_into is None:
        raise ValueError(f"customer {source.customer_id} is not merged")
    destination = source.merged_into
    if source.merge_done:
        return final_customer(store, project, destination)
    for _hop in range(MAX_MERGE_HOPS):
        try:
            if source.properties:
                try:
                    store.write_properties(project, destination, source.properties)
                except CustomerTooLargeError:
                    # The destination grew past what both fit in since the
                    # merge was decided (merge_into checks before marking).
                    # The properties that did not fit stay on the source item,
                    # unread; the merge goes on, so that the source's ids and
                    # reads are not stuck behind it.
                    logger.exception(
                        "merged customer too large: properties left on the source",
                        extra={"source": source.customer_id, "destination": destination},
                    )
            if source.horizon is not None:
                # Its compacted deletions go on beating older writes at the
                # destination. A property the destination holds stays (the
                # horizon does not say which names it took): docs/DECISIONS.md,
                # "Deleted properties are compacted into a horizon".
                store.absorb_horizon(project, destination, source.horizon)
            if source.ids:
                store.identities.add_to_customer(
                    project, destination, source.ids, frozenset(), seen=source.seen
                )
            break
        except CustomerMergedAway as merged:
            # the destination was merged on in turn: finish that first, and
            # bring the source's data to where it went
            destination = final_customer(store, project, merged.customer_id)
    else:
        raise _too_deep(source.customer_id)
    for id_type, values in sorted(source.ids.items()):
        for value in values:
            move_identity(store, project, (id_type, value), source.customer_id, destination)
    if source.ids:
        # soft ids of both may pass 64 together: read (the answer of an ADD
        # that changed nothing, as step 1 made this one, has no sizes)
        keep_soft_ids_within_cap(store, project, destination)
    store.finish_merge(project, source.customer_id)
    return destination


def move_identity(
    store: CustomerStore, project: str, pair: tuple[str, str], source: str, destination: str
) -> None:
    """Step 4 for one id the source lists (the destination records it
    already): its identity item to the destination. An id the source was
    still attaching has no identity item yet: the destination claims it (the
    source's late claim then fails and takes it back). One a third customer
    took meanwhile (a soft id moved on) leaves the destination's list."""
    id_type, value = pair
    if store.identities.move(project, id_type, value, source, destination):
        return
    owner = store.identities.lookup(project, [pair]).get(pair)
    if owner is None:
        owner = store.identities.claim(project, id_type, value, destination)
    if owner != destination:
        store.identities.remove_from_customer(project, destination, {id_type: [value]})


def final_customer(store: CustomerStore, project: str, customer_id: str) -> str:
    """``customer_id``, or the customer it was merged into (transitively),
    completing any merge on the way. CustomerErased if that one was erased."""
    record = follow_merges(store, project, customer_id)
    if record is None:
        return customer_id
    if record.erased_at is not None:
        raise CustomerErased(record.customer_id, record.erased_at)
    return record.customer_id


def read_following_merges(
    store: CustomerStore, project: str, customer_id: str
) -> CustomerRecord | None:
    """The customer as stored, or the one it was merged into: what a read of
    a merged-away customer (by its internal id or a former id) shows. None
    when there is none, or it was erased (propsync.erasure)."""
    record = follow_merges(store, project, customer_id)
    return None if record is None or record.erased_at is not None else record


def view_following_merges(
    store: CustomerStore, project: str, customer_ids: Iterable[str]
) -> CustomerRecord | None:
    """The one customer ``customer_ids`` lead to, as :func:`read_following_merges`
    shows it, without writing anything: for the read routes, whose function
    may only read (template.yaml). Merges on the way that are not finished
    are completed in the answer only: the merged-away customers' properties
    and ids are merged into the view with the merge rule, as step 3 will
    store them. None when one of them leads nowhere, they lead to different
    customers, or the one they lead to was erased."""
    final: CustomerRecord | None = None
    unfinished: dict[str, CustomerRecord] = {}
    for start in sorted(set(customer_ids)):
        record = store.read_customer(project, start)
        for _hop in range(MAX_MERGE_HOPS):
            if record is None or record.merged_into is None:
                break
            if not record.merge_done:
                unfinished[record.customer_id] = record
            record = store.read_customer(project, record.merged_into)
        else:
            raise _too_deep(start)
        if record is None or (final is not None and record.customer_id != final.customer_id):
            return None
        final = record
    if final is None or final.erased_at is not None:
        return None
    if not unfinished:
        return final
    sources = [unfinished[c] for c in sorted(unfinished)]
    # as step 3 copies them: against the destination's horizon, which takes
    # the sources' horizons after their properties
    properties = merge_rule.merge(
        final.properties,
        (pair for source in sources for pair in source.properties.items()),
        final.horizon,
    )
    horizon = final.horizon
    ids = {t: set(values) for t, values in final.ids.items()}
    for source in sources:
        for id_type, values in source.ids.items():
            ids.setdefault(id_type, set()).update(values)
        if source.horizon is not None:
            horizon = source.horizon.absorb(horizon)
    return replace(
        final,
        properties=properties,
        ids={t: sorted(v) for t, v in ids.items()},
        horizon=horizon,
    )


def follow_merges(store: CustomerStore, project: str, customer_id: str) -> CustomerRecord | None:
    """The customer as stored, or the one it was merged into, erased or not.
    Merges on the way are completed, and a chain of them is shortened so
    that the next read takes one hop."""
    start = store.read_customer(project, customer_id)
    record = start
    for _hop in range(MAX_MERGE_HOPS):
        if record is None or record.merged_into is None:
            break
        if not record.merge_done:
            # a destination erased since has nothing to bring the data to
            with contextlib.suppress(CustomerErased):
                complete_merge(store, project, record)
        record = store.read_customer(project, record.merged_into)
    else:
        raise _too_deep(customer_id)
    if (
        start is not None
        and start.merged_into is not None
        and record is not None
        and start.merged_into != record.customer_id
    ):
        store.shorten_merge_chain(project, customer_id, start.merged_into, record.customer_id)
    return record


def merge_into(
    store: CustomerStore,
    project: str,
    source: CustomerRecord,
    destination: CustomerRecord,
    *,
    hard_ids: Mapping[str, str | None],
    hard_id_types: frozenset[str],
) -> bool | None:
    """Merge ``source`` into ``destination`` (both as just read, neither merged).
    ``hard_ids``: every hard id type -> the value the merged customer holds
    (None: none). True when this call merged them; None when another request
    marked the same merge first (completed here too); False when the
    customers changed since they were read (the caller decides again).
    CustomerTooLargeError, before anything is written, when the two would not
    fit in one item."""
    merged = merge_rule.merge(
        destination.properties, source.properties.items(), destination.horizon
    )
    if stored_size(merged) > MAX_ITEM_BYTES:
        raise CustomerTooLargeError(
            "merging these customers would exceed DynamoDB's 400 KB item limit "
            f"({source.customer_id} into {destination.customer_id}); delete properties "
            "of one of them (set them to null) and send the command again"
        )
    # 1. the destination records the source's ids, under its hard-id
    # condition, and the source itself (an erasure of the destination finds
    # and erases it: propsync.erasure)
    store.identities.add_to_customer(
        project, destination.customer_id, source.ids, hard_id_types, merged_from=source.customer_id
    )
    added = {
        t: [v for v in values if v not in destination.ids.get(t, [])]
        for t, values in source.ids.items()
    }
    # 2. the mark: from here on the merge completes, whoever finishes it
    try:
        mark = store.mark_merged(project, source.customer_id, destination.customer_id, hard_ids)
    except Exception:
        # not marked: the destination must not keep ids it will not own
        store.identities.remove_from_customer(
            project, destination.customer_id, added, merged_from=source.customer_id
        )
        raise
    if mark.refused is not None:
        # the source changed: take back what step 1 gave the destination (the
        # caller looks again and decides anew)
        store.identities.remove_from_customer(
            project, destination.customer_id, added, merged_from=source.customer_id
        )
        if mark.refused.erased_at is not None:  # erased meanwhile: the caller's rule decides
            raise CustomerErased(source.customer_id, mark.refused.erased_at)
        if mark.refused.merged_into is not None and not mark.refused.merge_done:
            complete_merge(store, project, mark.refused)
        return False
    marked = store.read_customer(project, source.customer_id)
    if marked is not None:  # 3-5, with what the source holds now that it is frozen
        # plus the ids the caller knows it owns: a customer whose first write
        # failed after its claim has identity items but no ids on its item
        ids = {
            t: sorted({*marked.ids.get(t, []), *source.ids.get(t, [])})
            for t in {*marked.ids, *source.ids}
        }
        complete_merge(store, project, replace(marked, ids=ids))
    return True if mark.marked else None


def keep_soft_ids_within_cap(
    store: CustomerStore,
    project: str,
    customer_id: str,
    sizes: Mapping[str, int] | None = None,
) -> None:
    """After ids were added (``sizes``: values per id type now, or None: read
    them): a customer keeps at most MAX_SOFT_IDS_PER_TYPE values of an id
    type (only soft types can have more than one); those it was least
    recently identified by go, and a later sighting of one starts a new
    customer."""
    if sizes is not None and all(size <= MAX_SOFT_IDS_PER_TYPE for size in sizes.values()):
        return
    record = store.read_customer(project, customer_id)
    if record is None:
        return
    over = [t for t, values in record.ids.items() if len(values) > MAX_SOFT_IDS_PER_TYPE]
    if not over:
        return
    drop = {}
    for id_type in over:
        values = sorted(
            record.ids.get(id_type, []), key=lambda v: (record.seen.get((id_type, v), 0.0), v)
        )
        drop[id_type] = values[: max(0, len(values) - MAX_SOFT_IDS_PER_TYPE)]
    store.identities.drop_soft_ids(project, customer_id, drop)


def _too_deep(customer_id: str) -> WriteContentionError:
    return WriteContentionError(
        f"customer {customer_id} is at the end of more than {MAX_MERGE_HOPS} merges; retry"
    )
