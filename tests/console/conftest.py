"""The web console in a real browser: Debian's chromium driven by Playwright,
against `make run` over HTTP on 127.0.0.1 (the stack the e2e tests start, on
free ports).

The browser is the system's (`make browser` installs it with apt; Playwright's
own download cannot work offline): PROPSYNC_CHROMIUM names it (`make test`
sets it, and then a missing browser fails the tests); unset, /usr/bin/chromium
is used, and the tests are skipped with the reason where it is missing. Each
test gets a fresh browser profile (user-data-dir) and leaves a screenshot of
its page in .local/screenshots/<test>.png (`make screenshots` copies two of
them into docs/images/)."""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from propsync_local.cfn_template import REPO_ROOT
from tests.e2e.test_local_stack import admin, running_stack

CHROMIUM_ENV = "PROPSYNC_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / ".local" / "screenshots"
# What a headless browser in a test needs, and nothing it would fetch or sync
# on its own (no network of its own, no updates, no first-run pages).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The browser's time zone and language are the test's: the page shows times
# in the browser's zone, so a test can say which date-time it expects.
TIMEZONE = "Europe/Bratislava"
LOCALE = "en-GB"
# Playwright waits for what a test expects (an element, a text) up to this
# long: a bound on a slow machine, not a measured time.
WAIT_MS = 60_000


def chromium_path() -> str:
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        if not Path(named).is_file():
            pytest.fail(f"{CHROMIUM_ENV}={named} does not exist: run `make browser` (apt chromium)")
        return named
    if not Path(DEFAULT_CHROMIUM).is_file():
        pytest.skip(
            f"no browser at {DEFAULT_CHROMIUM}: `make browser` installs Debian's chromium "
            f"(or set {CHROMIUM_ENV})"
        )
    return DEFAULT_CHROMIUM


@pytest.fixture(scope="session")
def chromium() -> str:
    return chromium_path()


@pytest.fixture(scope="session")
def playwright(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`make run` on free ports, for every console test (those that need no
    browser run without one)."""
    with running_stack(tmp_path_factory.mktemp("console-stack")) as running:
        credentials = json.loads((running["dir"] / "credentials.json").read_text())
        yield {**running, **credentials}


@pytest.fixture
def browser_context(playwright: Any, chromium: str, tmp_path: Path) -> Iterator[Any]:
    """A fresh profile for each test: nothing kept from another test."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=chromium,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
        timezone_id=TIMEZONE,
        locale=LOCALE,
    )
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught errors of the page's script, and what it logged as errors."""
    return []


@pytest.fixture
def page(
    browser_context: Any, request: pytest.FixtureRequest, page_errors: list[str]
) -> Iterator[Any]:
    """The test's page; its screenshot is saved when the test ends, passed or
    not. A script error of the page fails the test."""
    from playwright.sync_api import expect  # noqa: PLC0415

    expect.set_options(timeout=WAIT_MS)
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    page.on("pageerror", lambda error: page_errors.append(f"page error: {error}"))
    page.on("console", lambda message: _console_error(message, page_errors))
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    assert page_errors == [], "the page's script failed"


def _console_error(message: Any, errors: list[str]) -> None:
    # the browser logs every 4xx answer ("Failed to load resource"): those are
    # answers the page shows in words, not errors of its script
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.append(message.text)


def basic(key_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


def api_call(
    stack: dict[str, Any],
    method: str,
    path: str,
    body: Any = None,
    authorization: str | None = None,
) -> tuple[int, Any]:
    """(status, JSON answer) of one request to the stack, outside the browser."""
    request = urllib.request.Request(f"{stack['api']}{path}", method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def create_key(stack: dict[str, Any], *permissions: str) -> dict[str, str]:
    """A new key of the demo project with exactly these permissions
    (`propsync create-key`), as {"api_key_id", "api_secret"}."""
    args = ["create-key", "--project", stack["project_token"]]
    for permission in permissions:
        args += ["--permission", permission]
    done = admin(stack, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def track(stack: dict[str, Any], ids: dict[str, str], properties: dict[str, Any], when: float):
    """A customers command through the public tracking route."""
    status, answer = api_call(
        stack,
        "POST",
        f"/track/v2/projects/{stack['project_token']}/customers",
        {"customer_ids": ids, "properties": properties, "update_timestamp": when},
    )
    assert status == 200, answer
    return answer
