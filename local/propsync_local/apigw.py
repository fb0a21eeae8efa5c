"""API Gateway, as far as propsync's routes need it, without Docker: the
routes and handlers of template.yaml, and the events API Gateway would send.

Events are built from the samples in events/ (the same files `sam local invoke
-e` takes and the tests use), with the request's own path, query, headers and
body filled in, so the local stack, the tests and the samples share one shape.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from propsync.limits import MAX_REQUEST_BYTES
from propsync_local import iam
from propsync_local.cfn_template import REPO_ROOT, load_template, resources_of_type

EVENTS_DIR = REPO_ROOT / "events"
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class Route:
    function: str  # logical id in template.yaml
    event_name: str  # the Api event's name under the function's Events
    method: str
    resource: str  # path template, e.g. /api/customers/{customer_id}
    private: bool  # goes through the authorizer

    @property
    def sample_path(self) -> Path:
        return EVENTS_DIR / f"{self.function}.{self.event_name}.json"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method.upper() != self.method:
            return None
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.resource))
        found = re.fullmatch(pattern, path)
        if not found:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}


@cache
def routes() -> tuple[Route, ...]:
    template = load_template()
    default_authorizer = template["Resources"]["PropsyncApi"]["Properties"]["Auth"].get(
        "DefaultAuthorizer"
    )
    found = []
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        for event_name, event in (resource["Properties"].get("Events") or {}).items():
            if event["Type"] != "Api":
                continue
            properties = event["Properties"]
            authorizer = (properties.get("Auth") or {}).get("Authorizer", default_authorizer)
            found.append(
                Route(
                    function=logical_id,
                    event_name=event_name,
                    method=properties["Method"].upper(),
                    resource=properties["Path"],
                    private=authorizer not in (None, "NONE"),
                )
            )
    return tuple(found)


# The functions whose routes serve the web console's files (HTML, script,
# style) rather than the JSON API: docs/API.md and docs/openapi.json describe
# the API, README's "Web console" the console.
PAGE_FUNCTIONS = frozenset({"ConsoleFunction"})


def api_routes() -> tuple[Route, ...]:
    """The routes of the JSON API: every route but the console's pages."""
    return tuple(r for r in routes() if r.function not in PAGE_FUNCTIONS)


def route(function: str, event_name: str) -> Route:
    for candidate in routes():
        if (candidate.function, candidate.event_name) == (function, event_name):
            return candidate
    raise KeyError(f"{function}.{event_name} is not an Api event of template.yaml")


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for candidate in routes():
        params = candidate.match(method, path)
        if params is not None:
            return candidate, params
    return None


@cache
def _authorizer_function() -> str:
    template = load_template()
    auth = template["Resources"]["PropsyncApi"]["Properties"]["Auth"]
    arn = auth["Authorizers"][auth["DefaultAuthorizer"]]["FunctionArn"]
    if "Fn::GetAtt" in arn:  # !GetAtt Function.Arn
        return str(arn["Fn::GetAtt"][0])
    return str(arn["Ref"]).removesuffix(".Alias")  # !Ref Function.Alias: its AutoPublishAlias


def load_handler(function: str) -> Handler:
    """The real handler of a function, imported from its CodeUri as Lambda
    would, run under its IAM policy's DynamoDB actions (propsync_local.iam)."""
    handler = _load_handler(function)

    def run(event: Any, context: Any) -> Any:
        with iam.running(function):
            return handler(event, context)

    return run


@cache
def _load_handler(function: str) -> Handler:
    properties = load_template()["Resources"][function]["Properties"]
    module_name, attribute = properties["Handler"].rsplit(".", 1)
    path = REPO_ROOT / properties["CodeUri"] / f"{module_name}.py"
    unique = f"propsync_function_{function}"
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} for {function}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    spec.loader.exec_module(module)
    handler: Handler = getattr(module, attribute)
    return handler


def authorizer_handler() -> Handler:
    return load_handler(_authorizer_function())


