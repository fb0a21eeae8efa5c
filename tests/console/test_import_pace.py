"""An import's pace on the console's pages: the rows read per second and the
time its writes waited on DynamoDB's throttling, under each bar of the
imports list and as facts of a report (a finished execution's from its
report), in words, each compared with what the API answers for the same
execution."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Page, expect

from propsync.store.imports import ImportStore
from tests.console.conftest import api_call, basic
from tests.console.pages import (
    duration_words,
    figure,
    local_date_time,
    open_console,
    rate_words,
    sign_in,
)
from tests.console.test_accessibility import check_page
from tests.console.test_wizard import execution_of_file, start_import_through_the_api

pytestmark = pytest.mark.usefixtures("stack")

# What a throttled chunk would have reported: 12.345 s spent waiting
THROTTLED_MS = 12_345


def _words(page: Page, calls: str, values: Any) -> Any:
    """``calls`` (a JS expression over ``f``, the console's format.js, and
    ``i``, its imports.js, mapped over ``values``) evaluated in the page."""
    return page.evaluate(
        f"""async (values) => {{
            const f = await import("./console/format.js");
            const i = await import("./console/imports.js");
            return values.map((v) => {calls});
        }}""",
        values,
    )


WORDS = [
    # value, formatFigure, durationWords, rateWords, throttledWords
    (0, "0", "0 s", "0 rows/s", "not throttled"),
    (0.04, "0", "0 s", "0 rows/s", "not throttled"),
    (0.1, "0.1", "0.1 s", "0.1 rows/s", "throttled 0.1 s"),
    (1, "1", "1 s", "1 row/s", "throttled 1 s"),
    (2.5, "2.5", "2.5 s", "2.5 rows/s", "throttled 2.5 s"),
    (9.94, "9.9", "9.9 s", "9.9 rows/s", "throttled 9.9 s"),
    (9.96, "10", "10 s", "10 rows/s", "throttled 10 s"),
    (12.3, "12", "12 s", "12 rows/s", "throttled 12 s"),
    (59.6, "60", "1 min", "60 rows/s", "throttled 1 min"),
    (83.2, "83", "1 min 23 s", "83 rows/s", "throttled 1 min 23 s"),
    (754, "754", "12 min 34 s", "754 rows/s", "throttled 12 min 34 s"),
    (1234.5, "1,235", "20 min 35 s", "1,235 rows/s", "throttled 20 min 35 s"),
    (3599.6, "3,600", "1 h", "3,600 rows/s", "throttled 1 h"),
    (7500, "7,500", "2 h 5 min", "7,500 rows/s", "throttled 2 h 5 min"),
    (100_000, "100,000", "27 h 46 min", "100,000 rows/s", "throttled 27 h 46 min"),
]


def test_the_pace_and_the_time_throttled_are_said_in_words(page: Page, stack: dict[str, Any]):
    open_console(page, stack)
    shown = _words(
        page,
        "[f.formatFigure(v), f.durationWords(v), i.rateWords(v), i.throttledWords(v)]",
        [value for value, *_ in WORDS],
    )
    assert [tuple(words) for words in shown] == [tuple(words) for _, *words in WORDS]
    assert _words(page, "f.formatFigure(v)", [None]) == ["\N{EN DASH}"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.floats(min_value=0, max_value=1e7), min_size=1, max_size=50))
def test_the_tests_words_are_the_pages_for_any_figure(page: Page, stack: dict[str, Any], values):
    """The other tests compare a page with the API's figures through
    pages.figure/duration_words: they write what the page writes."""
    if not page.url.startswith(stack["api"]):
        open_console(page, stack)
    shown = _words(page, "[f.formatFigure(v), f.durationWords(v)]", values)
    assert shown == [[figure(v), duration_words(v)] for v in values]


# ---------------------------------------------------------------- on the local stack


def _authorization(stack: dict[str, Any]) -> str:
    return basic(stack["api_key_id"], stack["api_secret"])


def finished_execution(stack: dict[str, Any], file_key: str) -> dict[str, Any]:
    """The file's execution once it has finished, as the list route answers
    it (read again while it has not started or runs; a bound on a slow
    machine, not a measured time)."""
    for _ in range(600):
        status, listed = api_call(
            stack, "GET", f"/api/imports?file_key={file_key}", authorization=_authorization(stack)
        )
        assert status == 200, listed
        if listed["executions"] and listed["executions"][0]["status"] != "running":
            return listed["executions"][0]  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"the import of {file_key} did not finish")


def _aws(stack: dict[str, Any], service: str, endpoint: str = "aws_endpoint_url") -> Any:
    """A client of the local stack's moto server."""
    return boto3.client(
        service,
        endpoint_url=stack[endpoint],
        region_name=stack["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def throttle_afterwards(stack: dict[str, Any], execution_id: str, throttled_ms: int) -> None:
    """Make a finished execution's stored state that of a run whose writes
    waited ``throttled_ms`` on throttling (the local stack's DynamoDB never
    throttles): the record gets the time as a running chunk reports it
    (ImportStore.add_progress), and the report in the bucket the figure the
    importer states from such a record."""
    store = ImportStore(_aws(stack, "dynamodb", "dynamodb_endpoint_url"), stack["table_name"])
    store.add_progress(execution_id, 0, 0, throttled_ms=throttled_ms)
    record = store.get(execution_id)
    assert record is not None
    assert record.report_key is not None
    s3 = _aws(stack, "s3")
    stored = s3.get_object(Bucket=stack["import_bucket"], Key=record.report_key)
    report = json.loads(stored["Body"].read())
    report["throttled_seconds"] = round(record.throttled_seconds, 1)
    s3.put_object(
        Bucket=stack["import_bucket"],
        Key=record.report_key,
        Body=json.dumps(report).encode(),
        ContentType="application/json",
    )


def test_a_throttled_execution_says_how_long_and_one_that_was_not_says_so(
    page: Page, stack: dict[str, Any]
):
    rows = "".join(f"pace-{n},gold\n" for n in range(40))
    keys = {
        name: start_import_through_the_api(stack, name, "id,tier\n" + rows)
        for name in ("paced-throttled", "paced-calm")
    }
    executions = {name: finished_execution(stack, key) for name, key in keys.items()}
    throttle_afterwards(stack, executions["paced-throttled"]["execution_id"], THROTTLED_MS)
    details = {name: execution_of_file(stack, key) for name, key in keys.items()}
    throttled, calm = details["paced-throttled"], details["paced-calm"]
    # what the API says of them (the record's figure and the report's)
    assert throttled["execution"]["progress"]["throttled_seconds"] == 12.3
    assert throttled["report"]["throttled_seconds"] == 12.3
    assert calm["execution"]["progress"]["throttled_seconds"] == 0
    assert calm["report"]["throttled_seconds"] == 0

    sign_in(page, stack)
    page.get_by_role("link", name="Imports", exact=True).click()
    for name, detail in details.items():
        listed = page.locator("table.executions tbody tr").filter(has_text=name).first
        expect(listed).to_contain_text("Succeeded")
        progress = detail["execution"]["progress"]
        time_throttled = (
            f"throttled {duration_words(progress['throttled_seconds'])}"
            if progress["throttled_seconds"]
            else "not throttled"
        )
        pace = f"{rate_words(progress['rows_per_second'])} · {time_throttled}"
        expect(listed.locator(".progress-pace")).to_have_text(pace)
        # the bar keeps its name; its pace is its description
        bar = listed.get_by_role("progressbar", name="Progress of members.csv")
        expect(bar).to_have_accessible_description(pace)
    expect(page.locator(".progress-pace .pace-throttled")).to_have_count(1)
    assert "throttled 12 s" in str(page.locator(".pace-throttled").text_content())
    check_page(page)

    for name, detail in details.items():
        page.goto(f"{stack['api']}/console#/imports/{detail['execution']['execution_id']}")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            f"Import report: {name} / members.csv"
        )
        report = detail["report"]
        shown = page.locator(".report")
        # make run's bucket deletes no report: no "kept until" (API.md)
        assert detail["execution"]["report_kept_until"] is None
        expect(shown.locator('[data-fact="report_kept_until"]')).to_have_count(0)
        expect(shown.locator('[data-pace="queued_seconds"] .pace-figure')).to_have_text(
            duration_words(report["queued_seconds"])
        )
        expect(shown.locator('[data-pace="rows_per_second"] .pace-figure')).to_have_text(
            rate_words(report["rows_per_second"])
        )
        time_throttled = shown.locator('[data-pace="throttled_seconds"]')
        if name == "paced-throttled":
            expect(time_throttled.locator(".pace-figure")).to_have_text(
                duration_words(report["throttled_seconds"])
            )
            expect(time_throttled).to_contain_text("(DynamoDB) throttled the writes")
        else:
            expect(time_throttled.locator(".pace-figure")).to_have_text("Not throttled")
            expect(time_throttled).to_contain_text("the database kept up with every write")
        check_page(page)


def test_a_report_says_until_when_it_is_kept(page: Page, stack: dict[str, Any]):
    """On AWS the bucket deletes a report ReportRetentionDays after its
    execution ended, and the API says when (`report_kept_until`); make run's
    bucket deletes nothing, so the answer is given that date here."""
    key = start_import_through_the_api(stack, "kept", "id,tier\nkept-1,gold\n")
    execution = finished_execution(stack, key)
    kept_until = execution["finished_at"] + 90 * 86400

    def with_retention(route):
        answer = route.fetch()
        detail = answer.json()
        detail["execution"]["report_kept_until"] = kept_until
        route.fulfill(response=answer, json=detail)

    page.route(f"**/api/imports/{execution['execution_id']}", with_retention)
    sign_in(page, stack)
    page.goto(f"{stack['api']}/console#/imports/{execution['execution_id']}")
    expect(page.locator('.report [data-fact="report_kept_until"] time')).to_have_text(
        local_date_time(kept_until)
    )
    check_page(page)
