"""`make bench`: propsync against the limits DynamoDB and Lambda set.

Seven measurements, each beside its bar; ratios are measured in one run, since
these machines are shared and noisy. Writes bench/results/bench.json, rewrites
the `bench` section of docs/PERFORMANCE.md, and exits 1 when a bar is missed.

1. requests per command, counted (deterministic), against two naive designs;
2. batch latency with a simulated 5 ms round trip: 50 commands vs 1;
3. import throughput: the whole write path through boto3 (5 ms round trip,
   DynamoDB answered in process at the HTTP layer), and parse + map + plan alone;
4. import memory: peak RSS of a 200 MB file vs a 20 MB file;
5. cold start: import time of each handler module vs `import boto3` alone;
6. the queued tracking mode (TrackingWrites=queued): SQS requests per queued
   batch (counted), the worker's commands per second vs the synchronous batch
   route's (5 ms round trip), and the lag from a request to its commands
   applied at a steady rate; SQS answered in process too (bench/fake_sqs.py);
7. imports beside tracking (bench/pacing.py): a 200,000-row import in
   parallel chunk processes on a table of limited write capacity, paced, naive
   and with botocore's adaptive retries, while a tracking stream runs beside
   it; the import's share of its ceiling and the stream's failures and p99;
8. customer items (bench/items.py): the write units of a one-property update
   as a customer's tombstones grow, with and without their compaction.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "propsync"), str(ROOT / "local"), str(ROOT / "bench")]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        # read once, when propsync.observability is imported (as template.yaml sets it)
        "POWERTOOLS_METRICS_NAMESPACE": "propsync",
    }
)

import boto3  # noqa: E402
import items  # noqa: E402
import naive  # noqa: E402
import pacing  # noqa: E402
from fake_dynamodb import FakeDynamoDB  # noqa: E402
from fake_sqs import FakeSQS  # noqa: E402
from workload import HEADER, MAPPING_DOCUMENT, PROJECT  # noqa: E402

from propsync.container import forget_container_state  # noqa: E402
from propsync.customer_updates import update_customer  # noqa: E402
from propsync.import_mapping import parse_mapping  # noqa: E402
from propsync.import_rows import iter_records, map_record, plan_chunks, read_layout  # noqa: E402
from propsync.imports import Services, _batches, _ChunkOutcome, _write_batch  # noqa: E402
from propsync.limits import MAX_REQUEST_BYTES  # noqa: E402
from propsync.store.access import AccessStore, access_store_from_environment  # noqa: E402
from propsync.store.conditional import PROPERTIES_PER_REQUEST  # noqa: E402
from propsync.store.customers import CustomerStore, store_from_environment  # noqa: E402
from propsync.store.dynamo import client_config  # noqa: E402
from propsync.tracking import run_batch  # noqa: E402
from propsync.tracking_queue import (  # noqa: E402
    DEAD_LETTER_QUEUE_URL_ENV,
    MAX_MESSAGE_BYTES,
    QUEUE_URL_ENV,
    QUEUED,
    SYNC,
    TRACKING_WRITES_ENV,
)
from propsync_local.apigw import LambdaContext, find_route, handle, load_handler, rest_event  # noqa: E402
from propsync_local.cfn_template import load_template  # noqa: E402
from propsync_local.stack import TRACKING_POLL_SECONDS  # noqa: E402
from propsync_local.triggers import QueueTrigger, sqs_event  # noqa: E402

PROPERTIES = {
    "first_name": "Marian",
    "email": "m@example.com",
    "tier": "gold",
    "age": 42,
    "vip": True,
}
MAPPING = parse_mapping(MAPPING_DOCUMENT)


def fake_store(round_trip: float) -> tuple[CustomerStore, FakeDynamoDB]:
    # the configuration Lambda uses (store.client_config), pointed at the fake
    client = boto3.client("dynamodb", endpoint_url="http://dynamodb.fake", config=client_config())
    fake = FakeDynamoDB(round_trip).attach(client)
    return CustomerStore(client, "bench"), fake


def bench_services(store: CustomerStore) -> Services:
    """What the import's batch writer needs: the customers, and the project
    (its id types) in the same fake table."""
    access = AccessStore(store._client, "bench")
    access.create_project(PROJECT, "bench")
    return Services(customers=store, access=access, imports=None, bucket=None, queue=None)  # type: ignore[arg-type]


def seed_customers(store: CustomerStore, count: int) -> None:
    for i in range(count):
        update_customer(
            store,
            PROJECT,
            {"registered": f"c{i}"},
            {"seed": 0},
            update_timestamp=None,
            received_at=1.0,
        )


def command(i: int, timestamp: float) -> dict[str, Any]:
    data = {
        "customer_ids": {"registered": f"c{i}"},
        "properties": PROPERTIES,
        "update_timestamp": timestamp,
    }
    return {"name": "customers", "data": data}


def rows_csv(rows: int, customers: int) -> str:
    return HEADER + "".join(
        f"c{i % customers},Name {i},c{i % customers}@example.com,{i % 90},yes,"
        f"2019-0{i % 9 + 1}-1{i % 9}\n"
        for i in range(rows)
    )


# ---------------------------------------------------------------- 1. requests


def requests_per_command() -> dict[str, Any]:
    store, fake = fake_store(0.0)
    seed_customers(store, 50)
    now = time.time()

    fake.requests.clear()
    run_batch(store, PROJECT, [command(0, 10.0)], received_at=now)
    single = dict(fake.requests)
    fake.requests.clear()
    run_batch(store, PROJECT, [command(i, 20.0) for i in range(50)], received_at=now)
    batch = dict(fake.requests)
    fake.requests.clear()
    run_batch(store, PROJECT, [command(10_000_000, 20.0)], received_at=now)  # nobody knows it
    first_sighting = dict(fake.requests)

    # import rows for existing customers, through the import's batch writer
    seed_customers(store, 1000)
    services = bench_services(store)
    data = rows_csv(1000, 1000).encode()
    layout = read_layout(data, None)
    mapped = [
        map_record(MAPPING, layout.header, line, cells, default_timestamp=30.0, now=now)
        for line, cells, _ in iter_records(io.BytesIO(data[layout.data_start :]), ",", 2)
    ]
    fake.requests.clear()
    for start in range(0, len(mapped), 500):
        _write_batch(services, PROJECT, mapped[start : start + 500], _ChunkOutcome())
    imported = dict(fake.requests)

    writes = lambda counts: counts.get("UpdateItem", 0) + counts.get("PutItem", 0)  # noqa: E731
    reads = lambda counts: counts.get("GetItem", 0) + counts.get("BatchGetItem", 0)  # noqa: E731
    ours = writes(batch) + reads(batch)
    # the same 50 commands, newer than all of the above, through the two naive
    # designs (bench/naive.py)
    naive_requests = {}
    for index, (name, design) in enumerate(naive.DESIGNS.items()):
        timestamp = 40.0 + 10 * index  # each newer than the last: every property wins
        fake.requests.clear()
        design(store._client, "bench", PROJECT, [command(i, timestamp) for i in range(50)])
        naive_requests[name] = writes(fake.requests) + reads(fake.requests)
    naive_per_property = naive_requests["update_per_property"]
    naive_read_then_write = naive_requests["read_then_write"]
    merges = {size: merge_requests(size) for size in (10, 100)}
    return {
        **{f"merge_{size}_properties": counts for size, counts in merges.items()},
        "merge_formula": f"reads 5 (1 BatchGetItem + 4 GetItem); writes 5 + "
        f"ceil(N/{PROPERTIES_PER_REQUEST}) + "
        "the source's ids, for a source of N properties (and 1 id)",
        "first_sighting_writes": writes(first_sighting),
        "first_sighting_reads": reads(first_sighting),
        "single_command_writes": writes(single),
        "single_command_reads": reads(single),
        "batch_of_50_writes": writes(batch),
        "batch_of_50_reads": reads(batch),
        "import_writes_per_row": round(writes(imported) / 1000, 3),
        "import_reads_per_row": round(reads(imported) / 1000, 3),
        "naive_update_per_property_requests": naive_per_property,
        "naive_read_then_write_requests": naive_read_then_write,
        "batch_of_50_requests": ours,
        "ratio_vs_update_per_property": round(naive_per_property / ours, 1),
        "ratio_vs_read_then_write": round(naive_read_then_write / ours, 1),
        "bars_met": writes(single) == 1
        and writes(batch) == 50
        and reads(batch) <= 2
        and writes(imported) / 1000 <= 1.05
        and all(
            counts == {"reads": 5, "writes": 5 + math.ceil(size / PROPERTIES_PER_REQUEST) + 1}
            for size, counts in merges.items()
        ),
    }


def merge_requests(properties: int) -> dict[str, int]:
    """Requests of a login that merges an anonymous customer of ``properties``
    properties and one cookie into an account (uncontended: every condition
    holds)."""
    store, fake = fake_store(0.0)
    now = time.time()
    update_customer(
        store,
        PROJECT,
        {"registered": "anna"},
        {"tier": "gold"},
        update_timestamp=None,
        received_at=now,
    )
    anonymous = {f"p{i}": i for i in range(properties)}
    update_customer(
        store, PROJECT, {"cookie": "c1"}, anonymous, update_timestamp=None, received_at=now
    )
    fake.requests.clear()
    result = update_customer(
        store,
        PROJECT,
        {"registered": "anna", "cookie": "c1"},
        {"login": True},
        update_timestamp=None,
        received_at=now,
    )
    assert result.merged, "the login did not merge"
    counts = dict(fake.requests)
    return {
        "reads": counts.get("GetItem", 0) + counts.get("BatchGetItem", 0),
        "writes": counts.get("UpdateItem", 0)
        + counts.get("PutItem", 0)
        + counts.get("DeleteItem", 0),
    }


# ---------------------------------------------------------------- 2. latency


def batch_latency() -> dict[str, Any]:
    store, fake = fake_store(0.005)
    seed_customers(store, 50)
    fake.store_updates = False  # nothing below reads the writes back

    def timed(commands: int, timestamp: float) -> float:
        batch = [command(i, timestamp) for i in range(commands)]
        started = time.perf_counter()
        results = run_batch(store, PROJECT, batch, received_at=time.time())
        elapsed = time.perf_counter() - started
        assert all(r["success"] for r in results)
        return elapsed

    # alternate the two, so that the machine's noise falls on both alike
    singles, batches = [], []
    cpu_started = time.process_time()
    for attempt in range(15):
        singles.append(timed(1, 100.0 + attempt))
        batches.append(timed(50, 100.0 + attempt))
    cpu_per_command = (time.process_time() - cpu_started) / (15 * 51)
    # The bar is on the fastest of the 15 (as timeit reports): a slower sample
    # measures the machine's other tenants as much as the code. Medians are
    # reported beside it (docs/DECISIONS.md: "Latency ratios are taken from the
    # fastest samples").
    one, fifty = min(singles), min(batches)
    median_one, median_fifty = statistics.median(singles), statistics.median(batches)

    # the naive designs on the same batch, same pool (bench/naive.py)
    naive_ms = {}
    for name, design in naive.DESIGNS.items():
        samples = []
        for attempt in range(5):
            batch = [command(i, 200.0 + attempt) for i in range(50)]
            started = time.perf_counter()
            design(store._client, "bench", PROJECT, batch)
            samples.append(time.perf_counter() - started)
        naive_ms[name] = round(min(samples) * 1000, 1)
    return {
        "single_command_ms": round(one * 1000, 1),
        "batch_of_50_ms": round(fifty * 1000, 1),
        "median_single_command_ms": round(median_one * 1000, 1),
        "median_batch_of_50_ms": round(median_fifty * 1000, 1),
        "median_ratio": round(median_fifty / median_one, 2),
        "naive_batch_of_50_ms": naive_ms,
        "client_cpu_ms_per_command": round(cpu_per_command * 1000, 2),
        "ratio": round(fifty / one, 2),
        "bar": 4.0,
        "bars_met": fifty / one <= 4.0,
    }


# ---------------------------------------------------------------- 3. throughput


def import_throughput() -> dict[str, Any]:
    store, fake = fake_store(0.005)
    customers = 2000
    seed_customers(store, customers)
    fake.store_updates = False  # nothing below reads the writes back
    data = rows_csv(10_000, customers).encode()
    services = bench_services(store)
    layout = read_layout(data, None)
    now = time.time()
    started = time.perf_counter()
    records = iter_records(io.BytesIO(data[layout.data_start :]), ",", 2)
    for batch in _batches(records):
        mapped = [
            map_record(MAPPING, layout.header, line, cells, default_timestamp=40.0, now=now)
            for line, cells, _ in batch
        ]
        _write_batch(services, PROJECT, mapped, _ChunkOutcome())
    full = 10_000 / (time.perf_counter() - started)

    big = rows_csv(200_000, 50_000).encode()
    started = time.perf_counter()
    layout = read_layout(big[: 1 << 20], None)
    plan_chunks(io.BytesIO(big), layout, 16 << 20)
    for line, cells, _ in iter_records(io.BytesIO(big[layout.data_start :]), ",", 2):
        map_record(MAPPING, layout.header, line, cells, default_timestamp=40.0, now=now)
    parse_only = 200_000 / (time.perf_counter() - started)
    return {
        "full_path_rows_per_second": round(full),
        "full_path_bar": 1000,
        "parse_map_plan_rows_per_second": round(parse_only),
        "parse_map_plan_bar": 50_000,
        "bars_met": full >= 1000 and parse_only >= 50_000,
    }


# ---------------------------------------------------------------- 4. memory

_MEMORY_CHILD = """
import io, resource, sys
sys.path[:0] = {paths!r}
from workload import MAPPING_DOCUMENT, PROJECT
from propsync.import_mapping import parse_mapping
from propsync.import_rows import iter_records, map_record, plan_chunks, read_layout
from propsync.imports import _batches, _downloaded, import_file
MAPPING = parse_mapping(MAPPING_DOCUMENT)

