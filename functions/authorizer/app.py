"""API Gateway REQUEST authorizer for the private routes: HTTP Basic
``<api key id>:<api secret>``.

API Gateway caches each answer by the whole Authorization header (the
identity source), so one key's answer is never served to another. A malformed
or missing credential is "Unauthorized" (API Gateway answers 401
"Access key not provided"); every other outcome is described in the context
for the handler, which answers with the exact status and message
(docs/DECISIONS.md: "Authorizer failures reach the client through the handler").
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

import propsync.snapstart  # noqa: F401 - registers SnapStart's runtime hooks
from propsync.access import ACCESS_KEY_NOT_PROVIDED, authenticate
from propsync.errors import AuthenticationError
from propsync.observability import log_api_request, logger
from propsync.store.access import access_store_from_environment


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _api_wide(method_arn: str) -> str:
    """arn:...:api-id/stage/VERB/path -> arn:...:api-id/stage/*/*: the cached
    policy must cover every private route the same key may call."""
    api, stage = method_arn.split("/")[:2]
    return f"{api}/{stage}/*/*"


def _policy(principal_id: str, method_arn: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": _api_wide(method_arn),
                }
            ],
        },
        "context": context,
    }


@log_api_request
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        principal = authenticate(access_store_from_environment(), _header(event, "authorization"))
    except AuthenticationError as error:
        if str(error) == ACCESS_KEY_NOT_PROVIDED:
            raise Exception("Unauthorized") from None  # API Gateway's literal for a 401
        logger.info("credential refused", extra={"status": error.status})
        return _policy(
            "refused",
            event["methodArn"],
            {"auth_status": error.status, "auth_error": str(error)},
        )
    logger.info("credential accepted", extra={"key_id": principal.key_id})
    return _policy(
        principal.key_id,
        event["methodArn"],
        {
            "key_id": principal.key_id,
            "project": principal.project,
            "permissions": ",".join(sorted(principal.permissions)),
        },
    )
