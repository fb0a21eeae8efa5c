"""template.yaml gives every function the grace period of deleted properties
(store.compaction), a parameter whose default is the code's."""

import pytest

from propsync.limits import DEFAULT_TOMBSTONE_GRACE_DAYS, TOMBSTONE_GRACE_ENV
from propsync.store.compaction import DAY_SECONDS, tombstone_grace_seconds
from propsync_local.cfn_template import load_template

TEMPLATE = load_template()


def test_every_function_gets_the_grace_period_from_a_parameter():
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables[TOMBSTONE_GRACE_ENV] == {"Ref": "TombstoneGraceDays"}
    parameter = TEMPLATE["Parameters"]["TombstoneGraceDays"]
    assert parameter["Type"] == "Number"
    assert parameter["Default"] == DEFAULT_TOMBSTONE_GRACE_DAYS
    # a command redriven from the tracking dead-letter queue is decided exactly
    retention = TEMPLATE["Resources"]["TrackingDeadLetterQueue"]["Properties"][
        "MessageRetentionPeriod"
    ]
    assert parameter["MinValue"] * DAY_SECONDS >= retention


def test_the_grace_period_is_read_in_days(monkeypatch):
    monkeypatch.setenv(TOMBSTONE_GRACE_ENV, "30")
    assert tombstone_grace_seconds() == 30 * DAY_SECONDS
    monkeypatch.setenv(TOMBSTONE_GRACE_ENV, "")
    assert tombstone_grace_seconds() == DEFAULT_TOMBSTONE_GRACE_DAYS * DAY_SECONDS


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "thirty"])
def test_a_grace_period_that_is_no_number_of_days_is_refused(monkeypatch, bad):
    monkeypatch.setenv(TOMBSTONE_GRACE_ENV, bad)
    with pytest.raises(RuntimeError, match="set it to a number of days > 0"):
        tombstone_grace_seconds()
