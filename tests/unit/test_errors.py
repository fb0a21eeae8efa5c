"""Each domain error decides its own HTTP answer (propsync.errors), and
propsync.api.error_response only reads it: this table pins every answer, so a
changed status or body shows up here as well as in tests/api."""

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import propsync
from propsync import errors, tracking
from propsync.api import error_response
from propsync.errors import (
    AuthenticationError,
    BatchError,
    CustomerNotFoundError,
    CustomerTooLargeError,
    ExecutionNotFoundError,
    ForbiddenError,
    IdentityConflictError,
    IdTypeKindError,
    InvalidCellError,
    InvalidCustomerIdsError,
    InvalidImportError,
    InvalidInputError,
    InvalidJsonError,
    InvalidMappingError,
    InvalidProjectError,
    InvalidPropertyError,
    InvalidSecretError,
    InvalidTimestampError,
    KeyLockedError,
    NumberOutOfRangeError,
    PartiallyAppliedError,
    PropsyncError,
    RequestTooLargeError,
    UnknownIdTypeError,
    UnknownProjectError,
    WriteContentionError,
)

APPLIED = ("plan", "tier")


def refused(message: str) -> dict[str, object]:
    return {"success": False, "error": message}


# Every error of propsync.errors, raised as the code raises it, and its answer.
ANSWERS: list[tuple[PropsyncError, int, dict[str, object]]] = [
    (InvalidInputError("bad input"), 400, refused("bad input")),
    (InvalidTimestampError("bad time"), 400, refused("bad time")),
    (InvalidPropertyError("bad property"), 400, refused("bad property")),
    (InvalidCustomerIdsError("bad ids"), 400, refused("bad ids")),
    (UnknownIdTypeError("id type 'x' is not known"), 400, refused("id type 'x' is not known")),
    (IdTypeKindError("kinds never change"), 400, refused("kinds never change")),
    (InvalidMappingError(["a", "b"]), 400, refused("invalid mapping: a; b")),
    (InvalidCellError("not a number"), 400, refused("not a number")),
    (UnknownProjectError("no-such-project"), 400, refused("Invalid project id")),
    (InvalidJsonError("Invalid JSON"), 400, refused("Invalid JSON")),
    (NumberOutOfRangeError("out of range"), 400, refused("out of range")),
    (RequestTooLargeError("too large"), 413, refused("too large")),
    (BatchError("not a batch"), 400, {"success": False, "errors": ["not a batch"]}),
    # fixed texts: the token or ids the error was raised with are not repeated
    (InvalidProjectError("no-such-project"), 400, refused("Invalid project id")),
    (CustomerNotFoundError({"registered": "x"}), 404, refused("Customer does not exist")),
    (ExecutionNotFoundError(), 404, refused("Import execution does not exist")),
    (
        InvalidImportError(["a", "b"]),
        400,
        {**refused("the import cannot start: a; b"), "problems": ["a", "b"]},
    ),
    (AuthenticationError("Access key not found"), 401, refused("Access key not found")),
    (InvalidSecretError("invalid secret"), 403, refused("invalid secret")),
    (KeyLockedError("locked until then"), 429, refused("locked until then")),
    (ForbiddenError("no permission"), 403, refused("no permission")),
    (IdentityConflictError("two customers"), 409, refused("two customers")),
    (
        PartiallyAppliedError("stopped", APPLIED),
        503,
        {**refused("stopped"), "applied": list(APPLIED)},
    ),
    (
        CustomerTooLargeError("400 KB", APPLIED),
        400,
        {**refused("400 KB"), "applied": list(APPLIED)},
    ),
    (
        WriteContentionError("retry", APPLIED),
        503,
        {**refused("retry"), "applied": list(APPLIED)},
    ),
]


def _subclasses(cls: type) -> set[type]:
    found = set()
    for subclass in cls.__subclasses__():
        found |= {subclass, *_subclasses(subclass)}
    return found


def _every_propsync_error() -> list[type[PropsyncError]]:
    """Every subclass of PropsyncError anywhere in the propsync package."""
    for module in pkgutil.walk_packages(propsync.__path__, "propsync."):
        importlib.import_module(module.name)
    return sorted(_subclasses(PropsyncError), key=lambda cls: cls.__qualname__)


@pytest.mark.parametrize(("error", "status", "body"), ANSWERS, ids=lambda v: type(v).__name__)
def test_each_error_is_answered_with_the_status_and_body_of_its_class(error, status, body):
    response = error_response(error)
    assert (response.status, response.body) == (status, body)


def test_the_table_names_every_error_of_the_errors_module():
    defined = {cls for cls in _subclasses(PropsyncError) if cls.__module__ == errors.__name__}
    assert {type(error) for error, _, _ in ANSWERS} == defined


def test_exactly_the_errors_a_retry_can_get_past_answer_5xx():
    """A 5xx tells clients to retry; a 4xx that said "retry" would not be
    retried, and a 5xx for the request's own fault would be retried forever."""
    for error, status, _ in ANSWERS:
        assert error.retryable == (status >= 500), type(error).__name__


@pytest.mark.parametrize(
    "error_class",
    _every_propsync_error(),
    ids=lambda cls: cls.__qualname__,
)
def test_every_propsync_error_states_its_status(error_class):
    """A new error class without a status fails here, not as a crash in
    error_response when a client first meets it."""
    assert isinstance(getattr(error_class, "status", None), int)
    assert 400 <= error_class.status <= 599


@pytest.mark.parametrize(
    "error_class", [KeyError, RuntimeError, ValueError, TypeError, OSError, Exception]
)
@given(text=st.text(min_size=1))
def test_any_other_exception_is_a_500_that_does_not_show_its_text(error_class, text):
    """InvalidInputError is a ValueError, but a plain ValueError is a bug."""
    response = error_response(error_class(f"secret:{text}"))
    assert (response.status, response.body) == (
        500,
        {"success": False, "error": "internal server error; retry"},
    )
    assert "secret:" not in response.proxy_result()["body"]


def test_the_error_mapping_needs_no_module_that_raises_the_errors():
    """api answers every route's errors without loading the tracking module
    (it once did, for BatchError alone)."""
    probe = "import sys, propsync.api; print('propsync.tracking' in sys.modules)"
    layer = str(Path(propsync.__file__).parent.parent)
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": layer},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert loaded.strip() == "False"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(401, AuthenticationError), (403, InvalidSecretError), (429, KeyLockedError)],
)
def test_the_authorizers_status_gives_back_its_error(status, error_class):
    error = AuthenticationError.with_status(status, "refused")
    assert (type(error), error.status, str(error)) == (error_class, status, "refused")


COMMAND = {"customer_ids": {"registered": "x"}, "properties": {"tier": "gold"}}


@pytest.mark.parametrize(
    "error",
    [error for error, _, _ in ANSWERS] + [RuntimeError("the store is unreachable")],
    ids=lambda error: type(error).__name__,
)
def test_the_single_command_route_answers_the_errors_own_status(error, monkeypatch):
    """The error's class decides (5xx exactly when a retry can succeed: see
    the test above); anything unexpected (the store failing after botocore's
    retries) is a 503, worth a retry too."""

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(tracking, "update_customer", fail)
    status, result = tracking.run_customers_command(None, "project", COMMAND, received_at=1.0)
    assert status == (error.status if isinstance(error, PropsyncError) else 503)
    assert result["success"] is False
    assert len(result["errors"]) == 1
    if isinstance(error, PartiallyAppliedError):
        assert result["applied"] == list(APPLIED)
    else:
        assert "applied" not in result
