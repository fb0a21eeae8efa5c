"""What every HTTP handler shares: a router on the route API Gateway matched,
exact-number JSON responses, the one place errors become answers (each domain
error's class decides its own: propsync.errors), request time, and the
caller's identity as the authorizer passed it."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from propsync import http_json
from propsync.access import Permission, Principal
from propsync.errors import (
    AuthenticationError,
    ForbiddenError,
    PropsyncError,
)
from propsync.id_type_cache import id_types_of
from propsync.id_types import IdTypes
from propsync.observability import logger
from propsync.store.access import AccessStore
from propsync.store.throttling import TimeBudgetSpent

# A route that ran out of time waiting for the store (throttled or slow):
# nothing more was stored than the answer says, and a retry may pass.
OUT_OF_TIME = (
    "the store did not answer in time (throttled or slow); the request was not completed, retry it"
)


@dataclass(frozen=True)
class Response:
    """A JSON answer; ``proxy_result`` is what API Gateway's proxy integration takes."""

    status: int
    body: dict[str, Any]

    def proxy_result(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": "application/json"},
            "body": http_json.dumps(self.body),
            "isBase64Encoded": False,
        }


def error_response(error: Exception) -> Response:
    """The one mapping from errors to answers. A PropsyncError's class decides
    its status and body (propsync.errors), as the original service words them:
    ``{"success": false, "error": "..."}`` (``"errors": [...]`` for batches)."""
    if isinstance(error, PropsyncError):
        return Response(error.status, error.body())
    if isinstance(error, TimeBudgetSpent):
        # not the server's fault: the table throttled (or hung) until the
        # answer was due (store.throttling.RetryWithinDeadline)
        logger.warning("time budget spent", extra={"operation": error.kwargs.get("operation")})
        return Response(503, {"success": False, "error": OUT_OF_TIME})
    # Truly the server's failure (DynamoDB unreachable after retries, a bug):
    # clients retry on 5xx, and nothing partial was acknowledged.
    logger.exception("unhandled error", extra={"error_type": type(error).__name__})
    return Response(500, {"success": False, "error": "internal server error; retry"})


RouteT = TypeVar("RouteT", bound=Callable[..., Response])


class Router:
    """Dispatches on the route API Gateway already matched: the event's
    ``httpMethod`` and ``resource`` (the path template, e.g.
    ``/api/customers/{customer_id}``). A route function is called with the
    event and the path parameters by name. Nothing about a request is kept on
    the router, so one router serves any number of requests at once
    (docs/DECISIONS.md: "Handlers route on API Gateway's resource")."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Callable[..., Response]] = {}

    def route(self, method: str, resource: str) -> Callable[[RouteT], RouteT]:
        def register(function: RouteT) -> RouteT:
            self._routes[(method, resource)] = function
            return function

        return register

    def get(self, resource: str) -> Callable[[RouteT], RouteT]:
        return self.route("GET", resource)

    def post(self, resource: str) -> Callable[[RouteT], RouteT]:
        return self.route("POST", resource)

    def patch(self, resource: str) -> Callable[[RouteT], RouteT]:
        return self.route("PATCH", resource)

    def resolve(self, event: dict[str, Any]) -> dict[str, Any]:
        function = self._routes.get((str(event.get("httpMethod")), str(event.get("resource"))))
        try:
            if function is None:
                response = Response(404, {"success": False, "error": "Not found"})
            else:
                response = function(event, **(event.get("pathParameters") or {}))
            return response.proxy_result()
        except Exception as error:  # every error becomes an answer, even one in writing it
            return error_response(error).proxy_result()


def query_value(event: dict[str, Any], name: str) -> str | None:
    value = (event.get("queryStringParameters") or {}).get(name)
    return None if value is None else str(value)


def request_body(event: dict[str, Any]) -> bytes | None:
    """The raw body bytes. API Gateway base64-encodes bodies it does not take
    for text; those are decoded here, not as UTF-8 text, so that a body which
    is not valid UTF-8 becomes "Invalid JSON" rather than a crash."""
    body = event.get("body")
    if body is None:
        return None
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except (binascii.Error, ValueError):
            return b""
    return str(body).encode("utf-8", errors="surrogatepass")


def json_body(event: dict[str, Any]) -> Any:
    """The request body parsed as JSON with exact numbers (see http_json)."""
    return http_json.parse_body(request_body(event))


def received_at(event: dict[str, Any]) -> float:
    """When API Gateway received the request (its requestTimeEpoch, in ms),
    else now: the server time a command without update_timestamp is stamped with."""
    epoch_ms = (event.get("requestContext") or {}).get("requestTimeEpoch")
    if isinstance(epoch_ms, int | float) and not isinstance(epoch_ms, bool) and epoch_ms > 0:
        return epoch_ms / 1000.0
    return time.time()


def request_id(event: dict[str, Any]) -> str:
    """API Gateway's id of the request (the correlation id of its log lines)."""
    return str((event.get("requestContext") or {}).get("requestId", ""))


def require_project(access: AccessStore, project_token: str) -> IdTypes:
    """The project's id types; 400 ``Invalid project id`` unless the project
    exists. Read once a minute per container (propsync.id_type_cache): the
    token is checked on every tracking request, and projects are never
    deleted while in use."""
    return id_types_of(access, project_token)


def principal_from_event(event: dict[str, Any]) -> Principal:
    """The caller as the authorizer described it in the request context."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    if context.get("auth_error"):
        status = int(context.get("auth_status", AuthenticationError.status))
        raise AuthenticationError.with_status(status, str(context["auth_error"]))
    if not context.get("project") or not context.get("key_id"):
        raise AuthenticationError("Access key not provided")
    permissions = frozenset(p for p in str(context.get("permissions", "")).split(",") if p)
    return Principal(
        key_id=str(context["key_id"]), project=str(context["project"]), permissions=permissions
    )


_PERMISSION_WORDS = {
    Permission.GET_CUSTOMER_PROPERTIES: "get customer properties",
    Permission.SET_CUSTOMER_PROPERTIES: "set customer properties",
    Permission.ANONYMIZE_CUSTOMERS: "anonymize customers",
    Permission.IMPORT_CUSTOMERS: "import customers",
}


def require_permission(principal: Principal, permission: Permission) -> None:
    if not principal.can(permission):
        raise ForbiddenError(
            f"No permission to {_PERMISSION_WORDS[permission]} "
            f"(the key needs the {permission.value} permission)"
        )
