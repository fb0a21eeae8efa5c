"""SnapStart's runtime hooks (propsync.snapstart) and the per-container state
they forget (propsync.container).

Lambda resumes many containers from one snapshot: whatever the snapshot holds
is shared by all of them. `snapshot_restore_py` exists only in Lambda's Python
runtime; here a fake one stands in, recording the hooks as the real one does."""

import ast
import importlib
import json
import os
import random
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

from propsync import bucket, container, customer_updates, id_type_cache, snapstart
from propsync.id_types import IdTypes
from propsync.store import access as access_store
from propsync.store import customers as customer_store
from propsync.store import dynamo
from propsync.store import imports as import_store
from propsync_local.cfn_template import REPO_ROOT, load_template, resources_of_type

LAYER = REPO_ROOT / "layers" / "propsync" / "propsync"


class FakeSnapshotRestore(types.ModuleType):
    """What `snapshot_restore_py` offers: two registries the runtime runs."""

    def __init__(self) -> None:
        super().__init__("snapshot_restore_py")
        self.before_snapshot: list = []
        self.after_restore: list = []

    def register_before_snapshot(self, func, *args, **kwargs):
        self.before_snapshot.append((func, args, kwargs))
        return func

    def register_after_restore(self, func, *args, **kwargs):
        self.after_restore.append((func, args, kwargs))
        return func


@pytest.fixture
def runtime(monkeypatch):
    """Lambda's Python runtime, as far as the hooks can tell."""
    fake = FakeSnapshotRestore()
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)
    importlib.reload(snapstart)
    yield fake
    monkeypatch.delitem(sys.modules, "snapshot_restore_py")
    importlib.reload(snapstart)


@pytest.fixture
def container_environment(monkeypatch):
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", "snapstart-table")
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", "snapstart-bucket")
    monkeypatch.setenv("PROPSYNC_CHUNK_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/q")
    container.forget_container_state()
    yield
    container.forget_container_state()


@pytest.fixture
def random_state():
    state = random.getstate()
    yield
    random.setstate(state)


def run_hooks(hooks: list) -> None:
    for func, args, kwargs in hooks:
        func(*args, **kwargs)


def per_container_objects() -> dict[str, object]:
    """Everything a container builds once and keeps, built now."""
    customer_updates.run_concurrently([1, 2], lambda item: item)  # starts the pool
    return {
        "dynamodb client": dynamo.client_and_table_from_environment()[0],
        "customer store": customer_store.store_from_environment(),
        "access store": access_store.access_store_from_environment(),
        "import store": import_store.import_store_from_environment(),
        "import bucket": bucket.bucket_from_environment(),
        "import API bucket": bucket.api_bucket_from_environment(),
        "chunk queue": bucket.queue_from_environment(),
        "thread pool": customer_updates._shared_pool(),
    }


class CountingAccess:
    """An AccessStore that counts the reads of a project's id types."""

    def __init__(self) -> None:
        self.reads = 0

    def project_id_types(self, project: str) -> IdTypes:
        self.reads += 1
        return IdTypes(hard=frozenset({"registered"}), soft=frozenset({"cookie"}))


PROJECT = "3c1e7a52-0a7f-4c3b-9d9a-5f0c1b2d3e4f"


# ------------------------------------------------------------ registration


def test_in_lambdas_runtime_importing_the_module_registers_both_hooks(runtime):
    assert snapstart.HOOKS_REGISTERED
    assert runtime.before_snapshot == [(snapstart.warm_before_snapshot, (), {})]
    assert runtime.after_restore == [(snapstart.restore_uniqueness, (), {})]


def test_elsewhere_importing_the_module_registers_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # not importable
    importlib.reload(snapstart)
    assert not snapstart.HOOKS_REGISTERED


