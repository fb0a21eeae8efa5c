"""The local S3's check of a browser-form upload's policy
(propsync_local.s3_post_policy): any form, any policy, is passed on or refused
with one of S3's errors, never a crash of the local S3."""

import base64
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from xml.etree import ElementTree

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from propsync_local.moto_server import bucket_cors_headers
from propsync_local.s3_post_policy import PolicyRefusal, PostPolicy, check_upload

NOW = datetime(2026, 1, 1, tzinfo=UTC)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


def form(fields: dict[str, str], file: bytes | None = b"a,b\n") -> tuple[bytes, dict]:
    boundary = "propsyncboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    if file is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n".encode()
            + file
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
        "CONTENT_LENGTH": str(len(body)),
    }
    return body, environ


def policy(document) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def outcome(body: bytes, environ: dict) -> PolicyRefusal | None:
    """None if the form passes, else S3's refusal."""
    try:
        check_upload(body, environ, "b", NOW)
    except PolicyRefusal as refusal:
        return refusal
    return None


GOOD = {
    "expiration": "2026-01-01T01:00:00Z",
    "conditions": [{"bucket": "b"}, {"key": "imports/k.csv"}, ["content-length-range", 1, 10]],
}


def test_a_form_that_meets_its_policy_passes():
    assert outcome(*form({"key": "imports/k.csv", "policy": policy(GOOD)})) is None


FORMS = settings(max_examples=200, deadline=None)
CONDITIONS = settings(max_examples=100, deadline=None)
ORIGINS = settings(max_examples=200, deadline=None)


@FORMS
@given(document=JSON, key=st.text(max_size=20), data=st.binary(max_size=20))
def test_any_policy_is_applied_or_refused_with_an_s3_error(document, key, data):
    fields = {
        "key": key.replace("\r", "").replace("\n", "").replace('"', ""),
        "policy": policy(document),
    }
    refusal = outcome(*form(fields, data))
    assert refusal is None or (refusal.status in (400, 403) and refusal.code)


@CONDITIONS
@given(conditions=st.lists(JSON, max_size=4))
def test_any_conditions_are_applied_or_refused_with_an_s3_error(conditions):
    document = {**GOOD, "conditions": conditions}
    refusal = outcome(*form({"key": "imports/k.csv", "policy": policy(document)}))
    assert refusal is None or refusal.status in (400, 403)


def test_a_form_without_a_file_or_a_policy_is_refused():
    without_file = outcome(*form({"key": "imports/k.csv", "policy": policy(GOOD)}, file=None))
    assert without_file is not None
    assert without_file.code == "InvalidArgument"
    without_policy = outcome(*form({"key": "imports/k.csv"}))
    assert without_policy is not None
    assert without_policy.code == "InvalidArgument"


def test_a_range_that_is_no_number_is_an_invalid_policy_not_a_crash():
    for bound in (float("inf"), "ten", None, [1]):
        document = {**GOOD, "conditions": [["content-length-range", 1, bound]]}
        refusal = outcome(*form({"key": "imports/k.csv", "policy": policy(document)}))
        assert refusal is not None
        assert (refusal.status, refusal.code) == (400, "InvalidPolicyDocument"), bound


def test_a_file_outside_the_size_range_is_refused_with_the_sizes_as_s3_names_them():
    fields = {"key": "imports/k.csv", "policy": policy(GOOD)}  # 1 to 10 bytes
    for data, code, details in (
        (b"x" * 11, "EntityTooLarge", {"ProposedSize": "11", "MaxSizeAllowed": "10"}),
        (b"", "EntityTooSmall", {"ProposedSize": "0", "MinSizeAllowed": "1"}),
    ):
        refusal = outcome(*form(fields, data))
        assert refusal is not None
        error = ElementTree.fromstring(refusal.xml())
        assert {child.tag: child.text for child in error} == {
            "Code": code,
            "Message": refusal.message,
            **details,
        }


# ------------------------------------------------------------------ the middleware's answers
# A refusal carries the CORS headers of the bucket's rules for the request's
# Origin, as S3 evaluates CORS for every request: here bucket "b" has one rule,
# POST from CONSOLE.

CONSOLE = "http://127.0.0.1:3000"
RULE_HEADERS = {"Access-Control-Allow-Origin": CONSOLE, "Access-Control-Allow-Methods": "POST"}
CORS_NAMES = {name.lower() for name in RULE_HEADERS} | {"access-control-expose-headers"}


def bucket_rules(bucket: str, origin: str | None, method: str) -> dict[str, str]:
    return dict(RULE_HEADERS) if (bucket, origin, method) == ("b", CONSOLE, "POST") else {}


def answer(body: bytes, environ: dict, origin: str | None) -> tuple[str, dict, bytes, list]:
    """(status, headers, body) of the middleware in front of an app that
    stores what reaches it, and what reached it."""
    reached: list[bytes] = []

    def app(environ, start_response):
        reached.append(environ["wsgi.input"].read())
        start_response("204 No Content", [])
        return [b""]

    started: dict = {}

    def start_response(status, headers):
        started.update(status=status, headers=dict(headers))

    request = {**environ, "PATH_INFO": "/b", "wsgi.input": io.BytesIO(body)}
    if origin is not None:
        request["HTTP_ORIGIN"] = origin
    middleware = PostPolicy(app, clock=lambda: NOW, cors_headers=bucket_rules)
    out = b"".join(middleware(request, start_response))
    return started["status"], started["headers"], out, reached


