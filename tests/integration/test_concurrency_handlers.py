"""Many writers through the real tracking handler, in several processes (each
a Lambda container serving one request at a time, each batch running its
commands on threads), with an import running on the same customers at the
same time, against each engine. The end state must be the pure merge rule's
for the whole set of updates, and no acknowledged update may be lost. In the
queued mode, as many worker processes then take the messages off the queue
at once, and every accepted command counts as acknowledged."""

import multiprocessing
import os
import random
from collections import defaultdict

from propsync import canonical_json
from propsync.identity import find_customer_id
from propsync.merge_rule import PropertyVersion, merge
from tests.conftest import PROJECT

WRITER_PROCESSES = 4
BATCHES_PER_WRITER = 6
COMMANDS_PER_BATCH = 12
CUSTOMERS = [f"shared-{i}" for i in range(5)]
PROPERTIES = ["email", "tier", "city"]
IMPORT_ROWS = 60


def _writer(environment: dict, seed: int, queue) -> None:
    """One process: sends batches through the routed handler, reports what
    it sent and what each command was told."""
    os.environ.update(environment)
    from propsync_local.apigw import handle  # noqa: PLC0415 - imported in the child

    rng = random.Random(seed)
    sent, acknowledged = [], []
    for _ in range(BATCHES_PER_WRITER):
        commands = []
        for _ in range(COMMANDS_PER_BATCH):
            properties = {
                name: rng.choice(["a", "b", "c", None, 1, 2])
                for name in rng.sample(PROPERTIES, rng.randint(1, 3))
            }
            commands.append(
                {
                    "name": "customers",
                    "data": {
                        "customer_ids": {"registered": rng.choice(CUSTOMERS)},
                        "properties": properties,
                        "update_timestamp": rng.randint(1, 8),  # few values: many ties
                    },
                }
            )
        response = handle(
            "POST",
            f"/track/v2/projects/{PROJECT}/batch",
            headers={"Content-Type": "application/json"},
            body=canonical_json.dumps({"commands": commands}),
        )
        assert response.status == 200, response.body
        for command, result in zip(commands, response.json()["results"], strict=True):
            data = command["data"]
            for name, value in data["properties"].items():
                sent.append(
                    (data["customer_ids"]["registered"], name, value, data["update_timestamp"], 0)
                )
            if result["success"]:
                # queued: accepted, so every property must end up stored
                # unless a newer version beats it
                for name in result.get("applied", data["properties"]):
                    value = data["properties"][name]
                    acknowledged.append(
                        (
                            data["customer_ids"]["registered"],
                            name,
                            value,
                            data["update_timestamp"],
                            0,
                        )
                    )
    queue.put((sent, acknowledged))


def _worker(environment: dict) -> None:
    """One process: the tracking worker, taking messages off the queue until
    none is left, as concurrent invocations of the event source mapping."""
    os.environ.update(environment)
    import boto3  # noqa: PLC0415 - imported in the child

    from propsync_local import triggers  # noqa: PLC0415

    sqs = boto3.client("sqs")
    triggers.drain(sqs, os.environ["PROPSYNC_TRACKING_QUEUE_URL"], "TrackingWorkerFunction")


def test_writers_in_processes_and_an_import_converge_on_the_rule(api, imports, engine):
    environment = {
        name: os.environ[name]
        for name in (
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
            "PROPSYNC_TABLE_NAME",
            "PROPSYNC_TRACKING_WRITES",
            *(
                ("PROPSYNC_TRACKING_QUEUE_URL", "PROPSYNC_TRACKING_DEAD_LETTER_QUEUE_URL")
                if api.queued
                else ()
            ),
        )
    }
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    writers = [
        context.Process(target=_writer, args=(environment, seed, queue))
        for seed in range(WRITER_PROCESSES)
    ]
    for writer in writers:
        writer.start()

    # meanwhile, an import of the same customers (its own timestamps and lines)
    rng = random.Random(99)
    rows = [
        (
            rng.choice(CUSTOMERS),
            rng.choice(["x", "y", ""]),
            rng.choice(["gold", "silver"]),
            rng.randint(1, 8),
        )
        for _ in range(IMPORT_ROWS)
    ]
    imports.put_mapping(
        "concurrent",
        {
            "properties": [
                {"from_column": "email", "to_property": "email", "type": "string"},
                {"from_column": "tier", "to_property": "tier", "type": "string"},
            ],
            "ids": [{"from_column": "id", "to_id": "registered"}],
            "update_timestamp": {"from_column": "ts"},
        },
    )
    data = "id,email,tier,ts\n" + "".join(f"{c},{e},{t},{ts}\n" for c, e, t, ts in rows)
    record, _ = imports.drop("concurrent", "rows.csv", data.encode())
    assert record.status == "succeeded"

    results = [queue.get(timeout=300) for _ in writers]
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0
    if api.queued:  # as many workers as writers take the queued messages at once
        workers = [
            context.Process(target=_worker, args=(environment,)) for _ in range(WRITER_PROCESSES)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=300)
            assert worker.exitcode == 0
        assert api.queues.deliver() == 0  # nothing left, nothing failed
        assert api.queues.dead_letters() == []
    sent = [update for s, _ in results for update in s]
    acknowledged = [update for _, a in results for update in a]
    for line, (customer, email, tier, ts) in enumerate(rows, start=2):
        sent.append((customer, "email", email or None, ts, line))
        sent.append((customer, "tier", tier, ts, line))

    store = imports.services.customers
    lost = 0
    for customer in CUSTOMERS:
        customer_id = find_customer_id(store, PROJECT, "registered", customer)
        final = store.read_customer(PROJECT, customer_id).properties
        expected = merge(
            {},
            [
                (name, PropertyVersion(canonical_json.dumps(value), float(ts), sequence))
                for c, name, value, ts, sequence in sent
                if c == customer
            ],
        )
        assert final == expected, customer
        for c, name, value, ts, sequence in acknowledged:
            ack = PropertyVersion(canonical_json.dumps(value), float(ts), sequence)
            if c == customer and (final[name].timestamp, final[name].order_key) < (
                ack.timestamp,
                ack.order_key,
            ):
                lost += 1
    assert lost == 0
    # concurrent first sightings of each id made exactly one customer
    owners = defaultdict(set)
    for customer in CUSTOMERS:
        owners[customer].add(find_customer_id(store, PROJECT, "registered", customer))
    assert all(len(ids) == 1 for ids in owners.values())
    assert len(sent) > WRITER_PROCESSES * BATCHES_PER_WRITER * COMMANDS_PER_BATCH
    assert len(acknowledged) > 0
