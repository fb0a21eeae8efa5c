"""Domain exceptions. Handlers map these to HTTP statuses in one place.

Every message says what was wrong and what is allowed, so that it can be shown
to the client as it is. Input whose size no check has bounded yet is quoted
through :func:`shown`, which keeps the quote short.
"""

import reprlib
from typing import Any

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
    """Base of every error propsync raises on purpose."""


class InvalidInputError(PropsyncError, ValueError):
    """The request is malformed; nothing was stored."""


class InvalidTimestampError(InvalidInputError):
    """An update timestamp that propsync refuses."""


class InvalidPropertyError(InvalidInputError):
    """A property name or value that propsync refuses."""


class InvalidCustomerIdsError(InvalidInputError):
    """customer_ids that cannot identify a customer."""


class IdentityConflictError(PropsyncError):
    """The ids of a command belong to different customers, or would give a
    customer a second value of a hard id. Nothing of the command was written."""


class PartiallyAppliedError(PropsyncError):
    """A write that stopped part way. A command split into several updates (see
    ``store.customers.write_properties``) can have stored some of them: ``applied`` lists
    those properties, so a caller never reports less than what was stored."""

    def __init__(self, message: str, applied: tuple[str, ...] = ()):
        super().__init__(message)
        self.applied = applied


class CustomerTooLargeError(PartiallyAppliedError):
    """The customer would outgrow DynamoDB's 400 KB item limit."""


class WriteContentionError(PartiallyAppliedError):
    """The conditional write kept failing because other writers kept changing
    the same properties; retrying the command later is safe."""
