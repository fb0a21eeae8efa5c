"""The console for people who use a keyboard, a small screen or need
contrast: every input labelled, keyboard-only use with a visible focus, text
at 4.5:1 or more, and nothing wider than a 360 px screen."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import track
from tests.console.pages import find, open_console, row, sign_in

pytestmark = pytest.mark.usefixtures("stack")

# The checks that run in the page (contrast, labels, width): checks.js
CHECKS = (Path(__file__).parent / "checks.js").read_text()


def in_page(page: Page, check: str) -> Any:
    return page.evaluate(f"() => {{ {CHECKS}; return {check}(); }}")


def check_page(page: Page) -> None:
    assert in_page(page, "lowContrast") == []
    assert in_page(page, "unlabelled") == []


def customer_to_show(stack: dict[str, Any], value: str) -> None:
    track(
        stack,
        {"registered": value, "cookie": f"{value}-cookie-with-a-rather-long-value-0123456789"},
        {
            "first_name": "Zuzana",
            "email": "zuzana.with.a.very.long.address@subdomain.example.com",
            "a_property_with_a_rather_long_name_for_a_small_screen": "x" * 80,
            "preferences": {"newsletter": True, "channels": ["email", "sms"]},
        },
        int(time.time()) - 2 * 86400,
    )


def test_keyboard_only_sign_in_find_and_edit(page, stack):
    customer_to_show(stack, "console-keyboard")
    open_console(page, stack)
    expect(page.get_by_label("API key id")).to_be_focused()  # where a person starts
    page.keyboard.press("Shift+Tab")  # before it, the page's first stop: the skip link
    expect(page.get_by_role("link", name="Skip to the content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sign in")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("API key id")).to_be_focused()

    page.keyboard.type(stack["api_key_id"])
    page.keyboard.press("Tab")
    expect(page.get_by_label("API secret")).to_be_focused()
    page.keyboard.type(stack["api_secret"])
    page.keyboard.press("Enter")

    value = page.get_by_label("Id value")
    expect(value).to_be_focused()  # the page takes the keyboard where it goes on
    page.keyboard.type("console-keyboard")
    page.keyboard.press("Enter")
    expect(page.locator("#customer-title")).to_be_focused()
    edit = page.get_by_role("button", name="Edit first_name")
    for _ in range(40):  # tab through the page to the button
        page.keyboard.press("Tab")
        if edit.evaluate("(button) => button === document.activeElement"):
            break
    expect(edit).to_be_focused()
    outline = edit.evaluate(
        "(el) => [getComputedStyle(el).outlineStyle, parseFloat(getComputedStyle(el).outlineWidth)]"
    )
    assert outline[0] != "none"  # focus is visible
    assert outline[1] >= 2
    page.keyboard.press("Enter")
    expect(page.get_by_label("New value of first_name")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("Zuzka")
    page.keyboard.press("Enter")
    expect(row(page, "first_name").get_by_role("status")).to_be_focused()
    expect(row(page, "first_name").locator("td").first).to_contain_text("Zuzka")
    check_page(page)


def test_the_sign_in_page_and_its_error_have_labels_and_contrast(page, stack):
    open_console(page, stack)
    check_page(page)
    page.get_by_role("button", name="Sign in").click()  # nothing filled in
    expect(page.get_by_role("alert")).to_contain_text("Enter the API key id.")
    check_page(page)


def test_the_customer_page_has_labels_and_contrast(page, stack):
    customer_to_show(stack, "console-contrast")
    track(stack, {"registered": "console-contrast"}, {"first_name": "Later"}, time.time() + 600)
    sign_in(page, stack)
    find(page, "registered", "console-contrast")
    row(page, "first_name").get_by_role("button", name="Edit first_name").click()
    page.get_by_label("New value of first_name").fill("Sooner")
    page.get_by_role("button", name="Save").click()  # loses: a warning on its row
    expect(row(page, "first_name").get_by_role("status")).to_contain_text("a newer value won")
    check_page(page)


def test_the_customer_page_at_360_px_wide_has_no_horizontal_scroll(page, stack):
    customer_to_show(stack, "console-narrow")
    page.set_viewport_size({"width": 360, "height": 740})
    open_console(page, stack)
    assert in_page(page, "widerThanTheScreen") == {"page": 360, "screen": 360, "wide": []}

    sign_in(page, stack)
    find(page, "registered", "console-narrow")
    row(page, "email").get_by_role("button", name="Edit email").click()

    assert in_page(page, "widerThanTheScreen") == {"page": 360, "screen": 360, "wide": []}
    check_page(page)


def test_the_imports_list_at_360_px_has_its_caption_on_one_line(page, stack):
    execution = {
        "execution_id": "e-1",
        "import_name": "crm",
        "file_name": "people.csv",
        "file_key": f"imports/{stack['project_token']}/crm/people.csv",
        "status": "succeeded",
        "started_at": time.time() - 60,
        "finished_at": time.time() - 30,
        "progress": {"rows": 2, "bytes": 10, "bytes_total": 10, "fraction": 1.0},
        "counts": {"rows_read": 2, "rows_written": 2, "rows_rejected": 0},
    }
    page.route(
        "**/api/imports?*",
        lambda route: route.fulfill(
            content_type="application/json",
            body=json.dumps({"success": True, "executions": [execution], "next": None}),
        ),
    )
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, stack)
    page.get_by_role("link", name="Imports", exact=True).click()

    caption = page.locator("caption", has_text="Executions, newest first")
    expect(caption).to_be_visible()
    lines = caption.evaluate(
        """(element) => {
             const range = document.createRange();
             range.selectNodeContents(element);
             return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
           }"""
    )
    assert lines == 1
    # (the table's visually hidden head passes the edge, clipped: no scroll)
    assert in_page(page, "widerThanTheScreen")["page"] == 360
