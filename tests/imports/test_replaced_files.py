"""A file uploaded again under the same key while its import runs: every read
of an execution is pinned to the object version (ETag) it started from, so no
row of one upload is read with the other's header, and the replaced
execution's report never takes the newer one's place."""

import gzip
import json

import pytest

from propsync.customer_view import plain_properties
from propsync.identity import find_customer_id
from propsync.imports import deliver_chunk
from propsync_local import triggers
from propsync_local.apigw import LambdaContext, load_handler
from tests.conftest import PROJECT

MAPPING = {
    "properties": [{"from_column": "First Name", "to_property": "first_name", "type": "string"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
ROWS = 60
REPLACED = "the file was replaced while it was imported (its ETag changed)"


def first_file() -> bytes:
    return b"id,First Name\n" + b"".join(b"a%d,First %d\n" % (i, i) for i in range(ROWS))


def second_file() -> bytes:
    """The same columns in the other order: read with the first file's header,
    its names would become ids and its ids names."""
    return b"First Name,id\n" + b"".join(b"Second %d,b%d\n" % (i, i) for i in range(ROWS))


def upload(imports, key: str, body: bytes) -> str:
    return str(imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=body)["ETag"])


def s3_created(imports, key: str, sequencer: str, etag: str) -> dict:
    """ImportFunction invoked with the S3 event of one upload (eTag unquoted, as S3 sends it)."""
    event = triggers.s3_event(imports.bucket, key, sequencer, 100, etag.strip('"'))
    return load_handler("ImportFunction")(event, LambdaContext("ImportFunction"))


def run_chunks(messages: list[dict]) -> dict:
    event = triggers.sqs_event(
        [
            {"MessageId": f"m{index}", "ReceiptHandle": "r", "Body": json.dumps(message)}
            for index, message in enumerate(messages)
        ]
    )
    return load_handler("ImportChunkFunction")(event, LambdaContext("ImportChunkFunction"))


def run_queued_chunks(imports) -> None:
    """Run the chunk queue's messages through the handler, and the next
    chunks of their lanes as those are sent, until the queue is empty."""
    while messages := imports.messages():
        assert run_chunks(messages) == {"batchItemFailures": []}


def name_of(imports, registered: str) -> str | None:
    store = imports.services.customers
    customer = find_customer_id(store, PROJECT, "registered", registered)
    if customer is None:
        return None
    return plain_properties(store.read_customer(PROJECT, customer))["first_name"]


def assert_no_row_read_with_the_other_header(imports) -> None:
    for i in range(ROWS):
        assert name_of(imports, f"Second {i}") is None  # a name of file 2 taken for an id
        assert name_of(imports, f"First {i}") is None
        assert name_of(imports, f"b{i}") == f"Second {i}"


def test_a_file_replaced_between_planning_and_its_chunks(environment, monkeypatch):
    imports = environment
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "200")
    imports.put_mapping("crm", MAPPING)
    key = f"imports/{PROJECT}/crm/customers.csv"
    first = s3_created(imports, key, "00A1", upload(imports, key, first_file()))
    first_chunks = imports.messages()  # the first chunk of each of its lanes
    assert len(first_chunks) == 2

    second = s3_created(imports, key, "00A2", upload(imports, key, second_file()))
    run_queued_chunks(imports)
    newer = imports.report("crm", "customers.csv")
    # the replaced execution's chunks run after the newer import finished
    assert run_chunks(first_chunks) == {"batchItemFailures": []}
    run_queued_chunks(imports)

    assert_no_row_read_with_the_other_header(imports)
    assert all(name_of(imports, f"a{i}") is None for i in range(ROWS))
    assert imports.report("crm", "customers.csv") == newer  # not overwritten
    assert newer["execution_id"] == second["executions"][0]["execution_id"]
    assert (newer["status"], newer["rows_written"]) == ("succeeded", ROWS)
    replaced_id = first["executions"][0]["execution_id"]
    replaced = imports.report_at(f"reports/{PROJECT}/crm/customers.csv.replaced-{replaced_id}.json")
    assert replaced["status"] == "incomplete"
    assert replaced["rows_written"] == 0
    assert len(replaced["failed_chunks"]) == replaced["chunks"] > len(first_chunks)
    assert all(REPLACED in failed["error"] for failed in replaced["failed_chunks"])
    assert imports.services.imports.get(replaced_id).status == "incomplete"


@pytest.mark.parametrize("file_name", ["customers.csv", "customers.csv.gz"])
def test_an_event_that_arrives_after_its_file_was_replaced(environment, file_name):
    """One chunk: the planning read is pinned too."""
    imports = environment
    imports.put_mapping("crm", MAPPING)
    key = f"imports/{PROJECT}/crm/{file_name}"
    pack = gzip.compress if file_name.endswith(".gz") else bytes
    first_etag = upload(imports, key, pack(first_file()))
    second_etag = upload(imports, key, pack(second_file()))

    s3_created(imports, key, "00B2", second_etag)
    late = s3_created(imports, key, "00B1", first_etag)
    run_queued_chunks(imports)

    assert_no_row_read_with_the_other_header(imports)
    newer = imports.report("crm", file_name)
    assert (newer["status"], newer["rows_written"]) == ("succeeded", ROWS)
    late_id = late["executions"][0]["execution_id"]
    assert late["executions"][0]["status"] == "failed"
    replaced = imports.report_at(f"reports/{PROJECT}/crm/{file_name}.replaced-{late_id}.json")
    assert REPLACED in replaced["problems"][0]


def test_chunks_stay_pinned_without_an_etag_in_the_event(imports, monkeypatch):
    """An event without eTag (an older sample, a hand-made one): the version
    the planning read found is the one every chunk reads."""
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "200")
    imports.put_mapping("crm", MAPPING)
    record, _ = imports.drop("crm", "customers.csv", first_file(), run_chunks=False)
    messages = imports.messages()
    upload(imports, f"imports/{PROJECT}/crm/customers.csv", second_file())

    for message in messages:
        deliver_chunk(imports.services, message["execution_id"], message["chunk"])
    imports.run_queue()  # the next chunks of their lanes

    assert all(name_of(imports, f"Second {i}") is None for i in range(ROWS))
    report = imports.report_at(
        f"reports/{PROJECT}/crm/customers.csv.replaced-{record.execution_id}.json"
    )
    assert report["status"] == "incomplete"


