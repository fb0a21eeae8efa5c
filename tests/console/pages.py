"""What a person does on the console's pages, as the tests do it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from tests.console.conftest import TIMEZONE


def open_console(page: Page, stack: dict[str, Any]) -> None:
    page.goto(f"{stack['api']}/console")


def sign_in(page: Page, stack: dict[str, Any], key: dict[str, str] | None = None) -> None:
    open_console(page, stack)
    page.get_by_label("API key id").fill((key or {}).get("api_key_id", stack["api_key_id"]))
    page.get_by_label("API secret").fill((key or {}).get("api_secret", stack["api_secret"]))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def find(page: Page, id_type: str, value: str) -> None:
    page.get_by_label("Find by").select_option(id_type)
    page.get_by_label("Id value").fill(value)
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("heading", level=2, name="Customer with")).to_be_visible()


def row(page: Page, name: str) -> Any:
    return page.locator(f'tr[data-property="{name}"]')


def local_date_time(seconds: float) -> str:
    """What the page shows for a time, in the browser's zone and language
    (en-GB: "30 Nov 2026, 10:00:00")."""
    local = datetime.fromtimestamp(seconds, UTC).astimezone(ZoneInfo(TIMEZONE))
    return f"{local.day} {local:%b} {local.year}, {local:%H:%M:%S}"
