"""The import wizard and the imports pages in chromium against `make run`:
a CSV file read in the browser, mapped, previewed by the importer, uploaded
straight to the bucket with the presigned form, and followed to its report."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
import requests
from playwright.sync_api import Page, expect

from tests.console.conftest import TIMEZONE, api_call, basic
from tests.console.pages import local_date_time, rate_words, sign_in
from tests.console.test_accessibility import check_page, in_page

pytestmark = pytest.mark.usefixtures("stack")

PEOPLE = (
    "id,first_name,visits,updated\n"
    "wizard-1,Ann,3,2026-01-15T08:00:00\n"
    'wizard-2,"Bob, Jr.",many,2026-01-15T09:30:00\n'
    "wizard-3,Cyril,7,2026-01-15T10:00:00\n"
)


def epoch(local: str) -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(TIMEZONE)).timestamp())


def csv_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def open_wizard(page: Page, stack: dict[str, Any], path: Path) -> None:
    sign_in(page, stack)
    page.get_by_role("link", name="Imports", exact=True).click()
    page.get_by_role("link", name="New import").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New import")
    page.get_by_label("CSV file").set_input_files(str(path))
    expect(page.get_by_role("heading", name="2. Columns")).to_be_visible()


def use_column(page: Page, column: str, use: str) -> None:
    page.get_by_label(f"Use “{column}” as").select_option(use)


def map_people(page: Page) -> None:
    use_column(page, "id", "id")
    page.get_by_label("Id type of “id”").select_option("registered")
    page.get_by_label("Type of “visits”", exact=True).select_option("number")
    use_column(page, "updated", "ignore")
    page.get_by_label("A column of the file").check()
    page.get_by_label("Column with each row's update time").select_option("updated")
    page.get_by_label("Time zone", exact=True).fill(TIMEZONE)


def customer(stack: dict[str, Any], registered: str) -> tuple[int, Any]:
    return api_call(  # type: ignore[no-any-return]
        stack,
        "GET",
        f"/api/customers/{registered}?id_type=registered&include_timestamps=1",
        authorization=basic(stack["api_key_id"], stack["api_secret"]),
    )


def test_the_wizard_imports_a_csv_with_an_update_timestamp_column_to_its_report(
    page, stack, tmp_path, page_errors
):
    open_wizard(page, stack, csv_file(tmp_path, "people.csv", PEOPLE))

    # the file's head, read in the browser: quotes and their comma kept
    read = f"people.csv: {len(PEOPLE)} bytes, 4 columns (delimiter: comma ( , ))."
    expect(page.get_by_text(read)).to_be_visible()
    head = page.get_by_role("region", name="The file's first rows")
    expect(head.locator("tbody tr")).to_have_count(3)
    expect(head.locator("tbody tr").nth(1).locator("td").nth(1)).to_have_text("Bob, Jr.")
    expect(page.get_by_label("Import name")).to_have_value("people")

    map_people(page)
    page.get_by_role("button", name="Preview the first rows").click()

    title = page.locator("#preview-title")
    expect(title).to_have_text("The first 3 rows: 2 to write, 1 rejected")
    expect(title).to_be_focused()
    rejected = page.locator('tr[data-line="3"]')
    expect(rejected).to_have_class("row-error")
    expect(rejected).to_contain_text("Rejected:")
    expect(rejected).to_contain_text("'many'")
    first = page.locator('tr[data-line="2"]')
    expect(first).to_contain_text("registered: wizard-1")
    expect(first).to_contain_text("visits: 3")
    expect(first.locator(".when")).to_have_text(local_date_time(epoch("2026-01-15T08:00:00")))

    page.get_by_role("button", name="Start the import").click()

    finished = page.locator("#run-title")
    expect(finished).to_have_text(
        "Import finished: Partly succeeded: some rows were rejected", timeout=180_000
    )
    expect(finished).to_be_focused()
    report = page.locator(".report")
    expect(report.get_by_role("progressbar")).to_have_attribute("value", "100")
    expect(report.locator(".progress-text")).to_contain_text("100 %")
    expect(report.locator('[data-count="rows_read"]')).to_have_text("3")
    expect(report.locator('[data-count="rows_written"]')).to_have_text("2")
    expect(report.locator('[data-count="rows_rejected"]')).to_have_text("1")
    expect(report.locator("table.rejected tbody tr")).to_have_count(1)
    expect(report.locator("table.rejected")).to_contain_text("wizard-2")
    # its pace: the report's rows per second, as the API answers them for this execution
    detail = execution_of_file(stack, f"imports/{stack['project_token']}/people/people.csv")
    assert detail["report"]["rows_per_second"] > 0, detail
    assert detail["report"]["throttled_seconds"] == 0, detail  # the local table never throttles
    expect(report.locator('[data-pace="rows_per_second"] .pace-figure')).to_have_text(
        rate_words(detail["report"]["rows_per_second"])
    )
    expect(report.locator('[data-pace="throttled_seconds"] .pace-figure')).to_have_text(
        "Not throttled"
    )
    # and its own page (in a tab of its own: this page stays the wizard, README's image)
    link = page.get_by_role("link", name="Open this report on its own page")
    own = page.context.new_page()
    own.on("pageerror", lambda error: page_errors.append(f"report page error: {error}"))
    sign_in(own, stack)
    own.goto(f"{stack['api']}/console{link.get_attribute('href')}")
    expect(own.get_by_role("heading", level=1)).to_have_text("Import report: people / people.csv")
    expect(own.locator('.report [data-pace="rows_per_second"] .pace-figure')).to_have_text(
        rate_words(detail["report"]["rows_per_second"])
    )
    own.close()
    status, read = customer(stack, "wizard-1")
    assert status == 200, read
    assert read["properties"] == {
        "first_name": {"value": "Ann", "last_update": epoch("2026-01-15T08:00:00")},
        "visits": {"value": 3, "last_update": epoch("2026-01-15T08:00:00")},
    }
    assert customer(stack, "wizard-2")[0] == 404
    check_page(page)


def execution_of_file(stack: dict[str, Any], file_key: str) -> dict[str, Any]:
    """The newest execution of a file with its report, as
    GET /api/imports/{execution_id} answers it."""
    authorization = basic(stack["api_key_id"], stack["api_secret"])
    status, listed = api_call(
        stack, "GET", f"/api/imports?file_key={file_key}", None, authorization
    )
    assert status == 200, listed
    assert listed["executions"], listed
    execution_id = listed["executions"][0]["execution_id"]
    status, detail = api_call(stack, "GET", f"/api/imports/{execution_id}", None, authorization)
    assert status == 200, detail
    return detail  # type: ignore[no-any-return]


def start_import_through_the_api(stack: dict[str, Any], name: str, text: str) -> str:
    """An import as a script starts one (POST /api/imports, then the form
    upload): its file key."""
    authorization = basic(stack["api_key_id"], stack["api_secret"])
    mapping = {
        "properties": [{"from_column": "tier", "to_property": "tier", "type": "string"}],
        "ids": [{"from_column": "id", "to_id": "registered"}],
    }
    status, started = api_call(
        stack,
        "POST",
        "/api/imports",
        {"import_name": name, "file_name": "members.csv", "mapping": mapping},
        authorization,
    )
    assert status == 201, started
    upload = started["upload"]
    sent = requests.post(
        upload["url"], data=upload["fields"], files={"file": ("members.csv", text)}, timeout=30
    )
    assert sent.status_code == 204, sent.text
    return str(started["file_key"])


def test_the_imports_list_shows_each_execution_and_opens_its_report(page, stack):
    rows = "".join(f"list-{n},gold\n" for n in range(50))
    start_import_through_the_api(stack, "members", "id,tier\n" + rows)
    sign_in(page, stack)
    page.get_by_role("link", name="Imports", exact=True).click()

    listed = page.locator("table.executions tbody tr").filter(has_text="members.csv").first
    expect(listed).to_contain_text("Succeeded")  # followed live to its end
    expect(listed.get_by_role("progressbar")).to_have_attribute("value", "100")
    expect(listed).to_contain_text("50 / 0")
    listed.get_by_role("link", name="Report").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Import report: members / members.csv"
    )
    expect(page.locator('[data-count="rows_written"]')).to_have_text("50")
    expect(page.get_by_text("No row was rejected.")).to_be_visible()
    check_page(page)


def test_an_unknown_report_is_said_in_words(page, stack):
    sign_in(page, stack)
    page.goto(f"{stack['api']}/console#/imports/{'0' * 32}")

    alert = page.get_by_role("alert")
    expect(alert).to_have_text("There is no such import execution in this project.")
    expect(alert).to_be_focused()


def test_a_bad_mapping_shows_its_errors_in_the_preview(page, stack, tmp_path):
    open_wizard(page, stack, csv_file(tmp_path, "bad.csv", PEOPLE))
    # no column is an id, and two columns write the same property
    use_column(page, "id", "property")
    page.get_by_label("Property for “visits”").fill("first_name")
    page.get_by_label("Time zone", exact=True).fill("Mars/Olympus")

    page.get_by_role("button", name="Preview the first rows").click()

    alert = page.locator("#step-preview").get_by_role("alert")
    expect(alert).to_contain_text("The importer would refuse this mapping")
    expect(alert).to_be_focused()
    expect(alert).to_contain_text("ids")
    expect(alert).to_contain_text("first_name")
    expect(alert).to_contain_text("unknown timezone 'Mars/Olympus'")
    # the problem of a column is on that column too, its field marked
    expect(page.get_by_label("Property for “visits”")).to_have_attribute("aria-invalid", "true")
    expect(page.locator('fieldset[data-column="visits"]').get_by_role("alert")).to_contain_text(
        "first_name"
    )
    expect(page.get_by_label("Time zone", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#preview-title")).to_have_count(0)  # no rows: nothing would be written
    check_page(page)


def test_a_refused_start_lists_its_problems_and_writes_nothing(page, stack, tmp_path):
    open_wizard(page, stack, csv_file(tmp_path, "refused.csv", PEOPLE))
    map_people(page)
    page.get_by_label("Import name").fill("..")

    page.get_by_role("button", name="Start the import").click()

    alert = page.locator("#step-start").get_by_role("alert")
    expect(alert).to_contain_text("The import was not started.")
    expect(alert).to_contain_text("import name")
    expect(alert).to_be_focused()
    status, listed = api_call(
        stack,
        "GET",
        f"/api/imports?file_key=imports/{stack['project_token']}/../refused.csv",
        authorization=basic(stack["api_key_id"], stack["api_secret"]),
    )
    assert listed.get("executions", []) == [], (status, listed)


def _with_policy(route: Any, rewrite: Any, keys: list[str]) -> None:
    """The start's real answer, its upload form's policy rewritten: a form
    issued with other conditions (the local S3 applies a form's policy, not
    its signature, so it refuses the upload as S3 would such a form)."""
    if route.request.method != "POST":
        route.continue_()
        return
    response = route.fetch()
    started = response.json()
    fields = started["upload"]["fields"]
    document = rewrite(json.loads(base64.b64decode(fields["policy"])))
    fields["policy"] = base64.b64encode(json.dumps(document).encode()).decode()
    keys.append(started["file_key"])
    route.fulfill(response=response, json=started)


def _at_most_ten_bytes(document: dict[str, Any]) -> dict[str, Any]:
    conditions = [
        c
        for c in document["conditions"]
        if not (isinstance(c, list) and c[0] == "content-length-range")
    ]
    return {**document, "conditions": [*conditions, ["content-length-range", 1, 10]]}


def _expired(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "expiration": "2020-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("rewrite", "words"),
    [
        (
            _at_most_ten_bytes,
            "The import bucket refused the upload: the file is larger than the upload allows "
            "(at most 10 bytes). The mapping is saved.",
        ),
        (
            _expired,
            "The import bucket refused the upload: the upload form has expired (S3 said "
            "AccessDenied: “Invalid according to Policy: Policy expired.”). The mapping is "
            "saved: start again to retry.",
        ),
    ],
    ids=["too-large", "expired"],
)
def test_an_upload_the_bucket_refuses_is_said_in_s3s_words(page, stack, tmp_path, rewrite, words):
    """The bucket's refusal carries its CORS headers (as S3's does), so the
    page reads S3's error and says it, instead of a network failure."""
    name = f"refused-{rewrite.__name__.strip('_')}.csv"
    text = "id,tier\nrefused-1,gold\nrefused-2,silver\n"  # more than 10 bytes
    open_wizard(page, stack, csv_file(tmp_path, name, text))
    use_column(page, "id", "id")
    page.get_by_label("Id type of “id”").select_option("registered")
    keys: list[str] = []
    page.route("**/api/imports", lambda route: _with_policy(route, rewrite, keys))

    page.get_by_role("button", name="Start the import").click()

    alert = page.locator("#step-start").get_by_role("alert")
    expect(alert).to_have_text(words)
    expect(alert).to_be_focused()
    expect(page.get_by_role("button", name="Start the import")).to_be_enabled()
    [key] = keys
    status, listed = api_call(
        stack,
        "GET",
        f"/api/imports?file_key={key}",
        authorization=basic(stack["api_key_id"], stack["api_secret"]),
    )
    assert (status, listed["executions"]) == (200, [])  # nothing was uploaded, nothing ran
    assert customer(stack, "refused-1")[0] == 404


