"""Issue 17, "Protection": stage throttling, the optional web ACL, the import
bucket's name, TLS and lifecycle, the table's deletion protection; read from
template.yaml itself, and from the SAM transform's output where what matters
is what SAM makes of it (docs/OPERATIONS.md: "Limits and protection",
"Deploying and naming")."""

from __future__ import annotations

import json
import re
import string
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync import imports
from propsync.bucket import BUCKET_ENV, ImportBucket, upload_signer
from propsync.limits import MAX_REQUEST_BYTES
from propsync_local.apigw import api_routes
from propsync_local.cfn_template import load_template, resources_of_type
from propsync_local.deployed_template import deployed
from tests.unit.test_template import translated

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]
API = RESOURCES["PropsyncApi"]["Properties"]
TRACKING_ROUTES = [route for route in api_routes() if route.resource.startswith("/track/")]


def method_settings_path(resource: str) -> str:
    """A resource path as a stage's method settings name it: each "/" of the
    path written "~1", after the leading "/"."""
    return "/" + resource.replace("/", "~1")


# ---------------------------------------------------------- stage throttling


def test_the_tracking_routes_are_the_public_ones():
    assert {(r.method, r.resource) for r in TRACKING_ROUTES} == {
        (r.method, r.resource) for r in api_routes() if not r.private
    }
    assert len(TRACKING_ROUTES) == 3


def test_every_route_is_throttled_by_parameters_and_each_tracking_route_tighter():
    settings_by_method = {(s["HttpMethod"], s["ResourcePath"]): s for s in API["MethodSettings"]}
    stage_wide = settings_by_method.pop(("*", "/*"))
    assert stage_wide["ThrottlingRateLimit"] == {"Ref": "ApiRateLimit"}
    assert stage_wide["ThrottlingBurstLimit"] == {"Ref": "ApiBurstLimit"}
    assert set(settings_by_method) == {
        (route.method, method_settings_path(route.resource)) for route in TRACKING_ROUTES
    }
    for setting in settings_by_method.values():
        assert setting["ThrottlingRateLimit"] == {"Ref": "TrackingRateLimit"}
        assert setting["ThrottlingBurstLimit"] == {"Ref": "TrackingBurstLimit"}
        assert set(setting) == {
            "HttpMethod", "ResourcePath", "ThrottlingRateLimit", "ThrottlingBurstLimit"
        }  # fmt: skip


def test_the_limits_have_documented_defaults_tighter_on_tracking():
    for name in ("ApiRateLimit", "ApiBurstLimit", "TrackingRateLimit", "TrackingBurstLimit"):
        assert PARAMETERS[name]["Type"] == "Number"
        assert PARAMETERS[name]["MinValue"] >= 1
        assert PARAMETERS[name]["Description"].strip(), name
    rate, burst = PARAMETERS["ApiRateLimit"]["Default"], PARAMETERS["ApiBurstLimit"]["Default"]
    tracking = PARAMETERS["TrackingRateLimit"]["Default"]
    tracking_burst = PARAMETERS["TrackingBurstLimit"]["Default"]
    assert tracking < rate
    assert tracking_burst < burst
    # API Gateway's default account limits (10,000 a second, a burst of 5,000
    # in a region): no route alone may take them
    assert rate <= 10_000
    assert burst <= 5_000
    assert (rate, burst, tracking, tracking_burst) == (1000, 2000, 500, 1000)


def test_the_escaped_paths_are_api_gateways_form():
    assert method_settings_path("/track/v2/projects/{project_token}/batch") == (
        "/~1track~1v2~1projects~1{project_token}~1batch"
    )


def test_sam_makes_exactly_one_stage_v1_and_it_carries_the_throttling():
    """Without OpenApiVersion SAM also makes a stage named "Stage", which the
    method settings would not cover."""
    assert API["OpenApiVersion"] == "2.0"
    [resources] = (deployment["Resources"] for deployment in translated(({}, "layer.zip")))
    stages = resources_of_type({"Resources": resources}, "AWS::ApiGateway::Stage")
    assert len(stages) == 1
    [stage] = stages.values()
    assert stage["Properties"]["StageName"] == "v1"
    assert stage["Properties"]["MethodSettings"] == API["MethodSettings"]
    for deployment in resources_of_type({"Resources": resources}, "AWS::ApiGateway::Deployment"):
        assert "StageName" not in resources[deployment]["Properties"]


# ------------------------------------------------------------ the web ACL

WAF_TYPES = {"AWS::WAFv2::WebACL", "AWS::WAFv2::WebACLAssociation"}


def waf_resources(**parameters: str) -> dict[str, Any]:
    resources = deployed(TEMPLATE, **parameters)["Resources"]
    return {name: r for name, r in resources.items() if r["Type"] in WAF_TYPES}


