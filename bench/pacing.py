"""`make bench`'s pacing measurement: an import at the table's capacity, and
the tracking route beside it (docs/PERFORMANCE.md, "Imports beside tracking").

One DynamoDB table of WRITE_CAPACITY accepted write requests per second
(bench/fake_dynamodb.WriteCapacity: one token bucket, kept by this process,
that the fakes of every process below draw from), 5 ms round trip. An import
of ROWS rows of existing customers (one write a row) runs as CHUNKS chunks,
each in a process of its own as each would run in a Lambda container of its
own, through propsync's import write path (imports._write_batch over mapped
rows, batch after batch, as run_chunk runs them). Meanwhile a process of its
own sends a steady stream of tracking batches through the synchronous path
(tracking.run_commands, what the batch route runs), its client with the API
functions' throttling policy (RetryWithinDeadline, the tracking function's
Timeout as the budget, set around each batch as the handler's decorator sets
it). The import processes run
niced: on AWS they are other containers with their own vCPU, here they share
two cores with the tracking process and must not take its CPU.

Three imports on the same table:

- ``paced``: the chunk function's client, WritePacer(chunk_write_share())
  attached, PROPSYNC_IMPORT_WRITES_PER_SECOND = IMPORT_CEILING and
  PROPSYNC_IMPORT_CONCURRENCY = CHUNKS;
- ``naive``: the same without the pacer, botocore's standard retries alone
  (propsync before the pacer);
- ``adaptive``: botocore's own client-side rate limiter
  (``retries={"mode": "adaptive"}``) instead of the pacer.

A chunk whose run raises a transient error is run again from its first row
(SQS redelivers it; here at once, where SQS would wait for the queue's
visibility timeout, 5,400 s), up to imports.LAST_ATTEMPT_RECEIVE receives,
then failed, as imports.deliver_chunk decides. The naive and adaptive runs
stop at NAIVE_CAP_SECONDS. The baseline of the stream's latency is the same
stream at the same time in a process of its own, alone on a second table of
the same capacity: both feel the machine alike (its other tenants come and go,
and the import processes' CPU is on both), so what differs between them is
what the import does to the table. On AWS the import's CPU is not the tracking
function's (each Lambda container has its own).

W and C: a write costs the client about 1 ms of CPU on this machine when it
is shared (0.7 ms when it is quiet), so the paced import's IMPORT_CEILING
writes a second take most of one of its two cores, and leave the other to the
two tracking streams and the machine's other tenants. The table's capacity is
below what the unpaced chunk processes send (both cores at 0.7-1 ms a write),
as on AWS, where each chunk has a vCPU of its own: else the naive import would
never be throttled here. The ceiling and the stream leave a sixth of it spare.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import statistics
import time
from multiprocessing.context import SpawnContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from fake_dynamodb import CapacityLink, FakeDynamoDB, WriteCapacity, serving
from workload import HEADER, MAPPING_DOCUMENT, PROJECT

from propsync.customer_updates import update_customer
from propsync.import_mapping import parse_mapping
from propsync.import_rows import iter_records, read_layout
from propsync.imports import (
    CONCURRENCY_ENV,
    LAST_ATTEMPT_RECEIVE,
    WRITES_PER_SECOND_ENV,
    Services,
    _batches,
    _ChunkOutcome,
    _write_batch,
    chunk_write_share,
    mapped_row,
)
from propsync.store.access import AccessStore
from propsync.store.customers import CustomerStore
from propsync.store.dynamo import client_config, is_transient_error
from propsync.store.throttling import RetryWithinDeadline, WritePacer, set_time_budget
from propsync.tracking import run_commands
from propsync_local.apigw import function_timeout

WRITE_CAPACITY = 1200  # W: the table's writes per second
IMPORT_CEILING = 800  # C: PROPSYNC_IMPORT_WRITES_PER_SECOND
CHUNKS = 4  # K: PROPSYNC_IMPORT_CONCURRENCY, one process each
ROWS = 200_000
ROUND_TRIP = 0.005
BURST_SECONDS = 0.1  # of the table's bucket
CUSTOMERS_PER_CHUNK = 500  # = imports.ROWS_PER_BATCH: every row of a batch its own customer
TRACKING_RATE, TRACKING_BATCH = 4, 50  # batches a second, commands a batch: 200 writes/s
IMPORT_NICE = 19
NAIVE_CAP_SECONDS = 90.0
PACED_CAP_SECONDS = 2.5 * ROWS / IMPORT_CEILING  # a stuck run ends (and misses its bar)
TRACKING_BUDGET_SECONDS = function_timeout("TrackingFunction")  # as Lambda gives it
SHARE_BAR, LATENCY_BAR = 0.9, 1.5
VARIANTS = ("paced", "naive", "adaptive")
MAPPING = parse_mapping(MAPPING_DOCUMENT)


def _client(config: Config, fake: FakeDynamoDB, *, api: bool = True) -> Any:
    """A client as propsync's factories make it, answered by ``fake``: the
    API functions' (store.dynamo.client_and_table_from_environment, with
    RetryWithinDeadline), or with ``api=False`` the import chunks' own
    (import_client_and_table_from_environment, no policy until a pacer)."""
    client = boto3.client("dynamodb", endpoint_url="http://dynamodb.fake", config=config)
    if api:
        RetryWithinDeadline().attach(client)
    fake.attach(client)
    return client


def _run_queue_seconds() -> float:
    """Time this process's threads waited for a CPU while runnable, so far
    (Linux's schedstat; 0 elsewhere): how much of a latency is the machine's."""
    total = 0
    for stat in Path("/proc/self/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that just ended
    return total / 1e9


def _quiet() -> None:
    # the failures below are counted; their tracebacks would only flood stderr
    logging.disable(logging.CRITICAL)


def _chunk_customer(chunk: int, n: int) -> str:
    return f"k{chunk}c{n % CUSTOMERS_PER_CHUNK}"


def _chunk_csv(chunk: int) -> bytes:
    return (
        HEADER
        + "".join(
            f"{_chunk_customer(chunk, n)},Name {n},{_chunk_customer(chunk, n)}@example.com,"
            f"{n % 90},yes,2019-0{n % 9 + 1}-1{n % 9}\n"
            for n in range(ROWS // CHUNKS)
        )
    ).encode()


def _tracking_command(i: int, timestamp: float) -> dict[str, Any]:
    data = {
        "customer_ids": {"registered": f"t{i}"},
        "properties": {"tier": "gold", "visits": i, "vip": True},
        "update_timestamp": timestamp,
    }
    return {"name": "customers", "data": data}


def seeded_items() -> dict[str, dict[str, Any]]:
    """The table every process starts from: the project, the import's
    customers and the tracking stream's, stored through propsync itself."""
    fake = FakeDynamoDB(0.0)
    client = _client(client_config(), fake)
    AccessStore(client, "bench").create_project(PROJECT, "bench")
    store = CustomerStore(client, "bench")
    ids = [_chunk_customer(c, n) for c in range(CHUNKS) for n in range(CUSTOMERS_PER_CHUNK)]
    ids += [f"t{i}" for i in range(TRACKING_BATCH)]
    for customer in ids:
        update_customer(
            store,
            PROJECT,
            {"registered": customer},
            {"seed": 0},
            update_timestamp=None,
            received_at=1.0,
        )
    return fake.items


# ------------------------------------------------------------ the processes


def import_chunk(
    variant: str,
    chunk: int,
    *,
    capacity: CapacityLink,
    items: dict[str, dict[str, Any]],
    start: Barrier,
    results: Queue[dict[str, Any]],
) -> None:
    """One chunk as the chunk function runs it, in a "container" of its own."""
    _quiet()
    os.nice(IMPORT_NICE)
    os.environ[WRITES_PER_SECOND_ENV] = str(IMPORT_CEILING)
    os.environ[CONCURRENCY_ENV] = str(CHUNKS)
    config = client_config()
    if variant == "adaptive":
        config = config.merge(Config(retries={"mode": "adaptive", "max_attempts": 5}))
    fake = FakeDynamoDB(ROUND_TRIP, capacity=capacity)
    fake.items, fake.store_updates = items, False
    client = _client(config, fake, api=False)
    pacer = WritePacer(chunk_write_share()).attach(client) if variant == "paced" else None
    services = Services(
        customers=CustomerStore(client, "bench"),
        access=AccessStore(client, "bench"),
        imports=None,  # type: ignore[arg-type]
        bucket=None,  # type: ignore[arg-type]
        queue=None,
        pacer=pacer,
    )
    data = _chunk_csv(chunk)
    layout = read_layout(data[: 1 << 20], None)
    cap = PACED_CAP_SECONDS if variant == "paced" else NAIVE_CAP_SECONDS
    start.wait()
    started, cpu_started = time.monotonic(), time.process_time()
    receives, status, error, outcome = 0, "", "", _ChunkOutcome()
    while not status:
        receives += 1
        outcome = _ChunkOutcome()
        try:
            records = iter_records(io.BytesIO(data[layout.data_start :]), ",", 2)
            for batch in _batches(records):
                if time.monotonic() - started > cap:
                    status = "capped"
                    break
                mapped = [
                    mapped_row(MAPPING, layout.header, read, started_at=40.0, now=time.time())
                    for read in batch
                ]
                _write_batch(services, PROJECT, mapped, outcome)
            else:
                status = "done"
        except Exception as raised:  # as imports.deliver_chunk decides
            error = f"{type(raised).__name__}: {raised}"[:300]
            if not (is_transient_error(raised) and receives < LAST_ATTEMPT_RECEIVE):
                status = "failed"
    figures = pacer.figures() if pacer else None
    results.put(
        {
            "chunk": chunk,
            "status": status,
            "receives": receives,
            "rows_written": outcome.counters["rows_written"],
            "rows_rejected": outcome.counters["rows_rejected"],
            "ended": time.monotonic(),
            "cpu_seconds": time.process_time() - cpu_started,
            "error": error,
            "pacer_throttled_seconds": figures.throttled_seconds if figures else None,
        }
    )


def tracking_stream(
    *,
    capacity: CapacityLink,
    items: dict[str, dict[str, Any]],
    start: Barrier,
    stop: Event,
    results: Queue[dict[str, Any]],
) -> None:
    """TRACKING_RATE batches of TRACKING_BATCH commands a second, each as the
    tracking function runs it, until ``stop``."""
    _quiet()
    fake = FakeDynamoDB(ROUND_TRIP)
    fake.items, fake.store_updates = items, False
    store = CustomerStore(_client(client_config(), fake), "bench")
    run_commands(
        store,
        PROJECT,
        [_tracking_command(i, 1.0) for i in range(TRACKING_BATCH)],
        received_at=time.time(),
    )  # a warm container: its pool and connections
    fake.capacity = capacity  # from now on, the table's capacity applies
    start.wait()
    started, cpu_started = time.monotonic(), time.process_time()
    waited_before = _run_queue_seconds()
    latencies: list[float] = []
    failed = 0
    while not stop.is_set():
        due = started + len(latencies) / TRACKING_RATE
        time.sleep(max(0.0, due - time.monotonic()))
        batch = [_tracking_command(i, 100.0 + len(latencies)) for i in range(TRACKING_BATCH)]
        set_time_budget(TRACKING_BUDGET_SECONDS)  # as within_time_budget sets it
        began = time.perf_counter()
        try:
            outcomes = run_commands(store, PROJECT, batch, received_at=time.time())
        finally:
            set_time_budget(None)
        latencies.append((time.perf_counter() - began) * 1000)
        failed += sum(1 for status, _ in outcomes if status != 200)
    results.put(
        {
            "latencies_ms": latencies,
            "failed": failed,
            "seconds": time.monotonic() - started,
            "cpu_seconds": time.process_time() - cpu_started,
            "run_queue_seconds": _run_queue_seconds() - waited_before,
        }
    )


# ------------------------------------------------------------ the phases


def _run(
    context: SpawnContext,
    tables: tuple[WriteCapacity, WriteCapacity],
    items: dict[str, dict[str, Any]],
    variant: str,
) -> dict[str, Any]:
    """The import ``variant`` and the tracking stream on one table, and the
    same stream alone on an idle table of the same capacity, until the import
    ends; what each saw, and the tables' counts."""
    for table in tables:
        table.reset()
    start, stop = context.Barrier(CHUNKS + 3), context.Event()
    chunk_results: Queue[dict[str, Any]] = context.Queue()
    tracking_results = [context.Queue() for _ in tables]
    shared = {"items": items, "start": start}
    processes = [
        context.Process(
            target=import_chunk,
            args=(variant, c),
            kwargs={**shared, "capacity": tables[0].link("import"), "results": chunk_results},
        )
        for c in range(CHUNKS)
    ]
    processes += [
        context.Process(
            target=tracking_stream,
            kwargs={**shared, "capacity": table.link("tracking"), "stop": stop, "results": results},
        )
        for table, results in zip(tables, tracking_results, strict=True)
    ]
    with serving(*tables):
        for process in processes:
            process.start()
        try:
            start.wait(timeout=120)  # every process started, its imports done
            started = time.monotonic()
            timeout = (PACED_CAP_SECONDS if variant == "paced" else NAIVE_CAP_SECONDS) + 120
            chunks_seen = [chunk_results.get(timeout=timeout) for _ in range(CHUNKS)]
            stop.set()  # the import is over: so are the streams
            tracking, idle = (results.get(timeout=60) for results in tracking_results)
        finally:
            stop.set()
            for process in processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
    return {
        "started": started,
        "chunks": sorted(chunks_seen, key=lambda r: r["chunk"]),
        "tracking": tracking,
        "idle_tracking": idle,
        "counts": {source: tables[0].counts(source) for source in ("import", "tracking")},
        "idle_counts": {"tracking": tables[1].counts("tracking")},
    }


def _percentile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _tracking_figures(tracking: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    latencies = tracking["latencies_ms"]
    return {
        "batches": len(latencies),
        "batches_per_second": round(len(latencies) / tracking["seconds"], 2),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(_percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "failed_commands": tracking["failed"],
        "cpu_seconds_per_second": round(tracking["cpu_seconds"] / tracking["seconds"], 2),
        "run_queue_ms_per_batch": round(tracking["run_queue_seconds"] * 1000 / len(latencies), 1),
        "throttled_writes": counts["throttled"],
        "accepted_writes": counts["accepted"],
    }


def _import_figures(run: dict[str, Any]) -> dict[str, Any]:
    chunks, counts = run["chunks"], run["counts"]
    tracking = _tracking_figures(run["tracking"], counts["tracking"])
    idle = _tracking_figures(run["idle_tracking"], run["idle_counts"]["tracking"])
    seconds = max(chunk["ended"] for chunk in chunks) - run["started"]
    accepted = counts["import"]["accepted"]
    rows = sum(chunk["rows_written"] for chunk in chunks if chunk["status"] == "done")
    statuses = [chunk["status"] for chunk in chunks]
    throttled_seconds = [chunk["pacer_throttled_seconds"] for chunk in chunks]
    return {
        "seconds": round(seconds, 1),
        "accepted_writes": accepted,
        "throttled_writes": counts["import"]["throttled"],
        "writes_per_second": round(accepted / seconds),
        "share_of_ceiling": round(accepted / seconds / IMPORT_CEILING, 3),
        "rows_imported": rows,  # rows of the chunks that completed
        # by the last run of every chunk, stopped ones too; the accepted writes
        # beyond these were runs that failed and were redelivered
        "rows_written": sum(chunk["rows_written"] for chunk in chunks),
        # the CPU the import processes got: what bounds them on this machine
        "cpu_seconds_per_second": round(sum(chunk["cpu_seconds"] for chunk in chunks) / seconds, 2),
        "cpu_ms_per_accepted_write": round(
            sum(chunk["cpu_seconds"] for chunk in chunks) * 1000 / max(accepted, 1), 2
        ),
        "chunks_done": statuses.count("done"),
        "chunks_failed": statuses.count("failed"),
        "chunks_capped": statuses.count("capped"),
        "redeliveries": sum(chunk["receives"] - 1 for chunk in chunks),
        "errors": sorted({chunk["error"] for chunk in chunks if chunk["error"]})[:3],
        "pacer_throttled_seconds": None
        if None in throttled_seconds
        else round(sum(throttled_seconds), 2),
        "tracking": tracking,
        "idle_tracking": idle,
        "tracking_p99_ratio": round(tracking["p99_ms"] / idle["p99_ms"], 2),
    }


def pacing() -> dict[str, Any]:
    """Each import beside the tracking stream; the figures and the bars."""
    context = multiprocessing.get_context("spawn")  # not fork: this process has threads
    tables = (
        WriteCapacity(WRITE_CAPACITY, burst_seconds=BURST_SECONDS),
        WriteCapacity(WRITE_CAPACITY, burst_seconds=BURST_SECONDS),
    )
    items = seeded_items()
    imports = {
        variant: _import_figures(_run(context, tables, items, variant)) for variant in VARIANTS
    }
    paced = imports["paced"]
    return {
        "write_capacity": WRITE_CAPACITY,
        "import_ceiling": IMPORT_CEILING,
        "chunks": CHUNKS,
        "rows": ROWS,
        "round_trip_ms": ROUND_TRIP * 1000,
        "burst_seconds": BURST_SECONDS,
        "tracking_writes_per_second": TRACKING_RATE * TRACKING_BATCH,
        "import_nice": IMPORT_NICE,
        **imports,
        "share_bar": SHARE_BAR,
        "latency_bar": LATENCY_BAR,
        "bars_met": paced["share_of_ceiling"] >= SHARE_BAR
        and paced["chunks_done"] == CHUNKS
        and paced["redeliveries"] == 0
        and paced["rows_imported"] == ROWS
        and paced["tracking"]["failed_commands"] == 0
        and paced["tracking_p99_ratio"] <= LATENCY_BAR,
    }