def peak_mb():
    # VmHWM: this process's peak since exec. ru_maxrss would carry the peak of
    # the benchmark process this one was forked from.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

class LocalBucket:
    # ImportBucket.open over a local file: a stream of bytes [start, end)
    def __init__(self, path):
        self.path = path
    def open(self, key, start=0, end=None, *, etag=None):
        stream = open(self.path, "rb")
        stream.seek(start)
        data = io.BufferedReader(_Range(stream, None if end is None else end - start))
        return data

class _Range(io.RawIOBase):
    def __init__(self, stream, size):
        self.stream, self.left = stream, size
    def readable(self):
        return True
    def readinto(self, buffer):
        want = len(buffer) if self.left is None else min(len(buffer), self.left)
        data = self.stream.read(want)
        buffer[: len(data)] = data
        if self.left is not None:
            self.left -= len(data)
        return len(data)
    def close(self):
        self.stream.close()
        super().close()

baseline = peak_mb()
bucket, target = LocalBucket({path!r}), import_file(f"imports/{{PROJECT}}/bench/file.csv")
# as ImportFunction plans an execution, then as ImportChunkFunction runs each chunk
with bucket.open(target.key) as stream:
    layout = read_layout(stream.read(1 << 20), None)
with bucket.open(target.key) as stream:
    chunks = plan_chunks(stream, layout, 16 << 20)
