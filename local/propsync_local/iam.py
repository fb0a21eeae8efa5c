"""IAM as Lambda applies it, for the DynamoDB calls of the handlers that
`make run` and the tests invoke: while a function's handler runs, propsync's
DynamoDB client may call only the actions that function's policy in
template.yaml grants (as deployed in the stack's tracking mode). Any other
call fails as it would on AWS (AccessDeniedException), so a code path that
needs an action its function lacks fails here, in every test that takes it,
not in production.

Only propsync's own client is checked (the one store.dynamo makes for a
container), and only while a handler runs: a test's own client, reading the
table to check what a handler did, is never refused. Handlers of several
functions may run at once in one process (tests); a call is then allowed if
any of them may make it, so a test never sees a refusal AWS would not give.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from propsync_local.cfn_template import load_template
from propsync_local.deployed_template import deployed

_running: Counter[str] = Counter()  # function -> handlers of it running now
_lock = threading.Lock()
_HOOK_ID = "propsync-local-iam"


@cache
def dynamodb_actions(function: str, tracking_writes: str) -> frozenset[str]:
    """The DynamoDB actions ``function``'s policy grants, deployed with
    ``TrackingWrites=tracking_writes``."""
    template = load_template()
    resources = deployed(template, TrackingWrites=tracking_writes)["Resources"]
    if function not in resources:
        # a function of the other mode (the worker, invoked as `sam local
        # invoke` would against a stack of either mode): as that mode deploys it
        modes = template["Parameters"]["TrackingWrites"]["AllowedValues"]
        resources = next(
            r
            for mode in modes
            if function in (r := deployed(template, TrackingWrites=mode)["Resources"])
        )
    granted = set()
    for policy in resources[function]["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = statement["Action"]
            for action in actions if isinstance(actions, list) else [actions]:
                if action.startswith("dynamodb:"):
                    granted.add(action.removeprefix("dynamodb:"))
    return frozenset(granted)


@contextmanager
def running(function: str) -> Iterator[None]:
    """Within the block, ``function``'s handler runs: propsync's DynamoDB
    client is held to its policy."""
    _watch_propsync_client()
    with _lock:
        _running[function] += 1
    try:
        yield
    finally:
        with _lock:
            _running[function] -= 1
            if not _running[function]:
                del _running[function]


def _watch_propsync_client() -> None:
    # imported late: the handlers' environment (table name, endpoint) is set
    # by then; the clients are the container's (the API's, and the import
    # chunks' paced one), made now if not yet
    from propsync.store.dynamo import (  # noqa: PLC0415
        client_and_table_from_environment,
        import_client_and_table_from_environment,
        import_record_client_and_table_from_environment,
    )

    for factory in (
        client_and_table_from_environment,
        import_client_and_table_from_environment,
        import_record_client_and_table_from_environment,
    ):
        try:
            client, _ = factory()
        except RuntimeError:  # no table configured: the handler will say so itself
            return
        client.meta.events.register("before-call.dynamodb", _check, unique_id=_HOOK_ID)


def _check(model: Any, **_kwargs: Any) -> None:
    from propsync.tracking_queue import tracking_writes  # noqa: PLC0415

    with _lock:
        functions = list(_running)
    if not functions:
        return  # not within a handler: a test or a tool using the store directly
    mode = tracking_writes()
    if any(model.name in dynamodb_actions(function, mode) for function in functions):
        return
    raise ClientError(
        {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": f"{', '.join(sorted(functions))} is not authorized to perform: "
                f"dynamodb:{model.name} (its policy in template.yaml does not grant it)",
            }
        },
        model.name,
    )
