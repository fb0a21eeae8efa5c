"""The local S3's check of a browser-form upload's policy
(propsync_local.s3_post_policy): any form, any policy, is passed on or refused
with one of S3's errors, never a crash of the local S3."""

import base64
import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from propsync_local.s3_post_policy import PolicyRefusal, check_upload

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