def test_the_web_acl_is_a_parameter_off_by_default_with_its_cost_stated():
    parameter = PARAMETERS["ProtectionWebAcl"]
    assert parameter["AllowedValues"] == ["false", "true"]
    assert parameter["Default"] == "false"
    assert "US$" in parameter["Description"]
    assert waf_resources() == {}
    assert set(waf_resources(ProtectionWebAcl="true")) == {"ApiWebAcl", "ApiWebAclAssociation"}


def rules() -> dict[str, dict[str, Any]]:
    acl = RESOURCES["ApiWebAcl"]["Properties"]
    return {rule["Name"]: rule for rule in acl["Rules"]}


def gateway_answer(response_type: str) -> tuple[int, str]:
    response = API["GatewayResponses"][response_type]
    return response["StatusCode"], response["ResponseTemplates"]["application/json"]


def waf_answer(rule: dict[str, Any]) -> tuple[int, str]:
    custom = rule["Action"]["Block"]["CustomResponse"]
    body = RESOURCES["ApiWebAcl"]["Properties"]["CustomResponseBodies"][
        custom["CustomResponseBodyKey"]
    ]
    assert body["ContentType"] == "APPLICATION_JSON"
    return custom["ResponseCode"], body["Content"]


def test_the_web_acls_answers_are_the_gateway_responses_word_for_word():
    assert waf_answer(rules()["BodyOverSixMegabytes"]) == gateway_answer("REQUEST_TOO_LARGE")
    assert waf_answer(rules()["TrackingRequestsPerIp"]) == gateway_answer("THROTTLED")
    assert json.loads(gateway_answer("REQUEST_TOO_LARGE")[1]) == {
        "success": False,
        "error": "Request too large: at most 6 MB",
    }


