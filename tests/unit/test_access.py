"""API keys: Basic credentials, salted hashes, permissions (no I/O: the keys
live in a dict standing in for the table)."""

import base64
import dataclasses
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propsync.access import (
    ACCESS_KEY_NOT_PROVIDED,
    HASH_ITERATIONS,
    Permission,
    Principal,
    authenticate,
    create_api_key,
    hash_secret,
    is_project_token,
    parse_permissions,
)
from propsync.errors import AuthenticationError
from propsync.store.access import ApiKeyRecord, KeyFailures

PROJECT = "00000000-0000-0000-0000-000000000000"
ALL = frozenset(p.value for p in Permission)


class Keys:
    """The AccessStore methods API keys use, over a dict. Wrong secrets are
    counted but never lock a key here (the lock: tests/api/test_key_lockout.py)."""

    def __init__(self) -> None:
        self.records: dict[str, ApiKeyRecord] = {}
        self.failures: dict[str, int] = {}

    def put_api_key(self, record: ApiKeyRecord) -> None:
        self.records[record.key_id] = record

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self.records.get(key_id)

    def key_failures(self, key_id: str) -> None:
        return None

    def count_failed_secret(self, key_id: str, now: float, **_lockout) -> KeyFailures:
        self.failures[key_id] = self.failures.get(key_id, 0) + 1
        return KeyFailures(self.failures[key_id], now, None)


def basic(credential: str) -> str:
    return "Basic " + base64.b64encode(credential.encode()).decode()


@pytest.fixture
def keys() -> Keys:
    return Keys()


def refusal(keys: Keys, header: str | None) -> tuple[int, str]:
    with pytest.raises(AuthenticationError) as raised:
        authenticate(keys, header)
    return raised.value.status, str(raised.value)


def test_a_key_authenticates_with_its_secret_and_carries_its_project_and_permissions(keys):
    key = create_api_key(keys, PROJECT, frozenset({Permission.GET_CUSTOMER_PROPERTIES.value}))
    principal = authenticate(keys, basic(f"{key.key_id}:{key.secret}"))
    assert principal == Principal(key.key_id, PROJECT, frozenset({"customer_properties:get"}))
    assert principal.can(Permission.GET_CUSTOMER_PROPERTIES)
    assert not principal.can(Permission.SET_CUSTOMER_PROPERTIES)


@pytest.mark.parametrize(
    "credential",
    [
        "{key}:",  # the key's id with an empty secret
        ":{secret}",
        ":",
        "",
        "{key}",
        "{key}{secret}",
    ],
)
def test_a_credential_without_an_id_and_a_secret_is_not_provided(keys, credential):
    key = create_api_key(keys, PROJECT, ALL)
    header = basic(credential.format(key=key.key_id, secret=key.secret))
    assert refusal(keys, header) == (401, ACCESS_KEY_NOT_PROVIDED)


@given(
    key_id=st.text(st.characters(codec="utf-8", exclude_characters=":"), max_size=8),
    secret=st.text(st.characters(codec="utf-8"), max_size=8),
)
def test_an_empty_id_or_secret_is_never_looked_up(key_id, secret):
    """Whatever the other half, an empty half is 'not provided' and no key is read."""

    class NoLookup:
        def get_api_key(self, key_id):
            raise AssertionError(f"looked up {key_id!r}")

    for credential in (f"{key_id}:", f":{secret}", key_id.replace(":", "")):
        with pytest.raises(AuthenticationError) as raised:
            authenticate(NoLookup(), basic(credential))
        assert (raised.value.status, str(raised.value)) == (401, ACCESS_KEY_NOT_PROVIDED)


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "Basic", "Basic ", "Bearer abc", "Digest aaaa", "Basic !!!", "Basic //8="],
)
def test_headers_that_carry_no_basic_credential_are_not_provided(keys, header):
    assert refusal(keys, header) == (401, ACCESS_KEY_NOT_PROVIDED)


def test_a_valid_credential_under_another_scheme_is_not_provided(keys):
    key = create_api_key(keys, PROJECT, ALL)
    encoded = base64.b64encode(f"{key.key_id}:{key.secret}".encode()).decode()
    for scheme in ("Bearer", "Digest", "Basicx", "Token"):
        assert refusal(keys, f"{scheme} {encoded}") == (401, ACCESS_KEY_NOT_PROVIDED)


