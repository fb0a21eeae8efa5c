"""What a person does on the console's pages, as the tests do it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
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


def figure(value: float) -> str:
    """A measured figure as the page writes it (format.js formatFigure in
    en-GB): whole from 10 up, one decimal below, halves away from zero, as
    Intl.NumberFormat rounds the number's exact value."""
    exact = Decimal(value)
    shown = exact.quantize(Decimal(1) if abs(exact) >= 10 else Decimal("0.1"), ROUND_HALF_UP)
    return f"{shown:,}".removesuffix(".0")


def rate_words(rows_per_second: float) -> str:
    """An execution's pace as the page says it: "1,234 rows/s"."""
    shown = figure(rows_per_second)
    return f"{shown} {'row' if shown == '1' else 'rows'}/s"


def duration_words(seconds: float) -> str:
    """A time as the page says it (format.js durationWords): "0.4 s", "12 s",
    "3 min 20 s", "2 h 5 min"."""
    if seconds < 10:
        return f"{figure(seconds)} s"
    total = int(Decimal(seconds).quantize(Decimal(1), ROUND_HALF_UP))
    minutes, rest = divmod(total, 60)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours:,} h {minutes} min" if minutes else f"{hours:,} h"