rows = 0
for chunk in chunks:
    with _downloaded(bucket, target, chunk.start, chunk.end, None) as stream:
        for batch in _batches(iter_records(stream, ",", chunk.first_line)):
            mapped = [
                map_record(MAPPING, layout.header, line, cells, default_timestamp=1.0, now=2.0)
                for line, cells, _ in batch
            ]
            rows += len(mapped)  # the writes are left out: they hold one batch at a time
print(baseline, peak_mb(), rows, len(chunks))
"""


def import_memory(scratch: Path) -> dict[str, Any]:
    """Peak RSS of planning and running every chunk of a 20 MB and a 200 MB
    file the way the import functions do (16 MB chunks downloaded to a spooled
    file, 500-row batches), each in a fresh process; the writes are left out.
    The baseline is the process after its imports, before any work."""
    measured = {}
    for megabytes in (20, 200):
        path = scratch / f"{megabytes}mb.csv"
        with path.open("w") as out:
            out.write(HEADER)
            i = 0
            while out.tell() < megabytes * 1_000_000:
                out.write(
                    "".join(
                        f"c{n},Name {n},c{n}@example.com,{n % 90},yes,2019-01-1{n % 9}\n"
                        for n in range(i, i + 10_000)
                    )
                )
                i += 10_000
        code = _MEMORY_CHILD.format(
            paths=[str(ROOT / "layers" / "propsync"), str(ROOT / "bench")], path=str(path)
        )
        output = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        baseline, peak, rows, chunks = output.stdout.split()
        measured[megabytes] = (float(baseline), float(peak), int(rows), int(chunks))
        path.unlink()
    ratio = measured[200][1] / measured[20][1]
    return {
        "peak_rss_mb_20mb_file": round(measured[20][1], 1),
        "peak_rss_mb_200mb_file": round(measured[200][1], 1),
        "growth_mb_20mb_file": round(measured[20][1] - measured[20][0], 1),
        "growth_mb_200mb_file": round(measured[200][1] - measured[200][0], 1),
        "rows_and_chunks": {size: [m[2], m[3]] for size, m in measured.items()},
        "ratio": round(ratio, 3),
        "bar": 1.2,
        "bars_met": ratio <= 1.2,
    }


# ---------------------------------------------------------------- 5. cold start


BUILT_LAYER = ROOT / ".aws-sam" / "build" / "PropsyncLayer" / "python"
# Each handler's import at most this many times `import boto3` (docs/DECISIONS.md:
# "The cold-start bar is 1.8x `import boto3`").
COLD_START_BAR = 1.8


def _function_environment() -> dict[str, str]:
    """The variables template.yaml gives every function that are plain text
    (some change what is imported, or how fast: PYDANTIC_DISABLE_PLUGINS)."""
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    return {name: value for name, value in variables.items() if isinstance(value, str)}


def _import_microseconds(module: str, paths: list[str], **environment: str) -> int:
    env = {**os.environ, **_function_environment(), "PYTHONPATH": os.pathsep.join(paths)}
    env.update(environment)
    env["PROPSYNC_TABLE_NAME"] = "bench"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    total = 0
    for line in result.stderr.splitlines():
        if "|" in line and not line.startswith("import time: self"):
            parts = line.split("|")
            if parts[2].strip() == module:
                total = int(parts[1])
    return total


def _import_ratios(
    layer: str, runs: int, **environment: str
) -> tuple[float, dict[str, float], dict[str, float]]:
    """Median import time of boto3 and of each handler module over ``runs``
    rounds; each round imports boto3 alone, then every handler, so that the
    machine's noise falls on all of them alike."""
    targets: dict[str, tuple[str, list[str]]] = {"boto3": ("boto3", [layer])}
    for function in ("tracking", "customers", "authorizer", "imports"):
        targets[function] = ("app", [str(ROOT / "functions" / function), layer])
    samples: dict[str, list[int]] = {name: [] for name in targets}
    for _ in range(runs):
        for name, (module, paths) in targets.items():
            samples[name].append(_import_microseconds(module, paths, **environment))
    boto = statistics.median(samples.pop("boto3"))
    handlers = {name: statistics.median(values) for name, values in samples.items()}
    return boto, handlers, {name: round(value / boto, 2) for name, value in handlers.items()}


