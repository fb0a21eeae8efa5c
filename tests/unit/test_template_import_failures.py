"""An S3 event ImportFunction gives up on is not lost: template.yaml pins
Lambda's limits for its asynchronous invocations, the on-failure
destination (a durable queue with a dead-letter queue of its own) and the
function that turns each record into a failed execution, with no more
permissions than that takes."""

import json

from propsync_local.cfn_template import REPO_ROOT, load_template
from tests.unit.test_template import translated

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
# the import bucket's one name (test_template_protection pins the expression)
BUCKET_NAME = RESOURCES["ImportBucket"]["Properties"]["BucketName"]
TABLE = {"Fn::GetAtt": ["PropsyncTable", "Arn"]}
FAILURE_QUEUE_ARN = {"Fn::GetAtt": ["ImportFailureQueue", "Arn"]}


def test_import_function_keeps_the_event_it_gives_up_on_in_the_failure_queue():
    """Two retries (Lambda's most) and the longest event age (6 hours, so
    an event throttled for hours is still run), then the record to the
    queue: written out, so no default can change under the stack."""
    config = RESOURCES["ImportFunction"]["Properties"]["EventInvokeConfig"]
    assert config == {
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 21600,
        "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": FAILURE_QUEUE_ARN}},
    }


def test_the_failure_queue_is_durable_and_has_its_own_dead_letter_queue():
    queue = RESOURCES["ImportFailureQueue"]["Properties"]
    dead_letters = RESOURCES["ImportFailureDeadLetterQueue"]["Properties"]
    # a standard queue (Lambda's destinations take no FIFO queue), encrypted
    assert "FifoQueue" not in queue
    assert queue["SqsManagedSseEnabled"] is True
    assert dead_letters["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["ImportFailureDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    # days to be recorded, and then 14 days (SQS's most) for a person
    assert queue["MessageRetentionPeriod"] >= 4 * 86400
    assert dead_letters["MessageRetentionPeriod"] == 14 * 86400
    # a record is not handed to a second run while the first may still run
    timeout = RESOURCES["ImportFailureFunction"]["Properties"].get(
        "Timeout", TEMPLATE["Globals"]["Function"]["Timeout"]
    )
    assert queue["VisibilityTimeout"] >= 6 * timeout


def test_the_failure_function_reads_the_failure_queue_and_reports_partial_failures():
    function = RESOURCES["ImportFailureFunction"]["Properties"]
    assert function["CodeUri"] == "functions/imports"
    assert function["Handler"] == "app.failure_handler"
    [event] = function["Events"].values()
    assert event == {
        "Type": "SQS",
        "Properties": {
            "Queue": FAILURE_QUEUE_ARN,
            "BatchSize": 10,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    }
    # it queues no chunk and is told of no queue: only the bucket's name
    assert set(function["Environment"]["Variables"]) == {"PROPSYNC_IMPORT_BUCKET"}


def test_the_failure_function_is_granted_only_what_failing_an_execution_takes():
    """The record (read, created, failed conditionally; the file's pointer):
    GetItem, PutItem, UpdateItem, never a customer's DeleteItem or a
    BatchGetItem; the data file's version (HeadObject needs s3:GetObject)
    under imports/ only; the report, put under reports/ only."""
    [policy] = RESOURCES["ImportFailureFunction"]["Properties"]["Policies"]
    grants = {
        (action, json.dumps(statement["Resource"], sort_keys=True))
        for statement in policy["Statement"]
        for action in statement["Action"]
    }
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
    assert grants == {
        ("dynamodb:GetItem", json.dumps(TABLE)),
        ("dynamodb:PutItem", json.dumps(TABLE)),
        ("dynamodb:UpdateItem", json.dumps(TABLE)),
        (
            "s3:GetObject",
            json.dumps(
                {
                    "Fn::Sub": [
                        "arn:${AWS::Partition}:s3:::${Bucket}/imports/*",
                        {"Bucket": BUCKET_NAME},
                    ]
                }
            ),
        ),
        (
            "s3:PutObject",
            json.dumps(
                {
                    "Fn::Sub": [
                        "arn:${AWS::Partition}:s3:::${Bucket}/reports/*",
                        {"Bucket": BUCKET_NAME},
                    ]
                }
            ),
        ),
    }


def test_sam_grants_import_function_the_failure_queue_alone_and_the_failure_function_its_source():
    """What the SAM transform adds: ImportFunction's role may send to the
    failure queue and no other queue besides the chunk queue it already
    had; the failure function's role is its own statements plus the managed
    policies of logs, X-Ray and the SQS event source (receive, delete,
    attributes)."""
    [deployment] = translated(({}, "layer-1.zip"))
    resources = deployment["Resources"]
    invoke_config = resources["ImportFunctionEventInvokeConfig"]["Properties"]
    assert invoke_config["FunctionName"] == {"Ref": "ImportFunction"}
    assert invoke_config["Qualifier"] == "$LATEST"  # what S3's notification invokes
    assert invoke_config["DestinationConfig"] == {"OnFailure": {"Destination": FAILURE_QUEUE_ARN}}
    sends = [
        statement["Resource"]
        for policy in resources["ImportFunctionRole"]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if "sqs:SendMessage" in statement["Action"]
    ]
    assert sorted(sends, key=json.dumps) == [
        {"Fn::GetAtt": ["ChunkQueue", "Arn"]},
        FAILURE_QUEUE_ARN,
    ]
    role = resources["ImportFailureFunctionRole"]["Properties"]
    assert [arn.rsplit("/", 1)[1] for arn in role["ManagedPolicyArns"]] == [
        "AWSLambdaBasicExecutionRole",
        "AWSXrayWriteOnlyAccess",
        "AWSLambdaSQSQueueExecutionRole",
    ]
    [policy] = role["Policies"]
    [own] = RESOURCES["ImportFailureFunction"]["Properties"]["Policies"]
    assert policy["PolicyDocument"]["Statement"] == own["Statement"]


def test_the_failure_function_has_a_sample_event_for_sam_local_invoke():
    """An SQS message whose body is Lambda's on-failure destination record
    of the S3 sample's event (events/README.md)."""
    sample = json.loads((REPO_ROOT / "events" / "ImportFailureFunction.SQS.json").read_text())
    [message] = sample["Records"]
    record = json.loads(message["body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    s3_sample = json.loads((REPO_ROOT / "events" / "ImportFunction.S3Put.json").read_text())
    assert record["requestPayload"] == s3_sample
    assert set(record["responsePayload"]) >= {"errorMessage", "errorType"}
