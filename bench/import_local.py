"""Import throughput and peak memory against the local stack.

    .venv/bin/python bench/import_local.py [--rows 100000] [--customers 20000]

Starts a single-threaded moto server (the local stack's DynamoDB and S3),
creates the template's resources, writes a CSV of --rows rows over
--customers customers to disk, uploads it, and runs the real import
execution in this process, as ImportFunction would. Prints rows per second
and the peak memory (RSS) of this process before and after the import, and
writes bench/results/import-local.json. The moto server runs in its own
process, so its CPU and memory are not counted, as DynamoDB's are not on
AWS; its single thread does bound the rate, so the figure is a floor for
AWS, not a forecast.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "propsync"), str(ROOT / "local"), str(ROOT / "bench")]

from workload import HEADER, MAPPING_DOCUMENT, PROJECT  # noqa: E402

from propsync_local import moto_server  # noqa: E402
from propsync_local.cfn_template import load_template  # noqa: E402
from propsync_local.processes import listening_socket  # noqa: E402

MAPPING = MAPPING_DOCUMENT


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def write_csv(path: Path, rows: int, customers: int) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for row in range(rows):
            customer = rng.randrange(customers)
            signed_up = f"20{rng.randrange(10, 25)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}"
            out.write(
                f"c{customer},Name {row},c{customer}@example.com,{rng.randrange(18, 90)},"
                f"{rng.choice(['yes', 'no'])},{signed_up}\n"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--port", type=int, default=0, help="moto's port (default: any free one)")
    args = parser.parse_args()
    listening = listening_socket(args.port)  # bound here: never another program's server
    port = listening.getsockname()[1]

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    with tempfile.TemporaryDirectory() as scratch, moto_server.running(listening):
        from propsync_local.stack import create_resources  # noqa: PLC0415

        names = create_resources(load_template())
        os.environ["PROPSYNC_TABLE_NAME"] = names["PropsyncTable"]
        os.environ["PROPSYNC_IMPORT_BUCKET"] = names["ImportBucket"]
        os.environ["PROPSYNC_CHUNK_QUEUE_URL"] = names["ChunkQueue"]
        import boto3  # noqa: PLC0415

        from propsync.imports import (  # noqa: PLC0415
            chunk_services_from_environment,
            deliver_chunk,
            services_from_environment,
            start_execution,
        )

        services = services_from_environment()
        services.access.create_project(PROJECT, "bench")
        data = Path(scratch) / "bench.csv"
        write_csv(data, args.rows, args.customers)
        folder = f"imports/{PROJECT}/bench"
        services.bucket.put(
            f"{folder}/mapping.json", json.dumps(MAPPING).encode(), "application/json"
        )
        file_bytes = data.stat().st_size
        with data.open("rb") as stream:
            services.bucket.put(f"{folder}/bench.csv", stream, "text/csv")

        before = peak_rss_mb()
        cpu_before = time.process_time()
        started = time.perf_counter()
        record = start_execution(services, f"{folder}/bench.csv", "BENCH1")
        # ImportFunction plans and queues; the chunk function runs each chunk
        chunks, sqs = chunk_services_from_environment(), boto3.client("sqs")
        while messages := sqs.receive_message(
            QueueUrl=names["ChunkQueue"], MaxNumberOfMessages=10
        ).get("Messages"):
            for message in messages:
                body = json.loads(message["Body"])
                deliver_chunk(chunks, body["execution_id"], body["chunk"])
                sqs.delete_message(
                    QueueUrl=names["ChunkQueue"], ReceiptHandle=message["ReceiptHandle"]
                )
        record = services.imports.get(record.execution_id) if record else None
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_before
        after = peak_rss_mb()

    if record is None or record.status != "succeeded":
        raise SystemExit(f"the import did not succeed: {record}")
    result = {
        "rows": args.rows,
        "customers": args.customers,
        "file_bytes": file_bytes,
        "seconds": round(seconds, 2),
        "rows_per_second": round(args.rows / seconds),
        # CPU of this process only (parsing, mapping, boto3); moto's is apart
        "client_cpu_ms_per_row": round(cpu_seconds * 1000 / args.rows, 3),
        "peak_rss_mb_before_import": round(before, 1),
        "peak_rss_mb_after_import": round(after, 1),
        "rows_written": record.counters["rows_written"],
        "properties_applied": record.counters["properties_applied"],
        "engine": "single-threaded moto server on 127.0.0.1",
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "import-local.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    _update_performance_doc(result)
    return 0


def _update_performance_doc(result: dict) -> None:
    """Rewrite this benchmark's section of docs/PERFORMANCE.md."""
    doc = ROOT / "docs" / "PERFORMANCE.md"
    start, end = "<!-- import-local:start -->", "<!-- import-local:end -->"
    text = doc.read_text()
    if start not in text or end not in text:
        return
    table = "\n".join(
        [
            start,
            f"Measured {result['measured_at']} (Python {result['python']}, "
            f"{result['cpus']} CPUs, {result['engine']}).",
            "",
            "| figure | value |",
            "| --- | --- |",
            f"| rows (customers) | {result['rows']:,} ({result['customers']:,}) |",
            f"| file size | {result['file_bytes'] / 1e6:.1f} MB |",
            f"| import time | {result['seconds']:.1f} s |",
            f"| rows per second | {result['rows_per_second']:,} |",
            f"| CPU of the import process per row | "
            f"{result.get('client_cpu_ms_per_row', 'not measured')} ms |",
            f"| properties written | {result['properties_applied']:,} |",
            f"| peak RSS before / after the import | {result['peak_rss_mb_before_import']} MB / "
            f"{result['peak_rss_mb_after_import']} MB |",
            end,
        ]
    )
    before, rest = text.split(start, 1)
    doc.write_text(before + table + rest.split(end, 1)[1])


if __name__ == "__main__":
    sys.exit(main())
