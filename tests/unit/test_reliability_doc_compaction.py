"""docs/RELIABILITY.md states the figures the compaction tests run with."""

from propsync_local.cfn_template import REPO_ROOT
from tests.integration import test_compaction, test_store_matches_merge_rule
from tests.unit import test_compaction_rule

DOC = (REPO_ROOT / "docs" / "RELIABILITY.md").read_text()


def test_compaction_figures():
    assert f"| {test_compaction_rule.ANY_ORDER.max_examples} examples: up to 14 steps" in DOC
    assert f"| {test_compaction.ORDERS.max_examples} examples per engine: up to 10 steps" in DOC
    horizon = test_store_matches_merge_rule.AGAINST_A_HORIZON
    assert f"| {horizon.max_examples} examples per engine: a horizon covering" in DOC
    assert (
        f"| {test_compaction.WRITERS} threads x {test_compaction.WRITES_EACH} writes, newer "
        f"than the grace period, on {test_compaction.OLD_TOMBSTONES} due tombstones"
    ) in DOC
    assert f"| {test_compaction.CYCLES} days of a new name set and deleted" in DOC
    assert f"grace period of {test_compaction.GRACE // 86_400:g} days" in DOC
