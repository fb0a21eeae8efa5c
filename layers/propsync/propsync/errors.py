"""Domain exceptions, and the HTTP answer each one gets.

Every error propsync raises on purpose is a :class:`PropsyncError` defined
here, and its class decides the answer: ``status`` (the HTTP status),
``retryable`` (whether sending the same request later can succeed) and
``body()`` (the JSON the client gets). ``propsync.api.error_response`` only
reads them, so a route never chooses a status for an error itself.

Every message says what was wrong and what is allowed, so that it can be shown
to the client as it is. Input whose size no check has bounded yet is quoted
through :func:`shown`, which keeps the quote short.
"""

from __future__ import annotations

import reprlib
from typing import Any, ClassVar

# At most a few dozen characters of any input, nested containers as [...]:
# a 6 MB body must not become a larger answer (Lambda refuses responses over
# 6 MB, which the client would see as a 5xx), and the work stays bounded too.
_SHORT = reprlib.Repr(
    maxlevel=1, maxlist=3, maxtuple=3, maxdict=2, maxset=3, maxstring=40, maxlong=40, maxother=40
)


def shown(value: Any) -> str:
    """``repr(value)`` cut to a few dozen characters, for error messages."""
    return _SHORT.repr(value)


class PropsyncError(Exception):
    """Base of every error propsync raises on purpose. A subclass states its
    ``status`` (this base gives none, so that one cannot be forgotten:
    tests/unit/test_errors.py checks every subclass); the answer is
    ``{"success": false, "error": "<message>"}`` plus its ``details()``."""

    status: ClassVar[int]
    # A 5xx tells clients to send the request again; only errors that a later
    # attempt can get past say so (the single-command route answers 503 then).
    retryable: ClassVar[bool] = False

    def details(self) -> dict[str, Any]:
        """What an answer about this error carries beside its message."""
        return {}

    def body(self) -> dict[str, Any]:
        """The JSON the client gets, in the original service's words."""
        return {"success": False, "error": str(self), **self.details()}


class InvalidInputError(PropsyncError, ValueError):
    """The request is malformed; nothing was stored."""

    status = 400


class InvalidTimestampError(InvalidInputError):
    """An update timestamp that propsync refuses."""


class InvalidPropertyError(InvalidInputError):
    """A property name or value that propsync refuses."""


class InvalidCustomerIdsError(InvalidInputError):
    """customer_ids that cannot identify a customer."""


class UnknownIdTypeError(InvalidCustomerIdsError):
    """``customer_ids`` name an id type the project does not know."""


class IdTypeKindError(InvalidInputError):
    """An id type exists with the other kind; kinds never change (admin)."""


class InvalidJsonError(InvalidInputError):
    """The body is not JSON (the original service answers "Invalid JSON")."""


class NumberOutOfRangeError(InvalidInputError):
    """A number whose exponent no Decimal holds (``1e9999999999999999999``)."""


class RequestTooLargeError(InvalidInputError):
    """The body is over Lambda's 6 MB payload limit."""

    status = 413


class BatchError(InvalidInputError):
    """The request is not a batch; the whole request is refused, answered in
    the shape of a command's result (``errors``, a list)."""

    def body(self) -> dict[str, Any]:
        return {"success": False, "errors": [str(self)]}


class InvalidProjectError(PropsyncError):
    """The project token in the path names no project. The answer is the
    original service's fixed text, whatever the token was."""

    status = 400

    def body(self) -> dict[str, Any]:
        return {"success": False, "error": "Invalid project id"}


class UnknownProjectError(InvalidProjectError):
    """The id types of a project that does not exist were asked for (the
    admin CLI shows the message; a route answers "Invalid project id")."""

    def __init__(self, project: str):
        super().__init__(f"Invalid project id: no project {shown(project)}")
        self.project = project


class CustomerNotFoundError(PropsyncError):
    """No customer of the caller's project has this id. The answer is the
    original service's fixed text; it does not repeat the id."""

    status = 404

    def body(self) -> dict[str, Any]:
        return {"success": False, "error": "Customer does not exist"}


class AuthenticationError(PropsyncError):
    """No usable credential: none, a malformed one, or one of no (or a
    revoked) key."""

    status = 401

    @staticmethod
    def with_status(status: int, message: str) -> AuthenticationError:
        """The refusal the authorizer described by its status and message (an
        authorizer's context carries strings and numbers, not exceptions)."""
        if status == InvalidSecretError.status:
            return InvalidSecretError(message)
        if status == KeyLockedError.status:
            return KeyLockedError(message)
        return AuthenticationError(message)


class InvalidSecretError(AuthenticationError):
    """A known key with the wrong secret."""

    status = 403


class KeyLockedError(AuthenticationError):
    """A known key locked after too many wrong secrets (propsync.access:
    LOCKOUT): refused, whatever its secret, until the lock ends or an
    administrator lifts it. Not retryable in the 5xx sense: a retry before the
    time the message names gets the same answer."""

    status = 429


class ForbiddenError(PropsyncError):
    """The caller's key lacks a permission or the project."""

    status = 403


class IdentityConflictError(PropsyncError):
    """The ids of a command name customers that may never be merged: they hold
    different values of one hard id type. Nothing of the command was written."""

    status = 409


class PartiallyAppliedError(PropsyncError):
    """A write that stopped part way. A command split into several updates (see
    ``store.customers.write_properties``) can have stored some of them:
    ``applied`` lists those properties, and every answer names them, so a
    caller never reports less than what was stored. Unless a subclass knows
    better, trying the command again can finish it."""

    status = 503
    retryable = True

    def __init__(self, message: str, applied: tuple[str, ...] = ()):
        super().__init__(message)
        self.applied = applied

    def details(self) -> dict[str, Any]:
        return {"applied": list(self.applied)}


class CustomerTooLargeError(PartiallyAppliedError):
    """The customer would outgrow DynamoDB's 400 KB item limit: the request's
    fault, which the same request meets again."""

    status = 400
    retryable = False


class WriteContentionError(PartiallyAppliedError):
    """The conditional write kept failing because other writers kept changing
    the same properties; retrying the command later is safe."""

    status = 503
    retryable = True


class InvalidMappingError(InvalidInputError):
    """The mapping cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        super().__init__("invalid mapping: " + "; ".join(problems))
        self.problems = problems


class InvalidCellError(PropsyncError):
    """A cell that does not parse as its column's type; rejects its row (a
    reason in an import's report, never a route's answer: 400 if it were)."""

    status = 400


class InvalidImportError(InvalidInputError):
    """An import the API cannot start: its names, size or mapping (and the
    header given) break the importer's rules; ``problems`` lists every one
    and the answer carries them. Nothing was written."""

    def __init__(self, problems: list[str]):
        super().__init__("the import cannot start: " + "; ".join(problems))
        self.problems = problems

    def details(self) -> dict[str, Any]:
        return {"problems": list(self.problems)}


class ExecutionNotFoundError(PropsyncError):
    """No import execution of the caller's project has this id (another
    project's is "not found" too). The answer does not repeat the id."""

    status = 404

    def body(self) -> dict[str, Any]:
        return {"success": False, "error": "Import execution does not exist"}
