"""What every HTTP handler shares: the resolver with exact-number JSON, the one
mapping from domain errors to HTTP statuses, request time, and the caller's
identity as the authorizer passed it."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from propsync import http_json
from propsync.access import AuthenticationError, Permission, Principal, is_project_token
from propsync.errors import IdentityConflictError, InvalidInputError, PropsyncError
from propsync.observability import logger
from propsync.store import AccessStore
from propsync.tracking import BatchError

_PROJECT_CACHE_SECONDS = 60.0
_known_projects: dict[str, float] = {}


class InvalidProjectError(PropsyncError):
    """The project token in the path names no project."""


class CustomerNotFoundError(PropsyncError):
    """No customer of the caller's project has this id."""


class ForbiddenError(PropsyncError):
    """The caller's key lacks a permission or the project."""


def json_response(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=http_json.dumps(body))


def new_resolver() -> APIGatewayRestResolver:
    """A resolver whose errors all answer as the original service does:
    ``{"success": false, "error": "..."}`` (or ``"errors": [...]`` for batches)."""
    app = APIGatewayRestResolver(serializer=http_json.dumps)

    @app.exception_handler(AuthenticationError)
    def _auth(error: AuthenticationError) -> Response[str]:
        return json_response(error.status, {"success": False, "error": error.message})

    @app.exception_handler(http_json.RequestTooLargeError)
    def _too_large(error: http_json.RequestTooLargeError) -> Response[str]:
        return json_response(413, {"success": False, "error": str(error)})

    @app.exception_handler(BatchError)
    def _bad_batch(error: BatchError) -> Response[str]:
        return json_response(400, {"success": False, "errors": [str(error)]})

    @app.exception_handler(InvalidProjectError)
    def _bad_project(_error: InvalidProjectError) -> Response[str]:
        return json_response(400, {"success": False, "error": "Invalid project id"})

    @app.exception_handler(CustomerNotFoundError)
    def _no_customer(_error: CustomerNotFoundError) -> Response[str]:
        return json_response(404, {"success": False, "error": "Customer does not exist"})

    @app.exception_handler(ForbiddenError)
    def _forbidden(error: ForbiddenError) -> Response[str]:
        return json_response(403, {"success": False, "error": str(error)})

    @app.exception_handler(IdentityConflictError)
    def _conflict(error: IdentityConflictError) -> Response[str]:
        return json_response(409, {"success": False, "error": str(error)})

    @app.exception_handler(InvalidInputError)
    def _invalid(error: InvalidInputError) -> Response[str]:
        return json_response(400, {"success": False, "error": str(error)})

    @app.not_found
    def _not_found(_error: NotFoundError) -> Response[str]:
        return json_response(404, {"success": False, "error": "Not found"})

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        # Truly the server's failure (DynamoDB unreachable after retries, a bug):
        # clients retry on 5xx, and nothing partial was acknowledged.
        logger.exception("unhandled error", extra={"error_type": type(error).__name__})
        return json_response(500, {"success": False, "error": "internal server error; retry"})

    return app


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


def require_project(access: AccessStore, project_token: str) -> None:
    """400 ``Invalid project id`` unless the project exists. Known projects are
    remembered for a minute per container: the token is checked on every
    tracking request, and projects are never deleted while in use."""
    if not is_project_token(project_token):
        raise InvalidProjectError(project_token)
    now = time.monotonic()
    if _known_projects.get(project_token, 0.0) > now:
        return
    if not access.project_exists(project_token):
        raise InvalidProjectError(project_token)
    _known_projects[project_token] = now + _PROJECT_CACHE_SECONDS


def forget_known_projects() -> None:
    """For tests: drop the per-container project cache."""
    _known_projects.clear()


def principal_from_event(event: dict[str, Any]) -> Principal:
    """The caller as the authorizer described it in the request context."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    if context.get("auth_error"):
        raise AuthenticationError(int(context.get("auth_status", 401)), str(context["auth_error"]))
    if not context.get("project") or not context.get("key_id"):
        raise AuthenticationError(401, "Access key not provided")
    permissions = frozenset(p for p in str(context.get("permissions", "")).split(",") if p)
    return Principal(
        key_id=str(context["key_id"]), project=str(context["project"]), permissions=permissions
    )


_PERMISSION_WORDS = {
    Permission.GET_CUSTOMER_PROPERTIES: "get customer properties",
    Permission.SET_CUSTOMER_PROPERTIES: "set customer properties",
}


def require_permission(principal: Principal, permission: Permission) -> None:
    if not principal.can(permission):
        raise ForbiddenError(
            f"No permission to {_PERMISSION_WORDS[permission]} "
            f"(the key needs the {permission.value} permission)"
        )
