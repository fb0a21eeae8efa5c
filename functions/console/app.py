"""The web console (public: Auth NONE). It serves files, nothing else: the
page signs in with an API key of its user and calls the API's own routes
from the browser, so this function holds no key and no data permission.

GET /console           static/index.html
GET /console/{asset}   another file of static/ by its exact name (console.js, console.css, ...)

Only the files present in static/ when the container starts can be served:
the name in the path is looked up in that set, never joined to a path, so no
name (``..``, ``%2F``, a link) reaches another file. Every answer carries the
security headers; the Content-Security-Policy lets the page talk to this API
and, for the import wizard's upload, to the import bucket's origin
(``PROPSYNC_UPLOAD_ORIGIN``) only (docs/DECISIONS.md: "The console's
Content-Security-Policy").
"""

import hashlib
import json
import logging
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

# Nothing of the propsync layer, nor boto3: this function's cold start is a
# page load someone waits on, and it needs no more than the standard library.
logger = logging.getLogger("propsync.console")
STATIC = Path(__file__).parent / "static"
UPLOAD_ORIGIN_ENV = "PROPSYNC_UPLOAD_ORIGIN"
# Text only: API Gateway passes these bodies as they are (binary types would
# need the API's BinaryMediaTypes).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# scheme://host[:port], nothing that could end the CSP directive or add a source
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


Asset = tuple[str, str, str]  # content type, text, ETag


def _asset(path: Path) -> Asset:
    text = path.read_text(encoding="utf-8")
    etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
    return CONTENT_TYPES[path.suffix], text, etag


# The page is /console itself: its links are relative to that address
# (console/console.js), so it is not served under /console/ as well.
PAGE = _asset(STATIC / "index.html")
ASSETS = {
    path.name: _asset(path)
    for path in sorted(STATIC.iterdir())
    if path.is_file()
    and not path.is_symlink()
    and path.suffix in CONTENT_TYPES
    and path.name != "index.html"
}


def upload_origin() -> str | None:
    """The import bucket's origin the page may POST uploads to; None when the
    variable is missing or not an origin: the console then works without the
    wizard's upload rather than with a widened policy."""
    return _checked_origin(os.environ.get(UPLOAD_ORIGIN_ENV, ""))


@cache  # one warning per value, not one per request
def _checked_origin(value: str) -> str | None:
    origin = value.strip().rstrip("/")
    if _ORIGIN.fullmatch(origin):
        return origin
    logger.warning(
        "%s=%r is not an origin (scheme://host[:port]): the console cannot upload import files",
        UPLOAD_ORIGIN_ENV,
        origin[:200],
    )
    return None


def security_headers() -> dict[str, str]:
    origin = upload_origin()
    connect = "'self'" + (f" {origin}" if origin else "")
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; connect-src {connect}; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'none'; object-src 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


def _not_found() -> dict[str, Any]:
    return {
        "statusCode": 404,
        "headers": {"Content-Type": "application/json", **security_headers()},
        "body": json.dumps({"success": False, "error": "Not found"}),
        "isBase64Encoded": False,
    }


def _if_none_match(event: dict[str, Any]) -> str | None:
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == "if-none-match":
            return str(value)
    return None


def serve(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("httpMethod") != "GET":
        return _not_found()
    if event.get("resource") == "/console":
        asset: Asset | None = PAGE
    else:
        asset = ASSETS.get(str((event.get("pathParameters") or {}).get("asset", "")))
    if asset is None:
        return _not_found()
    content_type, text, etag = asset
    headers = {
        "Content-Type": content_type,
        # no build step, so no hashed file names: every load asks again, and
        # the ETag makes an unchanged file a 304 without a body
        "Cache-Control": "no-cache",
        "ETag": etag,
        **security_headers(),
    }
    if _if_none_match(event) == etag:
        return {"statusCode": 304, "headers": headers, "body": "", "isBase64Encoded": False}
    return {"statusCode": 200, "headers": headers, "body": text, "isBase64Encoded": False}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return serve(event)
