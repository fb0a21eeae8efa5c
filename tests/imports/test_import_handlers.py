"""The import functions, invoked with the S3 and SQS event samples of events/."""

from propsync.customer_view import plain_properties
from propsync.identity import find_customer_id
from propsync_local import triggers
from propsync_local.apigw import LambdaContext, load_handler
from tests.conftest import PROJECT
from tests.support.import_harness import chunk_sqs_event

MAPPING = {
    "properties": [{"from_column": "First Name", "to_property": "first_name", "type": "string"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}


def s3_event(key: str, sequencer: str, bucket: str, etag: str = "0" * 32) -> dict:
    """What S3 sends (the sample, key URL-encoded, the upload's eTag unquoted),
    as the local stack builds it."""
    return triggers.s3_event(bucket, key, sequencer, size=100, etag=etag.strip('"'))


sqs_event = chunk_sqs_event


def first_name(imports, registered):
    store = imports.services.customers
    return plain_properties(
        store.read_customer(PROJECT, find_customer_id(store, PROJECT, "registered", registered))
    )["first_name"]


def test_an_s3_event_with_an_url_encoded_key_runs_the_import(environment):
    imports = environment
    imports.put_mapping("crm snapshot", MAPPING)
    key = f"imports/{PROJECT}/crm snapshot/people (1).csv"
    etag = imports.s3.put_object(
        Bucket=imports.bucket, Key=key, Body=b"id,First Name\nm1,Marian\n"
    )["ETag"]

    answer = load_handler("ImportFunction")(
        s3_event(key, "00A1", imports.bucket, etag), LambdaContext("ImportFunction")
    )
    assert answer["executions"][0]["status"] == "running"  # its one chunk is queued
    chunks = load_handler("ImportChunkFunction")(
        sqs_event(imports.messages()), LambdaContext("ImportChunkFunction")
    )

    assert chunks == {"batchItemFailures": []}
    assert imports.services.imports.get(answer["executions"][0]["execution_id"]).status == (
        "succeeded"
    )
    assert first_name(imports, "m1") == "Marian"
    report = imports.report("crm snapshot", "people (1).csv")
    assert report["file"] == key


def test_mappings_reports_and_other_buckets_start_nothing(environment):
    imports = environment
    handler = load_handler("ImportFunction")
    imports.put_mapping("crm", MAPPING)
    assert (
        handler(
            s3_event(f"imports/{PROJECT}/crm/mapping.json", "1", imports.bucket), LambdaContext("f")
        )["executions"]
        == []
    )
    assert (
        handler(s3_event("reports/x/y/z.csv", "2", imports.bucket), LambdaContext("f"))[
            "executions"
        ]
        == []
    )
    other = s3_event(f"imports/{PROJECT}/crm/a.csv", "3", bucket="someone-else")
    assert handler(other, LambdaContext("f"))["executions"] == []


def test_chunk_messages_through_the_sqs_handler_with_a_failed_one_reported(
    environment, monkeypatch
):
    imports = environment
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "40")
    imports.put_mapping("big", MAPPING)
    rows = b"".join(b"c%d,Name %d\n" % (i, i) for i in range(30))
    key = f"imports/{PROJECT}/big/big.csv"
    etag = imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=b"id,First Name\n" + rows)[
        "ETag"
    ]
    load_handler("ImportFunction")(
        s3_event(key, "00B2", imports.bucket, etag), LambdaContext("ImportFunction")
    )
    messages = imports.messages()
    assert len(messages) == 2  # its window: the next chunk of a lane is sent as one is done
    broken = {"execution_id": "no-such-execution", "chunk": 0}
    chunk_handler = load_handler("ImportChunkFunction")

    answer = chunk_handler(sqs_event([*messages, broken]), LambdaContext("ImportChunkFunction"))

    assert answer == {"batchItemFailures": [{"itemIdentifier": f"message-{len(messages)}"}]}
    rounds = 1
    while messages := imports.messages():
        assert len(messages) <= 2
        answer = chunk_handler(sqs_event(messages), LambdaContext("ImportChunkFunction"))
        assert answer == {"batchItemFailures": []}
        rounds += 1
    assert rounds > 3
    report = imports.report("big", "big.csv")
    assert (report["rows_read"], report["rows_written"]) == (30, 30)
    assert first_name(imports, "c29") == "Name 29"