def _use_this_machines_extensions(layer: Path) -> None:
    """The built layer is for arm64 Lambda, and its compiled extensions
    (pydantic_core, wrapt) do not load on another architecture. Each is
    replaced by the same version's build from this machine's virtualenv, so
    the measurement still imports every Python file and every byte of
    bytecode the build shipped. Refuses versions that differ."""
    here = Path(sysconfig.get_paths()["purelib"])
    for extension in layer.rglob("*.so"):
        module = extension.name.split(".")[0]
        package = extension.parent.relative_to(layer)
        (host,) = (here / package).glob(f"{module}.*.so")
        for dist_info in layer.glob(f"{package.parts[0]}-*.dist-info"):
            if not (here / dist_info.name).is_dir():
                raise RuntimeError(f"{dist_info.name} is not what {here} has: rebuild the venv")
        extension.unlink()
        shutil.copy2(host, extension.parent / host.name)


def cold_start(runs: int = 9) -> dict[str, Any]:
    """Handlers vs boto3 twice: from the source tree with the .pyc files the
    first round writes, and, when `sam build` has run, from the built layer as
    Lambda sees it (read-only, every file dated 1980 as in SAM's zip), where
    only the bytecode the build shipped can be used."""
    source = str(ROOT / "layers" / "propsync")
    _import_ratios(source, 1)  # write the .pyc files of the source tree
    boto, handlers, ratios = _import_ratios(source, runs)
    results: dict[str, Any] = {
        "import_boto3_ms": round(boto / 1000, 1),
        "handlers_ms": {name: round(value / 1000, 1) for name, value in handlers.items()},
        "ratios": ratios,
        "bar": COLD_START_BAR,
        "bars_met": all(ratio <= COLD_START_BAR for ratio in ratios.values()),
    }
    if BUILT_LAYER.is_dir():
        with tempfile.TemporaryDirectory() as scratch:
            layer = Path(scratch) / "python"
            shutil.copytree(BUILT_LAYER, layer)
            dated_1980 = time.mktime((1980, 1, 1, 0, 0, 0, 0, 0, -1))
            _use_this_machines_extensions(layer)
            for path in layer.rglob("*"):
                os.utime(path, (dated_1980, dated_1980))
            boto, handlers, ratios = _import_ratios(str(layer), runs, PYTHONDONTWRITEBYTECODE="1")
        results["built_layer"] = {
            "import_boto3_ms": round(boto / 1000, 1),
            "handlers_ms": {name: round(value / 1000, 1) for name, value in handlers.items()},
            "ratios": ratios,
        }
        results["bars_met"] = results["bars_met"] and all(
            r <= COLD_START_BAR for r in ratios.values()
        )
    return results


# ---------------------------------------------------------------- 6. queued tracking

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/000000000000/bench-tracking"
DEAD_LETTER_QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/000000000000/bench-dead-letters"
BATCH_PATH = f"/track/v2/projects/{PROJECT}/batch"
CUSTOMERS_PATH = f"/track/v2/projects/{PROJECT}/customers"
JSON_HEADERS = {"Content-Type": "application/json"}
WORKER = "TrackingWorkerFunction"
# 8 values of this many characters: a command of about 123 kB, 50 of them a
# request just under MAX_REQUEST_BYTES (each value under the 16 KiB limit)
LARGE_VALUE_CHARS = 15_400
# the lag at a steady rate: batches per second, commands per batch, seconds,
# and the trigger's poll intervals (make run's, and a tenth of it)
LAG_RATE, LAG_BATCH, LAG_SECONDS = 20, 10, 5.0
LAG_POLLS = (TRACKING_POLL_SECONDS, TRACKING_POLL_SECONDS / 10)


@contextmanager
def queued_deployment(round_trip: float) -> Iterator[tuple[FakeDynamoDB, FakeSQS]]:
    """The tracking function and its worker in the queued mode, in this
    process as `make run` runs them: handlers loaded from template.yaml,
    clients made by propsync's own factories, their DynamoDB and SQS requests
    answered by the fakes. The project and 50 customers are stored first;
    from then on every write is acknowledged and not stored (the measurements
    only write newer values). What Powertools prints (the metrics) is dropped."""
    variables = {
        "PROPSYNC_TABLE_NAME": "bench",
        TRACKING_WRITES_ENV: QUEUED,
        QUEUE_URL_ENV: QUEUE_URL,
        DEAD_LETTER_QUEUE_URL_ENV: DEAD_LETTER_QUEUE_URL,
    }
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    dynamodb, sqs = FakeDynamoDB(0.0), FakeSQS()
    forget_container_state()  # the clients made from now on are the fakes'
    try:
        with (
            dynamodb.serving(session),
            sqs.serving(session),
            open(os.devnull, "w") as sink,
            redirect_stdout(sink),
        ):
            access_store_from_environment().create_project(PROJECT, "bench")
            seed_customers(store_from_environment(), 50)
            dynamodb.round_trip, dynamodb.store_updates = round_trip, False
            yield dynamodb, sqs
    finally:
        forget_container_state()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def post(path: str, body: str) -> None:
    """One request through the local API Gateway (propsync_local.apigw);
    raises unless every command was accepted."""
    response = handle("POST", path, headers=JSON_HEADERS, body=body)
    answer = response.json()
    if response.status != 200 or not all(r["success"] for r in answer.get("results", [answer])):
        raise RuntimeError(f"{path} answered {response.status}: {response.body[:500]}")


def large_command(i: int, timestamp: float) -> dict[str, Any]:
    properties = {f"note_{p}": f"{i}.{p} " + "x" * LARGE_VALUE_CHARS for p in range(8)}
    data = {
        "customer_ids": {"registered": f"c{i}"},
        "properties": properties,
        "update_timestamp": timestamp,
    }
    return {"name": "customers", "data": data}