def test_one_update_time_for_every_row_is_a_constant_column(page, stack, tmp_path):
    text = "id,tier\nwizard-const-1,gold\nwizard-const-2,silver\n"
    open_wizard(page, stack, csv_file(tmp_path, "snapshot.csv", text))
    use_column(page, "id", "id")
    page.get_by_label("Id type of “id”").select_option("registered")
    page.get_by_label("Update time of every row").fill("2026-01-31T08:00:00")
    page.get_by_label("Time zone", exact=True).fill(TIMEZONE)

    page.get_by_role("button", name="Preview the first rows").click()
    expect(page.locator("#preview-title")).to_have_text("The first 2 rows: 2 to write, 0 rejected")
    expect(page.locator('tr[data-line="2"] .when')).to_have_text(
        local_date_time(epoch("2026-01-31T08:00:00"))
    )
    page.get_by_role("button", name="Start the import").click()

    expect(page.locator("#run-title")).to_have_text("Import finished: Succeeded", timeout=180_000)
    status, read = customer(stack, "wizard-const-2")
    assert status == 200, read
    assert read["properties"]["tier"] == {
        "value": "silver",
        "last_update": epoch("2026-01-31T08:00:00"),
    }


def test_the_wizard_at_360_px_wide_has_no_horizontal_scroll(page, stack, tmp_path):
    wide = ",".join(f"column_{i}" for i in range(30))
    text = f"id,{wide}\n" + "".join(
        f"narrow-{n}," + ",".join(f"value-{n}-{i}" for i in range(30)) + "\n" for n in range(3)
    )
    page.set_viewport_size({"width": 360, "height": 740})
    open_wizard(page, stack, csv_file(tmp_path, "wide.csv", text))
    use_column(page, "id", "id")
    page.get_by_role("button", name="Preview the first rows").click()
    expect(page.locator("#preview-title")).to_be_visible()

    assert in_page(page, "widerThanTheScreen") == {"page": 360, "screen": 360, "wide": []}
    check_page(page)