def test_a_credential_that_is_not_strict_base64_is_not_provided(keys):
    """A character outside the base64 alphabet is not skipped: the whole
    credential is refused, as a client that sent it has a bug to fix."""
    key = create_api_key(keys, PROJECT, ALL)
    encoded = base64.b64encode(f"{key.key_id}:{key.secret}".encode()).decode()
    for junk in ("!", "*", "\\", "$"):
        for at in (0, len(encoded) // 2, len(encoded)):
            header = f"Basic {encoded[:at]}{junk}{encoded[at:]}"
            assert refusal(keys, header) == (401, ACCESS_KEY_NOT_PROVIDED)


def test_the_scheme_is_case_insensitive_and_spaces_around_are_ignored(keys):
    key = create_api_key(keys, PROJECT, ALL)
    encoded = base64.b64encode(f"{key.key_id}:{key.secret}".encode()).decode()
    for header in (f"basic {encoded}", f"BASIC {encoded}", f"  Basic   {encoded}  "):
        assert authenticate(keys, header).key_id == key.key_id


def test_a_secret_may_contain_colons(keys):
    """RFC 7617: the user id ends at the first colon; the rest is the secret."""
    create_api_key(keys, PROJECT, ALL, key_id="demo", secret="a:b::c")
    assert authenticate(keys, basic("demo:a:b::c")).key_id == "demo"
    assert refusal(keys, basic("demo:a:b:")) == (403, "invalid secret")


def test_a_key_id_may_not_contain_a_colon(keys):
    message = "an API key id must not contain ':' (it is the Basic auth user name)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        create_api_key(keys, PROJECT, ALL, key_id="a:b")
    assert keys.records == {}


def test_unknown_wrong_and_revoked_keys_are_told_apart_as_documented(keys):
    key = create_api_key(keys, PROJECT, ALL)
    assert refusal(keys, basic(f"other:{key.secret}")) == (401, "Access key not found")
    assert refusal(keys, basic(f"{key.key_id}:{key.secret}x")) == (403, "invalid secret")
    keys.records[key.key_id] = dataclasses.replace(key.record, revoked=True)
    assert refusal(keys, basic(f"{key.key_id}:{key.secret}")) == (401, "Access key not found")


def test_only_a_salted_hash_of_the_secret_is_stored(keys):
    first = create_api_key(keys, PROJECT, ALL, key_id="one", secret="same secret")
    second = create_api_key(keys, PROJECT, ALL, key_id="two", secret="same secret")
    for key in (first, second):
        record = keys.records[key.key_id]
        assert "same secret" not in repr(record)
        assert record.iterations == HASH_ITERATIONS
        assert record.secret_hash == hash_secret("same secret", record.salt)
    assert first.record.salt != second.record.salt
    assert first.record.secret_hash != second.record.secret_hash


def test_a_key_hashed_with_other_iterations_still_authenticates(keys):
    """Keys keep the iteration count they were created with, so raising it
    later does not lock out existing keys."""
    salt = "00" * 16
    keys.put_api_key(
        ApiKeyRecord(
            key_id="old",
            project=PROJECT,
            permissions=ALL,
            salt=salt,
            secret_hash=hash_secret("s3cret", salt, 1000),
            iterations=1000,
            created=0.0,
            revoked=False,
        )
    )
    assert authenticate(keys, basic("old:s3cret")).key_id == "old"
    assert refusal(keys, basic("old:other")) == (403, "invalid secret")


def test_generated_keys_are_distinct_with_256_bit_secrets_and_128_bit_salts(keys):
    before = time.time()
    created = [create_api_key(keys, PROJECT, ALL) for _ in range(20)]
    after = time.time()
    assert len({key.key_id for key in created}) == 20
    assert len({key.secret for key in created}) == 20
    assert len({key.record.salt for key in created}) == 20
    for key in created:
        assert ":" not in key.key_id
        assert len(base64.urlsafe_b64decode(key.secret + "=")) == 32  # 256 bits (DECISIONS.md)
        assert len(bytes.fromhex(key.record.salt)) == 16
        assert before <= key.record.created <= after
        assert key.record.revoked is False
        assert keys.records[key.key_id] == key.record


def test_permissions_are_checked_by_name():
    assert parse_permissions(["customer_properties:get"]) == {"customer_properties:get"}
    assert parse_permissions([]) == frozenset()
    message = (
        "unknown permission(s) all, everything; "
        "known: customer_properties:get, customer_properties:set, customers:anonymize, "
        "customers:import"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_permissions(["customer_properties:get", "everything", "all"])


@pytest.mark.parametrize(
    ("token", "valid"),
    [
        (PROJECT, True),
        ("3F2504E0-4F89-11D3-9A0C-0305E82C3301", True),
        ("3f2504e0-4f89-11d3-9a0c-0305e82c3301", True),
        ("3f2504e0-4f89-11d3-9a0c-0305e82c330", False),
        ("3f2504e0-4f89-11d3-9a0c-0305e82c33011", False),
        ("x3f2504e0-4f89-11d3-9a0c-0305e82c3301", False),
        ("3f2504e04f8911d39a0c0305e82c3301", False),
        ("3f2504e0-4f89-11d3-9a0c-0305e82c330g", False),
        ("", False),
    ],
)
def test_project_tokens_are_uuids(token, valid):
    assert is_project_token(token) is valid