def _sample(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _headers(headers: Mapping[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single = dict(headers)
    return single, {name: [value] for name, value in single.items()}


def rest_event(
    route: Route,
    *,
    path_parameters: Mapping[str, str],
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    authorizer_context: Mapping[str, Any] | None = None,
    request_time: float | None = None,
) -> dict[str, Any]:
    """The event API Gateway's proxy integration sends for this request."""
    event = copy.deepcopy(_sample(route.sample_path))
    path = route.resource
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", value)
    event["path"] = path
    event["pathParameters"] = dict(path_parameters) or None
    event["queryStringParameters"] = dict(query) if query else None
    event["multiValueQueryStringParameters"] = (
        {name: [value] for name, value in query.items()} if query else None
    )
    event["headers"], event["multiValueHeaders"] = _headers(headers or {})
    if isinstance(body, bytes):
        try:
            event["body"], event["isBase64Encoded"] = body.decode("utf-8"), False
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = body, False
    context = event["requestContext"]
    context["path"] = f"/{context['stage']}{path}"
    context["requestId"] = str(uuid.uuid4())
    context["requestTimeEpoch"] = int(
        (time.time() if request_time is None else request_time) * 1000
    )
    context.pop("authorizer", None)
    if authorizer_context is not None:
        context["authorizer"] = dict(authorizer_context)
    return event


def authorizer_event(rest: Mapping[str, Any]) -> dict[str, Any]:
    """The REQUEST authorizer event for a request (its own event built first)."""
    event = copy.deepcopy(_sample(EVENTS_DIR / f"{_authorizer_function()}.Request.json"))
    context = rest["requestContext"]
    arn_prefix = event["methodArn"].split("/")[0]
    event["methodArn"] = f"{arn_prefix}/{context['stage']}/{rest['httpMethod']}{rest['path']}"
    for field in (
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
    ):
        event[field] = copy.deepcopy(rest[field])
    event["requestContext"] = {k: v for k, v in context.items() if k != "authorizer"}
    return event


@cache
def function_timeout(function: str) -> float:
    """The function's Timeout in the template (the Globals' for a name the
    template does not have)."""
    template = load_template()
    own = template["Resources"].get(function, {}).get("Properties", {}).get("Timeout")
    return float(own or template["Globals"]["Function"]["Timeout"])


class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads, and
    the time left of the function's Timeout since the context was made (an
    invocation's start)."""

    def __init__(self, function_name: str):
        self._deadline = time.monotonic() + function_timeout(function_name)
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:eu-west-1:123456789012:function:{function_name}"
        )
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


# Lambda refuses a synchronous invocation whose payload, the whole event, is
# over 6 MB; API Gateway then answers the request itself
LAMBDA_PAYLOAD_LIMIT = MAX_REQUEST_BYTES
# API Gateway's REQUEST_TOO_LARGE gateway response (template.yaml)
REQUEST_TOO_LARGE = "Request too large: at most 6 MB"


def lambda_payload_bytes(event: Mapping[str, Any]) -> int:
    """Bytes of ``event`` as Lambda's invoke payload limit counts them: the
    event as JSON, the body a string in it (its quotes and backslashes
    escaped, and, counted as the response side is, its non-ASCII characters
    as \\u escapes)."""
    return len(json.dumps(event, separators=(",", ":")))


def _gateway_response(status: int, message: str) -> HttpResponse:
    return HttpResponse(
        status,
        {"Content-Type": "application/json"},
        json.dumps({"success": False, "error": message}),
    )


def handle(
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
) -> HttpResponse:
    """One request through API Gateway's steps: route, authorizer for private
    routes (including its gateway responses), then the function's handler.
    Every answer names its request id in ``x-amzn-RequestId``, as API Gateway
    does: the id the functions' log lines carry as their correlation_id."""
    response = _handle(method, path, query=query, headers=headers, body=body)
    request_id = response.headers.pop(_REQUEST_ID_KEY, None) or str(uuid.uuid4())
    return HttpResponse(
        response.status, {**response.headers, "x-amzn-RequestId": request_id}, response.body
    )


_REQUEST_ID_KEY = "x-propsync-request-id"  # carried from _handle to handle only


def _handle(
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None,
    headers: Mapping[str, str] | None,
    body: bytes | str | None,
) -> HttpResponse:
    found = find_route(method, path)
    if found is None:
        return _gateway_response(404, "Not found")
    matched, params = found
    headers = dict(headers or {})
    if body is not None and len(body) > 10 * 1024 * 1024:  # API Gateway's payload limit
        return _gateway_response(413, REQUEST_TOO_LARGE)
    event = rest_event(matched, path_parameters=params, query=query, headers=headers, body=body)
    if matched.private:
        if not any(name.lower() == "authorization" for name in headers):
            return _gateway_response(401, "Access key not provided")  # identity source missing
        try:
            decision = authorizer_handler()(
                authorizer_event(event), LambdaContext(_authorizer_function())
            )
        except Exception as error:
            if str(error) == "Unauthorized":
                return _gateway_response(401, "Access key not provided")
            return _gateway_response(500, "Authorizer error")
        statement = decision["policyDocument"]["Statement"][0]
        if statement["Effect"] != "Allow":
            return _gateway_response(403, "User is not authorized to access this resource")
        event["requestContext"]["authorizer"] = {
            **decision.get("context", {}),
            "principalId": decision["principalId"],
        }
    if lambda_payload_bytes(event) > LAMBDA_PAYLOAD_LIMIT:
        # a body API Gateway takes (up to 10 MB) but Lambda cannot: the
        # function never runs (docs/DECISIONS.md: "Bodies over 6 MB")
        return _gateway_response(413, REQUEST_TOO_LARGE)
    result = load_handler(matched.function)(event, LambdaContext(matched.function))
    response_body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        response_body = base64.b64decode(response_body).decode("utf-8")
    answer_headers = {
        **dict(result.get("headers") or {}),
        _REQUEST_ID_KEY: event["requestContext"]["requestId"],
    }
    return HttpResponse(int(result["statusCode"]), answer_headers, response_body)
