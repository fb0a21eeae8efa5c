"""Least privilege and data protection, read from template.yaml itself."""

import pytest

from propsync_local.cfn_template import load_template, resources_of_type

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = resources_of_type(TEMPLATE, "AWS::Serverless::Function")

TABLE = {"Fn::GetAtt": ["PropsyncTable", "Arn"]}
DYNAMODB_READ = {"dynamodb:GetItem", "dynamodb:BatchGetItem"}
DYNAMODB_WRITE = {"dynamodb:PutItem", "dynamodb:UpdateItem"}
S3_OBJECTS = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}

# What each function's code calls, and so all its policy may grant.
ALLOWED = {
    "TrackingFunction": DYNAMODB_READ | DYNAMODB_WRITE,
    "CustomersReadFunction": DYNAMODB_READ,
    "CustomersFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    "AuthorizerFunction": {"dynamodb:GetItem"},
    "ImportFunction": DYNAMODB_READ
    | DYNAMODB_WRITE
    | S3_OBJECTS
    | {"s3:ListBucket", "sqs:SendMessage"},
    "ImportChunkFunction": DYNAMODB_READ | DYNAMODB_WRITE | S3_OBJECTS | {"s3:ListBucket"},
}


def statements(function: str) -> list[dict]:
    found = []
    for policy in FUNCTIONS[function]["Properties"].get("Policies", []):
        # explicit statements, not managed or templated policies
        assert isinstance(policy, dict), function
        assert "Statement" in policy, function
        found += policy["Statement"]
    return found


def test_every_function_is_listed_here():
    assert set(FUNCTIONS) == set(ALLOWED)


@pytest.mark.parametrize("function", sorted(ALLOWED))
def test_each_function_is_granted_exactly_what_it_uses(function):
    granted = set()
    for statement in statements(function):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        granted |= set(actions if isinstance(actions, list) else [actions])
        resource = statement["Resource"]
        # no wildcard resources (objects of the one bucket, "bucket/*", are fine)
        assert "*" not in str(resource).replace("/*", ""), function
    assert all("*" not in action for action in granted), f"{function}: no wildcard actions"
    assert granted == ALLOWED[function]


def test_dynamodb_grants_name_only_the_propsync_table():
    for function in ALLOWED:
        for statement in statements(function):
            if any(a.startswith("dynamodb:") for a in statement["Action"]):
                assert statement["Resource"] == TABLE, function


def test_the_read_routes_cannot_write():
    read_function = FUNCTIONS["CustomersReadFunction"]["Properties"]
    methods = {e["Properties"]["Method"] for e in read_function["Events"].values()}
    assert methods == {"GET", "POST"}  # GET customer, POST export-one (a read)
    granted = {a for s in statements("CustomersReadFunction") for a in s["Action"]}
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


def test_queues_are_encrypted_and_chunks_have_a_dead_letter_queue():
    assert RESOURCES["ChunkQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    assert RESOURCES["ChunkDeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    redrive = RESOURCES["ChunkQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["ChunkDeadLetterQueue", "Arn"]}


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
    }
