"""The future guard is measured from when a request arrived (or an import
started), never from the clock of the machine that processes it later."""

from datetime import UTC

import pytest

from propsync.customer_updates import update_customer
from propsync.errors import InvalidTimestampError
from propsync.import_mapping import parse_update_time
from propsync.limits import DEFAULT_MAX_FUTURE_SKEW_SECONDS as SKEW
from propsync.timestamps import normalize_timestamp

# Far from any real clock, before and after today: a guard that read the
# machine's clock instead would answer the other way for each of them.
ARRIVALS = [1_000_000_000.0, 4_000_000_000.0]


class NoStore:
    """A refused command must not reach the store."""

    def __getattr__(self, name):
        raise AssertionError(f"the store was called ({name}) for a refused command")


@pytest.mark.parametrize("arrived", ARRIVALS)
def test_the_guard_is_relative_to_the_time_given(arrived):
    assert normalize_timestamp(arrived + SKEW, now=arrived) == arrived + SKEW
    assert normalize_timestamp(arrived - 86400, now=arrived) == arrived - 86400
    with pytest.raises(InvalidTimestampError, match="3601 s in the future"):
        normalize_timestamp(arrived + SKEW + 1, now=arrived)


@pytest.mark.parametrize("arrived", ARRIVALS)
@pytest.mark.parametrize("ahead", [SKEW + 1, 2 * SKEW])
def test_a_command_too_far_ahead_of_its_request_is_refused_before_any_request(arrived, ahead):
    with pytest.raises(InvalidTimestampError, match="in the future"):
        update_customer(
            NoStore(),
            "00000000-0000-0000-0000-000000000000",
            {"registered": "m"},
            {"a": 1},
            update_timestamp=arrived + ahead,
            received_at=arrived,
        )


@pytest.mark.parametrize("started", ARRIVALS)
def test_an_import_row_is_guarded_from_the_time_the_import_gives(started):
    assert parse_update_time(str(int(started + SKEW)), UTC, now=started) == started + SKEW
    with pytest.raises(InvalidTimestampError, match="in the future"):
        parse_update_time(str(int(started + SKEW + 1)), UTC, now=started)
