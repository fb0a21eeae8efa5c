"""The tracking API's commands: one batch in, one result per command out.

A batch is refused whole only when it is not a batch (no ``commands`` list, or
more than 50). Otherwise every command gets its own result, in the order sent,
and one bad command never fails the others. The commands of different
customers run concurrently; the commands of one customer run one after another
in the order sent, so that each result (``applied``/``stale``) says what
happened to that command as if the batch were applied in order (two racing
writes would both be "applied" whichever landed last). The identity lookups of
all ``customers`` commands are made together, in as few ``BatchGetItem``
requests as possible.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from propsync.customer_updates import (
    UpdateResult,
    lookup_ids,
    run_concurrently,
    same_customer_groups,
    update_customer,
    with_owner,
)
from propsync.errors import InvalidInputError, PropsyncError
from propsync.id_types import DEFAULT_ID_TYPES, IdTypes
from propsync.models import (
    CUSTOMER_EVENTS,
    CustomersCommand,
    CustomersCommandData,
    SystemCookieCommand,
    SystemTimeCommand,
    is_unicode,
    parse_command,
    parse_command_data,
)
from propsync.store.customers import CustomerStore

logger = logging.getLogger(__name__)

RETRY_LATER = "temporary server error; the command was not completed, retry it"

Result = dict[str, Any]


def run_batch(
    store: CustomerStore,
    project: str,
    commands: list[Any],
    *,
    received_at: float,
    clock: Callable[[], float] = time.time,
    id_types: IdTypes = DEFAULT_ID_TYPES,
) -> list[Result]:
    """Results of ``commands``, ``results[i]`` answering ``commands[i]``."""
    outcomes = run_commands(
        store, project, commands, received_at=received_at, clock=clock, id_types=id_types
    )
    return [result for _status, result in outcomes]


def run_commands(
    store: CustomerStore,
    project: str,
    commands: list[Any],
    *,
    received_at: float | Sequence[float],
    clock: Callable[[], float] = time.time,
    id_types: IdTypes = DEFAULT_ID_TYPES,
) -> list[tuple[int, Result]]:
    """Each command's HTTP status (its error's own, propsync.errors) and
    result: what the batch route answers, and what tells the queued mode's
    worker (propsync.tracking_queue) which failures a later attempt can get
    past (503) and which it never will. ``received_at`` is the request's
    arrival, or one per command: the worker runs the commands of several
    requests together, each with its own request's arrival."""
    arrivals = (
        [received_at] * len(commands) if isinstance(received_at, float | int) else received_at
    )
    outcomes, prepared = check_commands(commands, id_types, clock)
    if prepared:
        id_sets = {index: data.customer_ids for index, data in prepared.items()}
        known, erased = lookup_ids(store, project, id_sets.values())

        def write(group: list[int]) -> list[tuple[int, tuple[int, Result]]]:
            """One customer's commands, one after another in batch order."""
            # shared by the threads: replaced, never changed
            owners: Mapping[tuple[str, str], str | None] | None = known
            written = []
            for index in group:
                outcome = _run_customers(
                    store,
                    project,
                    prepared[index],
                    arrivals[index],
                    owners,
                    known_erasures=erased,
                    hard_id_types=id_types.hard,
                )
                written.append((index, outcome))
                if outcome[1].get("customer_id"):
                    owners = with_owner(
                        owners, prepared[index].customer_ids, outcome[1]["customer_id"]
                    )
            return written

        for written in run_concurrently(same_customer_groups(id_sets, known), write):
            for index, outcome in written:
                outcomes[index] = outcome
    return with_command_ids(commands, outcomes)


def check_commands(
    commands: list[Any], id_types: IdTypes, clock: Callable[[], float] = time.time
) -> tuple[list[tuple[int, Result] | None], dict[int, CustomersCommandData]]:
    """Every command checked by its model, and the ones that need no write
    answered: (an outcome per command, None for a ``customers`` command that
    passed its model; those commands' data by index, waiting to be written)."""
    outcomes: list[tuple[int, Result] | None] = [None] * len(commands)
    prepared: dict[int, CustomersCommandData] = {}
    for index, command in enumerate(commands):
        try:
            parsed = parse_command(command, id_types)
            if isinstance(parsed, CustomersCommand):
                prepared[index] = parsed.data
            elif isinstance(parsed, SystemTimeCommand):
                outcomes[index] = (200, {"success": True, "time": clock()})
            elif isinstance(parsed, SystemCookieCommand):
                outcomes[index] = (200, {"success": True, "cookie": str(uuid.uuid4())})
            else:  # customers/events
                raise InvalidInputError(
                    f"{CUSTOMER_EVENTS} is not supported yet; this service stores customer "
                    "properties only"
                )
        except PropsyncError as error:
            outcomes[index] = (error.status, failure(str(error)))
    return outcomes, prepared


