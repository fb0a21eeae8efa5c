"""Issue 17: S3 deletes reports after ReportRetentionDays (the import
bucket's lifecycle rule on reports/). A report the import API serves does not
vanish silently: every execution says until when its report is kept
(``report_kept_until``), and once S3 has deleted it, the execution is still
read (200), its report null past that time. Through the authorizer and the
real handler, on both engines."""

import math
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from propsync.import_api import REPORT_RETENTION_ENV, report_kept_until
from tests.api.test_imports_api import importer, started  # noqa: F401 - the fixture

DAY = 86400


def test_an_execution_says_until_when_its_report_is_kept(importer, monkeypatch):  # noqa: F811
    monkeypatch.setenv(REPORT_RETENTION_ENV, "90")
    form = started(importer)
    [execution] = importer.list(file_key=form["file_key"]).json()["executions"]
    kept_until = execution["report_kept_until"]
    assert kept_until == math.ceil((execution["finished_at"] + 90 * DAY) / DAY) * DAY
    assert datetime.fromtimestamp(kept_until, UTC).time().isoformat() == "00:00:00"
    detail = importer.get(execution["execution_id"]).json()
    assert detail["execution"]["report_kept_until"] == kept_until
    assert detail["report"]["execution_id"] == execution["execution_id"]


def test_a_report_s3_deleted_leaves_the_execution_readable_and_saying_so(
    importer,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setenv(REPORT_RETENTION_ENV, "7")
    form = started(importer)
    [execution] = importer.list(file_key=form["file_key"]).json()["executions"]
    listed = importer.imports.keys()  # the bucket's keys (the harness lists them)
    reports = [key for key in listed if key.startswith("reports/")]
    assert reports  # the report and its rejected rows
    for key in reports:  # what the lifecycle rule does after 7 days
        importer.imports.s3.delete_object(Bucket=importer.imports.bucket, Key=key)

    answer = importer.get(execution["execution_id"])

    assert answer.status == 200, answer.body
    detail = answer.json()
    assert (detail["report"], detail["rejected_rows"]) == (None, [])
    assert detail["execution"]["status"] == "partially_succeeded"
    assert detail["execution"]["report_kept_until"] == execution["report_kept_until"]
    assert execution["report_kept_until"] >= execution["finished_at"] + 7 * DAY


def test_where_nothing_deletes_reports_no_time_is_given(importer, monkeypatch):  # noqa: F811
    monkeypatch.delenv(REPORT_RETENTION_ENV, raising=False)  # make run's bucket keeps them
    form = started(importer)
    [execution] = importer.list(file_key=form["file_key"]).json()["executions"]
    assert execution["report_kept_until"] is None


def test_a_running_execution_has_no_time_yet():
    assert report_kept_until(None, 90) is None


@given(
    finished_at=st.floats(1_500_000_000, 4_000_000_000),
    days=st.integers(7, 3650),
    written_after=st.floats(0, 3600),
)
def test_the_time_given_is_never_after_s3_deletes_the_report(finished_at, days, written_after):
    """S3 expires an object at the first midnight UTC after its creation plus
    the rule's days; the report is created after the execution's end time is
    taken. The time given is that midnight for a report created at once, and
    never later than S3's for one created later."""
    kept_until = report_kept_until(finished_at, days)
    assert kept_until is not None
    assert kept_until % DAY == 0
    assert finished_at + days * DAY <= kept_until < finished_at + days * DAY + DAY
    created = finished_at + written_after
    assert kept_until <= math.ceil((created + days * DAY) / DAY) * DAY
