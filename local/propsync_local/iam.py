"""IAM as Lambda applies it, for the DynamoDB calls of the handlers that
`make run` and the tests invoke: while a function's handler runs, propsync's
DynamoDB client may call only the actions that function's policy in
template.yaml grants (as deployed in the stack's tracking mode), and an
action granted only on some partition keys (a ``dynamodb:LeadingKeys``
condition) only on those. Any other call fails as it would on AWS
(AccessDeniedException), so a code path that needs an action its function
lacks fails here, in every test that takes it, not in production. A policy
condition this module cannot apply stops it (ValueError), rather than being
taken as granted.

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
from fnmatch import fnmatchcase
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
    ``TrackingWrites=tracking_writes`` (on every item, or on some: see
    dynamodb_grants)."""
    return frozenset(dynamodb_grants(function, tracking_writes))


# the only condition the template uses, and so the only one applied here
_LEADING_KEYS = ("ForAllValues:StringLike", "dynamodb:LeadingKeys")


@cache
def dynamodb_grants(function: str, tracking_writes: str) -> dict[str, tuple[str, ...] | None]:
    """Each DynamoDB action ``function``'s policy grants: None on every item,
    else the patterns (``*`` and ``?``, as IAM's StringLike) the partition key
    of every item it touches must match."""
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
    granted: dict[str, tuple[str, ...] | None] = {}
    for policy in resources[function]["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = statement["Action"]
            patterns = _leading_key_patterns(function, statement.get("Condition"))
            for action in actions if isinstance(actions, list) else [actions]:
                if not action.startswith("dynamodb:"):
                    continue
                name = action.removeprefix("dynamodb:")
                before = granted.get(name, ())
                if patterns is None or (name in granted and before is None):
                    granted[name] = None  # unconditional somewhere: everywhere
                else:
                    granted[name] = (*(before or ()), *patterns)
    return granted


def _leading_key_patterns(function: str, condition: Any) -> tuple[str, ...] | None:
    if not condition:
        return None
    operator, key = _LEADING_KEYS
    values = condition.get(operator, {}).get(key) if isinstance(condition, dict) else None
    if values is None or condition != {operator: {key: values}}:
        raise ValueError(
            f"{function}: propsync_local.iam applies only {operator} {key}, not {condition}"
        )
    return tuple(values if isinstance(values, list) else [values])


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
        client.meta.events.register("before-parameter-build.dynamodb", _check, unique_id=_HOOK_ID)


def _check(model: Any, params: dict[str, Any], **_kwargs: Any) -> None:
    from propsync.tracking_queue import tracking_writes  # noqa: PLC0415

    with _lock:
        functions = list(_running)
    if not functions:
        return  # not within a handler: a test or a tool using the store directly
    mode = tracking_writes()
    if any(_allowed(model.name, params, dynamodb_grants(f, mode)) for f in functions):
        return
    raise ClientError(
        {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": f"{', '.join(sorted(functions))} is not authorized to perform: "
                f"dynamodb:{model.name} (its policy in template.yaml does not grant it"
                f"{_on(params)})",
            }
        },
        model.name,
    )


def _allowed(
    operation: str, params: dict[str, Any], grants: dict[str, tuple[str, ...] | None]
) -> bool:
    if operation not in grants:
        return False
    patterns = grants[operation]
    if patterns is None:
        return True
    keys = _leading_keys(params)
    return bool(keys) and all(any(fnmatchcase(k, p) for p in patterns) for k in keys)


def _leading_keys(params: dict[str, Any]) -> list[str]:
    """The partition keys a single-item call touches (none for any other:
    a grant on some keys then allows nothing, which no code needs yet)."""
    item = params.get("Key") or params.get("Item") or {}
    return [str(value["S"]) for name, value in item.items() if name == _partition_key()]


@cache
def _partition_key() -> str:
    schema = load_template()["Resources"]["PropsyncTable"]["Properties"]["KeySchema"]
    return str(next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH"))


def _on(params: dict[str, Any]) -> str:
    keys = _leading_keys(params)
    return f" on the item {keys[0]!r}" if keys else ""
