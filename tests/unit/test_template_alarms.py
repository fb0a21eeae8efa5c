"""Alarms, access logs and the on-call dashboard, read from template.yaml
(docs/OPERATIONS.md, "Alarms"). The checks walk the template's functions,
queues and alarms, so a function or queue added without its alarms fails
here, whatever its name."""

import copy
import functools
import itertools
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propsync.tracking_queue import MODES
from propsync_local.cfn_template import REPO_ROOT, load_template, resources_of_type
from propsync_local.deployed_template import deployed
from tests.unit.test_template import translated

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]
GLOBAL_ENV = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
NOTIFY = {"Fn::If": ["AlarmNotifications", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
TOPIC = "arn:aws:sns:eu-west-1:123456789012:propsync-on-call"
# Every combination of the parameters with a choice, as in test_template_security.
CHOICES = {name: p["AllowedValues"] for name, p in PARAMETERS.items() if "AllowedValues" in p}
EVERY_DEPLOYMENT = [
    dict(zip(CHOICES, values, strict=True)) for values in itertools.product(*CHOICES.values())
]


@functools.cache
def sam_resources() -> dict:
    """The default deployment's resources as the SAM transform writes them."""
    [resources] = (d["Resources"] for d in translated(({}, "layer-1.zip")))
    return resources


def metrics_of(alarm: dict) -> list[tuple[str, str, dict]]:
    """(namespace, metric name, {dimension: value}) of every metric an alarm
    reads: its one metric, or each metric of its metric math."""
    properties = alarm["Properties"]
    if "MetricName" in properties:
        stats = [properties]
    else:
        stats = [m["MetricStat"]["Metric"] for m in properties["Metrics"] if "MetricStat" in m]
    return [
        (
            stat["Namespace"],
            stat["MetricName"],
            {d["Name"]: d["Value"] for d in stat.get("Dimensions", [])},
        )
        for stat in stats
    ]


def alarms_on(template: dict, namespace: str, metric: str, **dimensions) -> list[dict]:
    return [
        alarm
        for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if (namespace, metric, dimensions) in metrics_of(alarm)
    ]


# ------------------------------------------------------------- notifications


def test_the_alarm_topic_is_an_optional_parameter():
    parameter = PARAMETERS["AlarmTopicArn"]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    assert TEMPLATE["Conditions"]["AlarmNotifications"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }


def allowed_topic(value: str) -> bool:
    # CloudFormation matches AllowedPattern against the whole value
    return re.fullmatch(PARAMETERS["AlarmTopicArn"]["AllowedPattern"], value) is not None


@given(
    partition=st.sampled_from(["aws", "aws-cn", "aws-us-gov"]),
    region=st.sampled_from(["eu-west-1", "us-east-1", "ap-southeast-2", "cn-north-1"]),
    account=st.from_regex(r"[0-9]{12}", fullmatch=True),
    name=st.from_regex(r"[A-Za-z0-9_-]{1,256}", fullmatch=True),
)
def test_the_topic_pattern_takes_empty_or_any_sns_topic_arn(partition, region, account, name):
    assert allowed_topic("")
    assert allowed_topic(f"arn:{partition}:sns:{region}:{account}:{name}")


@pytest.mark.parametrize(
    "value",
    [
        " ",
        "none",
        "propsync-on-call",  # a name, not an ARN
        "arn:aws:sqs:eu-west-1:123456789012:propsync-on-call",  # a queue
        "arn:aws:sns:eu-west-1:12345678901:propsync-on-call",  # 11 digits
        "arn:aws:sns:eu-west-1:123456789012:",
        "arn:aws:sns:eu-west-1:123456789012:on call",
        "arn:aws:sns:eu-west-1:123456789012:propsync-on-call:extra",  # a subscription
        TOPIC + "\n",
    ],
)
def test_the_topic_pattern_refuses_anything_else(value):
    assert not allowed_topic(value)


def test_every_alarm_notifies_the_topic_when_it_is_given_and_when_it_is_ok_again():
    alarms = resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm")
    assert len(alarms) > 20
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == NOTIFY, name
        assert alarm["Properties"]["OKActions"] == NOTIFY, name
    for mode in MODES:
        told = deployed(TEMPLATE, TrackingWrites=mode, AlarmTopicArn=TOPIC)
        quiet = deployed(TEMPLATE, TrackingWrites=mode)
        for name, alarm in resources_of_type(told, "AWS::CloudWatch::Alarm").items():
            assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopicArn"}], name
            assert alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopicArn"}], name
        for name, alarm in resources_of_type(quiet, "AWS::CloudWatch::Alarm").items():
            assert "AlarmActions" not in alarm["Properties"], name
            assert "OKActions" not in alarm["Properties"], name


def test_every_alarm_says_what_it_means_and_treats_no_data_as_no_alarm():
    """Lambda, SQS and propsync's own metrics send nothing while idle."""
    for name, alarm in resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"]["AlarmDescription"].strip(), name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name


# ----------------------------------------------------------------- functions


def functions_without(template: dict, metric: str) -> set[str]:
    """Functions with no alarm on their Lambda ``metric``, or whose alarm is
    not deployed exactly when the function is (the same Condition)."""
    missing = set()
    for name, function in resources_of_type(template, "AWS::Serverless::Function").items():
        found = alarms_on(template, "AWS/Lambda", metric, FunctionName={"Ref": name})
        if [alarm.get("Condition") for alarm in found] != [function.get("Condition")]:
            missing.add(name)
    return missing


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_one_alarm_on_its_errors_and_one_on_its_throttles(metric):
    assert functions_without(TEMPLATE, metric) == set()


@pytest.mark.parametrize("condition", [None, "QueuedTracking"])
def test_a_function_added_without_alarms_is_caught(condition):
    template = copy.deepcopy(TEMPLATE)
    added = {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.handler"}}
    if condition:
        added["Condition"] = condition
    template["Resources"]["NewFunction"] = added
    assert functions_without(template, "Errors") == {"NewFunction"}
    # an alarm deployed in another mode than its function's is no alarm
    template["Resources"]["NewFunctionErrorsAlarm"] = {
        **copy.deepcopy(RESOURCES["ConsoleFunctionErrorsAlarm"]),
        **({} if condition else {"Condition": "QueuedTracking"}),
    }
    template["Resources"]["NewFunctionErrorsAlarm"]["Properties"]["Dimensions"] = [
        {"Name": "FunctionName", "Value": {"Ref": "NewFunction"}}
    ]
    assert functions_without(template, "Errors") == {"NewFunction"}


def test_a_function_alarm_fires_on_the_first_failed_or_throttled_invocation():
    for name in resources_of_type(TEMPLATE, "AWS::Serverless::Function"):
        for metric in ("Errors", "Throttles"):
            [alarm] = alarms_on(TEMPLATE, "AWS/Lambda", metric, FunctionName={"Ref": name})
            properties = alarm["Properties"]
            if name == "AuthorizerFunction" and metric == "Errors":
                continue  # below
            assert (properties["Statistic"], properties["Threshold"]) == ("Sum", 0), name
            assert properties["ComparisonOperator"] == "GreaterThanThreshold"
            assert properties["Period"] * properties["EvaluationPeriods"] <= 300


def test_the_authorizers_refusals_alone_do_not_fire_its_errors_alarm():
    """API Gateway takes a REQUEST authorizer's refusal of a malformed
    credential only as the error "Unauthorized", an Errors datapoint: the
    alarm is on the share of invocations that fail, with a floor, so one
    client's bad header is no alarm."""
    source = (REPO_ROOT / "functions" / "authorizer" / "app.py").read_text()
    assert 'raise Exception("Unauthorized")' in source  # why this alarm differs
    [alarm] = alarms_on(
        TEMPLATE, "AWS/Lambda", "Errors", FunctionName={"Ref": "AuthorizerFunction"}
    )
    properties = alarm["Properties"]
    ids = {m["Id"]: m for m in properties["Metrics"]}
    assert ids["errors"]["MetricStat"]["Metric"]["MetricName"] == "Errors"
    assert ids["invocations"]["MetricStat"]["Metric"]["MetricName"] == "Invocations"
    [returned] = [m for m in properties["Metrics"] if m.get("ReturnData", True)]
    assert returned["Expression"] == "IF(errors >= 5, 100 * errors / invocations, 0)"
    assert properties["Threshold"] == 50


# ----------------------------------------------------------------------- API


def test_the_5xx_alarm_reads_the_stage_the_api_deploys_under_the_name_sam_gives_it():
    """REST API metrics are by ApiName (and Stage): SAM names the REST API
    after the stack (the OpenAPI title it generates) and the stage is
    PropsyncApi's StageName (SAM's extra "Stage" stage has no traffic)."""
    [alarm] = alarms_on(
        TEMPLATE,
        "AWS/ApiGateway",
        "5XXError",
        ApiName={"Ref": "AWS::StackName"},
        Stage=RESOURCES["PropsyncApi"]["Properties"]["StageName"],
    )
    properties = alarm["Properties"]
    names = {m["Id"]: m["MetricStat"]["Metric"] for m in properties["Metrics"] if "MetricStat" in m}
    assert names["errors"]["MetricName"] == "5XXError"
    assert names["requests"]["MetricName"] == "Count"
    assert names["requests"]["Dimensions"] == names["errors"]["Dimensions"]
    [rate] = [m for m in properties["Metrics"] if m.get("ReturnData", True)]
    assert rate["Expression"] == "IF(errors >= 5, 100 * errors / requests, 0)"
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (
        1,
        "GreaterThanThreshold",
    )
    assert (properties["DatapointsToAlarm"], properties["EvaluationPeriods"]) == (3, 5)
    resources = sam_resources()
    assert resources["PropsyncApi"]["Properties"]["Body"]["info"]["title"] == {
        "Ref": "AWS::StackName"
    }
    assert "Name" not in resources["PropsyncApi"]["Properties"]


# ------------------------------------------------------------------ DynamoDB


def test_the_table_throttling_alarm_is_on_a_sustained_share_of_its_requests():
    """docs/DECISIONS.md, "The DynamoDB throttling alarm": a paced import that
    probes past the table's capacity loses a few writes per congestion, under
    1% of its writes; on-demand scaling throttles for minutes. The alarm
    wants more than 5% for 10 of 15 minutes."""
    [alarm] = alarms_on(
        TEMPLATE, "AWS/DynamoDB", "WriteThrottleEvents", TableName={"Ref": "PropsyncTable"}
    )
    properties = alarm["Properties"]
    read = {
        name
        for _, name, dims in metrics_of(alarm)
        if dims == {"TableName": {"Ref": "PropsyncTable"}}
    }
    assert read == {
        "WriteThrottleEvents",
        "ReadThrottleEvents",
        "ConsumedWriteCapacityUnits",
        "ConsumedReadCapacityUnits",
    }
    [share] = [m for m in properties["Metrics"] if m.get("ReturnData", True)]
    assert share["Expression"] == "100 * throttled / (throttled + FILL(writes, 0) + FILL(reads, 0))"
    assert properties["Threshold"] == 5
    assert properties["EvaluationPeriods"] * 60 >= 15 * 60
    assert properties["DatapointsToAlarm"] >= 10


# -------------------------------------------------------------------- queues

QUEUE_ALARM_SETTINGS = {"Statistic": "Maximum", "ComparisonOperator": "GreaterThanThreshold"}


def queue_alarm(template: dict, queue: str, metric: str) -> dict | None:
    found = alarms_on(template, "AWS/SQS", metric, QueueName={"Fn::GetAtt": [queue, "QueueName"]})
    queue_condition = template["Resources"][queue].get("Condition")
    found = [alarm for alarm in found if alarm.get("Condition") == queue_condition]
    return found[0] if found else None


def dead_letter_queues(template: dict) -> set[str]:
    return {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for queue in resources_of_type(template, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in queue["Properties"]
    }


def queues_read_by_a_function(template: dict) -> set[str]:
    return {
        event["Properties"]["Queue"]["Fn::GetAtt"][0]
        for function in resources_of_type(template, "AWS::Serverless::Function").values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    }


def queues_without_alarms(template: dict) -> dict[str, str]:
    """Each queue whose alarm is missing, and which: messages visible for a
    dead-letter queue, and for any queue no function reads (a message there
    waits for a person: an on-failure destination); the age of the oldest
    message for a queue with a redrive policy (a function reads it)."""
    missing = {}
    queues = resources_of_type(template, "AWS::SQS::Queue")
    waiting_for_people = dead_letter_queues(template) | (
        set(queues) - queues_read_by_a_function(template)
    )
    for name, queue in queues.items():
        if name in waiting_for_people:
            alarm = queue_alarm(template, name, "ApproximateNumberOfMessagesVisible")
            if alarm is None or alarm["Properties"]["Threshold"] != 0:
                missing[name] = "any message visible"
        aged = queue_alarm(template, name, "ApproximateAgeOfOldestMessage")
        if "RedrivePolicy" in queue["Properties"] and aged is None:
            missing[name] = "age of the oldest message"
    return missing


def test_every_dead_letter_queue_alarms_on_any_message_and_every_queue_on_its_age():
    assert dead_letter_queues(TEMPLATE) == {
        "ChunkDeadLetterQueue",
        "ImportFailureDeadLetterQueue",
        "TrackingDeadLetterQueue",
    }
    assert queues_without_alarms(TEMPLATE) == {}
    for alarm in resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm").values():
        if metrics_of(alarm)[0][0] == "AWS/SQS":
            for setting, value in QUEUE_ALARM_SETTINGS.items():
                assert alarm["Properties"][setting] == value


@pytest.mark.parametrize("kind", ["dead letter queue", "on-failure destination", "read queue"])
def test_a_queue_added_without_its_alarm_is_caught(kind):
    template = copy.deepcopy(TEMPLATE)
    queues = template["Resources"]
    queues["NewQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    if kind == "dead letter queue":
        queues["ChunkQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] = {
            "Fn::GetAtt": ["NewQueue", "Arn"]
        }
        # it is read by nobody either: the check names it once
    elif kind == "read queue":
        queues["NewQueue"]["Properties"]["RedrivePolicy"] = {
            "deadLetterTargetArn": {"Fn::GetAtt": ["ChunkDeadLetterQueue", "Arn"]},
            "maxReceiveCount": 5,
        }
        queues["ImportFunction"]["Properties"]["Events"]["NewQueue"] = {
            "Type": "SQS",
            "Properties": {"Queue": {"Fn::GetAtt": ["NewQueue", "Arn"]}},
        }
    assert set(queues_without_alarms(template)) >= {"NewQueue"}


def test_the_chunk_queue_age_threshold_leaves_room_for_the_waits_chunks_are_made_for():
    """A chunk message waits behind other imports' chunks (the queue's
    maximum concurrency) and, after a failed run, for the visibility timeout
    before it comes back (SQS counts its age from its first send)."""
    [alarm] = alarms_on(
        TEMPLATE,
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        QueueName={"Fn::GetAtt": ["ChunkQueue", "QueueName"]},
    )
    assert alarm["Properties"]["Threshold"] == {"Ref": "ChunkQueueAgeAlarmSeconds"}
    parameter = PARAMETERS["ChunkQueueAgeAlarmSeconds"]
    visibility = RESOURCES["ChunkQueue"]["Properties"]["VisibilityTimeout"]
    one_run = RESOURCES["ImportChunkFunction"]["Properties"]["Timeout"]
    assert parameter["MinValue"] >= visibility + one_run
    assert parameter["Default"] >= parameter["MinValue"]
    assert f"{visibility:,} s" in parameter["Description"]


# ------------------------------------------------------------------- imports


def test_an_alarm_fires_on_any_chunk_an_import_gives_up():
    """The chunk handler answers a failed chunk to the queue, so Lambda's
    Errors stay 0: the imports publish ImportChunksFailed
    (tests/imports/test_import_metrics.py), in the functions' namespace, with
    the service dimension Powertools adds."""
    [alarm] = alarms_on(
        TEMPLATE,
        GLOBAL_ENV["POWERTOOLS_METRICS_NAMESPACE"],
        "ImportChunksFailed",
        service=GLOBAL_ENV["POWERTOOLS_SERVICE_NAME"],
    )
    properties = alarm["Properties"]
    assert (properties["Statistic"], properties["Threshold"]) == ("Sum", 0)
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    source = (REPO_ROOT / "layers" / "propsync" / "propsync" / "imports.py").read_text()
    assert "_count(ImportChunksFailed=1)" in source


# --------------------------------------------------------------- access logs

ACCESS_LOG = RESOURCES["PropsyncApi"]["Properties"].get("AccessLogSetting", {})
CONTEXT_VARIABLE = re.compile(r"\$context\.[A-Za-z.]+")
LOGGED = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    # the route, never $context.path: a tracking route's path holds the
    # project token, a credential
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "errorType": "$context.error.responseType",
    "authorizerError": "$context.authorizer.error",
}


def test_the_api_writes_one_json_access_log_line_per_request_without_secrets():
    text = ACCESS_LOG["Format"]
    # API Gateway writes "-" for a value it does not have: quoted, still JSON
    line = json.loads(CONTEXT_VARIABLE.sub("-", text))
    assert set(line.values()) == {"-"}
    assert json.loads(text) == LOGGED
    assert "$" not in CONTEXT_VARIABLE.sub("", text)  # no $input, $method, $stageVariables
    for secret in ("$context.path", "header", "Authorization", "apiKey", "$input"):
        assert secret not in text


def test_sam_sets_the_access_logs_on_the_stage_the_api_is_deployed_to():
    stage = sam_resources()["PropsyncApiv1Stage"]
    assert stage["Type"] == "AWS::ApiGateway::Stage"
    assert stage["Properties"]["StageName"] == RESOURCES["PropsyncApi"]["Properties"]["StageName"]
    assert stage["Properties"]["AccessLogSetting"] == ACCESS_LOG


def test_access_logs_go_to_a_log_group_kept_30_days():
    assert ACCESS_LOG["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    group = RESOURCES["ApiAccessLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == 30
    assert "Condition" not in group


def test_the_stack_sets_the_account_role_api_gateway_logs_with_unless_told_not_to():
    """API Gateway's CloudWatch role is one per account and region, and a
    stage with access logs cannot be created without it: by default the
    stack creates and sets it (so a first deploy in a fresh account works),
    then keeps both when deleted, since the account's other APIs log with it;
    the stage waits for it through the log group it logs to.
    ApiGatewayLoggingRole=existing leaves the account's setting alone."""
    parameter = PARAMETERS["ApiGatewayLoggingRole"]
    assert (parameter["AllowedValues"], parameter["Default"]) == (
        ["create", "existing"],
        "create",
    )
    account_wide = {"ApiGatewayCloudWatchRole", "ApiGatewayAccount"}
    existing = deployed(TEMPLATE, ApiGatewayLoggingRole="existing")["Resources"]
    created = deployed(TEMPLATE)["Resources"]
    assert account_wide.isdisjoint(existing)
    assert set(created) - set(existing) == account_wide
    assert "Tags" not in existing["ApiAccessLogGroup"]["Properties"]
    [tag] = created["ApiAccessLogGroup"]["Properties"]["Tags"]
    assert tag["Value"] == {"Ref": "ApiGatewayAccount"}
    account, role = created["ApiGatewayAccount"], created["ApiGatewayCloudWatchRole"]
    assert account["Properties"]["CloudWatchRoleArn"] == {
        "Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]
    }
    for resource in (account, role):
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    [policy] = role["Properties"]["ManagedPolicyArns"]
    assert policy["Fn::Sub"].endswith(":policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
    assert "Policies" not in role["Properties"]


# ----------------------------------------------------------------- dashboard

SUB_NAME = re.compile(r"\$\{([^}]+)\}")
PSEUDO = {"AWS::Region": "eu-west-1", "AWS::StackName": "propsync", "AWS::AccountId": "1" * 12}


def dashboard_body(stack: dict) -> tuple[dict, set[str]]:
    """The dashboard's body as CloudFormation makes it for ``stack`` (as
    deployed), each resource's name faked as fake-<Name>[-<Attribute>], and
    the names it refers to."""
    [dashboard] = resources_of_type(stack, "AWS::CloudWatch::Dashboard").values()
    delimiter, parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"]
    named: set[str] = set()

    def fake(match: re.Match[str]) -> str:
        name = match.group(1)
        named.add(name.split(".", 1)[0])
        return PSEUDO.get(name) or "fake-" + name.replace(".", "-")

    texts = [p if isinstance(p, str) else SUB_NAME.sub(fake, p["Fn::Sub"]) for p in parts]
    return json.loads(delimiter.join(texts)), named


def dashboard_dimensions(body: dict) -> dict[str, set[str]]:
    """{dimension name: values} over every metric of every widget."""
    found: dict[str, set[str]] = {}
    for widget in body["widgets"]:
        for row in widget["properties"]["metrics"]:
            names = [item for item in row if isinstance(item, str)]
            for key, value in zip(names[2::2], names[3::2], strict=True):
                found.setdefault(key, set()).add(value)
    return found


@pytest.mark.parametrize("parameters", EVERY_DEPLOYMENT, ids=lambda p: ",".join(p.values()))
def test_the_dashboard_is_json_and_shows_every_function_queue_and_the_table(parameters):
    stack = deployed(TEMPLATE, **parameters)
    body, named = dashboard_body(stack)
    resources = stack["Resources"]
    assert named <= set(resources) | set(PSEUDO), "names nothing deployed"
    dimensions = dashboard_dimensions(body)
    assert dimensions["FunctionName"] == {
        f"fake-{name}" for name in resources_of_type(stack, "AWS::Serverless::Function")
    }
    assert dimensions["QueueName"] == {
        f"fake-{name}-QueueName" for name in resources_of_type(stack, "AWS::SQS::Queue")
    }
    assert dimensions["TableName"] == {"fake-PropsyncTable"}
    assert dimensions["ApiName"] == {"propsync"}
    assert dimensions["Stage"] == {RESOURCES["PropsyncApi"]["Properties"]["StageName"]}
    assert dimensions["service"] == {GLOBAL_ENV["POWERTOOLS_SERVICE_NAME"]}
    for widget in body["widgets"]:
        assert widget["properties"]["region"] == PSEUDO["AWS::Region"]


def test_the_dashboard_shows_what_on_call_looks_at_first():
    body, _ = dashboard_body(deployed(TEMPLATE))
    shown = {
        (row[0], row[1], row[-1]["stat"])
        for w in body["widgets"]
        for row in w["properties"]["metrics"]
    }
    namespace = GLOBAL_ENV["POWERTOOLS_METRICS_NAMESPACE"]
    assert shown >= {
        ("AWS/ApiGateway", "Count", "Sum"),
        ("AWS/ApiGateway", "5XXError", "Sum"),
        ("AWS/ApiGateway", "Latency", "p99"),
        ("AWS/Lambda", "Errors", "Sum"),
        ("AWS/Lambda", "Throttles", "Sum"),
        ("AWS/Lambda", "Duration", "p99"),
        ("AWS/DynamoDB", "ConsumedWriteCapacityUnits", "Sum"),
        ("AWS/DynamoDB", "WriteThrottleEvents", "Sum"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum"),
        (namespace, "ImportChunksFailed", "Sum"),
        (namespace, "ImportRowsFailed", "Sum"),
        (namespace, "ImportRowsWritten", "Sum"),
    }
