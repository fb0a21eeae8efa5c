"""Least privilege and data protection, read from template.yaml itself."""

import itertools
import json

import pytest

from propsync.tracking_queue import MODES, QUEUED, SYNC
from propsync_local.cfn_template import load_template, resources_of_type
from propsync_local.deployed_template import deployed

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = resources_of_type(TEMPLATE, "AWS::Serverless::Function")
# The stack as deployed in each tracking mode (template parameter TrackingWrites).
DEPLOYED = {mode: deployed(TEMPLATE, TrackingWrites=mode) for mode in MODES}

TABLE = {"Fn::GetAtt": ["PropsyncTable", "Arn"]}
DYNAMODB_READ = {"dynamodb:GetItem", "dynamodb:BatchGetItem"}
# DeleteItem: identity items are released (soft ids past 64, erased customers)
DYNAMODB_WRITE = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
S3_OBJECTS = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}

# What each function's code calls, and so all its policy may grant.
ALLOWED_SYNC = {
    "TrackingFunction": DYNAMODB_READ | DYNAMODB_WRITE,
    "CustomersReadFunction": DYNAMODB_READ,
    # an edit of a merged-away customer completes the merge (claims, releases)
    "CustomersFunction": DYNAMODB_READ | DYNAMODB_WRITE,
    "CustomersEraseFunction": DYNAMODB_READ | DYNAMODB_WRITE,
    # UpdateItem: wrong secrets counted, keys locked, on apikeyfailures# items
    # only (tests/api/test_key_lockout.py pins the condition)
    "AuthorizerFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    # plans (the project's id types, the execution record) and queues every
    # chunk: it writes no customer
    "ImportFunction": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    | S3_OBJECTS
    | {"s3:ListBucket", "sqs:SendMessage"},
    # sends the next chunk of a lane, and the rest of a chunk that checkpoints
    "ImportChunkFunction": DYNAMODB_READ
    | DYNAMODB_WRITE
    | S3_OBJECTS
    | {"s3:ListBucket", "sqs:SendMessage"},
    # fails the execution of an S3 event ImportFunction gave up on, with its
    # report (tests/unit/test_template_import_failures.py pins the resources)
    "ImportFailureFunction": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    | {"s3:GetObject", "s3:PutObject"},
    # serves files: nothing but the logs SAM's basic execution role gives
    "ConsoleFunction": set(),
    # reads executions (the index, then the records), writes mappings, reads reports
    "ImportsApiFunction": DYNAMODB_READ | {"dynamodb:Query", "s3:PutObject", "s3:GetObject"},
}
ALLOWED = {
    SYNC: ALLOWED_SYNC,
    QUEUED: {
        **ALLOWED_SYNC,
        # the routes check the commands (the project's id types) and queue them
        "TrackingFunction": {"dynamodb:GetItem", "sqs:SendMessage"},
        # the worker writes; sets a failed message's retry delay; dead-letters
        "TrackingWorkerFunction": DYNAMODB_READ
        | DYNAMODB_WRITE
        | {"sqs:ChangeMessageVisibility", "sqs:SendMessage"},
    },
}
FUNCTIONS_IN_EACH_MODE = [(mode, function) for mode in MODES for function in sorted(ALLOWED[mode])]


def statements(function: str, mode: str = SYNC) -> list[dict]:
    """The function's policy statements as deployed in ``mode``."""
    found = []
    for policy in DEPLOYED[mode]["Resources"][function]["Properties"].get("Policies", []):
        # explicit statements, not managed or templated policies
        assert isinstance(policy, dict), function
        assert "Statement" in policy, function
        found += policy["Statement"]
    return found


def actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def grants(function: str, mode: str) -> set[tuple[str, str]]:
    """(action, resource as JSON) for every action the function is granted."""
    return {
        (action, json.dumps(statement["Resource"], sort_keys=True))
        for statement in statements(function, mode)
        for action in actions(statement)
    }


def arn(logical_id: str) -> str:
    return json.dumps({"Fn::GetAtt": [logical_id, "Arn"]})


@pytest.mark.parametrize("mode", MODES)
def test_every_function_is_listed_here(mode):
    deployed_functions = resources_of_type(DEPLOYED[mode], "AWS::Serverless::Function")
    assert set(deployed_functions) == set(ALLOWED[mode])


def test_every_function_of_the_template_is_deployed_in_some_mode():
    assert set(FUNCTIONS) == set().union(*(ALLOWED[mode] for mode in MODES))


@pytest.mark.parametrize(("mode", "function"), FUNCTIONS_IN_EACH_MODE)
def test_each_function_is_granted_exactly_what_it_uses(mode, function):
    granted = set()
    for statement in statements(function, mode):
        assert statement["Effect"] == "Allow"
        granted |= set(actions(statement))
        resource = statement["Resource"]
        # no wildcard resources (objects of the one bucket, "bucket/*", are fine)
        assert "*" not in str(resource).replace("/*", ""), function
    assert all("*" not in action for action in granted), f"{function}: no wildcard actions"
    assert granted == ALLOWED[mode][function]


