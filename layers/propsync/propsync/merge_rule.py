"""The merge rule: which version of a property wins. Pure, no I/O.

Every property is a last-writer-wins register keyed by its own update time.
A candidate version replaces the stored one iff

1. the stored version has no timestamp (the property is new, or was written
   before synchronization existed), or
2. the stored timestamp is older, or
3. the timestamps are equal and the candidate's canonical JSON is greater
   (code point order, the same as UTF-8 byte order and as DynamoDB's string
   comparison).

Rule 3 makes every delivery order converge: the result of a set of updates
does not depend on their order or on how often each is delivered. A deletion is
the value ``null`` (canonical text ``"null"``): a tombstone with a timestamp
that an older write cannot undo. ``store._condition_for`` is the DynamoDB form
of :func:`wins`; tests check the two agree.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TOMBSTONE = "null"


@dataclass(frozen=True, slots=True)
class PropertyVersion:
    """One version of a property: its value as canonical JSON, and the time of
    the update that wrote it (``None``: written before synchronization)."""

    encoded_value: str
    timestamp: float | None

    @property
    def is_tombstone(self) -> bool:
        return self.encoded_value == TOMBSTONE


def wins(candidate: PropertyVersion, stored: PropertyVersion | None) -> bool:
    """True iff ``candidate`` must replace ``stored``."""
    if candidate.timestamp is None:
        raise ValueError("an update must carry a timestamp")
    if stored is None or stored.timestamp is None:
        return True
    if candidate.timestamp != stored.timestamp:
        return candidate.timestamp > stored.timestamp
    return candidate.encoded_value > stored.encoded_value


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
