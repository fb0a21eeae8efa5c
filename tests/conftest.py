"""Shared fixtures: AWS credentials that can never reach a real account, and a
moto DynamoDB whose table is created from template.yaml's own definition."""

import collections
import os
from collections.abc import Iterator

# Powertools reads these when the handlers are imported: no X-Ray, and metrics
# with a namespace, as template.yaml's Globals set them in Lambda.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "propsync")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "propsync")

import boto3
import pytest
from moto import mock_aws

from propsync.store import CustomerStore
from propsync_local.cfn_template import create_table_kwargs, load_template

TABLE_NAME = "propsync-test"
PROJECT = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(autouse=True)
def _isolated_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("PROPSYNC_MAX_FUTURE_SKEW_SECONDS", raising=False)


@pytest.fixture
def dynamodb_client() -> Iterator:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(**create_table_kwargs(load_template(), "PropsyncTable", TABLE_NAME))
        yield client


@pytest.fixture
def store(dynamodb_client) -> CustomerStore:
    return CustomerStore(dynamodb_client, TABLE_NAME)


class RequestLog:
    """Every DynamoDB API call made through a client, with its parameters,
    recorded by a botocore event hook (so retries inside botocore count once)."""

    WRITES = frozenset(
        {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
    )
    READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def record(self, model, params, **_kwargs) -> None:
        self.calls.append((model.name, params))

    def clear(self) -> None:
        self.calls.clear()

    @property
    def counts(self) -> collections.Counter:
        return collections.Counter(name for name, _ in self.calls)

    @property
    def writes(self) -> int:
        return sum(1 for name, _ in self.calls if name in self.WRITES)

    @property
    def reads(self) -> int:
        return sum(1 for name, _ in self.calls if name in self.READS)

    def params_of(self, operation: str) -> list[dict]:
        return [params for name, params in self.calls if name == operation]


@pytest.fixture
def request_log(dynamodb_client) -> RequestLog:
    log = RequestLog()
    dynamodb_client.meta.events.register("provide-client-params.dynamodb", log.record)
    return log


@pytest.fixture
def api(dynamodb_client, monkeypatch):
    """The HTTP API as API Gateway serves it (routes and authorizer from
    template.yaml, events from events/), over the real handlers and moto, with
    a project and a full-permission key."""
    from tests.support.api import ApiClient, reset_service_caches  # noqa: PLC0415

    monkeypatch.setenv("PROPSYNC_TABLE_NAME", TABLE_NAME)
    reset_service_caches()
    client = ApiClient.with_new_project(dynamodb_client, TABLE_NAME, PROJECT)
    yield client
    reset_service_caches()
