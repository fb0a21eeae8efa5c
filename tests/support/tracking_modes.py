"""What the API tests assert of the queued tracking mode (TrackingWrites=queued),
beside what they assert of the synchronous one.

A ``customers`` command the queued routes accept is answered ``{"success":
true}`` (with its ``command_id``), nothing of what applying it did: the tests
read that back from the store once the worker ran (tests.support.api's client
delivers the queue after each tracking request)."""

from __future__ import annotations

import re
from typing import Any

from tests.support.api import ApiClient

# what applying a command did: a synchronous answer only
APPLY_KEYS = frozenset(
    {"customer_id", "applied", "stale", "merged", "moved_ids", "erased_id_types"}
)


def accepted(command_id: str | None = None) -> dict[str, Any]:
    """The queued mode's answer to a ``customers`` command that passed every check."""
    return {"success": True} if command_id is None else {"success": True, "command_id": command_id}


def messages_left(api: ApiClient) -> int:
    """Messages on the tracking queue: waiting, or in flight (failed by the
    worker, and coming back after their retry delay)."""
    assert api.queues is not None, "the queued mode only"
    attributes = api.queues.sqs.get_queue_attributes(
        QueueUrl=api.queues.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def assert_all_applied(api: ApiClient) -> None:
    """The worker is done with every accepted command: no message left on the
    queue (none failed, to come back), none in the dead-letter queue."""
    assert api.queues is not None, "the queued mode only"
    assert messages_left(api) == 0
    assert api.queues.dead_letters() == []


def assert_answers_alike(queued: dict[str, Any], sync: dict[str, Any]) -> None:
    """The queued mode's answer to a command beside the synchronous mode's to
    the same command: a refusal is the same refusal, given at once; an
    acceptance is a success there too, less what applying it did."""
    if not queued["success"]:
        assert _at_any_time(queued) == _at_any_time(sync)
        return
    assert sync["success"] is True, (queued, sync)
    assert queued.keys() == sync.keys() - APPLY_KEYS, (queued, sync)
    assert queued.get("command_id") == sync.get("command_id")


# A refusal of a time ahead of the clock says how far ahead it is: from the
# clock of the moment each mode was asked, so the two answers differ there.
_AHEAD = re.compile(r" is \S+ s in the future;")


def _at_any_time(answer: dict[str, Any]) -> dict[str, Any]:
    errors = [_AHEAD.sub(" is ... s in the future;", error) for error in answer.get("errors", [])]
    return {**answer, "errors": errors} if "errors" in answer else answer
