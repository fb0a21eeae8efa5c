"""ConsoleFunction serves its files and nothing else, with the security
headers, through the local API front as API Gateway routes it; and the
console's files say what the rest of propsync says (the mapping's types)."""

from __future__ import annotations

import json
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync.import_mapping import TYPES
from propsync_local import apigw
from propsync_local.apigw import EVENTS_DIR, LambdaContext, load_handler
from propsync_local.cfn_template import REPO_ROOT

STATIC = REPO_ROOT / "functions" / "console" / "static"
ORIGIN = "http://127.0.0.1:4566"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
ASSETS = sorted(p.name for p in STATIC.iterdir() if p.name != "index.html")
NOT_FOUND = {"success": False, "error": "Not found"}


@pytest.fixture(autouse=True)
def upload_origin(monkeypatch):
    monkeypatch.setenv("PROPSYNC_UPLOAD_ORIGIN", ORIGIN)


def get(path: str, headers: dict[str, str] | None = None) -> apigw.HttpResponse:
    return apigw.handle("GET", path, headers=headers)


def assert_security_headers(response: apigw.HttpResponse, origin: str | None = ORIGIN) -> None:
    connect = "'self'" + (f" {origin}" if origin else "")
    assert response.headers["Content-Security-Policy"] == (
        f"default-src 'self'; connect-src {connect}; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'; object-src 'none'"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_page_is_served_as_html_with_the_security_headers():
    response = get("/console")

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.body == (STATIC / "index.html").read_text()
    assert_security_headers(response)


@pytest.mark.parametrize("name", ASSETS)
def test_every_file_of_static_is_served_with_its_type(name):
    response = get(f"/console/{name}")

    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPES[(STATIC / name).suffix]
    assert response.body == (STATIC / name).read_text()
    assert response.headers["Cache-Control"] == "no-cache"
    assert_security_headers(response)


def test_an_unchanged_file_is_answered_304_without_a_body():
    first = get("/console/console.js")
    again = get("/console/console.js", {"If-None-Match": first.headers["ETag"]})

    assert again.status == 304
    assert again.body == ""
    assert again.headers["ETag"] == first.headers["ETag"]
    assert get("/console/console.js", {"If-None-Match": '"other"'}).status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/console/app.py",
        "/console/..",
        "/console/%2e%2e%2fapp.py",
        "/console/..%2Fapp.py",
        "/console/%2Fetc%2Fpasswd",
        "/console/index.html",  # the page is /console itself: its relative links need that
        "/console/",
        "/console/static",
        "/console/CONSOLE.JS",
    ],
)
def test_anything_else_is_a_json_404(path):
    response = get(path)

    assert response.status == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == NOT_FOUND


names = st.text(string.printable + "é/\\%.\x00", min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(name=names)
def test_no_name_reaches_a_file_outside_static(name):
    """Whatever the name in the path (dots, slashes, encodings, NUL), the
    answer is one of the console's own files or the JSON 404."""
    event = json.loads((EVENTS_DIR / "ConsoleFunction.Asset.json").read_text())
    event["pathParameters"] = {"asset": name}
    answer = load_handler("ConsoleFunction")(event, LambdaContext("ConsoleFunction"))
    if name in ASSETS:
        assert answer["statusCode"] == 200
        assert answer["body"] == (STATIC / name).read_text()
    else:
        assert answer["statusCode"] == 404
        assert json.loads(answer["body"]) == NOT_FOUND


@pytest.mark.parametrize(
    "value",
    [
        "",
        "*",
        "https://evil.example; script-src *",
        "https://a.example https://b.example",
        "'unsafe-inline'",
        "javascript:alert(1)",
        "https://bucket.s3.eu-west-1.amazonaws.com/path",
    ],
)
def test_an_upload_origin_that_is_not_one_origin_widens_nothing(monkeypatch, value):
    monkeypatch.setenv("PROPSYNC_UPLOAD_ORIGIN", value)

    assert_security_headers(get("/console"), origin=None)


def test_without_an_upload_origin_the_page_may_talk_to_its_own_api_only(monkeypatch):
    monkeypatch.delenv("PROPSYNC_UPLOAD_ORIGIN")

    assert_security_headers(get("/console"), origin=None)


@pytest.mark.parametrize("sample", ["Page", "Asset"])
def test_the_samples_run(sample):
    event = json.loads((EVENTS_DIR / f"ConsoleFunction.{sample}.json").read_text())
    answer = load_handler("ConsoleFunction")(event, LambdaContext("ConsoleFunction"))
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"].startswith(
        "text/html" if sample == "Page" else "text/javascript"
    )


def test_the_page_loads_nothing_from_elsewhere_and_runs_no_inline_script():
    """The CSP allows 'self' only: every script, style and icon of the page is
    a relative file of static/, and no markup carries inline script or style."""
    for path in STATIC.iterdir():
        text = path.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
    page = (STATIC / "index.html").read_text()
    for reference in re.findall(r'(?:src|href)="([^"#]+)"', page):
        assert reference.startswith("console/"), reference
        assert (STATIC / reference.removeprefix("console/")).is_file(), reference
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert " style=" not in page
    assert not re.search(r"\bon[a-z]+=", page)
    for module in STATIC.glob("*.js"):
        source = module.read_text()
        assert "innerHTML" not in source, module.name  # text is set as text
        for imported in re.findall(r'from "\./([^"]+)"', source):
            assert (STATIC / imported).is_file(), f"{module.name} imports {imported}"


def test_the_wizard_offers_the_mapping_types_of_the_importer():
    wizard = (STATIC / "wizard.js").read_text()
    offered = re.search(r"export const PROPERTY_TYPES = \[(.*?)\];", wizard, re.S)
    assert offered
    assert tuple(json.loads(f"[{offered.group(1)}]")) == TYPES
