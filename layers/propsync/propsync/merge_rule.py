"""The merge rule: which version of a property wins. Pure, no I/O.

Every property is a last-writer-wins register keyed by its own update time.
A candidate version replaces the stored one iff

1. the stored version has no timestamp (the property is new, or was written
   before synchronization existed), or
2. the stored timestamp is older, or
3. the timestamps are equal and the candidate's order key is greater. The
   order key is the version's sequence (10 digits) followed by its canonical
   JSON, compared by code point (the same as UTF-8 byte order and as
   DynamoDB's string comparison). The sequence is 0 for tracking and UI
   edits; an import row carries its line number, so that of two rows of one
   file with the same timestamp the later row wins, however far apart they
   are and whichever is written first.

Rule 3 makes every delivery order converge: the result of a set of updates
does not depend on their order or on how often each is delivered, because
(timestamp, sequence, canonical JSON) is a fixed total order. A deletion is
the value ``null`` (canonical text ``"null"``): a tombstone with a timestamp
that an older write cannot undo. ``store.conditional.conditional_update`` builds the
DynamoDB form of :func:`wins` (one condition per property); tests check the
two agree.

Tombstones do not stay forever (docs/DECISIONS.md: "Deleted properties are
compacted into a horizon"): once older than a grace period they are removed
from the customer and folded into its :class:`Horizon`, the time of the
newest tombstone removed and the buckets (:func:`horizon_bucket`) of their
names. A property the customer does not hold whose name falls in one of
those buckets reads as deleted at the horizon's time, by a deletion that
wins every tie: an update at or before the horizon loses to it, as it would
have lost to the tombstone. An update older than the horizon to a property
that was never set, but whose name shares a bucket, loses too: that is the
price of a bounded item, and the reason the grace period is long.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TOMBSTONE = "null"
SEQUENCE_DIGITS = 10
MAX_SEQUENCE = 10**SEQUENCE_DIGITS - 1
# The buckets a horizon sorts the names of its tombstones into: at most this
# many two-digit strings (512 bytes) on a customer, however many it deleted.
HORIZON_BUCKETS = 256


@dataclass(frozen=True, slots=True)
class PropertyVersion:
    """One version of a property: its value as canonical JSON, the time of the
    update that wrote it (``None``: written before synchronization), and its
    sequence, the tie-break of equal timestamps before the value."""

    encoded_value: str
    timestamp: float | None
    sequence: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.sequence <= MAX_SEQUENCE:
            raise ValueError(f"sequence must be 0 to {MAX_SEQUENCE}, got {self.sequence}")

    @property
    def is_tombstone(self) -> bool:
        return self.encoded_value == TOMBSTONE

    @property
    def order_key(self) -> str:
        """Sequence then value: what equal timestamps are decided by, and what
        the store keeps in ``v`` so that DynamoDB compares the same thing."""
        return f"{self.sequence:010d}{self.encoded_value}"  # 010: SEQUENCE_DIGITS

    @classmethod
    def from_order_key(cls, order_key: str, timestamp: float) -> PropertyVersion:
        prefix = order_key[:SEQUENCE_DIGITS]
        if len(prefix) < SEQUENCE_DIGITS or not prefix.isascii() or not prefix.isdigit():
            # a value stored without a sequence (e.g. migrated by hand): read
            # the whole text as the value, with sequence 0, rather than fail
            return cls(encoded_value=order_key, timestamp=timestamp)
        return cls(
            encoded_value=order_key[SEQUENCE_DIGITS:],
            timestamp=timestamp,
            sequence=int(prefix),
        )


def wins(candidate: PropertyVersion, stored: PropertyVersion | None) -> bool:
    """True iff ``candidate`` must replace ``stored``. Updates always carry a
    timestamp; a candidate without one is a version written before
    synchronization that a merge copies: it loses to every timestamped
    version, and of two untimestamped ones the greater canonical value wins
    (so that merging stays independent of order)."""
    if stored is None:
        return True
    if candidate.timestamp is None:
        return stored.timestamp is None and candidate.encoded_value > stored.encoded_value
    if stored.timestamp is None:
        return True
    if candidate.timestamp != stored.timestamp:
        return candidate.timestamp > stored.timestamp
    return candidate.order_key > stored.order_key


def horizon_bucket(name: str) -> str:
    """The bucket of a property name: the first byte of the SHA-256 of its
    UTF-8, as two hex digits (one of HORIZON_BUCKETS)."""
    digest = hashlib.sha256(name.encode("utf-8", errors="surrogatepass")).digest()
    return f"{digest[0]:02x}"


@dataclass(frozen=True, slots=True)
class Horizon:
    """What a customer keeps of the tombstones it compacted: the time of the
    newest, and the buckets their names fall in. A property the customer
    does not hold whose bucket is listed reads as deleted at ``timestamp``,
    ahead of every version of that time (module docstring)."""

    timestamp: float
    buckets: frozenset[str]

    def covers(self, name: str) -> bool:
        return horizon_bucket(name) in self.buckets

    def absorb(self, other: Horizon | None) -> Horizon:
        """This horizon and ``other`` together (another customer's, merged
        into this one): the later time, both sets of buckets."""
        if other is None:
            return self
        return Horizon(max(self.timestamp, other.timestamp), self.buckets | other.buckets)


def wins_where_absent(candidate: PropertyVersion, name: str, horizon: Horizon | None) -> bool:
    """True iff ``candidate`` must be stored where the customer holds no
    version of ``name``: always, unless the horizon covers the name; then
    only a version timestamped after the horizon (a tie goes to the horizon,
    so that no tombstone it took can lose to an update it beat)."""
    if horizon is None or not horizon.covers(name):
        return True
    return candidate.timestamp is not None and candidate.timestamp > horizon.timestamp


def wins_against(
    name: str,
    candidate: PropertyVersion,
    stored: Mapping[str, PropertyVersion],
    horizon: Horizon | None = None,
) -> bool:
    """:func:`wins` against what a customer holds of ``name``, its horizon
    standing in for a property it does not hold."""
    current = stored.get(name)
    if current is None:
        return wins_where_absent(candidate, name, horizon)
    return wins(candidate, current)


def winners(
    candidates: Mapping[str, PropertyVersion],
    stored: Mapping[str, PropertyVersion],
    horizon: Horizon | None = None,
) -> dict[str, PropertyVersion]:
    """The subset of ``candidates`` that win against ``stored`` (and its horizon)."""
    return {
        name: cand for name, cand in candidates.items() if wins_against(name, cand, stored, horizon)
    }


def merge(
    state: Mapping[str, PropertyVersion],
    updates: Iterable[tuple[str, PropertyVersion]],
    horizon: Horizon | None = None,
) -> dict[str, PropertyVersion]:
    """Apply ``updates`` in the given order to ``state`` (a customer whose
    horizon is ``horizon``) and return the new state."""
    merged = dict(state)
    for name, candidate in updates:
        if wins_against(name, candidate, merged, horizon):
            merged[name] = candidate
    return merged


@dataclass(frozen=True)
class Compaction:
    """Which tombstones a compaction removes, and the horizon after it."""

    removed: tuple[str, ...]
    horizon: Horizon | None


def compact(
    state: Mapping[str, PropertyVersion],
    horizon: Horizon | None,
    cutoff: float,
    *,
    keep: Iterable[str] = (),
    limit: int | None = None,
) -> Compaction:
    """The tombstones of ``state`` timestamped at or before ``cutoff`` (but
    those named in ``keep``), the oldest first and at most ``limit`` of
    them, folded into ``horizon``. After it every update decides as before
    against every property the customer still holds, and loses wherever it
    lost to a removed tombstone (the horizon is at least as new, and covers
    its name). A tombstone without a timestamp (written before
    synchronization) is never removed: the horizon would beat updates that
    it loses to."""
    kept = frozenset(keep)
    due = sorted(
        (version.timestamp, name)
        for name, version in state.items()
        if version.is_tombstone
        and version.timestamp is not None
        and version.timestamp <= cutoff
        and name not in kept
    )[:limit]
    if not due:
        return Compaction((), horizon)
    compacted = Horizon(due[-1][0], frozenset(horizon_bucket(name) for _t, name in due))
    return Compaction(
        tuple(name for _t, name in due),
        compacted if horizon is None else horizon.absorb(compacted),
    )
