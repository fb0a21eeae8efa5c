"""What every store module shares: the client and table from the environment,
DynamoDB's answers read the same way everywhere, numbers written exactly, and
which errors are worth trying again."""

from __future__ import annotations

import os
import random
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

# Loaded when a function's module is imported (Lambda's init phase), as AWS
# advises: the first request pays only for creating its client.
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from propsync.container import per_container
from propsync.limits import MAX_CONCURRENT_COMMANDS
from propsync.store.throttling import RetryWithinDeadline

if TYPE_CHECKING:  # stubs are a dev dependency only
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

Item = dict[str, Any]  # a DynamoDB item in attribute-value form

TABLE_NAME_ENV = "PROPSYNC_TABLE_NAME"
BATCH_GET_MAX_KEYS = 100


def get_item(
    client: DynamoDBClient, table: str, key: str, projection: str | None = None
) -> Item | None:
    """The item at ``key``, read consistently: a reader must see the writes
    that were acknowledged to it."""
    request: dict[str, Any] = {
        "TableName": table,
        "Key": {"pk": {"S": key}},
        "ConsistentRead": True,
    }
    if projection:
        request["ProjectionExpression"] = projection
    return client.get_item(**request).get("Item")


def batch_get(client: DynamoDBClient, table: str, request: dict[str, Any]) -> list[Item]:
    """BatchGetItem until DynamoDB has answered every key (it may leave some
    unprocessed under load; those are asked again after a jittered pause)."""
    items: list[Item] = []
    attempt = 0
    while request:
        response = client.batch_get_item(RequestItems=request)
        items += response["Responses"].get(table, [])
        request = dict(response.get("UnprocessedKeys") or {})
        if request:
            attempt += 1
            time.sleep(min(1.0, 0.02 * 2**attempt) * random.random())
    return items


def number(value: float) -> str:
    # repr() is the shortest text that reads back as the same float, so the
    # stored number compares in DynamoDB exactly as the float does in Python.
    return str(Decimal(repr(float(value))))


def returned_item(error: ClientError) -> Item | None:
    """The old item a conditional failure carries (ReturnValuesOnConditionCheckFailure)."""
    item = error.response.get("Item")
    return cast(Item, item) if item is not None else None


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def is_conditional_failure(error: ClientError) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"


def is_item_too_large(error: ClientError) -> bool:
    message = error.response.get("Error", {}).get("Message", "")
    return error_code(error) == "ValidationException" and "item size" in message.lower()


# AWS answers that say the request itself can never succeed: built from data
# DynamoDB refuses (a key or item over a limit), or naming an object that is gone.
_REFUSALS_OF_THE_REQUEST = frozenset(
    {"ValidationException", "NoSuchKey", "404", "InvalidRange", "KeyTooLongError"}
)


def is_transient_error(error: BaseException) -> bool:
    """True when the same work may succeed if it is simply tried again later:
    throttling, AWS's own faults, a lost connection or a timeout, and any AWS
    refusal that is not about the request itself (access denied, a missing
    table: fixed by an operator, not by the data). False for everything the
    data causes (a DynamoDB ValidationException, a file that is gone, a value
    Python cannot handle), which fails the same way on every try."""
    if isinstance(error, ClientError):
        return error_code(error) not in _REFUSALS_OF_THE_REQUEST
    return isinstance(error, BotoCoreError | ConnectionError | TimeoutError)


# -------------------------------------------------------------------- factory


@per_container
def client_and_table_from_environment() -> tuple[DynamoDBClient, str]:
    """One client per Lambda container: table from ``PROPSYNC_TABLE_NAME``;
    endpoint, region and credentials the standard boto3 way
    (``AWS_ENDPOINT_URL_DYNAMODB`` points it at a local engine). Throttled
    requests are retried within the invocation's time budget where a handler
    sets one (store.throttling)."""
    table = _table_from_environment()
    client = boto3.client("dynamodb", config=client_config())
    RetryWithinDeadline().attach(client)
    return client, table


@per_container
def import_client_and_table_from_environment() -> tuple[DynamoDBClient, str]:
    """The import chunks' client, a second one: the chunk function paces its
    writes (store.throttling.WritePacer, attached by propsync.imports), and
    `make run` and the tests run every function in one process, where the
    client tracking and the API use must never be paced."""
    return boto3.client("dynamodb", config=client_config()), _table_from_environment()


@per_container
def import_record_client_and_table_from_environment() -> tuple[DynamoDBClient, str]:
    """The import chunks' client for their execution record (progress,
    counts, checkpoints), a third one: those few writes are retried until
    they pass like the rows' (propsync.imports attaches a pacer of its own),
    but never wait their turn behind a batch of rows."""
    return boto3.client("dynamodb", config=client_config()), _table_from_environment()


def _table_from_environment() -> str:
    table = os.environ.get(TABLE_NAME_ENV)
    if not table:
        raise RuntimeError(f"{TABLE_NAME_ENV} is not set: name the DynamoDB table of propsync")
    return table


def client_config() -> Config:
    """The botocore configuration of every DynamoDB client propsync makes."""
    return Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=2,
        read_timeout=5,
        # commands of a batch run on up to this many threads (propsync.tracking)
        max_pool_connections=MAX_CONCURRENT_COMMANDS,
        # Requests are built by this module, never from raw input, and DynamoDB
        # validates them anyway; botocore's client-side check costs about a
        # fifth of the CPU of a request (make bench).
        parameter_validation=False,
    )