def test_the_local_bucket_answers_an_upload_to_the_consoles_origin_only(stack):
    """The template's CORS rule on the moto bucket, with the local API's
    origin: a form POST from the console's page may read its answer, stored
    or refused, one from another origin (another port too) may not (as S3
    answers a browser)."""
    s3 = boto3.client(
        "s3",
        endpoint_url=stack["aws_endpoint_url"],
        region_name=stack["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    [rule] = s3.get_bucket_cors(Bucket=stack["import_bucket"])["CORSRules"]
    assert rule["AllowedMethods"] == ["POST"]
    assert stack["api"] in rule["AllowedOrigins"]
    key = f"cors-check/{time.time()}.txt"
    form = s3.generate_presigned_post(
        stack["import_bucket"], key, Conditions=[["content-length-range", 1, 1]]
    )
    origins = ((stack["api"], True), (stack["api"] + "1", False), ("http://evil.example", False))
    # a refusal (too large for its form) as S3 answers it: the rule's headers too
    for data, status in ((b"xx", 400), (b"x", 204)):
        for origin, allowed in origins:
            answer = requests.post(
                form["url"],
                data=form["fields"],
                files={"file": ("x.txt", data)},
                headers={"Origin": origin},
                timeout=30,
            )
            assert answer.status_code == status, answer.text
            assert answer.headers.get("Access-Control-Allow-Origin") == (
                origin if allowed else None
            ), (data, origin)


def test_the_list_follows_a_running_execution_until_it_ends(page, stack):
    """While an execution runs, the list reads it again and its bar and pace
    move, without a reload (the API's answers are played here: a local import
    of a few rows ends before a page could see it run)."""
    execution = {
        "execution_id": "a" * 32,
        "import_name": "crm",
        "file_name": "live.csv",
        "file_key": f"imports/{stack['project_token']}/crm/live.csv",
        "status": "running",
        "started_at": time.time() - 5,
        "finished_at": None,
        "progress": {
            "rows": 400,
            "bytes": 4000,
            "bytes_total": 10000,
            "fraction": 0.4,
            "rows_per_second": 80.0,
            "throttled_seconds": 0.0,
        },
        "counts": {
            "rows_read": 400,
            "rows_written": 400,
            "rows_rejected": 0,
            "properties_applied": 400,
            "properties_stale": 0,
            "rows_ignored_as_erased": 0,
        },
    }
    finished = {
        **execution,
        "status": "succeeded",
        "finished_at": time.time(),
        "progress": {
            "rows": 1000,
            "bytes": 10000,
            "bytes_total": 10000,
            "fraction": 1.0,
            "rows_per_second": 1234.5,
            "throttled_seconds": 83.2,
        },
        "counts": {**execution["counts"], "rows_read": 1000, "rows_written": 1000},
    }
    later = {
        **execution,
        "progress": {
            **execution["progress"],
            "rows": 700,
            "bytes": 7000,
            "fraction": 0.7,
            "rows_per_second": 116.7,
            "throttled_seconds": 2.5,
        },
    }
    # what the list's reads are answered: the test moves on to the next
    # once the page has shown the one before (a loaded machine cannot skip one)
    answers = [execution, later, finished]
    step = {"now": 0}
    served: list[dict[str, Any]] = []

    def answer(route: Any) -> None:
        served.append(answers[step["now"]])
        body = {"success": True, "executions": [served[-1]], "next": None}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    sign_in(page, stack)
    page.route("**/api/imports", answer)
    page.get_by_role("link", name="Imports", exact=True).click()

    listed = page.locator("table.executions tbody tr").first
    bar = listed.get_by_role("progressbar", name="Progress of live.csv")
    pace = listed.locator(".progress-pace")
    expect(bar).to_have_attribute("value", "40")
    expect(listed).to_contain_text("Running")
    expect(pace).to_have_text("80 rows/s · not throttled")
    expect(bar).to_have_accessible_description("80 rows/s · not throttled")
    step["now"] = 1
    expect(bar).to_have_attribute("value", "70")  # read again while it ran
    expect(pace).to_have_text("117 rows/s · throttled 2.5 s")
    expect(pace.locator(".pace-throttled")).to_have_text("throttled 2.5 s")
    step["now"] = 2
    expect(bar).to_have_attribute("value", "100")
    expect(listed).to_contain_text("Succeeded")
    expect(pace).to_have_text("1,235 rows/s · throttled 1 min 23 s")
    expect(bar).to_have_accessible_description("1,235 rows/s · throttled 1 min 23 s")
    expect(listed).to_contain_text("1,000 / 0")
    assert served[-1] is finished
    assert served.count(finished) == 1  # and no read once it had finished


# ---------------------------------------------------------------- the trial's findings (issue 15)


def test_a_file_that_is_not_utf8_is_said_before_any_preview(page, stack, tmp_path):
    """Latin-1 / Windows-1252 bytes ("Jürgen", “quotes”): the importer
    rejects such rows, so the wizard says it and offers no preview or start
    (instead of a preview with U+FFFD that would write every row)."""
    good = csv_file(tmp_path, "good.csv", PEOPLE)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("id,name\nw-l1,Anna\nw-l2,Jürgen “Jay”\n".encode("cp1252"))
    open_wizard(page, stack, good)

    page.get_by_label("CSV file").set_input_files(str(latin))

    alert = page.locator("#step-file").get_by_role("alert")
    expect(alert).to_contain_text("latin1.csv is not UTF-8 text")
    expect(alert).to_contain_text("line 3 is the first that is not")
    expect(alert).to_contain_text("the importer would reject its rows")
    expect(alert).to_contain_text("CSV UTF-8")
    expect(alert).to_be_focused()
    expect(page.get_by_role("region", name="The file's first rows")).to_have_count(0)
    expect(page.get_by_role("button", name="Preview the first rows")).to_be_hidden()
    expect(page.get_by_role("button", name="Start the import")).to_be_hidden()


@pytest.mark.parametrize("name", ["PEOPLE.CSV", "people.Csv.gz", "people.txt"])
def test_a_file_name_the_importer_does_not_take_is_said_when_it_is_chosen(
    page, stack, tmp_path, name
):
    sign_in(page, stack)
    page.goto(f"{stack['api']}/console#/imports/new")
    page.get_by_label("CSV file").set_input_files(str(csv_file(tmp_path, name, PEOPLE)))

    alert = page.locator("#step-file").get_by_role("alert")
    expect(alert).to_contain_text(
        "The importer takes files named *.csv or *.csv.gz (in lower case)"
    )
    expect(alert).to_contain_text(f"rename {name}")
    expect(page.get_by_role("heading", name="2. Columns")).to_be_hidden()


def test_a_problem_of_the_file_name_is_labelled_in_words(page, stack, tmp_path):
    """The API's problem path (file_name: ...) becomes a label in words,
    capitalized as one ("File name:", not "File_name:")."""
    open_wizard(page, stack, csv_file(tmp_path, "crm\\people.csv", PEOPLE))
    page.get_by_role("button", name="Preview the first rows").click()

    alert = page.locator("#step-preview").get_by_role("alert")
    expect(alert).to_contain_text("The preview was refused. File name: the file name")
    expect(alert).not_to_contain_text("File_name")


@pytest.mark.parametrize("second", ["empty", "header-only-blank", "latin1"])
def test_choosing_another_file_clears_the_first_files_rows(page, stack, tmp_path, second):
    open_wizard(page, stack, csv_file(tmp_path, "first.csv", PEOPLE))
    expect(page.get_by_role("region", name="The file's first rows")).to_be_visible()
    other = tmp_path / f"{second}.csv"
    contents = {"empty": b"", "header-only-blank": b"\n\n", "latin1": b"id\nJ\xfcrgen\n"}
    other.write_bytes(contents[second])

    page.get_by_label("CSV file").set_input_files(str(other))

    expect(page.locator("#step-file").get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("region", name="The file's first rows")).to_have_count(0)
    expect(page.get_by_text("first.csv:")).to_have_count(0)
    expect(page.get_by_role("heading", name="2. Columns")).to_be_hidden()


def test_a_file_changed_on_disk_after_it_was_chosen_is_said_in_words(page, stack, tmp_path):
    path = csv_file(tmp_path, "changed.csv", "id,tier\nchanged-1,gold\n")
    open_wizard(page, stack, path)
    use_column(page, "id", "id")
    page.get_by_label("Id type of “id”").select_option("registered")
    path.write_text("id,tier\nchanged-1,gold\nchanged-2,silver\n")  # after it was chosen
    # a modification time clearly after the snapshot's: Chromium compares it (and the size)
    later = path.stat().st_mtime + 60
    os.utime(path, (later, later))

    page.get_by_role("button", name="Start the import").click()

    alert = page.locator("#step-start").get_by_role("alert")
    expect(alert).to_contain_text("the file may have changed since it was chosen")
    expect(alert).to_contain_text("choose the file again")
    expect(alert).not_to_contain_text("CORS")
    start = page.get_by_role("button", name="Start the import")
    expect(start).to_be_disabled()  # the file chosen cannot be sent: choose it again
    page.get_by_label("CSV file").set_input_files(str(path))
    expect(start).to_be_enabled()


def test_the_update_time_column_is_no_longer_written_as_a_property(page, stack, tmp_path):
    open_wizard(page, stack, csv_file(tmp_path, "times.csv", PEOPLE))
    updated = page.get_by_label("Use “updated” as")
    visits = page.get_by_label("Use “visits” as")
    expect(updated).to_have_value("property")

    page.get_by_label("A column of the file").check()
    expect(page.get_by_label("Column with each row's update time")).to_have_value("updated")
    expect(updated).to_have_value("ignore")  # it was at its default: ignored now

    page.get_by_label("Column with each row's update time").select_option("visits")
    expect(visits).to_have_value("ignore")
    expect(updated).to_have_value("property")  # ignored by the wizard, given back

    visits.select_option("property")  # the person's choice stays
    page.get_by_label("Column with each row's update time").select_option("updated")
    page.get_by_label("Column with each row's update time").select_option("visits")
    expect(visits).to_have_value("property")

    # a column the person mapped is left as it is
    use_column(page, "first_name", "id")
    page.get_by_label("Column with each row's update time").select_option("first_name")
    expect(page.get_by_label("Use “first_name” as")).to_have_value("id")


def _played(stack: dict[str, Any], n: int, status: str, rows: int, name: str) -> dict[str, Any]:
    return {
        "execution_id": f"{n:032x}",
        "import_name": name,
        "file_name": f"{name}.csv",
        "file_key": f"imports/{stack['project_token']}/{name}/{name}.csv",
        "status": status,
        "started_at": time.time() - 60,
        "finished_at": None if status == "running" else time.time(),
        "progress": {
            "rows": rows,
            "bytes": 262144,
            "bytes_total": 1000000,
            "fraction": 1.0 if status != "running" else 0.262144,
            "rows_per_second": round(rows / 60, 1),
            "throttled_seconds": 754.0 if status == "running" else 0.0,
        },
        "counts": {
            "rows_read": rows,
            "rows_written": 0 if status == "failed" else rows,
            "rows_rejected": rows if status == "failed" else 0,
            "properties_applied": 0,
            "properties_stale": 0,
            "rows_ignored_as_erased": 0,
        },
    }


def _list_of(page: Page, stack: dict[str, Any], executions: list[dict[str, Any]]) -> None:
    body = {"success": True, "executions": executions, "next": None}
    sign_in(page, stack)
    text = json.dumps(body)
    page.route(
        "**/api/imports",
        lambda route: route.fulfill(status=200, content_type="application/json", body=text),
    )
    page.get_by_role("link", name="Imports", exact=True).click()


def test_a_finished_executions_bar_says_its_status(page, stack):
    long = "xss<img src=x onerror=alert(7)>"
    _list_of(
        page,
        stack,
        [
            _played(stack, 1, "failed", 1, long),
            _played(stack, 2, "succeeded", 2, "crm"),
            _played(stack, 3, "running", 17000, "big"),
        ],
    )
    rows = page.locator("table.executions tbody tr")
    failed, succeeded, running = rows.nth(0), rows.nth(1), rows.nth(2)
    expect(failed.locator(".progress-text")).to_have_text("Failed · 1 row")
    expect(failed.locator(".progress")).to_have_class(re.compile(r"\bprogress-failed\b"))
    bar = failed.get_by_role("progressbar")
    error_colour = in_page_colour(page, "--error")
    assert bar.evaluate("e => getComputedStyle(e).accentColor") == error_colour
    assert (
        succeeded.get_by_role("progressbar").evaluate("e => getComputedStyle(e).accentColor")
        != error_colour
    )
    expect(succeeded.locator(".progress-text")).to_have_text(
        "Succeeded: 100 % of the file read · 2 rows"
    )
    # a running bar is the share of the file read, which runs ahead of the rows
    expect(running.locator(".progress-text")).to_have_text("26 % of the file read · 17,000 rows")
    expect(running.locator(".progress-pace")).to_have_text("283 rows/s · throttled 12 min 34 s")
    expect(failed.locator(".progress-pace")).to_have_text("0 rows/s · not throttled")
    check_page(page)


def in_page_colour(page: Page, variable: str) -> str:
    """The computed colour of a CSS variable of the console's stylesheet."""
    return str(
        page.evaluate(
            """v => { const e = document.createElement("i"); e.style.color = `var(${v})`;
            document.body.append(e); const c = getComputedStyle(e).color; e.remove();
            return c; }""",
            variable,
        )
    )


def test_the_report_link_and_status_of_the_list_are_one_line_at_1280_px(page, stack):
    long = "xss<img src=x onerror=alert(7)>"
    _list_of(
        page,
        stack,
        [_played(stack, n, "succeeded", 60744, f"{long}-{n}") for n in range(1, 4)],
    )
    for link in page.get_by_role("link", name=re.compile(r"^Report")).all():
        assert link.evaluate("a => a.getClientRects().length") == 1, "the link wraps"
    for word in page.locator("table.executions .status").all():  # no word cut in two
        assert word.evaluate("e => e.getClientRects().length") == 1, word.text_content()
