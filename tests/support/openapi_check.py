"""Every answer the API tests receive is checked against the committed
OpenAPI document (docs/openapi.json): its status must be documented for the
route, and its body must match that status's schema. So the document cannot
drift from what the handlers answer."""

from __future__ import annotations

import functools
import json
from typing import Any

from openapi_schema_validator import OAS31Validator

from propsync_local.apigw import PAGE_FUNCTIONS, HttpResponse, find_route
from propsync_local.cfn_template import REPO_ROOT

OPENAPI_PATH = REPO_ROOT / "docs" / "openapi.json"


class AnswerNotDocumented(AssertionError):
    """An answer the OpenAPI document does not describe."""


@functools.cache
def openapi_document() -> dict[str, Any]:
    return json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@functools.cache
def _validator(resource: str, method: str, status: str) -> OAS31Validator:
    document = openapi_document()
    operation = document["paths"][resource][method]
    if status not in operation["responses"]:
        raise AnswerNotDocumented(
            f"{method.upper()} {resource} answered {status}, which docs/openapi.json does not "
            f"document (documented: {', '.join(operation['responses'])})"
        )
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    # the components travel with the schema, so that its $refs resolve
    return OAS31Validator({**schema, "components": document["components"]})


def check_answer(method: str, path: str, response: HttpResponse) -> None:
    """Raise AnswerNotDocumented unless ``response`` is what the document says
    ``method path`` answers. Paths no route serves (API Gateway's own 404)
    and the web console's pages are not the API's and are not checked."""
    found = find_route(method, path)
    if found is None or found[0].function in PAGE_FUNCTIONS:
        return
    route, _ = found
    validator = _validator(route.resource, method.lower(), str(response.status))
    body = response.json()
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
    if errors:
        problems = "; ".join(
            f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message[:300]}"
            for error in errors[:5]
        )
        raise AnswerNotDocumented(
            f"{method.upper()} {route.resource} answered {response.status} with a body "
            f"docs/openapi.json does not describe: {problems}"
        )
