"""API keys: creation, salted hashing and verification, and permissions.

Secrets are shown once, when a key is created, and stored only as a salted
PBKDF2-SHA256 hash; verification compares hashes in constant time. A key
belongs to one project and carries permissions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from propsync.errors import AuthenticationError, InvalidSecretError
from propsync.store.access import AccessStore, ApiKeyRecord

_PROJECT_TOKEN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
HASH_ITERATIONS = 20_000  # random 256-bit secrets need no more; bounds authorizer latency
# Generated ids have 16 characters; the bound keeps "apikey#<id>" far below
# DynamoDB's 2,048-byte key limit, so no credential can make the lookup fail.
MAX_API_KEY_ID_CHARS = 128
# API Gateway keeps each answer of the authorizer this long per Authorization
# header (template.yaml: ReauthorizeEvery), so a revoked key is refused only
# when its cached answer expires (docs/DECISIONS.md: "A revoked key stops
# working within 300 s"). tests/api/test_admin.py checks the two agree.
AUTHORIZER_CACHE_SECONDS = 300


class Permission(StrEnum):
    GET_CUSTOMER_PROPERTIES = "customer_properties:get"
    SET_CUSTOMER_PROPERTIES = "customer_properties:set"
    # erasure cannot be undone: a key holds it only when asked for by name
    ANONYMIZE_CUSTOMERS = "customers:anonymize"
    # start, preview, list and read imports (a file can rewrite many customers
    # at once): like anonymize, held only when asked for by name
    IMPORT_CUSTOMERS = "customers:import"


# what a new key holds unless its permissions are named
DEFAULT_PERMISSIONS = frozenset(
    {Permission.GET_CUSTOMER_PROPERTIES.value, Permission.SET_CUSTOMER_PROPERTIES.value}
)


@dataclass(frozen=True)
class NewApiKey:
    key_id: str
    secret: str  # returned once, never stored
    record: ApiKeyRecord


@dataclass(frozen=True)
class Principal:
    """Who is calling a private route: the key's id, project and permissions."""

    key_id: str
    project: str
    permissions: frozenset[str]

    def can(self, permission: Permission) -> bool:
        return permission.value in self.permissions


def is_project_token(value: str) -> bool:
    """Project tokens are UUIDs, as in the original service (and the path of
    every tracking route); anything else names no project."""
    return bool(_PROJECT_TOKEN.fullmatch(value))


def parse_permissions(names: list[str]) -> frozenset[str]:
    known = {p.value for p in Permission}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(
            f"unknown permission(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return frozenset(names)


def hash_secret(secret: str, salt: str, iterations: int = HASH_ITERATIONS) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), iterations)
    return digest.hex()


def api_key_id_problem(key_id: str) -> str | None:
    """Why ``key_id`` cannot be an API key id (None if it can)."""
    if ":" in key_id:
        return "an API key id must not contain ':' (it is the Basic auth user name)"
    if len(key_id) > MAX_API_KEY_ID_CHARS:
        return f"an API key id must have at most {MAX_API_KEY_ID_CHARS} characters"
    return None


def create_api_key(
    access: AccessStore,
    project: str,
    permissions: frozenset[str],
    *,
    key_id: str | None = None,
    secret: str | None = None,
) -> NewApiKey:
    """Create a key for an existing project. ``key_id``/``secret`` are
    generated unless given (the local stack uses fixed demo values)."""
    key_id = key_id or "key_" + secrets.token_urlsafe(12)
    secret = secret or secrets.token_urlsafe(32)
    problem = api_key_id_problem(key_id)
    if problem:
        raise ValueError(problem)
    salt = secrets.token_hex(16)
    record = ApiKeyRecord(
        key_id=key_id,
        project=project,
        permissions=permissions,
        salt=salt,
        secret_hash=hash_secret(secret, salt),
        iterations=HASH_ITERATIONS,
        created=time.time(),
        revoked=False,
    )
    access.put_api_key(record)
    return NewApiKey(key_id=key_id, secret=secret, record=record)


ACCESS_KEY_NOT_PROVIDED = "Access key not provided"


def parse_basic_authorization(header: str | None) -> tuple[str, str]:
    """``Basic base64(key_id:secret)`` -> (key_id, secret), or 401. Any header
    that is not exactly that (non-ASCII characters, bad base64, bytes that are
    not UTF-8) is "not provided", never an error of the authorizer."""
    if not header:
        raise AuthenticationError(ACCESS_KEY_NOT_PROVIDED)
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise AuthenticationError(ACCESS_KEY_NOT_PROVIDED)
    try:
        # b64decode refuses a non-ASCII str with a plain ValueError, not binascii.Error
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError too
        raise AuthenticationError(ACCESS_KEY_NOT_PROVIDED) from None
    key_id, separator, secret = decoded.partition(":")
    if not separator or not key_id or not secret:
        raise AuthenticationError(ACCESS_KEY_NOT_PROVIDED)
    return key_id, secret


def authenticate(access: AccessStore, authorization_header: str | None) -> Principal:
    """Check a Basic credential against the stored key, or raise
    AuthenticationError (401: not provided / not found) or InvalidSecretError (403)."""
    key_id, secret = parse_basic_authorization(authorization_header)
    # an id no key can have is not looked up (a long one would fail DynamoDB's key check)
    record = access.get_api_key(key_id) if len(key_id) <= MAX_API_KEY_ID_CHARS else None
    if record is None or record.revoked:
        # a revoked key is as good as unknown: say nothing more about it
        raise AuthenticationError("Access key not found")
    candidate = hash_secret(secret, record.salt, record.iterations)
    if not hmac.compare_digest(candidate, record.secret_hash):
        raise InvalidSecretError("invalid secret")
    return Principal(key_id=record.key_id, project=record.project, permissions=record.permissions)
