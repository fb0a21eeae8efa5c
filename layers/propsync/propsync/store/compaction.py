"""When a customer's tombstones are compacted into its horizon
(propsync.merge_rule.compact; docs/DECISIONS.md: "Deleted properties are
compacted into a horizon").

A tombstone is kept for the grace period after its update time
(``PROPSYNC_TOMBSTONE_GRACE_DAYS``, 30 days by default). Compaction rides on
the writes to the customer, which pay for every byte of it: a first attempt
fails its condition when the tombstone time the item notes
(``tombstones_since``) is older than the grace period and a quarter; the
writer, holding the item from the failure, removes every tombstone older than
the grace period, then writes. So a customer's compactions are at least a
quarter of the grace period apart, and a tombstone stays at most the grace
period and a quarter past its update time, until the customer's next write.
Except for a deletion already that old when it is written: it is due at
once, and the next write pays a failed attempt again (docs/DECISIONS.md).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from propsync.limits import DEFAULT_TOMBSTONE_GRACE_DAYS, TOMBSTONE_GRACE_ENV
from propsync.store.conditional import StoredProperties, oldest_tombstone

DAY_SECONDS = 86_400.0
# A compaction is due when the oldest tombstone is this much older than the
# grace period (in grace periods): compactions of one customer stay apart.
COMPACTION_SLACK = 0.25


def tombstone_grace_seconds() -> float:
    """The grace period from ``PROPSYNC_TOMBSTONE_GRACE_DAYS`` (days, > 0)."""
    raw = os.environ.get(TOMBSTONE_GRACE_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_TOMBSTONE_GRACE_DAYS * DAY_SECONDS
    try:
        days = float(raw)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days <= 0:
        raise RuntimeError(
            f"{TOMBSTONE_GRACE_ENV}={raw!r} is not valid: set it to a number of days > 0"
        )
    return days * DAY_SECONDS


@dataclass(frozen=True)
class CompactionPolicy:
    """The grace period, and the clock it is measured by."""

    grace_seconds: float = field(default_factory=tombstone_grace_seconds)
    clock: Callable[[], float] = time.time

    def cutoff(self, now: float) -> float:
        """Tombstones at or before this time are compacted."""
        return now - self.grace_seconds

    def due(self, now: float) -> float:
        """A customer whose noted tombstone time is at or before this is
        compacted by its next write."""
        return now - self.grace_seconds * (1 + COMPACTION_SLACK)

    def is_due(self, stored: StoredProperties, now: float) -> bool:
        """Whether the customer as read should be compacted now: its noted
        tombstone time (which may be stale: then the compaction corrects it)
        or its oldest tombstone is due."""
        due = self.due(now)
        oldest = oldest_tombstone(stored.properties)
        return any(t is not None and t <= due for t in (stored.tombstones_since, oldest))
