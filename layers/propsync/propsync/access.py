"""API keys: creation, salted hashing and verification, and permissions.

Secrets are shown once, when a key is created, and stored only as a salted
PBKDF2-SHA256 hash; verification compares hashes in constant time. A key
belongs to one project and carries permissions. Too many wrong secrets lock
a key for a while (LOCKOUT), so guessing costs the guesser time, not the
service hashes (docs/DECISIONS.md: "Wrong secrets lock a key").
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
from datetime import UTC, datetime
from enum import StrEnum

from botocore.exceptions import BotoCoreError, ClientError

from propsync.errors import AuthenticationError, InvalidSecretError, KeyLockedError
from propsync.observability import logger
from propsync.store.access import AccessStore, ApiKeyRecord, KeyFailures

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


@dataclass(frozen=True)
class Lockout:
    """``failures`` wrong secrets within ``window_seconds`` of the first lock
    the key for ``lock_seconds``: while locked every request with it is 429,
    its secret not even hashed. ``lock_seconds >= window_seconds``, so a
    window has closed when its lock ends and the next wrong secret starts
    counting from one."""

    failures: int
    window_seconds: float
    lock_seconds: float

    def __post_init__(self) -> None:
        if not (self.failures >= 1 and 0 < self.window_seconds <= self.lock_seconds):
            raise ValueError(f"a lockout needs failures >= 1 and 0 < window <= lock: {self}")


# Generated secrets (256 bits) cannot be guessed at any rate; the lock bounds
# what guessing costs the service (20 hashes per key before each 15-minute
# lock, plus the guesses already past their read when it is set: 40 sent at
# once are all hashed, 21 of them answered 429) and protects a secret a
# person chose. 20 in 10 minutes leaves a person or a misconfigured client
# room for typos before the key's other users lose it (docs/DECISIONS.md:
# "Wrong secrets lock a key").
LOCKOUT = Lockout(failures=20, window_seconds=600, lock_seconds=900)


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


def secret_matches(record: ApiKeyRecord, secret: str) -> bool:
    """The secret is the key's (compared in constant time). Counts nothing:
    authenticate counts the wrong secrets of requests."""
    candidate = hash_secret(secret, record.salt, record.iterations)
    return hmac.compare_digest(candidate, record.secret_hash)


def locked_error(locked_until: float) -> KeyLockedError:
    until = datetime.fromtimestamp(locked_until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return KeyLockedError(
        f"too many wrong secrets: this API key is locked until {until}; "
        "retry after that time, or ask the project's administrator to unlock it"
    )


def authenticate(
    access: AccessStore,
    authorization_header: str | None,
    *,
    now: float | None = None,
    lockout: Lockout = LOCKOUT,
) -> Principal:
    """Check a Basic credential against the stored key, or raise
    AuthenticationError (401: not provided / not found), InvalidSecretError
    (403) or KeyLockedError (429: the key is locked, whatever the secret).

    An unknown or revoked key costs one read, as it did before keys could be
    locked, and says nothing more. A known key costs a second read (its
    wrong secrets); a locked one is refused without hashing; a wrong secret
    is counted, and the one that locks the key is answered 429 already."""
    key_id, secret = parse_basic_authorization(authorization_header)
    # an id no key can have is not looked up (a long one would fail DynamoDB's key check)
    record = access.get_api_key(key_id) if len(key_id) <= MAX_API_KEY_ID_CHARS else None
    if record is None or record.revoked:
        # a revoked key is as good as unknown: say nothing more about it
        raise AuthenticationError("Access key not found")
    now = time.time() if now is None else now
    failures = access.key_failures(key_id)
    locked_until = _locked_until(failures, now)
    if locked_until is not None:
        raise locked_error(locked_until)
    if not secret_matches(record, secret):
        counted = _count_failed_secret(access, key_id, now, lockout, failures)
        locked_until = _locked_until(counted, now)
        if counted is not None and locked_until is not None:
            logger.warning(
                "API key locked after wrong secrets",
                extra={
                    "key_id": key_id,
                    "failed_secrets": counted.failed_secrets,
                    "locked_until": locked_until,
                },
            )
            raise locked_error(locked_until)
        raise InvalidSecretError("invalid secret")
    return Principal(key_id=record.key_id, project=record.project, permissions=record.permissions)


def _locked_until(failures: KeyFailures | None, now: float) -> float | None:
    """When the key's lock ends, if it is locked at ``now``."""
    return failures.locked_until if failures is not None and failures.locked(now) else None


def _count_failed_secret(
    access: AccessStore,
    key_id: str,
    now: float,
    lockout: Lockout,
    current: KeyFailures | None,
) -> KeyFailures | None:
    """Count the wrong secret; None if the store would not (the answer is
    still 403: a failed count must not turn a refusal into a 5xx)."""
    try:
        return access.count_failed_secret(
            key_id,
            now,
            window_seconds=lockout.window_seconds,
            lock_after=lockout.failures,
            lock_seconds=lockout.lock_seconds,
            current=current,
        )
    except (BotoCoreError, ClientError, RuntimeError) as error:
        logger.exception(
            "wrong secret not counted", extra={"key_id": key_id, "error_type": type(error).__name__}
        )
        return None