def test_two_uploads_of_one_file_imported_at_once_keep_their_part_files_apart(imports, monkeypatch):
    """The file uploaded again while its import runs: the two executions'
    chunks take turns on the queue and the newer one finishes first. Each
    report has its own rejected rows, errors and failed chunks, never the
    other's (their part files are in folders of their own)."""
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "200")
    imports.put_mapping(
        "crm",
        {
            **MAPPING,
            "properties": [
                *MAPPING["properties"],
                {"from_column": "n", "to_property": "n", "type": "number"},
            ],
        },
    )
    old_rows = b"".join(
        b"o%d,Old %d,%s\n" % (i, i, b"x" if i % 10 == 7 else b"%d" % i) for i in range(60)
    )
    old, _ = imports.drop("crm", "customers.csv", b"id,First Name,n\n" + old_rows, run_chunks=False)
    queued = imports.messages()
    imports.deliver_messages(queued[:1])  # the old upload is under way: one chunk done
    new_rows = b"".join(b"n%d,New %d,%d\n" % (i, i, i) for i in range(10))
    new, _ = imports.drop("crm", "customers.csv", b"id,First Name,n\n" + new_rows, run_chunks=False)
    imports.deliver_messages(imports.messages())  # the newer one's chunk, before the old rest
    imports.deliver_messages(queued[1:])
    imports.run_queue()

    newer = imports.report("crm", "customers.csv")
    assert newer["execution_id"] == new.execution_id
    assert (newer["status"], newer["rows_written"], newer["rows_rejected"]) == ("succeeded", 10, 0)
    assert (newer["errors"], newer["rejected_file"]) == ([], None)
    replaced = imports.report_at(
        f"reports/{PROJECT}/crm/customers.csv.replaced-{old.execution_id}.json"
    )
    assert replaced["status"] == "incomplete"
    assert replaced["rows_rejected"] == len(replaced["errors"]) > 0
    rejected = imports.s3.get_object(Bucket=imports.bucket, Key=replaced["rejected_file"])
    rejected_ids = [line.split(b",")[2] for line in rejected["Body"].read().splitlines()[1:]]
    assert rejected_ids == [b'"o%d"' % i for i in range(60) if i % 10 == 7][: len(rejected_ids)]
    assert len(rejected_ids) == replaced["rows_rejected"]
    assert replaced["failed_chunks"]
    assert all(REPLACED in failed["error"] for failed in replaced["failed_chunks"])