def queued_requests() -> dict[str, Any]:
    """SQS requests (and messages) of the queued routes, counted by the fake:
    a batch of 50 small commands, a batch of 50 large ones just under the 6
    MiB request limit, and the single-command route."""
    with queued_deployment(0.0) as (_dynamodb, sqs):

        def counted(path: str, payload: Any) -> dict[str, int]:
            body = json.dumps(payload)
            sqs.reset_counts()
            post(path, body)
            requests = sum(sqs.requests.values())
            return {"requests": requests, "messages": sqs.messages_sent, "body_bytes": len(body)}

        small = counted(BATCH_PATH, {"commands": [command(i, 300.0) for i in range(50)]})
        large = counted(BATCH_PATH, {"commands": [large_command(i, 300.0) for i in range(50)]})
        single = counted(CUSTOMERS_PATH, command(0, 300.0)["data"])
    if large["body_bytes"] > MAX_REQUEST_BYTES:
        raise RuntimeError("the large batch is over the request limit: make its values shorter")
    large_bar = math.ceil(large["body_bytes"] / MAX_MESSAGE_BYTES) + 1
    return {
        "batch_of_50": small,
        "batch_near_6mb": large,
        "batch_near_6mb_bar": large_bar,
        "single_command": single,
        "bars_met": small["requests"] == 1
        and large["requests"] <= large_bar
        and single["requests"] == 1,
    }


def worker_throughput(rounds: int = 15, per_sample: int = 10) -> dict[str, Any]:
    """Commands per second, 5 ms round trip, of batches of 50 commands (the
    batch-latency measurement's): through the worker's handler, an SQS event
    of ``per_sample`` of the messages the queued route made of them (10: a
    full event, as the event source mapping sends while a backlog lasts), vs
    through the synchronous mode's batch route handler and vs run_batch
    alone, ``per_sample`` requests each; alternated, ``rounds`` times, each
    path first in turn; fastest and median.

    On one core: the threads are not pinned to one CPU (with the other
    tenants of a shared machine on that CPU, the ratio swung from 0.69x to
    1.04x), but the interpreter lock keeps the process to about one CPU
    second per second, reported as ``cpu_seconds_per_second``."""
    batches = [[command(i, 100.0 + k) for i in range(50)] for k in range(10)]
    with queued_deployment(0.005):
        for batch in batches:
            post(BATCH_PATH, json.dumps({"commands": batch}))
        messages = boto3.client("sqs").receive_message(
            QueueUrl=QUEUE_URL,
            MaxNumberOfMessages=10,
            VisibilityTimeout=3600,
            MessageSystemAttributeNames=["All"],
        )["Messages"]
        if len(messages) != len(batches):
            raise RuntimeError(f"the route queued {len(messages)} messages, not {len(batches)}")
        worker, tracking = load_handler(WORKER), load_handler("TrackingFunction")
        found = find_route("POST", BATCH_PATH)
        assert found is not None
        samples = [[(k + j) % len(batches) for j in range(per_sample)] for k in range(len(batches))]
        events = [sqs_event([messages[k] for k in sample], WORKER) for sample in samples]
        requests = [
            [
                rest_event(
                    found[0],
                    path_parameters=found[1],
                    headers=JSON_HEADERS,
                    body=json.dumps({"commands": batches[k]}),
                )
                for k in sample
            ]
            for sample in samples
        ]
        store = store_from_environment()

        def through_worker(sample: int) -> None:
            answer = worker(events[sample], LambdaContext(WORKER))
            if answer["batchItemFailures"]:
                raise RuntimeError(f"the worker failed messages: {answer}")

        def through_sync_route(sample: int) -> None:
            os.environ[TRACKING_WRITES_ENV] = SYNC
            try:
                for request in requests[sample]:
                    answer = tracking(request, LambdaContext("TrackingFunction"))
                    results = json.loads(answer["body"])["results"]
                    if answer["statusCode"] != 200 or not all(r["applied"] for r in results):
                        raise RuntimeError(f"the synchronous route answered {answer}")
            finally:
                os.environ[TRACKING_WRITES_ENV] = QUEUED

        def through_run_batch(sample: int) -> None:
            for k in samples[sample]:
                results = run_batch(store, PROJECT, batches[k], received_at=time.time())
                if not all(r["applied"] for r in results):
                    raise RuntimeError(f"run_batch answered {results}")

        paths: dict[str, Callable[[int], None]] = {
            "worker": through_worker,
            "sync_route": through_sync_route,
            "run_batch": through_run_batch,
        }
        seconds: dict[str, list[float]] = {name: [] for name in paths}
        cpu = dict.fromkeys(paths, 0.0)
        order = list(paths)
        for round_ in range(rounds):
            order.append(order.pop(0))  # each path first in turn
            for name in order:
                started, cpu_started = time.perf_counter(), time.process_time()
                paths[name](round_ % len(samples))
                seconds[name].append(time.perf_counter() - started)
                cpu[name] += time.process_time() - cpu_started
    commands = 50 * per_sample
    fastest = {name: round(commands / min(values)) for name, values in seconds.items()}
    medians = {name: round(commands / statistics.median(v)) for name, v in seconds.items()}
    # The bar: the median over the rounds of each round's own ratio (the two
    # ran one after the other, under the same load); the two paths run the
    # same code, so a ratio of the fastest samples alone swung by +-4%.
    ratio = statistics.median(
        route / worker
        for route, worker in zip(seconds["sync_route"], seconds["worker"], strict=True)
    )
    return {
        "cpu_seconds_per_second": round(
            sum(cpu.values()) / sum(sum(values) for values in seconds.values()), 2
        ),
        "rounds": rounds,
        "batches_per_sample": per_sample,
        "commands_per_second": fastest,
        "median_commands_per_second": medians,
        "cpu_ms_per_command": {
            name: round(used * 1000 / (commands * rounds), 2) for name, used in cpu.items()
        },
        # three decimals: the paths differ by a few percent (docs/PERFORMANCE.md)
        "ratio_vs_sync_route": round(fastest["worker"] / fastest["sync_route"], 3),
        "paired_median_ratio_vs_sync_route": round(ratio, 3),
        "ratio_vs_run_batch": round(fastest["worker"] / fastest["run_batch"], 3),
        "bar": 1.0,
        "bars_met": ratio >= 1.0,
    }