EXECUTIONS_INDEX = {"Fn::Sub": "${PropsyncTable.Arn}/index/ExecutionsByProject"}


@pytest.mark.parametrize(("mode", "function"), FUNCTIONS_IN_EACH_MODE)
def test_dynamodb_grants_name_only_the_propsync_table(mode, function):
    """Items are read and written on the table; the one Query is of the
    executions index, which holds keys only."""
    for statement in statements(function, mode):
        if actions(statement) == ["dynamodb:Query"]:
            assert statement["Resource"] == EXECUTIONS_INDEX, function
        elif any(a.startswith("dynamodb:") for a in actions(statement)):
            assert statement["Resource"] == TABLE, function


def test_the_import_api_writes_mappings_reads_reports_and_queries_the_index_only():
    """The upload forms are signed with this role, so they can put a file
    under imports/ and nowhere else; the routes read reports/, never the data
    files; the executions are found through their index."""
    bucket = "arn:${AWS::Partition}:s3:::${Bucket}"
    name = {"Bucket": DEPLOYED[SYNC]["Resources"]["ImportBucket"]["Properties"]["BucketName"]}
    assert grants("ImportsApiFunction", SYNC) == {
        ("dynamodb:GetItem", json.dumps(TABLE)),
        ("dynamodb:BatchGetItem", json.dumps(TABLE)),
        ("dynamodb:Query", json.dumps(EXECUTIONS_INDEX)),
        ("s3:PutObject", json.dumps({"Fn::Sub": [f"{bucket}/imports/*", name]})),
        ("s3:GetObject", json.dumps({"Fn::Sub": [f"{bucket}/reports/*", name]})),
    }
    assert grants("ImportsApiFunction", QUEUED) == grants("ImportsApiFunction", SYNC)
    from propsync.store.imports import EXECUTIONS_INDEX as INDEX_NAME  # noqa: PLC0415

    assert EXECUTIONS_INDEX["Fn::Sub"].endswith(f"/index/{INDEX_NAME}")


# Every deployment the parameters with a fixed set of values can make.
_CHOICES = {
    name: parameter["AllowedValues"]
    for name, parameter in TEMPLATE["Parameters"].items()
    if "AllowedValues" in parameter
}
EVERY_DEPLOYMENT = [
    dict(zip(_CHOICES, values, strict=True)) for values in itertools.product(*_CHOICES.values())
]


@pytest.mark.parametrize("parameters", EVERY_DEPLOYMENT, ids=lambda p: ",".join(p.values()))
def test_every_function_has_a_log_group_kept_30_days(parameters):
    """Lambda would otherwise create its log group itself, kept forever: each
    function the stack deploys (read from the template, so a new function
    without one fails) has its `/aws/lambda/<function>` group, deployed with
    it, its logs kept 30 days."""
    resources = deployed(TEMPLATE, **parameters)["Resources"]
    groups = {
        group["Properties"]["LogGroupName"]["Fn::Sub"]: group["Properties"].get("RetentionInDays")
        for group in resources_of_type({"Resources": resources}, "AWS::Logs::LogGroup").values()
    }
    functions = resources_of_type({"Resources": resources}, "AWS::Serverless::Function")
    assert functions
    missing = {f for f in functions if groups.get(f"/aws/lambda/${{{f}}}") != 30}
    assert missing == set(), f"no log group kept 30 days: {sorted(missing)}"


def test_queued_tracking_routes_can_only_read_the_project_and_send_to_their_queue():
    """TrackingWrites=queued: the routes check the commands (the project and
    its id types: GetItem) and queue them; no DynamoDB write at all, so a
    throttled table can never fail a client."""
    assert grants("TrackingFunction", QUEUED) == {
        ("dynamodb:GetItem", json.dumps(TABLE)),
        ("sqs:SendMessage", arn("TrackingQueue")),
    }


def test_sync_tracking_routes_read_and_write_the_table_and_nothing_else():
    assert grants("TrackingFunction", SYNC) == {
        (action, json.dumps(TABLE)) for action in DYNAMODB_READ | DYNAMODB_WRITE
    }


def test_the_worker_writes_the_table_and_touches_each_queue_for_one_reason():
    """It writes as the synchronous routes do; it changes the visibility of
    messages of its own queue only (a failed message's retry delay), and sends
    to the dead-letter queue only (the commands that can never be applied).
    Receiving and deleting come with the SQS event source (SAM adds them)."""
    assert grants("TrackingWorkerFunction", QUEUED) == {
        (action, json.dumps(TABLE)) for action in DYNAMODB_READ | DYNAMODB_WRITE
    } | {
        ("sqs:ChangeMessageVisibility", arn("TrackingQueue")),
        ("sqs:SendMessage", arn("TrackingDeadLetterQueue")),
    }