REFUSED = {
    "expired": (
        {"key": "imports/k.csv", "policy": policy({**GOOD, "expiration": "2025-01-01T00:00:00Z"})},
        b"a",
    ),
    "another key": ({"key": "imports/other.csv", "policy": policy(GOOD)}, b"a"),
    "an extra field": (
        {"key": "imports/k.csv", "acl": "public-read", "policy": policy(GOOD)},
        b"a",
    ),
    "too large": ({"key": "imports/k.csv", "policy": policy(GOOD)}, b"x" * 11),
    "empty": ({"key": "imports/k.csv", "policy": policy(GOOD)}, b""),
    "no file": ({"key": "imports/k.csv", "policy": policy(GOOD)}, None),
    "no policy": ({"key": "imports/k.csv"}, b"a"),
    "a policy that is not JSON": ({"key": "imports/k.csv", "policy": "bm90IGpzb24="}, b"a"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_every_refusal_carries_the_cors_headers_of_the_bucket_rule_for_its_origin(case):
    fields, data = REFUSED[case]
    for origin, expected in ((CONSOLE, RULE_HEADERS), ("http://evil.example", {}), (None, {})):
        status, headers, body, reached = answer(*form(fields, data), origin)
        assert status[:3] in ("400", "403"), (case, status)
        assert reached == []  # moto never saw it
        assert ElementTree.fromstring(body).findtext("Code")
        assert {k: v for k, v in headers.items() if k.lower() in CORS_NAMES} == expected, origin


@FORMS
@given(
    document=JSON,
    key=st.sampled_from(["imports/k.csv", "imports/other.csv"]),
    data=st.binary(max_size=20),
    origin=st.sampled_from([CONSOLE, CONSOLE + "1", "http://evil.example", "null", None]),
)
def test_any_refusal_answers_an_origin_what_the_bucket_rules_give_it(document, key, data, origin):
    """Whatever the form and its policy: refused, the answer is S3's XML with
    exactly the headers of the bucket's rule for the origin; passed, the app
    behind gets the body intact (moto's answer adds the rule's headers)."""
    body, environ = form({"key": key, "policy": policy(document)}, data)
    status, headers, out, reached = answer(body, environ, origin)
    if reached:
        assert (status, reached) == ("204 No Content", [body])
        return
    assert status[:3] in ("400", "403")
    assert ElementTree.fromstring(out).findtext("Code")
    cors = {k: v for k, v in headers.items() if k.lower() in CORS_NAMES}
    assert cors == (RULE_HEADERS if origin == CONSOLE else {})


# ------------------------------------------------------------------ the bucket's rules (moto)


@pytest.fixture(scope="module")
def moto_bucket() -> Iterator[str]:
    """Bucket "the-bucket" in moto (in this process, as the moto server holds it):
    POST from CONSOLE, and GET from any http://*.example origin."""
    with mock_aws():
        s3 = boto3.client(
            "s3",
            region_name="eu-west-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        s3.create_bucket(
            Bucket="the-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        s3.put_bucket_cors(
            Bucket="the-bucket",
            CORSConfiguration={
                "CORSRules": [
                    {"AllowedMethods": ["POST"], "AllowedOrigins": [CONSOLE], "MaxAgeSeconds": 60},
                    {"AllowedMethods": ["GET"], "AllowedOrigins": ["http://*.example"]},
                ]
            },
        )
        yield "the-bucket"


def test_the_first_rule_matching_the_origin_and_the_method_gives_the_headers(moto_bucket):
    assert bucket_cors_headers(moto_bucket, CONSOLE, "POST") == {
        "Access-Control-Allow-Origin": CONSOLE,
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Max-Age": "60",
        "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    }
    assert (
        bucket_cors_headers(moto_bucket, "http://a.example", "GET")["Access-Control-Allow-Origin"]
        == "http://a.example"
    )
    assert bucket_cors_headers(moto_bucket, CONSOLE, "GET") == {}  # not its method
    assert bucket_cors_headers(moto_bucket, "http://a.example", "POST") == {}
    assert bucket_cors_headers(moto_bucket, None, "POST") == {}
    assert bucket_cors_headers("no-such-bucket", CONSOLE, "POST") == {}


@ORIGINS
@given(
    origin=st.text(max_size=30)
    | st.builds(lambda extra: CONSOLE + extra, st.text(min_size=1, max_size=8))
    | st.builds(lambda extra: extra + CONSOLE, st.text(min_size=1, max_size=8))
    | st.builds(lambda extra: f"http://{extra}.example.evil", st.text(max_size=8))
)
def test_an_origin_a_rule_does_not_name_whole_gets_no_header(moto_bucket, origin):
    """The whole origin must match, not a prefix of it (another port, a
    longer host)."""
    assert bucket_cors_headers(moto_bucket, origin, "POST") == (
        {} if origin != CONSOLE else bucket_cors_headers(moto_bucket, CONSOLE, "POST")
    )
    got = bucket_cors_headers(moto_bucket, origin, "GET")
    matches = origin.startswith("http://") and origin.endswith(".example")
    assert bool(got) == matches, origin