def test_each_function_with_snapstart_registers_the_hooks_when_its_handler_is_imported():
    """Lambda runs only the hooks a module imported by the handler registered."""
    functions = resources_of_type(load_template(), "AWS::Serverless::Function")
    snapstarted = [f for f in functions.values() if "SnapStart" in f["Properties"]]
    assert snapstarted
    probe = (
        "import json, sys, types\n"
        "fake = types.ModuleType('snapshot_restore_py')\n"
        "fake.hooks = []\n"
        "fake.register_before_snapshot = lambda f: fake.hooks.append('before:' + f.__name__)\n"
        "fake.register_after_restore = lambda f: fake.hooks.append('after:' + f.__name__)\n"
        "sys.modules['snapshot_restore_py'] = fake\n"
        "import {module}\n"
        "print(json.dumps(fake.hooks))\n"
    )
    for function in snapstarted:
        folder = REPO_ROOT / function["Properties"]["CodeUri"]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(folder), str(REPO_ROOT / "layers" / "propsync")]),
            "PROPSYNC_TABLE_NAME": "t",
        }
        module = function["Properties"]["Handler"].split(".")[0]  # its own module
        output = subprocess.run(
            [sys.executable, "-c", probe.format(module=module)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        hooks = json.loads(output.stdout)
        assert hooks == ["before:warm_before_snapshot", "after:restore_uniqueness"], folder


# ------------------------------------------------------------ after a restore


def test_after_a_restore_every_per_container_object_is_made_anew(runtime, container_environment):
    before = per_container_objects()
    run_hooks(runtime.after_restore)
    after = per_container_objects()
    for name, old in before.items():
        assert after[name] is not old, f"the {name} survived the restore"
    # new clients, so new connection pools
    assert after["dynamodb client"]._endpoint.http_session is not (
        before["dynamodb client"]._endpoint.http_session
    )


def test_after_a_restore_the_old_thread_pool_is_shut_down(runtime, container_environment):
    customer_updates.run_concurrently([1, 2], lambda item: item)
    old_pool = customer_updates._shared_pool()
    run_hooks(runtime.after_restore)
    with pytest.raises(RuntimeError, match="shutdown"):
        old_pool.submit(print)
    # and the next batch gets a pool of its own
    assert customer_updates.run_concurrently([1, 2, 3], lambda item: item * 2) == [2, 4, 6]
    assert isinstance(customer_updates._shared_pool(), ThreadPoolExecutor)
    assert customer_updates._shared_pool() is not old_pool


def test_after_a_restore_the_id_types_are_read_again(runtime, container_environment):
    access = CountingAccess()
    id_type_cache.id_types_of(access, PROJECT)
    id_type_cache.id_types_of(access, PROJECT)
    assert access.reads == 1  # cached for the container
    run_hooks(runtime.after_restore)
    id_type_cache.id_types_of(access, PROJECT)
    assert access.reads == 2


def test_containers_restored_from_one_snapshot_draw_different_random_numbers(runtime, random_state):
    """Backoff jitter (store.dynamo, identity, botocore's retries) comes from
    `random`; restored from one snapshot, every container would sleep the
    same "random" delays and retry in step."""
    random.seed(12345)  # whatever state the snapshot holds
    snapshot = random.getstate()
    sequences = []
    for _container in range(3):
        random.setstate(snapshot)  # one more container resumes from it
        run_hooks(runtime.after_restore)
        sequences.append([random.random() for _ in range(8)])
    random.setstate(snapshot)
    without_hooks = [random.random() for _ in range(8)]
    assert len({tuple(s) for s in sequences} | {tuple(without_hooks)}) == 4


def test_before_the_snapshot_the_dynamodb_client_is_built(runtime, container_environment):
    """Its service model, parsed once, then stays in the snapshot: a client
    made after the restore reuses it."""
    assert dynamo.client_and_table_from_environment.cache_info().currsize == 0
    run_hooks(runtime.before_snapshot)
    assert dynamo.client_and_table_from_environment.cache_info().currsize == 1


# ------------------------------------------------------------ the registry


def test_forgetting_the_container_state_forgets_only_what_was_built(container_environment):
    """A factory never called has nothing to forget (the authorizer never
    builds an import bucket); forgetting twice is harmless."""
    container.forget_container_state()
    container.forget_container_state()
    assert bucket.bucket_from_environment.cache_info().currsize == 0


def test_every_cache_of_the_layer_is_per_container_state():
    """A cache made with functools directly would survive a restore and a
    test's new container: every one must be declared in propsync.container."""
    undeclared = []
    for path in sorted(LAYER.rglob("*.py")):
        if path.name == "container.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("cache", "lru_cache"):
                undeclared.append(f"{path.relative_to(LAYER)}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module == "functools":
                names = {alias.name for alias in node.names}
                if names & {"cache", "lru_cache"}:
                    undeclared.append(f"{path.relative_to(LAYER)}:{node.lineno}")
    assert undeclared == []
