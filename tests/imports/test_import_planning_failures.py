"""An S3 event ImportFunction gives up on becomes a failed execution with a
report, on both engines.

S3 invokes ImportFunction asynchronously: Lambda retries an event twice,
then sends its on-failure destination record to ImportFailureQueue, and
ImportFailureFunction fails the upload's execution with a report saying
planning failed and why (creating the execution if planning failed before
it existed). It never touches a finished execution, one whose chunks were
queued, or another upload's execution of the same file, and a copy of the
record changes nothing. `make run`'s trigger does the same after the third
failure."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from propsync import import_api
from propsync import imports as imports_module
from propsync.customer_view import plain_properties
from propsync.identity import find_customer_id
from propsync_local import triggers
from propsync_local.apigw import LambdaContext, load_handler
from tests.conftest import PROJECT
from tests.support.faults import Crash, CrashAt

MAPPING = {
    "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
DATA = b"id,n\nm1,1\nm2,2\n"
THROTTLED = ClientError(
    {"Error": {"Code": "ThrottlingException", "Message": "Rate of requests exceeds the limit"}},
    "PutItem",
)
PLANNING_FAILED = "the import could not be planned: ImportFunction failed on each of its 3"


@pytest.fixture
def failing(environment, monkeypatch):
    """The import harness, its functions' environment set, the mapping in
    place, and a failure queue as the stack's."""
    imports = environment
    imports.put_mapping("crm", MAPPING)
    imports.failure_queue = imports.sqs.create_queue(QueueName=f"failures-{imports.bucket[-10:]}")[
        "QueueUrl"
    ]
    return imports


def upload(imports, file_name: str = "people.csv", data: bytes = DATA) -> tuple[str, str]:
    """Put a data file: its key and ETag (unquoted, as S3 events carry it)."""
    key = f"imports/{PROJECT}/crm/{file_name}"
    etag = imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=data)["ETag"]
    return key, etag.strip('"')


def s3_event(imports, key: str, etag: str, sequencer: str) -> dict:
    return triggers.s3_event(imports.bucket, key, sequencer, len(DATA), etag)


def plan(event: dict) -> dict:
    return load_handler("ImportFunction")(event, LambdaContext("ImportFunction"))


def given_up(event: dict, error: Exception = THROTTLED) -> dict:
    """The record Lambda sends to the failure queue after three attempts."""
    return triggers.on_failure_record(event, error, 3)


def plan_failing_at(monkeypatch, step: str, event: dict, attempts: int = 1) -> None:
    """Plan ``event`` ``attempts`` times with ``imports.<step>`` throttled
    past its retries (each attempt raising, as Lambda sees it), then undo
    the test's patches: planning works again."""
    monkeypatch.setattr(imports_module, step, lambda *_: (_ for _ in ()).throw(THROTTLED))
    for _attempt in range(attempts):
        with pytest.raises(ClientError):
            plan(event)
    monkeypatch.undo()


def record_failures(*records: dict) -> dict:
    """ImportFailureFunction invoked with these records as SQS messages."""
    event = triggers.sqs_event(
        [
            {"MessageId": f"f{index}", "ReceiptHandle": "r", "Body": json.dumps(record)}
            for index, record in enumerate(records)
        ],
        "ImportFailureFunction",
    )
    return load_handler("ImportFailureFunction")(event, LambdaContext("ImportFailureFunction"))


def execution_id(imports, key: str, sequencer: str) -> str:
    return imports_module.execution_id_for(imports.bucket, key, sequencer)


def written(imports, registered: str):
    store = imports.services.customers
    customer_id = find_customer_id(store, PROJECT, "registered", registered)
    return plain_properties(store.read_customer(PROJECT, customer_id)) if customer_id else None


def listed(imports) -> list[dict]:
    """What GET /api/imports answers for the project."""
    answer = import_api.list_executions(
        imports.services.imports, PROJECT, file_key=None, limit=None, next_token=None
    )
    return answer["executions"]


def assert_planning_failed(imports, report: dict, *expected: str, row: str = "m1") -> None:
    """A failed report saying why planning failed, and the file's ``row`` not written."""
    assert report["status"] == "failed"
    [problem] = [p for p in report["problems"] if p.startswith(PLANNING_FAILED)]
    for text in expected:
        assert text in problem
    assert problem.endswith("; upload the file again to import it")
    assert "stackTrace" not in problem
    assert "Traceback" not in problem
    assert report["rows_read"] == report["rows_written"] == 0
    assert written(imports, row) is None


