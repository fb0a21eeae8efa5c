"""The pages that follow an import (the wizard after its upload, a report,
the imports list) outlive a lost connection: a read that fails with a
network error or a 5xx keeps what was shown, says the connection was lost,
and is made again until it succeeds; the wizard never offers Start again for
a file it uploaded (a second Start would upload and import it twice). A 4xx
is an answer: said in its words, what was shown stays."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import api_call, basic
from tests.console.pages import sign_in
from tests.console.test_wizard import csv_file, open_wizard, use_column

pytestmark = pytest.mark.usefixtures("stack")

EXECUTION_ID = "b" * 32
LOST = "Connection lost"


class Blip:
    """A connection that drops while the test says so: each read the route
    sees fails meanwhile as the network (the browser offline) or as a
    failing server (502) does."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.lost = False
        self.failed = 0

    def fail(self, route: Any) -> None:
        self.failed += 1
        if self.kind == "offline":
            route.abort("internetdisconnected")
        else:
            route.fulfill(
                status=502,
                content_type="application/json",
                body=json.dumps({"message": "Internal server error"}),
            )


def played_execution(stack: dict[str, Any], status: str, rows: int) -> dict[str, Any]:
    return {
        "execution_id": EXECUTION_ID,
        "import_name": "crm",
        "file_name": "blip.csv",
        "file_key": f"imports/{stack['project_token']}/crm/blip.csv",
        "status": status,
        "started_at": time.time() - 5,
        "finished_at": None if status == "running" else time.time(),
        "progress": {
            "rows": rows,
            "bytes": rows * 10,
            "bytes_total": 10000,
            "fraction": rows / 1000,
        },
        "counts": {
            "rows_read": rows,
            "rows_written": rows,
            "rows_rejected": 0,
            "properties_applied": rows,
            "properties_stale": 0,
            "rows_ignored_as_erased": 0,
        },
    }


def _json(route: Any, body: Any, status: int = 200) -> None:
    route.fulfill(status=status, content_type="application/json", body=json.dumps(body))