def queued_lag(poll_seconds: float) -> dict[str, Any]:
    """LAG_RATE batches of LAG_BATCH commands a second through the queued
    route for LAG_SECONDS, while make run's own trigger (QueueTrigger) polls
    the queue every ``poll_seconds`` and delivers what it finds to the worker,
    up to 10 messages an event. Per command, in ms: from the request's arrival
    (API Gateway's requestTimeEpoch, which its message carries) to its message
    deleted after the worker answered (all of its event applied), and the
    part of that the message waited in the queue for a poll."""
    count = round(LAG_RATE * LAG_SECONDS)
    with queued_deployment(0.005) as (_dynamodb, sqs):
        trigger = QueueTrigger(
            boto3.client("sqs"),
            QUEUE_URL,
            WORKER,
            poll_seconds=poll_seconds,
            lock=threading.Lock(),  # nothing else invokes a handler meanwhile
        )
        trigger.start()
        try:
            started = last = time.perf_counter()
            for k in range(count):
                time.sleep(max(0.0, started + k / LAG_RATE - time.perf_counter()))
                last = time.perf_counter()
                batch = [command((k * LAG_BATCH + j) % 50, 1000.0 + k) for j in range(LAG_BATCH)]
                post(BATCH_PATH, json.dumps({"commands": batch}))
            deadline = time.monotonic() + 60
            while sqs.depth(QUEUE_URL) and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            trigger.stop()
            trigger.join()
        done = list(sqs.deleted)
    # per command (each command of a message shares its times), in ms
    lags: list[float] = []  # arrival -> deleted
    parts: dict[str, list[float]] = {"route": [], "queue": [], "worker": []}
    for message in done:
        body = json.loads(message.body)
        commands = len(body["commands"])
        lags += [(message.deleted - body["received_at"]) * 1000] * commands
        parts["route"] += [(message.sent - body["received_at"]) * 1000] * commands
        parts["queue"] += [(message.first_received - message.sent) * 1000] * commands
        parts["worker"] += [(message.deleted - message.first_received) * 1000] * commands
    if len(lags) != count * LAG_BATCH:
        raise RuntimeError(f"{len(lags)} commands applied of {count * LAG_BATCH}")
    return {
        "poll_seconds": poll_seconds,
        "commands": len(lags),
        "batches_per_second": round((count - 1) / (last - started), 1),  # kept up?
        "p50_ms": round(statistics.median(lags)),
        "p99_ms": round(statistics.quantiles(lags, n=100)[98]),
        "max_ms": round(max(lags)),
        # where the median command's time went: accepted and queued by the
        # route, waiting in the queue for a poll, in the worker's event
        "p50_parts_ms": {name: round(statistics.median(part)) for name, part in parts.items()},
        "queue_max_ms": round(max(parts["queue"])),
    }


def queued_tracking() -> dict[str, Any]:
    requests = queued_requests()
    throughput = worker_throughput()
    lag = [queued_lag(poll) for poll in LAG_POLLS]
    return {
        "requests": requests,
        "worker_throughput": throughput,
        "lag": lag,
        "bars_met": requests["bars_met"] and throughput["bars_met"],
    }


def latency_runs(runs: int) -> int:
    """`bench/run.py --latency-runs N`: the batch-latency measurement N times,
    each ratio with the client CPU per command of its run, and nothing else
    (the document is not touched): how much the figure moves on this machine."""
    results = [batch_latency() for _ in range(runs)]
    for result in results:
        print(
            f"{result['ratio']:.2f}x fastest, {result['median_ratio']:.2f}x medians, "
            f"{result['client_cpu_ms_per_command']:.2f} ms CPU/command"
        )
    met = sum(1 for result in results if result["bars_met"])
    print(f"bar (<= 4x) met in {met} of {runs} runs")
    return 0


def only_queued() -> int:
    """`bench/run.py --only queued`: the queued mode's measurements alone (no
    `sam build` needed), rewriting only their table in docs/PERFORMANCE.md,
    under a line of its own that says when they were measured."""
    started = time.time()
    results = queued_tracking()
    print(json.dumps(results), file=sys.stderr)
    header = _own_run_header("queued", round(time.time() - started), "the table above's")
    table = render_queued(results, header)
    print(table)
    update_doc(table, QUEUED_MARKERS)
    return 0 if results["bars_met"] else 1


def _own_run_header(only: str, seconds: int, not_of: str) -> str:
    """The line over a table that `--only <only>` rewrote by itself."""
    return (
        f"Measured {time.strftime('%Y-%m-%d %H:%M:%S %Z')} (Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs) in {seconds} s by `bench/run.py --only {only}`, in a run "
        f"of its own (not {not_of})."
    )