def with_command_ids(
    commands: list[Any], outcomes: list[tuple[int, Result] | None]
) -> list[tuple[int, Result]]:
    """The outcomes, each result repeating its command's ``command_id``."""
    answered = []
    for command, outcome in zip(commands, outcomes, strict=True):
        status, result = outcome or (503, failure("command was not run"))
        command_id = _command_id(command)
        if command_id is not None:
            result = {**result, "command_id": command_id}
        answered.append((status, result))
    return answered


def _command_id(command: Any) -> str | None:
    """The ``command_id`` a result repeats: a string that is valid unicode, so
    that the answer can be written (parse_command fails any other)."""
    command_id = command.get("command_id") if isinstance(command, dict) else None
    return command_id if isinstance(command_id, str) and is_unicode(command_id) else None


def run_customers_command(
    store: CustomerStore,
    project: str,
    payload: Any,
    *,
    received_at: float,
    id_types: IdTypes = DEFAULT_ID_TYPES,
) -> tuple[int, Result]:
    """``POST /track/v2/projects/{token}/customers``: one customers command,
    validated as a batch's command is, and the HTTP status of its result: 200,
    the error's own status when it failed (400 for the command's own fault,
    409 for ids of customers that never merge, 503 when retrying it later can
    succeed: the store failing, or other writers winning every attempt)."""
    try:
        data = parse_command_data(payload, id_types)
    except PropsyncError as error:
        return error.status, failure(str(error))
    return _run_customers(
        store, project, data, received_at, None, known_erasures=None, hard_id_types=id_types.hard
    )


def _run_customers(
    store: CustomerStore,
    project: str,
    data: CustomersCommandData,
    received_at: float,
    known_owners: Mapping[tuple[str, str], str | None] | None,
    *,
    known_erasures: Mapping[tuple[str, str], float] | None,
    hard_id_types: frozenset[str],
) -> tuple[int, Result]:
    """The command's result and its HTTP status (the error's own; 503 for an
    unexpected failure, which a later attempt may get past): the result's
    shape is the original product's, so the status travels beside it."""
    try:
        result = update_customer(
            store,
            project,
            data.customer_ids,
            data.properties,
            update_timestamp=data.update_timestamp,
            received_at=received_at,
            known_owners=known_owners,
            known_erasures=known_erasures,
            hard_id_types=hard_id_types,
        )
    except PropsyncError as error:
        # its details too: a write that stopped part way names what it stored
        return error.status, {**failure(str(error)), **error.details()}
    except Exception:
        # DynamoDB still failing after botocore's retries, a bug, ...: this
        # command reports it and the rest of the batch goes on; a later
        # attempt may find the store working again.
        logger.exception("customers command failed")
        return 503, failure(RETRY_LATER)
    return 200, _success(result)


def _success(result: UpdateResult) -> Result:
    if result.customer_id is None:
        # held back by an erasure newer than the command: nothing written,
        # no customer to name (propsync.erasure)
        return {
            "success": True,
            "applied": [],
            "stale": list(result.stale),
            "erased_id_types": list(result.erased_id_types),
        }
    answer: Result = {
        "success": True,
        "customer_id": result.customer_id,
        "applied": list(result.applied),
        "stale": list(result.stale),
    }
    # what the command's ids did to other customers, only when they did
    if result.merged:
        answer["merged"] = list(result.merged)
    if result.moved_ids:
        answer["moved_ids"] = dict(result.moved_ids)
    return answer


def count_results(results: list[Result]) -> dict[str, int]:
    """The metrics of a request's results: commands, failed, and of the
    others, applied (some property or id written), stale (every property
    lost to a newer stored value, or the command to an erasure) and queued
    (accepted by the queued mode)."""
    counts = dict.fromkeys(
        ("Commands", "FailedCommands", "AppliedCommands", "StaleCommands", "QueuedCommands"), 0
    )
    counts["Commands"] = len(results)
    for result in results:
        if not result["success"]:
            counts["FailedCommands"] += 1
        elif "applied" in result:
            # held back by an erasure counts as stale even without properties
            stale = (result["stale"] and not result["applied"]) or "erased_id_types" in result
            counts["StaleCommands" if stale else "AppliedCommands"] += 1
        elif result.keys() <= {"success", "command_id"}:
            counts["QueuedCommands"] += 1
    return counts


def failure(message: str) -> Result:
    return {"success": False, "errors": [message]}