def test_the_per_ip_limit_counts_the_tracking_routes_over_a_minute():
    """The original product's 100 requests a second per IP, as WAF counts:
    requests of one IP address (the request's origin: an X-Forwarded-For a
    client sends cannot move it) in the last 60 s."""
    statement = rules()["TrackingRequestsPerIp"]["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP"
    assert statement["EvaluationWindowSec"] == 60
    assert statement["Limit"] == {"Ref": "TrackingRequestsPerIpPerMinute"}
    assert PARAMETERS["TrackingRequestsPerIpPerMinute"]["Default"] == 100 * 60
    match = statement["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"UriPath": {}}
    assert match["PositionalConstraint"] == "CONTAINS"
    for route in api_routes():
        # the stage's name comes first in the path WAF sees, or a custom domain's
        path = "/v1" + route.resource.replace("{", "").replace("}", "")
        assert (match["SearchString"] in path) == (route in TRACKING_ROUTES), route


def content_length_rule() -> dict[str, Any]:
    return dict(rules()["BodyOverSixMegabytes"]["Statement"]["RegexMatchStatement"])


def test_the_size_rule_reads_the_content_length_header():
    assert content_length_rule()["FieldToMatch"] == {"SingleHeader": {"Name": "content-length"}}
    assert content_length_rule()["TextTransformations"] == [{"Priority": 0, "Type": "NONE"}]


@given(
    length=st.integers(0, 10**13) | st.integers(MAX_REQUEST_BYTES - 2000, MAX_REQUEST_BYTES + 2000),
    zeros=st.integers(0, 3),
)
def test_the_size_rule_matches_exactly_the_lengths_over_6_mb(length, zeros):
    value = "0" * zeros + str(length)
    matched = re.fullmatch(content_length_rule()["RegexString"], value) is not None
    assert matched == (length > MAX_REQUEST_BYTES)


@pytest.mark.parametrize("value", ["", "abc", "6291457x", "-6291457", "6 291 457"])
def test_the_size_rule_matches_no_other_text(value):
    assert re.fullmatch(content_length_rule()["RegexString"], value) is None


def test_the_web_acl_is_associated_with_the_stage_sam_makes():
    [resources] = (
        deployment["Resources"]
        for deployment in translated(({"ProtectionWebAcl": "true"}, "layer.zip"))
    )
    [stage] = resources_of_type({"Resources": resources}, "AWS::ApiGateway::Stage")
    association = resources["ApiWebAclAssociation"]["Properties"]
    assert association["ResourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/"
        "${PropsyncApi}/stages/${" + stage + "}"
    }
    assert association["WebACLArn"] == {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}
    assert resources["ApiWebAcl"]["Properties"]["Scope"] == "REGIONAL"
    assert resources["ApiWebAcl"]["Properties"]["DefaultAction"] == {"Allow": {}}


# ------------------------------------------------------ the bucket's name

BUCKET_NAME = RESOURCES["ImportBucket"]["Properties"]["BucketName"]


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in [key, *strings(value)]]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return []


def named_bucket_places(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (path, node) of the template whose value is or holds the
    bucket's name expression."""
    if node == BUCKET_NAME:
        return [(path, node)]
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in named_bucket_places(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in named_bucket_places(v, f"{path}[{i}]")]
    return []


def test_one_expression_names_the_bucket_everywhere():
    """Policies, environment and the console's upload origin name the bucket
    by the same expression as the bucket itself (they cannot !Ref it: a
    cycle), and nothing derives a bucket name from the stack's name."""
    places = [path for path, _node in named_bucket_places(RESOURCES)]
    assert len(places) == 14, places  # the bucket, 4 environments, 8 policies, the origin
    assert not any("StackName}-imports" in s for s in strings(TEMPLATE))
    for function in ("ImportFunction", "ImportChunkFunction", "ImportsApiFunction"):
        variables = RESOURCES[function]["Properties"]["Environment"]["Variables"]
        assert variables[BUCKET_ENV] == BUCKET_NAME, function
    origin = RESOURCES["ConsoleFunction"]["Properties"]["Environment"]["Variables"][
        "PROPSYNC_UPLOAD_ORIGIN"
    ]
    assert origin == {
        "Fn::Sub": [
            "https://${Bucket}.s3.${AWS::Region}.${AWS::URLSuffix}",
            {"Bucket": BUCKET_NAME},
        ]
    }


def evaluate(node: Any, values: dict[str, str]) -> Any:
    """The value of the intrinsic functions the name is made of, with
    ``values`` for parameters, pseudo parameters and conditions."""
    if isinstance(node, str | int):
        return node
    if isinstance(node, list):
        return [evaluate(item, values) for item in node]
    [(function, argument)] = node.items()
    if function == "Ref":
        return values[argument]
    if function == "Fn::If":
        condition, when_true, when_false = argument
        return evaluate(when_true if values[condition] else when_false, values)
    if function == "Fn::Join":
        separator, items = argument
        return separator.join(evaluate(items, values))
    if function == "Fn::Select":
        index, items = argument
        return evaluate(items, values)[int(index)]
    if function == "Fn::Split":
        separator, text = argument
        return evaluate(text, values).split(separator)
    raise AssertionError(f"{function} is not expected in the bucket's name")


REGIONS = [
    *("us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "ap-northeast-3"),
    *("il-central-1", "ca-west-1", "mx-central-1", "ap-southeast-7", "cn-northwest-1"),
]
stack_names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,127}\Z")
account_ids = st.from_regex(r"\A[0-9]{12}\Z")


def derived_name(stack_name: str, account: str, region: str, stack_uuid: uuid.UUID) -> str:
    stack_id = f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/{stack_uuid}"
    return str(
        evaluate(
            BUCKET_NAME,
            {
                "ImportBucketNameGiven": False,  # type: ignore[dict-item]
                "AWS::AccountId": account,
                "AWS::Region": region,
                "AWS::StackId": stack_id,
                "AWS::StackName": stack_name,
            },
        )
    )


def is_valid_bucket_name(name: str) -> bool:
    """S3's rules for a general purpose bucket's name, without dots (the
    upload form's virtual-host https origin has no certificate for them)."""
    return (
        3 <= len(name) <= 63
        and set(name) <= set(string.ascii_lowercase + string.digits + "-")
        and name[0] != "-"
        and name[-1] != "-"
        and not name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        and not name.endswith(("-s3alias", "--ol-s3", "--x-s3", "--table-s3"))
    )


@given(stack_name=stack_names, account=account_ids, region=st.sampled_from(REGIONS))
def test_the_derived_name_is_valid_for_any_stack_name(stack_name, account, region):
    name = derived_name(stack_name, account, region, uuid.uuid4())
    assert is_valid_bucket_name(name), name
    assert name.startswith(f"propsync-imports-{account}-{region}-")


@given(stack_name=stack_names, account=account_ids, region=st.sampled_from(REGIONS))
def test_a_stack_created_again_under_its_name_gets_a_new_bucket(stack_name, account, region):
    """A deleted stack's bucket is retained; the stack created again has a
    new id, so a new bucket name, and CloudFormation is not stopped by the
    old bucket's."""
    first, second = uuid.uuid4(), uuid.uuid4()
    assert derived_name(stack_name, account, region, first) != derived_name(
        stack_name, account, region, second
    )
    # a stack's own updates keep its id, so its name
    assert derived_name(stack_name, account, region, first) == derived_name(
        "Renamed-Never", account, region, first
    )


def test_a_given_name_is_used_as_it_is():
    given = {"ImportBucketNameGiven": True, "ImportBucketName": "my-imports"}
    assert evaluate(BUCKET_NAME, given) == "my-imports"  # type: ignore[arg-type]
    assert TEMPLATE["Conditions"]["ImportBucketNameGiven"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ImportBucketName"}, ""]}]
    }
    assert PARAMETERS["ImportBucketName"]["Default"] == ""


NAME_PATTERN = PARAMETERS.get("ImportBucketName", {}).get("AllowedPattern", "")
valid_names = st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,61}[a-z0-9]\Z").filter(is_valid_bucket_name)


@settings(max_examples=300)
@given(name=st.text(string.ascii_letters + string.digits + "-._", max_size=70) | valid_names)
def test_the_name_parameter_takes_exactly_the_valid_names(name):
    assert (re.fullmatch(NAME_PATTERN, name) is not None) == (
        name == "" or is_valid_bucket_name(name)
    )


@pytest.mark.parametrize(
    "name",
    ["Propsync-imports", "ab", "a" * 64, "xn--imports", "imports-", "my.imports", "x--ol-s3",
     "sthree-imports", "imports_1"],
)  # fmt: skip
def test_the_name_parameter_refuses_what_s3_would(name):
    assert re.fullmatch(NAME_PATTERN, name) is None


def test_the_name_parameter_says_every_rule_it_holds_a_name_to():
    """CloudFormation shows the ConstraintDescription when it refuses a
    name: a refusal for a reserved prefix or suffix must name it."""
    said = " ".join(PARAMETERS["ImportBucketName"]["ConstraintDescription"].split())
    for rule in ("3 to 63", "no dots", "xn--", "sthree-", "amzn-s3-demo-", "-s3alias"):
        assert rule in said, rule
    for reserved_suffix in ("--ol-s3", "--x-s3", "--table-s3"):
        assert reserved_suffix in said, reserved_suffix


# ------------------------------------------------- the bucket: TLS, lifecycle


def test_the_bucket_refuses_every_request_without_tls():
    [policy] = resources_of_type(TEMPLATE, "AWS::S3::BucketPolicy").values()
    properties = policy["Properties"]
    assert properties["Bucket"] == {"Ref": "ImportBucket"}
    [statement] = properties["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["ImportBucket", "Arn"]},
        {"Fn::Sub": "${ImportBucket.Arn}/*"},
    ]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_consoles_upload_form_posts_over_tls(monkeypatch):
    """The presigned POST the import API gives the console goes to the
    bucket's https origin, which the TLS-only policy lets through."""
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "offline")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "offline")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    signer = upload_signer()
    form = ImportBucket(signer, "propsync-imports-123456789012-eu-west-1-0123456789ab").upload_form(
        "imports/p/i/people.csv", 100, 60
    )
    assert form["url"] == (
        "https://propsync-imports-123456789012-eu-west-1-0123456789ab.s3.eu-west-1.amazonaws.com/"
    )


