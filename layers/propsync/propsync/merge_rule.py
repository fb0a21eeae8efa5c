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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TOMBSTONE = "null"
SEQUENCE_DIGITS = 10
MAX_SEQUENCE = 10**SEQUENCE_DIGITS - 1


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


def winners(
    candidates: Mapping[str, PropertyVersion], stored: Mapping[str, PropertyVersion]
) -> dict[str, PropertyVersion]:
    """The subset of ``candidates`` that win against ``stored``."""
    return {name: cand for name, cand in candidates.items() if wins(cand, stored.get(name))}


def merge(
    state: Mapping[str, PropertyVersion], updates: Iterable[tuple[str, PropertyVersion]]
) -> dict[str, PropertyVersion]:
    """Apply ``updates`` in the given order to ``state`` and return the new state."""
    merged = dict(state)
    for name, candidate in updates:
        if wins(candidate, merged.get(name)):
            merged[name] = candidate
    return merged
