"""S3's checks of a browser-form upload (POST Object), in front of moto.

A presigned POST (propsync.bucket.ImportBucket.upload_form) carries a policy
that S3 enforces: the exact key, the file's size range, the expiry, and no
field the policy does not name. moto stores whatever is posted, so without
this `make run` and the tests would accept an upload AWS refuses. This WSGI
middleware applies the policy's conditions to every multipart POST as S3
does, and answers S3's errors (403 AccessDenied "Invalid according to
Policy: ...", 400 EntityTooSmall / EntityTooLarge with the sizes S3 names)
before moto sees the request. The signature itself is not checked: moto
accepts any credentials, and the conditions are what a client can get wrong.

A refusal carries the CORS headers the bucket's rules give the request's
Origin, as S3 evaluates CORS for every request, refused ones included: a web
page (the console's wizard) can then read why its upload was refused, where
without them the browser hides the answer and reports a network error. The
rules are moto's bucket's (``cors_headers``, given by the moto server: the
one function that also adds them to a successful POST).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.formparser import parse_form_data

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# (bucket, the request's Origin or None, its method) -> the CORS headers the
# bucket's rules give that request (none when no rule matches)
CorsHeaders = Callable[[str, str | None, str], Mapping[str, str]]
# fields S3 does not hold against the policy: the file, the policy and its signature
_UNCHECKED = {"file", "policy", "x-amz-signature", "signature", "awsaccesskeyid"}


class PolicyRefusal(Exception):
    """One of S3's errors; ``details`` are the elements S3 adds after its
    Code and Message (EntityTooLarge: ProposedSize, MaxSizeAllowed)."""

    def __init__(
        self, status: int, code: str, message: str, details: Mapping[str, object] | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = dict(details or {})

    def xml(self) -> bytes:
        elements = "".join(
            f"<{name}>{escape(str(value))}</{name}>"
            for name, value in {"Code": self.code, "Message": self.message, **self.details}.items()
        )
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{elements}</Error>'.encode()


def _no_cors(bucket: str, origin: str | None, method: str) -> Mapping[str, str]:
    return {}


class PostPolicy:
    """Wraps moto's WSGI app: a multipart POST to a bucket passes only if it
    meets its policy (S3's rules), and reaches moto with its body intact."""

    def __init__(
        self,
        app: WsgiApp,
        clock: Callable[[], datetime] | None = None,
        cors_headers: CorsHeaders = _no_cors,
    ):
        self._app = app
        self._clock = clock or (lambda: datetime.now(UTC))
        self._cors_headers = cors_headers

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        content_type = environ.get("CONTENT_TYPE", "")
        if environ.get("REQUEST_METHOD") != "POST" or not content_type.startswith(
            "multipart/form-data"
        ):
            return self._app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        bucket = _bucket_of(environ)
        try:
            check_upload(body, dict(environ), bucket, self._clock())
        except PolicyRefusal as refusal:
            xml = refusal.xml()
            cors = self._cors_headers(bucket, environ.get("HTTP_ORIGIN"), "POST")
            start_response(
                f"{refusal.status} {'Forbidden' if refusal.status == 403 else 'Bad Request'}",
                [
                    ("Content-Type", "application/xml"),
                    ("Content-Length", str(len(xml))),
                    *cors.items(),
                ],
            )
            return [xml]
        environ["wsgi.input"] = io.BytesIO(body)
        return self._app(environ, start_response)


def _bucket_of(environ: dict[str, Any]) -> str:
    """The bucket a POST names: path-style (``/<bucket>``, the local URL) or
    virtual-host (``<bucket>.<host>``)."""
    path = str(environ.get("PATH_INFO", "")).strip("/")
    if path:
        return path.split("/", 1)[0]
    return str(environ.get("HTTP_HOST", "")).split(".", 1)[0]


def check_upload(body: bytes, environ: dict[str, Any], bucket: str, now: datetime) -> None:
    """PolicyRefusal unless the form in ``body`` meets its own policy."""
    copy = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
    _, form, files = parse_form_data(copy)
    fields = {name.lower(): value for name, value in form.items()}
    upload = files.get("file")
    if upload is None:
        raise PolicyRefusal(
            400, "InvalidArgument", "POST requires exactly one file upload per request."
        )
    size = len(upload.read())
    policy = _policy(fields.get("policy"))
    expiration = policy.get("expiration")
    if not isinstance(expiration, str) or _time(expiration) <= now:
        raise PolicyRefusal(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {**fields, "bucket": bucket}
    named = set()
    conditions = policy.get("conditions")
    for condition in conditions if isinstance(conditions, list) else [conditions]:
        try:
            named |= _check(condition, values, size)
        except (TypeError, ValueError, OverflowError):  # a range that is not two numbers, ...
            raise PolicyRefusal(
                400, "InvalidPolicyDocument", f"Invalid Policy: Invalid condition {condition!r}"
            ) from None
    extra = sorted(
        name
        for name in fields
        if name not in _UNCHECKED and name not in named and not name.startswith("x-ignore-")
    )
    if extra:
        raise PolicyRefusal(
            403,
            "AccessDenied",
            f"Invalid according to Policy: Extra input fields: {', '.join(extra)}",
        )


def _policy(encoded: str | None) -> dict[str, Any]:
    if not encoded:
        raise PolicyRefusal(
            400, "InvalidArgument", "Bucket POST must contain a field named 'policy'."
        )
    try:
        policy = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise PolicyRefusal(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
    if not isinstance(policy, dict):
        raise PolicyRefusal(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
    return policy


def _time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PolicyRefusal(
            400, "InvalidPolicyDocument", "Invalid Policy: Invalid 'expiration' value."
        ) from None


def _check(condition: Any, values: dict[str, str], size: int) -> set[str]:
    """Apply one condition; the fields it names."""
    failed = PolicyRefusal(
        403,
        "AccessDenied",
        f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}",
    )
    if isinstance(condition, dict):  # {"key": "value"}: an exact match
        for name, expected in condition.items():
            if values.get(name.lower()) != expected:
                raise failed
        return {name.lower() for name in condition}
    if isinstance(condition, list) and len(condition) == 3:
        operator, first, second = condition
        if operator == "content-length-range":
            least, most = int(first), int(second)
            if size < least:
                raise PolicyRefusal(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size",
                    {"ProposedSize": size, "MinSizeAllowed": least},
                )
            if size > most:
                raise PolicyRefusal(
                    400,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size",
                    {"ProposedSize": size, "MaxSizeAllowed": most},
                )
            return set()
        name = str(first).lstrip("$").lower()
        value = values.get(name, "")
        if operator == "eq" and value != second:
            raise failed
        if operator == "starts-with" and not value.startswith(str(second)):
            raise failed
        if operator in ("eq", "starts-with"):
            return {name}
    raise PolicyRefusal(
        400, "InvalidPolicyDocument", f"Invalid Policy: Invalid condition {json.dumps(condition)}"
    )