def test_a_chunk_message_that_is_not_a_chunk_is_reported_alone(environment):
    imports = environment
    event = triggers.sqs_event(
        [
            {"MessageId": "not-json", "ReceiptHandle": "r", "Body": "{not json"},
            {"MessageId": "no-chunk", "ReceiptHandle": "r", "Body": '{"execution_id": "x"}'},
        ]
    )

    answer = load_handler("ImportChunkFunction")(event, LambdaContext("ImportChunkFunction"))

    assert answer == {
        "batchItemFailures": [{"itemIdentifier": "not-json"}, {"itemIdentifier": "no-chunk"}]
    }
    assert imports.messages() == []


def test_the_s3_event_carries_the_key_url_encoded_as_s3_does():
    event = s3_event("imports/p/crm snapshot/a+b.csv", "1", "bucket")
    assert event["Records"][0]["s3"]["object"]["key"] == "imports/p/crm+snapshot/a%2Bb.csv"


def test_a_chunk_size_that_is_not_one_fails_the_import_with_a_report_naming_it(
    environment, monkeypatch
):
    imports = environment
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "abc")
    imports.put_mapping("crm", MAPPING)
    key = f"imports/{PROJECT}/crm/a.csv"
    etag = imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=b"id,First Name\nm1,M\n")[
        "ETag"
    ]

    answer = load_handler("ImportFunction")(
        s3_event(key, "00C1", imports.bucket, etag), LambdaContext("ImportFunction")
    )

    assert answer["executions"][0]["status"] == "failed"
    [problem] = imports.report("crm", "a.csv")["problems"]
    assert "PROPSYNC_IMPORT_CHUNK_BYTES='abc' is not a chunk size" in problem
    assert "from 1 to 67108864" in problem


def test_planning_retries_throttling_while_its_invocation_has_time(environment, monkeypatch):
    """ImportFunction's writes (the execution record) meet throttling more
    often than botocore's 6 attempts: retried within the invocation's time,
    the execution is planned and its chunk queued, rather than failed by
    ImportFailureFunction after Lambda's two retries of the S3 event."""
    from propsync.store.dynamo import client_and_table_from_environment  # noqa: PLC0415
    from propsync.store.throttling import RetryWithinDeadline  # noqa: PLC0415
    from tests.support.faults import FaultInjector  # noqa: PLC0415

    monkeypatch.setattr(RetryWithinDeadline, "MAX_DELAY", 0.005)
    imports = environment
    imports.put_mapping("crm", MAPPING)
    key = f"imports/{PROJECT}/crm/people.csv"
    etag = imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=b"id,First Name\nm1,M\n")[
        "ETag"
    ]
    throttled = []

    def first_twelve_writes(operation: str, _params: dict) -> bool:
        if operation in {"PutItem", "UpdateItem"} and len(throttled) < 12:
            throttled.append(operation)
            return True
        return False

    client = client_and_table_from_environment()[0]
    faults = FaultInjector(1.0, kinds=("throttling",), should_fail=first_twelve_writes)
    faults.attach(client)
    try:
        answer = load_handler("ImportFunction")(
            s3_event(key, "00B1", imports.bucket, etag), LambdaContext("ImportFunction")
        )
    finally:
        faults.detach(client)

    assert len(throttled) == 12
    [execution] = answer["executions"]
    assert execution["status"] == "running"
    assert [m["chunk"] for m in imports.messages()] == [0]
