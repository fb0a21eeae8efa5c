"""`make run` serves the console over real HTTP as API Gateway would: the
handler's headers pass through the local front, and the browser enforces
the policy they carry."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.console.pages import sign_in

pytestmark = pytest.mark.usefixtures("stack")


def fetch(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/console", "text/html; charset=utf-8"),
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
    ],
)
def test_the_files_come_with_their_type_and_the_security_headers(stack, path, content_type):
    status, headers, body = fetch(f"{stack['api']}{path}")

    assert status == 200
    assert headers["Content-Type"] == content_type
    assert int(headers["Content-Length"]) == len(body.encode())
    assert (
        f"connect-src 'self' {stack['aws_endpoint_url']};" in (headers["Content-Security-Policy"])
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("path", ["/console", "/console/console.css", "/console/nothing.js"])
def test_head_is_answered_as_get_without_a_body(stack, path):
    got = fetch(f"{stack['api']}{path}")
    request = urllib.request.Request(f"{stack['api']}{path}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, headers, body = answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, dict(error.headers), error.read()

    assert status == got[0]
    assert body == b""
    assert headers["Content-Type"] == got[1]["Content-Type"]
    assert headers["Content-Length"] == got[1]["Content-Length"]


def test_an_unknown_file_is_the_apis_json_404(stack):
    status, headers, body = fetch(f"{stack['api']}/console/nothing.js")

    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"success": False, "error": "Not found"}


def test_the_page_may_connect_to_its_api_and_the_bucket_only(page, stack, page_errors):
    sign_in(page, stack)

    refused = page.evaluate(
        """async () => {
          const seen = new Promise((resolve) => document.addEventListener(
            "securitypolicyviolation", (event) => resolve(event.effectiveDirective), {once: true}));
          try { await fetch("http://127.0.0.1:9/elsewhere"); } catch {}
          return await seen;
        }"""
    )

    assert refused == "connect-src"
    assert any("Content Security Policy" in error for error in page_errors)
    page_errors.clear()  # the refusal this test asked for