KINDS = ["offline", "502"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("when", ["waiting-for-the-execution", "following-the-execution"])
def test_the_wizard_goes_on_following_its_upload_through_a_lost_connection(
    page: Page, stack: dict[str, Any], tmp_path: Path, kind: str, when: str
) -> None:
    name = f"blip-{kind}-{when}.csv"
    text = "id,tier\nblip-1,gold\nblip-2,silver\n"
    open_wizard(page, stack, csv_file(tmp_path, name, text))
    use_column(page, "id", "id")
    page.get_by_label("Id type of “id”").select_option("registered")
    blip = Blip(kind)
    seen = {"file_key": 0, "execution": 0}

    def route(route: Any) -> None:
        url = route.request.url
        if route.request.method == "GET" and "file_key=" in url:
            seen["file_key"] += 1  # the first is the read before the upload
            starts = when == "waiting-for-the-execution" and seen["file_key"] == 2
        elif route.request.method == "GET" and re.search(r"/api/imports/[0-9a-f]{32}$", url):
            seen["execution"] += 1
            starts = when == "following-the-execution" and seen["execution"] == 1
        else:
            starts = False
        if starts:
            blip.lost = True
        if blip.lost:
            blip.fail(route)
        else:
            route.continue_()

    page.route(re.compile(r"/api/imports"), route)
    page.get_by_role("button", name="Start the import").click()

    step = page.locator("#step-start")
    expect(step.get_by_role("status").filter(has_text=LOST)).to_contain_text("retrying in")
    expect(step.get_by_role("status").filter(has_text=LOST)).to_contain_text(
        f"{name} is uploaded and its import runs meanwhile"
    )
    expect(step.get_by_role("alert")).to_have_count(0)
    start = page.get_by_role("button", name="Start the import")
    expect(start).to_be_disabled()
    blip.lost = False  # the connection is back

    expect(page.locator("#run-title")).to_have_text("Import finished: Succeeded")
    expect(step.get_by_text(LOST)).to_have_count(0)
    expect(start).to_be_disabled()  # this file is imported: no second upload offered
    assert blip.failed >= 1
    status, listed = api_call(
        stack,
        "GET",
        f"/api/imports?file_key=imports/{stack['project_token']}/{name[:-4]}/{name}",
        authorization=basic(stack["api_key_id"], stack["api_secret"]),
    )
    assert status == 200, listed
    assert listed["executions"][0]["counts"]["rows_written"] == 2, listed


def test_the_wizard_says_a_refused_read_after_its_upload_and_offers_no_second_start(
    page: Page, stack: dict[str, Any], tmp_path: Path
) -> None:
    text = "id,tier\nrefused-read-1,gold\n"
    open_wizard(page, stack, csv_file(tmp_path, "refused-read.csv", text))
    use_column(page, "id", "id")
    page.get_by_label("Id type of “id”").select_option("registered")
    refusal = {"success": False, "error": "No permission to read imports"}
    page.route(re.compile(r"/api/imports/[0-9a-f]{32}$"), lambda route: _json(route, refusal, 403))
    page.get_by_role("button", name="Start the import").click()

    alert = page.locator("#step-start").get_by_role("alert")
    expect(alert).to_contain_text("No permission to read imports.")
    expect(alert).to_contain_text("This page stopped following the import of refused-read.csv")
    expect(page.get_by_role("button", name="Start the import")).to_be_disabled()


def played_detail(stack: dict[str, Any], status: str, rows: int) -> dict[str, Any]:
    """A read of one execution while it has no report yet, as the route answers it."""
    return {
        "success": True,
        "execution": played_execution(stack, status, rows),
        "report": None,
        "rejected_rows": [],
    }


@pytest.mark.parametrize("kind", KINDS)
def test_a_report_keeps_its_last_view_through_a_lost_connection(
    page: Page, stack: dict[str, Any], kind: str
) -> None:
    blip = Blip(kind)
    served: list[str] = []

    def answer(route: Any) -> None:
        if blip.lost:
            blip.fail(route)
            return
        status = "running" if not served else "succeeded"
        served.append(status)
        if len(served) == 1:
            blip.lost = True  # the next read fails until the test restores it
        _json(route, played_detail(stack, status, 400 if status == "running" else 1000))

    sign_in(page, stack)
    page.route(f"**/api/imports/{EXECUTION_ID}", answer)
    page.goto(f"{stack['api']}/console#/imports/{EXECUTION_ID}")

    lost = page.get_by_role("status").filter(has_text=LOST)
    expect(lost).to_contain_text("retrying in")
    # the last good view stays, with what the page does about it
    expect(page.locator('[data-count="rows_written"]')).to_have_text("400")
    expect(page.locator(".report")).to_contain_text("Running")
    expect(lost).to_contain_text("The report shows what was last read")
    expect(page.get_by_role("alert")).to_have_count(0)
    blip.lost = False

    expect(page.locator('[data-count="rows_written"]')).to_have_text("1,000")
    expect(page.locator(".report")).to_contain_text("Succeeded")
    expect(page.get_by_text(LOST)).to_have_count(0)
    assert served == ["running", "succeeded"]


def test_a_report_shown_stays_when_a_later_read_is_refused(
    page: Page, stack: dict[str, Any]
) -> None:
    served: list[int] = []

    def answer(route: Any) -> None:
        served.append(1)
        if len(served) == 1:
            _json(route, played_detail(stack, "running", 400))
        else:
            _json(route, {"success": False, "error": "Import execution does not exist"}, 404)

    sign_in(page, stack)
    page.route(f"**/api/imports/{EXECUTION_ID}", answer)
    page.goto(f"{stack['api']}/console#/imports/{EXECUTION_ID}")

    expect(page.get_by_role("alert")).to_have_text(
        "There is no such import execution in this project."
    )
    expect(page.locator('[data-count="rows_written"]')).to_have_text("400")


@pytest.mark.parametrize("kind", KINDS)
def test_the_imports_list_keeps_its_rows_through_a_lost_connection(
    page: Page, stack: dict[str, Any], kind: str
) -> None:
    blip = Blip(kind)
    served: list[str] = []

    def answer(route: Any) -> None:
        if blip.lost:
            blip.fail(route)
            return
        status = "running" if not served else "succeeded"
        served.append(status)
        if len(served) == 1:
            blip.lost = True
        execution = played_execution(stack, status, 400 if status == "running" else 1000)
        _json(route, {"success": True, "executions": [execution], "next": None})

    sign_in(page, stack)
    page.route("**/api/imports", answer)
    page.get_by_role("link", name="Imports", exact=True).click()

    lost = page.get_by_role("status").filter(has_text=LOST)
    expect(lost).to_contain_text("retrying in")
    expect(lost).to_contain_text("The list shows the last executions read")
    listed = page.locator("table.executions tbody tr").first
    expect(listed).to_contain_text("Running")
    expect(listed).to_contain_text("400 / 0")
    expect(page.get_by_role("alert")).to_have_count(0)
    blip.lost = False

    expect(listed).to_contain_text("Succeeded")  # followed on, without a reload
    expect(listed).to_contain_text("1,000 / 0")
    expect(page.get_by_text(LOST)).to_have_count(0)