def test_the_read_routes_cannot_write():
    read_function = FUNCTIONS["CustomersReadFunction"]["Properties"]
    routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for event in read_function["Events"].values()
    }
    assert routes == {  # every one a read, the two POSTs included
        ("GET", "/api/customers/{customer_id}"),
        ("POST", "/data/v2/projects/{project_token}/customers/export-one"),
        ("POST", "/data/v2/projects/{project_token}/customers/attributes"),
        ("GET", "/api/key"),
    }
    granted = {a for s in statements("CustomersReadFunction") for a in actions(s)}
    assert not granted & {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:TransactWriteItems",
    }


def test_the_import_bucket_blocks_public_access_and_encrypts():
    bucket = RESOURCES["ImportBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}


def test_the_table_has_point_in_time_recovery_and_encryption():
    table = RESOURCES["PropsyncTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True


QUEUES_AND_DEAD_LETTER_QUEUES = {
    "ChunkQueue": "ChunkDeadLetterQueue",
    "TrackingQueue": "TrackingDeadLetterQueue",
    "ImportFailureQueue": "ImportFailureDeadLetterQueue",
}


def test_every_queue_is_encrypted_and_listed_here():
    queues = resources_of_type(TEMPLATE, "AWS::SQS::Queue")
    assert set(queues) == set(QUEUES_AND_DEAD_LETTER_QUEUES) | set(
        QUEUES_AND_DEAD_LETTER_QUEUES.values()
    )
    for name, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, name


@pytest.mark.parametrize(("queue", "dead_letter_queue"), QUEUES_AND_DEAD_LETTER_QUEUES.items())
def test_each_queue_has_its_dead_letter_queue(queue, dead_letter_queue):
    redrive = RESOURCES[queue]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dead_letter_queue, "Arn"]}
    # a standard queue's message keeps its enqueue time in the dead-letter
    # queue, so that one must keep messages longer (AWS's advice): else a
    # message that failed for days would expire there almost at once
    assert (
        RESOURCES[dead_letter_queue]["Properties"]["MessageRetentionPeriod"]
        > RESOURCES[queue]["Properties"]["MessageRetentionPeriod"]
    )


def test_the_authorizer_cache_key_is_the_whole_credential():
    auth = RESOURCES["PropsyncApi"]["Properties"]["Auth"]
    identity = auth["Authorizers"]["ApiKeyAuthorizer"]["Identity"]
    assert identity["Headers"] == ["Authorization"]  # nothing less than the full header
    assert set(identity) <= {"Headers", "ReauthorizeEvery"}
    assert 0 < identity["ReauthorizeEvery"] <= 300


def test_only_tracking_routes_are_public():
    public = {
        (function, name)
        for function, resource in FUNCTIONS.items()
        for name, event in (resource["Properties"].get("Events") or {}).items()
        if event["Type"] == "Api"
        and (event["Properties"].get("Auth") or {}).get("Authorizer") == "NONE"
    }
    assert public == {
        ("TrackingFunction", "Batch"),
        ("TrackingFunction", "Customers"),
        ("TrackingFunction", "SystemTime"),
        # the console's page, script and style: the page signs in with its
        # user's key and calls the private routes with it
        ("ConsoleFunction", "Page"),
        ("ConsoleFunction", "Asset"),
    }


def test_the_console_can_touch_no_data():
    """Public and reached by anyone: no policy at all (SAM's basic execution
    role, logs only), no environment naming a queue, a table to write or a
    key; only the origin its page may upload import files to."""
    console = FUNCTIONS["ConsoleFunction"]["Properties"]
    assert "Policies" not in console
    assert "Role" not in console
    assert set(console["Environment"]["Variables"]) == {"PROPSYNC_UPLOAD_ORIGIN"}
    routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for event in console["Events"].values()
    }
    assert routes == {("GET", "/console"), ("GET", "/console/{asset}")}
    assert {event["Type"] for event in console["Events"].values()} == {"Api"}


def test_only_the_api_origin_may_post_to_the_import_bucket_from_a_browser():
    """The console's wizard uploads with a presigned POST from its page: S3's
    CORS lets the API's own origin (where the page is served) read the answer,
    for POST only, and no other origin."""
    [rule] = RESOURCES["ImportBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedMethods"] == ["POST"]
    assert rule["AllowedOrigins"] == [
        {"Fn::Sub": "https://${PropsyncApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    ]
    assert "AllowedHeaders" not in rule  # a form POST is a simple request
    assert "*" not in json.dumps(rule)
