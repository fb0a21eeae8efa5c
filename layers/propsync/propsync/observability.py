"""Logger, Metrics and (opt-in) X-Ray SDK tracing, shared by every function.

Service name, log level and metrics namespace come from the Powertools
environment variables set in template.yaml's Globals. Property values and
secrets are never logged: handlers log ids, counts and outcomes only.

Tracing: every function runs with Lambda's active tracing, which records each
invocation (init, invocation, overhead) without any code. The X-Ray SDK, which
adds a subsegment per DynamoDB/S3/SQS call, costs about 300 ms of cold start
(it creates two botocore clients when imported, aws-xray-sdk-python#311), so
Powertools' Tracer is created only when ``PROPSYNC_XRAY_SDK=true`` (template
parameter ``XRaySdkTracing``); otherwise the decorators below change nothing.
docs/DECISIONS.md: "The X-Ray SDK is opt-in".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

# The submodules, not ``aws_lambda_powertools``: the package's __init__ also
# imports the tracing module.
from aws_lambda_powertools.logging import Logger, correlation_paths
from aws_lambda_powertools.metrics import Metrics

F = TypeVar("F", bound=Callable[..., Any])

logger = Logger()
metrics = Metrics()


def log_api_request(handler: F) -> F:
    """Powertools' ``inject_lambda_context`` for a function API Gateway
    invokes (the routes' handlers and the REQUEST authorizer, whose events
    both carry ``requestContext.requestId``): every line the Logger writes
    during the invocation carries API Gateway's request id as
    ``correlation_id``, so one request's lines are found together across
    functions and beside API Gateway's own logs; ``clear_state`` keeps a
    container's next request from carrying this one's keys."""
    return logger.inject_lambda_context(
        handler, correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
    )


def xray_sdk_enabled() -> bool:
    return os.environ.get("PROPSYNC_XRAY_SDK", "false").strip().lower() == "true"


def _new_tracer() -> Any:
    from aws_lambda_powertools.tracing import Tracer  # noqa: PLC0415 - opt-in, ~300 ms

    return Tracer()


_tracer: Any = _new_tracer() if xray_sdk_enabled() else None


def capture_lambda_handler(handler: F) -> F:
    """Powertools' ``Tracer.capture_lambda_handler`` when the SDK is on."""
    return handler if _tracer is None else _tracer.capture_lambda_handler(handler)


def capture_method(method: F) -> F:
    """Powertools' ``Tracer.capture_method`` when the SDK is on."""
    return method if _tracer is None else _tracer.capture_method(method)


@contextmanager
def keys_logged(**keys: str) -> Iterator[None]:
    """Every line logged meanwhile carries ``keys``: the formatter adds them to
    each line of the propsync loggers, whichever module or thread logs it (the
    keys are the process's: a Lambda container handles one event at a time).
    Unlike Powertools' append_context_keys, a key that was set before (an
    outer call's) gets its value back afterwards instead of being removed."""
    before = {name: logger.get_current_keys().get(name) for name in keys}
    logger.append_keys(**keys)
    try:
        yield
    finally:
        logger.remove_keys([name for name, value in before.items() if value is None])
        logger.append_keys(**{name: value for name, value in before.items() if value is not None})