def test_a_planning_that_failed_before_its_execution_existed_gets_a_failed_one(
    failing, monkeypatch
):
    """Planning raised before the record was made (every attempt): the
    failure creates the execution, failed, with a report, and lists it."""
    imports = failing
    key, etag = upload(imports)
    event = s3_event(imports, key, etag, "00A1")
    plan_failing_at(monkeypatch, "_start", event, attempts=3)
    assert imports.services.imports.get(execution_id(imports, key, "00A1")) is None

    assert record_failures(given_up(event)) == {"batchItemFailures": []}

    record = imports.services.imports.get(execution_id(imports, key, "00A1"))
    assert record.status == "failed"
    # started when S3 made the upload (the sample's eventTime), listed by it
    assert record.started_at == imports_module._event_time("2026-11-29T08:00:00.000Z")
    report = imports.report("crm", "people.csv")
    assert_planning_failed(imports, report, "ThrottlingException", "Rate of requests exceeds")
    assert record.report_key == f"reports/{PROJECT}/crm/people.csv.json"
    [shown] = listed(imports)
    assert (shown["execution_id"], shown["status"]) == (record.execution_id, "failed")
    assert imports.services.imports.latest_for_file(key).execution_id == record.execution_id


def test_a_planning_that_failed_after_its_execution_existed_fails_it(failing, monkeypatch):
    """The record running without a plan, as a timeout or AWS faults past
    the retries leave it: failed with the error's type and message."""
    imports = failing
    key, etag = upload(imports)
    event = s3_event(imports, key, etag, "00A2")
    plan_failing_at(monkeypatch, "_plan", event)
    running = imports.services.imports.get(execution_id(imports, key, "00A2"))
    assert (running.status, running.plan) == ("running", {})

    record_failures(given_up(event))

    record = imports.services.imports.get(running.execution_id)
    assert record.status == "failed"
    assert record.started_at == running.started_at  # its own start stays
    assert_planning_failed(
        imports, imports.report("crm", "people.csv"), "ClientError: An error occurred"
    )