LIFECYCLE = {
    rule["Id"]: rule
    for rule in RESOURCES["ImportBucket"]["Properties"]
    .get("LifecycleConfiguration", {})
    .get("Rules", [])
}


def test_incomplete_multipart_uploads_are_aborted_after_a_few_days():
    rule = LIFECYCLE["AbortIncompleteMultipartUploads"]
    assert rule["Status"] == "Enabled"
    assert "Prefix" not in rule
    assert "TagFilters" not in rule
    assert 1 <= rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 7


def test_reports_expire_after_the_retention_parameter():
    rule = LIFECYCLE["ExpireReports"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == {"Ref": "ReportRetentionDays"}
    parameter = PARAMETERS["ReportRetentionDays"]
    assert parameter["Default"] == 90
    # an import's part files are under reports/ while it runs: never gone before it ends
    assert parameter["MinValue"] >= 7
    api = RESOURCES["ImportsApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api["PROPSYNC_REPORT_RETENTION_DAYS"] == {"Ref": "ReportRetentionDays"}


def test_the_report_rule_covers_every_key_an_import_writes_and_no_import_file():
    """Reports, rejected rows, a replaced upload's, part files and refused
    keys' reports are under the rule's prefix; mappings and data files, which
    S3 cannot tell apart by a prefix, are not."""
    prefix = LIFECYCLE["ExpireReports"]["Prefix"]
    target = imports.import_file("imports/p/crm/people.csv")
    assert target is not None
    replaced = target.replaced_by_newer_upload("e" * imports.EXECUTION_ID_CHARS)
    written = [
        target.report_key,
        target.rejected_key,
        replaced.report_key,
        replaced.rejected_key,
        target.parts_prefix("e" * imports.EXECUTION_ID_CHARS),
        target.parts_prefix(None),
        imports.ImportFile(**{**vars(target), "problem": "refused"}).report_key,
    ]
    assert all(key.startswith(prefix) for key in written), written
    assert f"/{imports.REFUSED_FOLDER}/" in written[-1]
    for kept in (target.mapping_key, target.key):
        assert not kept.startswith(prefix), kept


# ------------------------------------------------------------------ the table


def test_the_table_cannot_be_deleted_by_accident():
    table = RESOURCES["PropsyncTable"]
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