def _only(name: str, measure, render, markers) -> int:
    """`bench/run.py --only <name>`: one measurement alone, rewriting only its
    table in docs/PERFORMANCE.md (under a line of its own that says when it
    was measured) and its part of bench/results/bench.json."""
    started = time.time()
    results = measure()
    seconds = round(time.time() - started)
    print(json.dumps(results), file=sys.stderr)
    out = ROOT / "bench" / "results" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(out.read_text()) if out.is_file() else {}
    saved[name] = {**results, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    out.write_text(json.dumps(saved, indent=2) + "\n")
    table = render(results, _own_run_header(name, seconds, "the first table's"))
    print(table)
    update_doc(table, markers)
    return 0 if results["bars_met"] else 1


def only_pacing() -> int:
    """The pacing measurement alone (a few minutes)."""
    return _only("pacing", pacing.pacing, render_pacing, PACING_MARKERS)


def only_items() -> int:
    """The customer items' write units alone (a minute, deterministic)."""
    return _only("items", items.item_write_units, render_items, ITEMS_MARKERS)


def main() -> int:
    if sys.argv[1:2] == ["--latency-runs"]:
        return latency_runs(int(sys.argv[2]))
    if sys.argv[1:] == ["--only", "queued"]:
        return only_queued()
    if sys.argv[1:] == ["--only", "pacing"]:
        return only_pacing()
    if sys.argv[1:] == ["--only", "items"]:
        return only_items()
    if sys.argv[1:]:
        print(
            "usage: bench/run.py [--latency-runs N | --only queued | --only pacing | --only items]",
            file=sys.stderr,
        )
        return 2
    started = time.time()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, measure in (
            ("requests", requests_per_command),
            ("latency", batch_latency),
            ("throughput", import_throughput),
            ("memory", lambda: import_memory(Path(scratch))),
            ("cold_start", cold_start),
            ("queued", queued_tracking),
            ("pacing", pacing.pacing),
            ("items", items.item_write_units),
        ):
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            results[name] = measure()
            print(json.dumps(results[name]), file=sys.stderr, flush=True)
    results["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results["seconds"] = round(time.time() - started)
    results["python"] = sys.version.split()[0]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    table = render(results)
    print(table)
    update_doc(table, BENCH_MARKERS)
    return 0 if all(v.get("bars_met") for v in results.values() if isinstance(v, dict)) else 1


def _mark(met: bool) -> str:
    return "met" if met else "**missed**"


def render(r: dict[str, Any]) -> str:
    q, lat, thr = r["requests"], r["latency"], r["throughput"]
    naive_ms = lat["naive_batch_of_50_ms"]
    mem, cold = r["memory"], r["cold_start"]
    rows = [
        (
            "writes, one command all newer",
            q["single_command_writes"],
            "1",
            q["single_command_writes"] == 1,
        ),
        (
            "writes / reads, first sighting of a customer (claim + properties)",
            f"{q['first_sighting_writes']} / {q['first_sighting_reads']}",
            "",
            None,
        ),
        *(
            (
                f"writes / reads, a login merging a customer of {size} properties and 1 id "
                "into an account",
                f"{q[f'merge_{size}_properties']['writes']} / "
                f"{q[f'merge_{size}_properties']['reads']}",
                f"{5 + math.ceil(size / PROPERTIES_PER_REQUEST) + 1} / 5 "
                f"(5 + ceil(N/{PROPERTIES_PER_REQUEST}) + ids / 5)",
                q[f"merge_{size}_properties"]
                == {"writes": 5 + math.ceil(size / PROPERTIES_PER_REQUEST) + 1, "reads": 5},
            )
            for size in (10, 100)
        ),
        (
            "writes / reads, batch of 50 existing customers",
            f"{q['batch_of_50_writes']} / {q['batch_of_50_reads']}",
            "50 / <= 2",
            q["batch_of_50_writes"] == 50 and q["batch_of_50_reads"] <= 2,
        ),
        (
            "writes / reads per import row, existing customers",
            f"{q['import_writes_per_row']} / {q['import_reads_per_row']}",
            "about 1",
            q["import_writes_per_row"] <= 1.05,
        ),
        (
            "batch requests, ours vs one UpdateItem per property",
            f"{q['batch_of_50_requests']} vs {q['naive_update_per_property_requests']} "
            f"({q['ratio_vs_update_per_property']}x fewer)",
            "",
            None,
        ),
        (
            "batch requests, ours vs read-then-write",
            f"{q['batch_of_50_requests']} vs {q['naive_read_then_write_requests']} "
            f"({q['ratio_vs_read_then_write']}x fewer)",
            "",
            None,
        ),
        (
            "batch of 50 vs 1 command, 5 ms round trip (fastest of 15; medians)",
            f"{lat['batch_of_50_ms']} ms vs {lat['single_command_ms']} ms = {lat['ratio']}x "
            f"({lat['median_ratio']}x)",
            "<= 4x",
            lat["bars_met"],
        ),
        (
            "batch of 50, 5 ms round trip: ours vs one UpdateItem per property",
            f"{lat['batch_of_50_ms']} ms vs {naive_ms['update_per_property']} ms",
            "",
            None,
        ),
        (
            "batch of 50, 5 ms round trip: ours vs read-then-write",
            f"{lat['batch_of_50_ms']} ms vs {naive_ms['read_then_write']} ms",
            "",
            None,
        ),
        (
            "import rows/s, whole path, 5 ms round trip",
            f"{thr['full_path_rows_per_second']:,}",
            ">= 1,000",
            thr["full_path_rows_per_second"] >= 1000,
        ),
        (
            "import rows/s, parse + map + plan",
            f"{thr['parse_map_plan_rows_per_second']:,}",
            ">= 50,000",
            thr["parse_map_plan_rows_per_second"] >= 50_000,
        ),
        (
            "import peak RSS, 200 MB vs 20 MB file (growth over the imports)",
            f"{mem['peak_rss_mb_200mb_file']} MB vs {mem['peak_rss_mb_20mb_file']} MB "
            f"= {mem['ratio']}x (+{mem['growth_mb_200mb_file']} vs "
            f"+{mem['growth_mb_20mb_file']} MB)",
            "<= 1.2x",
            mem["bars_met"],
        ),
    ]
    for label, figures in (("", cold), (", built layer", cold.get("built_layer"))):
        if figures is None:
            rows.append((f"cold start{label}", "not measured: sam build has not run", "", None))
            continue
        for name, ratio in figures["ratios"].items():
            rows.append(
                (
                    f"cold start{label}: import of the {name} handler vs boto3 "
                    f"({figures['import_boto3_ms']} ms)",
                    f"{figures['handlers_ms'][name]} ms = {ratio}x",
                    f"<= {COLD_START_BAR}x",
                    ratio <= COLD_START_BAR,
                )
            )
    header = (
        f"Measured {r['measured_at']} (Python {r['python']}, {os.cpu_count()} CPUs) "
        f"in {r['seconds']} s."
    )
    # between markers of their own, so that `--only queued` and `--only pacing`
    # can rewrite those tables alone
    queued = "\n".join((QUEUED_MARKERS[0], render_queued(r["queued"]), QUEUED_MARKERS[1]))
    paced = "\n".join((PACING_MARKERS[0], render_pacing(r["pacing"]), PACING_MARKERS[1]))
    grown = "\n".join((ITEMS_MARKERS[0], render_items(r["items"]), ITEMS_MARKERS[1]))
    return f"{_table(header, rows)}\n\n{queued}\n\n{paced}\n\n{grown}"


Row = tuple[str, Any, str, bool | None]


def _table(header: str, rows: list[Row]) -> str:
    lines = [header, "", "| figure | measured | bar | |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {figure} | {measured} | {bar} | {'' if met is None else _mark(met)} |"
        for figure, measured, bar, met in rows
    ]
    return "\n".join(lines)


def render_queued(q: dict[str, Any], header: str | None = None) -> str:
    """The queued mode's table."""
    req, thr = q["requests"], q["worker_throughput"]
    per_second, cpu = thr["commands_per_second"], thr["cpu_ms_per_command"]
    large = req["batch_near_6mb"]
    rows: list[Row] = [
        (
            "queued: SQS requests / messages of a batch of 50 small commands",
            f"{req['batch_of_50']['requests']} / {req['batch_of_50']['messages']}",
            "1 request",
            req["batch_of_50"]["requests"] == 1,
        ),
        (
            f"queued: SQS requests / messages of a batch of 50 commands of "
            f"{large['body_bytes']:,} bytes (8 values of {LARGE_VALUE_CHARS:,} characters each)",
            f"{large['requests']} / {large['messages']}",
            f"<= {req['batch_near_6mb_bar']} requests (ceil(bytes / 1 MiB) + 1)",
            large["requests"] <= req["batch_near_6mb_bar"],
        ),
        (
            "queued: SQS requests / messages of the single-command route",
            f"{req['single_command']['requests']} / {req['single_command']['messages']}",
            "1 request",
            req["single_command"]["requests"] == 1,
        ),
        (
            f"worker commands/s ({thr['cpu_seconds_per_second']} CPU s/s), 5 ms round trip: "
            f"SQS events of {thr['batches_per_sample']} queued batches of 50 vs the same "
            f"batches through the synchronous batch route (fastest of {thr['rounds']}; the "
            "bar: median of each round's ratio)",
            f"{per_second['worker']:,} vs {per_second['sync_route']:,} = "
            f"{thr['ratio_vs_sync_route']}x "
            f"(paired median {thr['paired_median_ratio_vs_sync_route']}x)",
            "paired median >= 1x",
            thr["bars_met"],
        ),
        (
            "worker vs run_batch alone (the path of the batch-latency row), same run; "
            "client CPU per command: worker, route, run_batch",
            f"{per_second['worker']:,} vs {per_second['run_batch']:,} = "
            f"{thr['ratio_vs_run_batch']}x; {cpu['worker']} / {cpu['sync_route']} / "
            f"{cpu['run_batch']} ms",
            "",
            None,
        ),
    ]
    for lag in q["lag"]:
        parts = lag["p50_parts_ms"]
        rows.append(
            (
                f"lag from request to applied, {lag['batches_per_second']} batches/s of "
                f"{LAG_BATCH} commands, queue polled every {lag['poll_seconds']} s: "
                "p50 / p99 / max (p50's parts: route, queue, worker)",
                f"{lag['p50_ms']} / {lag['p99_ms']} / {lag['max_ms']} ms "
                f"({parts['route']} + {parts['queue']} + {parts['worker']} ms)",
                "",
                None,
            )
        )
    return _table(header or "The queued tracking mode (TrackingWrites=queued), same run:", rows)


def render_pacing(p: dict[str, Any], header: str | None = None) -> str:
    """The table of imports beside tracking."""
    paced, ceiling = p["paced"], p["import_ceiling"]

    def imported(variant: dict[str, Any]) -> str:
        return (
            f"{variant['writes_per_second']:,} writes/s = {variant['share_of_ceiling']:.0%} of "
            f"{ceiling:,} over {variant['seconds']} s; {variant['rows_imported']:,} of "
            f"{p['rows']:,} rows imported ({variant['rows_written']:,} written by the last run "
            "of each chunk); chunks done / failed / stopped at the cap "
            f"{variant['chunks_done']} / {variant['chunks_failed']} / {variant['chunks_capped']}, "
            f"{variant['redeliveries']} redeliveries; {variant['throttled_writes']:,} writes "
            f"throttled; {variant['cpu_ms_per_accepted_write']} ms CPU a write, "
            f"{variant['cpu_seconds_per_second']} CPU s/s"
        )

    def tracked(variant: dict[str, Any]) -> str:
        busy, idle = variant["tracking"], variant["idle_tracking"]
        return (
            f"{busy['p50_ms']} / {busy['p99_ms']} / {busy['max_ms']} ms vs "
            f"{idle['p50_ms']} / {idle['p99_ms']} / {idle['max_ms']} ms: p99 "
            f"{variant['tracking_p99_ratio']}x; {busy['failed_commands']:,} failed commands "
            f"({idle['failed_commands']:,}), {busy['throttled_writes']:,} writes throttled"
        )

    rows: list[Row] = [
        (
            f"paced import ({p['chunks']} chunks, ceiling {ceiling:,} writes/s): accepted "
            "writes / s of its wall time; rows, chunks, throttling",
            imported(paced),
            f">= {p['share_bar']:.0%} of the ceiling, no chunk failed or redelivered",
            paced["share_of_ceiling"] >= p["share_bar"]
            and paced["chunks_done"] == p["chunks"]
            and paced["redeliveries"] == 0
            and paced["rows_imported"] == p["rows"],
        ),
        (
            "tracking beside the paced import vs the same stream meanwhile on an idle "
            "table: batch p50 / p99 / max; failures",
            tracked(paced),
            f"no failed command, p99 <= {p['latency_bar']}x",
            paced["tracking"]["failed_commands"] == 0
            and paced["tracking_p99_ratio"] <= p["latency_bar"],
        ),
    ]
    for variant, label in (
        ("naive", "naive import (no pacer: botocore's standard retries)"),
        ("adaptive", "import with botocore's adaptive retry mode instead of the pacer"),
    ):
        rows.append((label, imported(p[variant]), "", None))
        rows.append(
            (f"tracking beside the {variant} import vs idle", tracked(p[variant]), "", None)
        )
    setup = (
        f"Imports beside tracking: a table of {p['write_capacity']:,} writes/s (burst "
        f"{p['burst_seconds']} s), an import of {p['rows']:,} rows in {p['chunks']} chunk "
        f"processes (nice {p['import_nice']}), a tracking stream of "
        f"{p['tracking_writes_per_second']} writes/s (batches of 50), "
        f"{p['round_trip_ms']:g} ms round trip"
    )
    return _table(f"{header or 'Same run.'} {setup}:", rows)


def render_items(r: dict[str, Any], header: str | None = None) -> str:
    """The table of customer items' write units."""
    setup = (
        f"Customer items: a one-property update's write units (1 per started KB of the larger "
        f"of the item before and after it), tombstones kept or compacted after the grace of "
        f"{r['grace_days']:g} days"
    )
    return _table(f"{header or 'Same run.'} {setup}:", items.render_items(r))


BENCH_MARKERS = ("<!-- bench:start -->", "<!-- bench:end -->")
ITEMS_MARKERS = ("<!-- bench-items:start -->", "<!-- bench-items:end -->")
QUEUED_MARKERS = ("<!-- bench-queued:start -->", "<!-- bench-queued:end -->")
PACING_MARKERS = ("<!-- bench-pacing:start -->", "<!-- bench-pacing:end -->")


def update_doc(table: str, markers: tuple[str, str]) -> None:
    """Replace what lies between ``markers`` in docs/PERFORMANCE.md with
    ``table`` (which may hold markers of its own)."""
    doc = ROOT / "docs" / "PERFORMANCE.md"
    start, end = markers
    text = doc.read_text()
    if start in text and end in text:
        before, rest = text.split(start, 1)
        doc.write_text(before + start + "\n" + table + "\n" + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    sys.exit(main())