def test_lambdas_own_words_name_the_condition_and_leave_out_the_trace(failing):
    """A timeout (Lambda's record carries no stack trace of ours, but any
    record's is left out), and an event that grew too old to be run."""
    imports = failing
    key, etag = upload(imports)
    timed_out = given_up(s3_event(imports, key, etag, "00B1"))
    timed_out["responsePayload"] = {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: 1f2e Error: Task timed out after 900.00 seconds\x1b[0m",
        "stackTrace": ['  File "/var/task/app.py", line 1, in lambda_handler'],
    }
    too_old = given_up(s3_event(imports, key, etag, "00B2"))
    too_old["requestContext"]["condition"] = "EventAgeExceeded"
    del too_old["responsePayload"]

    assert record_failures(timed_out, too_old) == {"batchItemFailures": []}

    first = imports.services.imports.get(execution_id(imports, key, "00B1"))
    [*_, problem] = first.problems
    assert problem == (
        "the import could not be planned: ImportFunction failed on each of its 3 attempt(s), "
        "the last with Sandbox.Timedout: RequestId: 1f2e Error: Task timed out after 900.00 "
        "seconds[0m; upload the file again to import it"
    )
    second = imports.services.imports.get(execution_id(imports, key, "00B2"))
    assert second.problems == [
        "the import could not be planned: the S3 event waited longer than ImportFunction's "
        "maximum event age to be handled; upload the file again to import it"
    ]


def test_a_copy_of_the_record_changes_nothing(failing):
    imports = failing
    key, etag = upload(imports)
    record = given_up(s3_event(imports, key, etag, "00C1"))
    record_failures(record)
    first = imports.services.imports.get(execution_id(imports, key, "00C1"))
    report = imports.report("crm", "people.csv")

    assert record_failures(record, record) == {"batchItemFailures": []}

    assert imports.services.imports.get(first.execution_id) == first
    assert imports.report("crm", "people.csv") == report
    assert len(listed(imports)) == 1


def test_a_finished_execution_is_never_touched(failing):
    """The event was handled after all (a late or duplicate record): the
    execution and its report stay as they are."""
    imports = failing
    key, etag = upload(imports)
    event = s3_event(imports, key, etag, "00D1")
    plan(event)
    imports.run_queue()
    done = imports.services.imports.get(execution_id(imports, key, "00D1"))
    assert done.status == "succeeded"
    report = imports.report("crm", "people.csv")

    record_failures(given_up(event))

    assert imports.services.imports.get(done.execution_id) == done
    assert imports.report("crm", "people.csv") == report
    assert written(imports, "m2") == {"n": 2}


def test_an_execution_whose_chunks_were_queued_is_left_to_them(failing, monkeypatch):
    """Planning stored its plan and queued its chunks, then failed: the
    chunks finish the execution, with its real report."""
    imports = failing
    key, etag = upload(imports)
    event = s3_event(imports, key, etag, "00E1")
    real = imports_module.ImportStore.get
    calls = {"n": 0}

    def fails_after_queueing(self, *args, **kwargs):  # the last read of _start
        calls["n"] += 1
        if calls["n"] == 3:
            raise THROTTLED
        return real(self, *args, **kwargs)

    monkeypatch.setattr(imports_module.ImportStore, "get", fails_after_queueing)
    with pytest.raises(ClientError):
        plan(event)
    monkeypatch.undo()
    queued = imports.services.imports.get(execution_id(imports, key, "00E1"))
    assert queued.sent_chunks == {0}

    record_failures(given_up(event))
    assert imports.services.imports.get(queued.execution_id).status == "running"
    imports.run_queue()

    assert imports.services.imports.get(queued.execution_id).status == "succeeded"
    assert imports.report("crm", "people.csv")["rows_written"] == 2


def test_a_chunk_sent_but_not_marked_sent_does_not_run_once_the_execution_failed(
    failing, monkeypatch
):
    """Planning sent the chunk message and failed before marking it sent:
    the execution is failed (its report says nothing was written), and the
    chunk, when its message comes, writes nothing."""
    imports = failing
    key, etag = upload(imports)
    event = s3_event(imports, key, etag, "00E2")
    monkeypatch.setattr(
        imports_module.ImportStore, "mark_sent", lambda *_: (_ for _ in ()).throw(THROTTLED)
    )
    with pytest.raises(ClientError):
        plan(event)
    monkeypatch.undo()

    record_failures(given_up(event))
    failed = imports.services.imports.get(execution_id(imports, key, "00E2"))
    assert failed.status == "failed"
    [message] = imports.messages()
    imports.deliver_messages([message])
    imports.deliver_messages([message], imports_module.GIVE_UP_RECEIVE)

    assert imports.services.imports.get(failed.execution_id) == failed
    assert_planning_failed(imports, imports.report("crm", "people.csv"))
    assert [k for k in imports.keys("reports/") if "/.parts/" in k] == []


def test_a_newer_uploads_execution_and_report_are_never_touched(failing, monkeypatch):
    """The first upload's planning failed before its record; the file was
    uploaded again and imported; then the first one's failure arrives: its
    own failed execution, its report beside the newer one's, the file still
    pointing at the newer execution."""
    imports = failing
    key, first_etag = upload(imports, data=b"id,n\nold,1\n")
    first = s3_event(imports, key, first_etag, "00F1")
    plan_failing_at(monkeypatch, "_start", first)
    _, second_etag = upload(imports)
    second = s3_event(imports, key, second_etag, "00F2")
    second["Records"][0]["eventTime"] = "2026-11-29T08:05:00.000Z"
    plan(second)
    imports.run_queue()
    newer = imports.services.imports.latest_for_file(key)
    newer_report = imports.report("crm", "people.csv")

    record_failures(given_up(first))

    older = imports.services.imports.get(execution_id(imports, key, "00F1"))
    assert older.status == "failed"
    assert (
        older.report_key == f"reports/{PROJECT}/crm/people.csv.replaced-{older.execution_id}.json"
    )
    assert_planning_failed(imports, imports.report_at(older.report_key), row="old")
    assert imports.services.imports.latest_for_file(key) == newer
    assert imports.report("crm", "people.csv") == newer_report
    assert written(imports, "m2") == {"n": 2}
    assert {e["execution_id"] for e in listed(imports)} == {
        older.execution_id,
        newer.execution_id,
    }


def test_a_newer_upload_of_the_same_bytes_keeps_its_report(failing, monkeypatch):
    """The same bytes uploaded again (the same ETag) while the first upload's
    planning kept failing, and imported: the first one's failure, recorded
    late, goes beside the file's report, never over the newer one's."""
    imports = failing
    key, first_etag = upload(imports)
    first = s3_event(imports, key, first_etag, "00F1")
    plan_failing_at(monkeypatch, "_start", first)
    _, second_etag = upload(imports)  # the same file again: the same ETag
    assert second_etag == first_etag
    second = s3_event(imports, key, second_etag, "00F2")
    second["Records"][0]["eventTime"] = "2026-11-29T08:05:00.000Z"
    plan(second)
    imports.run_queue()
    newer = imports.services.imports.latest_for_file(key)
    newer_report = imports.report("crm", "people.csv")
    assert newer_report["status"] == "succeeded"

    record_failures(given_up(first))

    older = imports.services.imports.get(execution_id(imports, key, "00F1"))
    assert older.status == "failed"
    assert imports.services.imports.latest_for_file(key) == newer
    assert imports.report("crm", "people.csv") == newer_report
    assert older.report_key != newer.report_key


def test_a_message_that_is_no_such_record_comes_back(failing):
    """Not JSON, or no S3 event in it: reported in batchItemFailures (it
    comes back, then waits in the dead-letter queue), the others recorded."""
    imports = failing
    key, etag = upload(imports)
    event = triggers.sqs_event(
        [
            {"MessageId": "junk", "ReceiptHandle": "r", "Body": "not json"},
            {"MessageId": "empty", "ReceiptHandle": "r", "Body": json.dumps({"x": 1})},
            {
                "MessageId": "good",
                "ReceiptHandle": "r",
                "Body": json.dumps(given_up(s3_event(imports, key, etag, "0A01"))),
            },
        ],
        "ImportFailureFunction",
    )
    answer = load_handler("ImportFailureFunction")(event, LambdaContext("ImportFailureFunction"))
    assert answer == {
        "batchItemFailures": [{"itemIdentifier": "junk"}, {"itemIdentifier": "empty"}]
    }
    assert imports.services.imports.get(execution_id(imports, key, "0A01")).status == "failed"


def test_the_sample_event_fails_the_sample_uploads_execution(failing):
    """events/ImportFailureFunction.SQS.json as `sam local invoke` sends it,
    its S3 event the ImportFunction sample's (bucket and key as make run's)."""
    imports = failing
    sample = json.loads((triggers.EVENTS_DIR / "ImportFailureFunction.SQS.json").read_text())
    record = json.loads(sample["Records"][0]["body"])
    s3 = record["requestPayload"]["Records"][0]["s3"]
    s3["bucket"]["name"] = imports.bucket  # the harness's bucket, not make run's
    sample["Records"][0]["body"] = json.dumps(record)

    answer = load_handler("ImportFailureFunction")(sample, LambdaContext("ImportFailureFunction"))

    assert answer == {"batchItemFailures": []}
    key = imports_module.upload_of(record["requestPayload"]["Records"][0]).key
    failed = imports.services.imports.latest_for_file(key)
    assert failed.status == "failed"
    assert "Sandbox.Timedout" in failed.problems[-1]


# ---------------------------------------------------------------- make run


def test_make_runs_trigger_records_the_failure_after_the_third_attempt(failing, monkeypatch):
    """The local trigger invokes ImportFunction up to three times, as Lambda
    does, then sends the record to the failure queue and runs
    ImportFailureFunction on it, as on AWS."""
    imports = failing
    monkeypatch.setattr(imports_module, "_plan", lambda *_: (_ for _ in ()).throw(THROTTLED))
    key, _ = upload(imports)
    trigger = triggers.ImportTriggers(
        imports.s3, imports.sqs, imports.bucket, imports.services.queue.url, imports.failure_queue
    )
    for _attempt in range(triggers.MAX_ATTEMPTS - 1):
        trigger.poll_once()
        assert imports.services.imports.latest_for_file(key).status == "running"

    trigger.poll_once()  # the third attempt fails too: the record is sent and run

    failed = imports.services.imports.latest_for_file(key)
    assert failed.status == "failed"
    assert_planning_failed(imports, imports.report("crm", "people.csv"), "ThrottlingException")
    trigger.poll_once()  # no fourth attempt, nothing more recorded
    assert imports.services.imports.latest_for_file(key) == failed
    attributes = imports.sqs.get_queue_attributes(
        QueueUrl=imports.failure_queue, AttributeNames=["All"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


# ---------------------------------------------------------------- the class


def test_wherever_planning_dies_the_failure_record_leaves_no_execution_running(
    imports, dynamodb_client
):
    """The class of the finding: planning stopped dead before each of its
    DynamoDB requests in turn (a timeout, the process killed: no request
    after it gets out, no cleanup), on every attempt; then the record Lambda
    sends. Every time, the execution ends with a report: failed with nothing
    written, or, when its chunk was queued before the crash, imported by its
    chunk."""
    imports.put_mapping("crm", MAPPING)
    crash = CrashAt().attach(dynamodb_client)  # the client of the harness's stores
    crash.count()
    key, etag = upload(imports, "counted.csv")
    imports_module.start_execution(imports.services, key, "0C00", etag)
    requests = crash.sent
    assert requests >= 4  # the record, the file's pointer, reads, the plan, the chunk sent

    for n in range(1, requests + 1):
        key, etag = upload(imports, f"crash{n}.csv", b"id,n\nc%d,%d\n" % (n, n))
        crash.arm(n)
        with pytest.raises(Crash):
            imports_module.start_execution(imports.services, key, f"0C{n:02d}", etag)
        crash.recover()
        event = s3_event(imports, key, etag, f"0C{n:02d}")
        imports_module.record_failed_planning(imports.services, given_up(event))
        imports.run_queue()

        record = imports.services.imports.get(execution_id(imports, key, f"0C{n:02d}"))
        assert record is not None, n
        assert record.status in {"failed", "succeeded"}, (n, record)
        report = imports.report_at(record.report_key)
        assert report["status"] == record.status
        if record.status == "failed":
            assert_planning_failed(imports, report, row=f"c{n}")
        else:  # its chunk was queued: the chunk imported the file
            assert written(imports, f"c{n}") == {"n": n}
