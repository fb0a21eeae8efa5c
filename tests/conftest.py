"""Shared fixtures: AWS credentials that can never reach a real account, and
the two DynamoDB engines every store test runs on (a single-threaded moto
server and dynalite), with tables created from template.yaml's own definition."""

import collections
import os
import uuid
from collections.abc import Iterator

# Powertools reads these when the handlers are imported: no X-Ray, and metrics
# with a namespace, as template.yaml's Globals set them in Lambda.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "propsync")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "propsync")

import pytest

# The handlers' Powertools Logger writes to the sys.stdout of the moment it is
# created. Created here, before any test captures output, its lines never land
# in the output a test reads (a CLI's JSON lines, say), whichever tests run.
import propsync.observability  # noqa: F401
from propsync.store.access import AccessStore
from propsync.store.customers import CustomerStore
from propsync_local.cfn_template import create_table_kwargs, load_template
from tests.support.servers import (
    dynalite_server,
    dynamodb_client_for,
    single_threaded_moto_server,
)

# the `imports` fixture (bucket, queue, table and a clock), used by several folders
pytest_plugins = ["tests.support.import_harness"]

PROJECT = "00000000-0000-0000-0000-000000000000"
# a grace period longer than the age of any update time the tests write
NO_COMPACTION_GRACE_DAYS = 10**7
ENGINES = ("moto", "dynalite")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One single-threaded moto server for the session: DynamoDB (one engine),
    S3 and SQS. Each test gets its own table, bucket and queue names."""
    with single_threaded_moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    """The second, independent DynamoDB engine (LevelDB, locks per item)."""
    with dynalite_server() as url:
        yield url


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Every test that talks to DynamoDB runs once per engine."""
    return str(request.param)


@pytest.fixture
def dynamodb_endpoint(engine: str, request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{engine}_endpoint"))


@pytest.fixture
def table_name() -> str:
    return f"propsync-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def _no_local_stack_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("no-local-stack"))


@pytest.fixture(autouse=True)
def _isolated_aws_environment(monkeypatch: pytest.MonkeyPatch, _no_local_stack_dir: str) -> None:
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(variable, raising=False)
    # the propsync command finds no stack but the one a test gives it: neither
    # the developer's deployed one nor a `make run` of this checkout (.local/)
    monkeypatch.delenv("PROPSYNC_STACK", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("PROPSYNC_LOCAL_DIR", _no_local_stack_dir)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("PROPSYNC_MAX_FUTURE_SKEW_SECONDS", raising=False)
    # The suite's update times are small numbers (1.0, 10.0: 1970), which the
    # default grace of 30 days would compact as soon as they are written; the
    # tests of compaction give their store a grace and a clock of their own
    # (tests/integration/test_compaction.py).
    monkeypatch.setenv("PROPSYNC_TOMBSTONE_GRACE_DAYS", str(NO_COMPACTION_GRACE_DAYS))


@pytest.fixture
def aws_endpoints(moto_endpoint, dynamodb_endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients built the standard way (store_from_environment, ...) reach the
    local engines: S3 and SQS on moto, DynamoDB on the engine under test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)


@pytest.fixture
def dynamodb_client(dynamodb_endpoint, table_name, aws_endpoints) -> Iterator:
    client = dynamodb_client_for(
        dynamodb_endpoint, max_pool_connections=32, retries={"mode": "standard"}
    )
    client.create_table(**create_table_kwargs(load_template(), "PropsyncTable", table_name))
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.05})
    yield client
    client.delete_table(TableName=table_name)


@pytest.fixture
def store(dynamodb_client, table_name) -> CustomerStore:
    # the project exists, as wherever propsync writes: its erasure salt is
    # read once, like a container's, and not on every write
    AccessStore(dynamodb_client, table_name).create_project(PROJECT, "test project")
    return CustomerStore(dynamodb_client, table_name)


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


TRACKING_MODES = ("sync", "queued")


@pytest.fixture(params=TRACKING_MODES)
def tracking_writes(request: pytest.FixtureRequest) -> str:
    """The API tests run once per mode of the tracking routes (TrackingWrites)."""
    return str(request.param)


@pytest.fixture
def api(dynamodb_client, table_name, monkeypatch, tracking_writes, moto_endpoint):
    """The HTTP API as API Gateway serves it (routes and authorizer from
    template.yaml, events from events/), over the real handlers and the engine
    under test, with a project and a full-permission key. In the queued mode,
    the client delivers the queue to the worker after each tracking request,
    as the event source mapping would (tests.support.api)."""
    from tests.support.api import ApiClient, TrackingQueues, reset_service_caches  # noqa: PLC0415

    monkeypatch.setenv("PROPSYNC_TABLE_NAME", table_name)
    monkeypatch.setenv("PROPSYNC_TRACKING_WRITES", tracking_writes)
    queues = None
    if tracking_writes == "queued":
        queues = TrackingQueues.create(moto_endpoint, suffix=table_name)
        monkeypatch.setenv("PROPSYNC_TRACKING_QUEUE_URL", queues.url)
        monkeypatch.setenv("PROPSYNC_TRACKING_DEAD_LETTER_QUEUE_URL", queues.dead_letter_url)
    reset_service_caches()
    client = ApiClient.with_new_project(dynamodb_client, table_name, PROJECT, queues=queues)
    yield client
    reset_service_caches()
