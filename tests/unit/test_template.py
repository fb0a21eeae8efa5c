"""template.yaml is the one description of what gets deployed; these checks pin
the choices the rest of the code relies on."""

import ast
import itertools
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest

from propsync import tracking_queue
from propsync_local.apigw import api_routes
from propsync_local.cfn_template import (
    REPO_ROOT,
    TEMPLATE_PATH,
    create_table_kwargs,
    load_template,
    resources_of_type,
)
from propsync_local.deployed_template import deployed

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]


def test_functions_run_python_3_13_on_arm64():
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Layers"] == [{"Ref": "PropsyncLayer"}]
    assert function_globals["Environment"]["Variables"]["PROPSYNC_TABLE_NAME"] == {
        "Ref": "PropsyncTable"
    }


def test_the_shared_layer_is_built_from_the_propsync_package():
    layer = RESOURCES["PropsyncLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    content = REPO_ROOT / layer["Properties"]["ContentUri"]
    assert (content / "propsync" / "__init__.py").is_file()
    assert (content / "requirements.txt").is_file()
    # the layer's Makefile installs arm64 wheels and compiles hash-checked
    # bytecode (make sam-check builds it and runs scripts/check-layer-bytecode.py)
    makefile = (content / "Makefile").read_text()
    assert "build-PropsyncLayer:" in makefile
    assert "--platform manylinux2014_aarch64" in makefile
    assert "--invalidation-mode checked-hash" in makefile


def test_pytest_imports_the_layer_from_the_same_folder_the_template_deploys():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert (
        RESOURCES["PropsyncLayer"]["Properties"]["ContentUri"]
        in (pyproject["tool"]["pytest"]["ini_options"]["pythonpath"])
    )


def test_the_table_is_keyed_by_pk_with_recovery_and_encryption():
    table = RESOURCES["PropsyncTable"]
    assert table["DeletionPolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


EXECUTIONS_BY_PROJECT = {
    "IndexName": "ExecutionsByProject",
    "KeySchema": [
        {"AttributeName": "project", "KeyType": "HASH"},
        {"AttributeName": "started_at", "KeyType": "RANGE"},
    ],
    # the records are read by key after the query (BatchGetItem): the index
    # holds no copy of an execution's counts, let alone its plan
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}


def test_create_table_arguments_come_from_the_template():
    kwargs = create_table_kwargs(TEMPLATE, "PropsyncTable", "name")
    assert kwargs == {
        "TableName": "name",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "project", "AttributeType": "S"},
            {"AttributeName": "started_at", "AttributeType": "N"},
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [EXECUTIONS_BY_PROJECT],
    }


def test_the_one_index_lists_a_projects_executions_by_start_time_keys_only():
    from propsync.store.imports import EXECUTIONS_INDEX  # noqa: PLC0415

    [index] = RESOURCES["PropsyncTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert index == EXECUTIONS_BY_PROJECT
    assert index["IndexName"] == EXECUTIONS_INDEX
    # on demand, as the table: no throughput of its own to run out of
    assert "ProvisionedThroughput" not in index


def test_functions_bound_by_the_sdks_cpu_get_a_whole_vcpu():
    # Lambda allocates CPU in proportion to memory, one vCPU at 1,769 MB;
    # make bench shows a batch's writes and an import's rows are CPU-bound.
    for name in ("TrackingFunction", "ImportFunction", "ImportChunkFunction"):
        assert RESOURCES[name]["Properties"]["MemorySize"] >= 1769, name


def test_a_failing_chunk_is_recorded_before_the_dead_letter_queue_could_take_it():
    from propsync import imports  # noqa: PLC0415

    redrive = RESOURCES["ChunkQueue"]["Properties"]["RedrivePolicy"]
    # the receive that gives up without running, and spares for when recording
    # the failure itself fails, all come before the DLQ
    assert imports.LAST_ATTEMPT_RECEIVE < imports.GIVE_UP_RECEIVE < redrive["maxReceiveCount"]
    # AWS advises at least 5: the Lambda service's own throttling uses up receives
    assert imports.LAST_ATTEMPT_RECEIVE >= 5
    chunks = RESOURCES["ImportChunkFunction"]["Properties"]["Events"]["Chunks"]["Properties"]
    assert chunks["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert chunks["BatchSize"] == 1


def test_the_import_ceiling_is_each_chunks_share_times_the_chunks_running_at_once():
    """docs/DECISIONS.md: "Imports are paced". The chunk function paces its
    writes to ImportWritesPerSecond / ImportConcurrency, and the chunk queue
    runs at most ImportConcurrency of them: both from the same parameters."""
    from propsync import imports  # noqa: PLC0415

    parameters = TEMPLATE["Parameters"]
    ceiling, concurrency = parameters["ImportWritesPerSecond"], parameters["ImportConcurrency"]
    assert ceiling["Default"] == imports.DEFAULT_WRITES_PER_SECOND
    assert concurrency["Default"] == imports.DEFAULT_CONCURRENCY
    # SQS event sources take a maximum concurrency from 2 to 1,000
    assert (concurrency["MinValue"], concurrency["MaxValue"]) == (2, imports.MAX_CONCURRENCY)
    assert ceiling["MaxValue"] <= imports.MAX_WRITES_PER_SECOND
    chunk = RESOURCES["ImportChunkFunction"]["Properties"]
    assert chunk["Environment"]["Variables"][imports.WRITES_PER_SECOND_ENV] == {
        "Ref": "ImportWritesPerSecond"
    }
    assert chunk["Environment"]["Variables"][imports.CONCURRENCY_ENV] == {
        "Ref": "ImportConcurrency"
    }
    scaling = chunk["Events"]["Chunks"]["Properties"]["ScalingConfig"]
    assert scaling == {"MaximumConcurrency": {"Ref": "ImportConcurrency"}}


def test_an_executions_window_is_the_chunks_that_may_run_at_once():
    """docs/DECISIONS.md: "A window of chunks per import". ImportFunction
    plans each execution with ImportConcurrency lanes: a single import can
    fill every slot, and holds no more of the queue than that."""
    from propsync import imports  # noqa: PLC0415

    planner = RESOURCES["ImportFunction"]["Properties"]["Environment"]["Variables"]
    assert planner[imports.CONCURRENCY_ENV] == {"Ref": "ImportConcurrency"}


def test_every_function_given_the_chunk_queue_may_send_to_it():
    """ImportFunction sends each lane's first chunk; the chunk function sends
    the next chunk of a lane as one is done, and the rest of a chunk that
    checkpoints. make run's IAM check covers DynamoDB only, so the policy is
    pinned here: without it every import of more chunks than the window, and
    every checkpoint, would stop at AccessDenied on AWS."""
    given = {
        name
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function"
        and "PROPSYNC_CHUNK_QUEUE_URL"
        in resource["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert given == {"ImportFunction", "ImportChunkFunction"}
    for name in given:
        statements = RESOURCES[name]["Properties"]["Policies"][0]["Statement"]
        sends = [statement for statement in statements if "sqs:SendMessage" in statement["Action"]]
        assert [statement["Resource"] for statement in sends] == [
            {"Fn::GetAtt": ["ChunkQueue", "Arn"]}
        ], name


def test_only_the_chunk_function_writes_imported_rows_and_nothing_else_is_paced():
    """ImportFunction plans and queues every chunk, a one-chunk file's too;
    tracking and the API are never paced by an import's settings."""
    from propsync import imports  # noqa: PLC0415

    for name, function in RESOURCES.items():
        if function["Type"] != "AWS::Serverless::Function":
            continue
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert (imports.WRITES_PER_SECOND_ENV in variables) == (name == "ImportChunkFunction")
        # the planner reads the concurrency for the execution's window only
        assert (imports.CONCURRENCY_ENV in variables) == (
            name in {"ImportChunkFunction", "ImportFunction"}
        ), name
    statements = RESOURCES["ImportFunction"]["Properties"]["Policies"][0]["Statement"]
    actions = {action for statement in statements for action in statement["Action"]}
    assert "dynamodb:BatchGetItem" not in actions  # it looks up no customer
    assert "dynamodb:DeleteItem" not in actions  # it releases no id


# ------------------------------------------------------------------ SnapStart
# docs/DECISIONS.md: "SnapStart is opt-in, for the API functions".

SNAPSTART_FUNCTIONS = {
    "TrackingFunction",
    "CustomersReadFunction",
    "CustomersFunction",
    "CustomersEraseFunction",
    "AuthorizerFunction",
    "ImportsApiFunction",
}
SAM_PYTHON = REPO_ROOT / ".venv-sam" / "bin" / "python"


# ${Name} and ${Name.Attribute} in Fn::Sub (${!Literal} is no reference)
SUB_REFERENCE = re.compile(r"\$\{(?!!)([^}.]+)")


def references(node, path: str = ""):
    """(path, name) for every name ``node`` refers to: Ref (SAM's
    "Function.Alias" refers to the function), Fn::GetAtt, ${} in Fn::Sub."""
    if isinstance(node, dict):
        if isinstance(node.get("Ref"), str):
            yield path, node["Ref"].split(".", 1)[0]
        if isinstance(node.get("Fn::GetAtt"), list):
            yield path, node["Fn::GetAtt"][0]
        sub = node.get("Fn::Sub")
        if sub is not None:
            text, local = (sub, {}) if isinstance(sub, str) else sub
            for name in SUB_REFERENCE.findall(text):
                if name not in local:
                    yield path, name
        for key, value in node.items():
            yield from references(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from references(value, f"{path}[{index}]")


def test_snapstart_is_a_parameter_off_by_default():
    parameter = TEMPLATE["Parameters"]["SnapStart"]
    assert parameter["AllowedValues"] == ["None", "PublishedVersions"]
    assert parameter["Default"] == "None"


def test_snapstart_applies_to_the_api_functions_and_their_published_versions():
    functions = resources_of_type(TEMPLATE, "AWS::Serverless::Function")
    assert {name for name, f in functions.items() if "SnapStart" in f["Properties"]} == (
        SNAPSTART_FUNCTIONS
    )
    for name, function in functions.items():
        properties = function["Properties"]
        if name not in SNAPSTART_FUNCTIONS:  # the import functions: no alias either
            assert "AutoPublishAlias" not in properties, name
            continue
        assert properties["SnapStart"] == {"ApplyOn": {"Ref": "SnapStart"}}
        # SnapStart applies to published versions only: events reach the alias
        assert properties["AutoPublishAlias"] == "live"
        # a new version, and so a new snapshot, whenever anything of the
        # function changes (with PublishLambdaVersion: its layer too) ...
        assert properties["AutoPublishAliasAllProperties"] is True
        # ... and whenever SnapStart is switched (a version's description
        # cannot change: the version is replaced, that is published again)
        assert "${SnapStart}" in properties["VersionDescription"]["Fn::Sub"]
    assert RESOURCES["PropsyncLayer"]["Properties"]["PublishLambdaVersion"] is True


def test_api_gateway_calls_the_authorizer_through_its_alias():
    authorizers = RESOURCES["PropsyncApi"]["Properties"]["Auth"]["Authorizers"]
    assert authorizers["ApiKeyAuthorizer"]["FunctionArn"] == {"Ref": "AuthorizerFunction.Alias"}


def test_the_parameter_reaches_only_the_snapstart_setting_and_the_versions_description():
    """So with SnapStart=None (Lambda's own default for ApplyOn) nothing else
    of the stack depends on it."""
    used = {path for path, name in references(TEMPLATE) if name == "SnapStart"}
    assert sorted(used) == sorted(
        f"Resources.{name}.Properties.{setting}"
        for name in SNAPSTART_FUNCTIONS
        for setting in ("SnapStart.ApplyOn", "VersionDescription")
    )


TRANSLATE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from propsync_local.cfn_template import load_template
from samtranslator.translator.transform import transform

class Policies:
    def load(self):
        return {}

out = []
for params, layer in json.loads(sys.argv[2]):
    template = load_template()
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":  # what sam package writes
            properties["CodeUri"] = "s3://artifacts/" + properties["CodeUri"].replace("/", "-")
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = "s3://artifacts/" + layer
    out.append(transform(template, params, Policies(), feature_toggle=None))
print(json.dumps(out))
"""


def translated(*deployments: tuple[dict[str, str], str]) -> list[dict]:
    """template.yaml as the SAM transform turns it into CloudFormation, once
    per (parameter values, layer zip), with the SAM translator of .venv-sam."""
    if not SAM_PYTHON.exists():
        pytest.skip("the SAM CLI virtualenv (make sam-check) is not installed")
    output = subprocess.run(
        [str(SAM_PYTHON), "-c", TRANSLATE, str(REPO_ROOT / "local"), json.dumps(deployments)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"},
        cwd=REPO_ROOT,
    )
    return json.loads(output.stdout)


def versions(resources: dict) -> dict[str, str]:
    return {
        resource["Properties"]["FunctionName"]["Ref"]: logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::Version"
    }


def test_deployed_api_gateway_and_the_authorizer_call_the_alias_of_a_published_version():
    off, on, new_layer = (
        deployment["Resources"]
        for deployment in translated(
            ({}, "layer-1.zip"),
            ({"SnapStart": "PublishedVersions"}, "layer-1.zip"),
            ({}, "layer-2.zip"),
        )
    )
    for name in SNAPSTART_FUNCTIONS:
        alias = off[f"{name}Aliaslive"]["Properties"]
        assert alias["FunctionVersion"] == {"Fn::GetAtt": [versions(off)[name], "Version"]}
    # every API route's integration and the authorizer invoke an alias, never
    # $LATEST; the console's pages, which need no SnapStart, call the function
    body = off["PropsyncApi"]["Properties"]["Body"]
    for path, methods in body["paths"].items():
        for method in methods.values():
            uri = json.dumps(method["x-amazon-apigateway-integration"]["uri"])
            if path.startswith("/console"):
                assert "${ConsoleFunction.Arn}" in uri, uri
            else:
                assert "Aliaslive" in uri, uri
    authorizer = body["securityDefinitions"]["ApiKeyAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert "AuthorizerFunctionAliaslive" in json.dumps(authorizer["authorizerUri"])
    api_permissions = [
        resource["Properties"]
        for resource in off.values()
        if resource["Type"] == "AWS::Lambda::Permission"
        and resource["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    console = [p for p in api_permissions if p["FunctionName"] == {"Ref": "ConsoleFunction"}]
    assert len(console) == 2  # the page and its assets
    api = [p for p in api_permissions if p not in console]
    assert len(api) == len(api_routes()) + 1  # every API route and the authorizer
    assert all("Aliaslive" in json.dumps(p["FunctionName"]) for p in api)
    # switching SnapStart on publishes new versions (their description differs)
    assert versions(on) == versions(off)
    for name in SNAPSTART_FUNCTIONS:
        assert off[versions(off)[name]]["Properties"]["Description"] == {
            "Fn::Sub": "SnapStart: ${SnapStart}"
        }
    for name in SNAPSTART_FUNCTIONS:
        assert on[name]["Properties"]["SnapStart"] == {"ApplyOn": {"Ref": "SnapStart"}}
    # a new layer alone publishes new versions: the alias never keeps old code
    assert set(versions(new_layer).values()).isdisjoint(versions(off).values())
    assert set(versions(new_layer)) == SNAPSTART_FUNCTIONS


# ------------------------------------------------------------ queued tracking
# Template parameter TrackingWrites (docs/DECISIONS.md: "Tracking writes: sync
# or queued"); propsync.tracking_queue is the code these settings serve.

QUEUED_ONLY_RESOURCES = {
    "TrackingQueue",
    "TrackingDeadLetterQueue",
    "TrackingWorkerFunction",
    "TrackingWorkerLogGroup",
    "TrackingDeadLetterAlarm",
    "TrackingQueueAgeAlarm",
    "TrackingRetriesAlarm",
    # every function's errors and throttles (tests/unit/test_template_alarms.py)
    "TrackingWorkerFunctionErrorsAlarm",
    "TrackingWorkerFunctionThrottlesAlarm",
}
QUEUED_ONLY_OUTPUTS = {"TrackingQueueUrl", "TrackingDeadLetterQueueUrl"}
DEPLOYED = {mode: deployed(TEMPLATE, TrackingWrites=mode) for mode in tracking_queue.MODES}
WORKER = DEPLOYED[tracking_queue.QUEUED]["Resources"]["TrackingWorkerFunction"]["Properties"]
TRACKING_QUEUE = RESOURCES["TrackingQueue"]["Properties"]


def test_tracking_writes_is_a_parameter_sync_by_default():
    parameter = TEMPLATE["Parameters"]["TrackingWrites"]
    assert parameter["AllowedValues"] == list(tracking_queue.MODES)
    assert parameter["Default"] == tracking_queue.SYNC
    assert TEMPLATE["Conditions"]["QueuedTracking"] == {
        "Fn::Equals": [{"Ref": "TrackingWrites"}, tracking_queue.QUEUED]
    }
    assert deployed(TEMPLATE) == DEPLOYED[tracking_queue.SYNC]


def test_the_queue_the_worker_and_the_alarms_are_deployed_in_queued_mode_only():
    conditional = {name for name, r in RESOURCES.items() if r.get("Condition") == "QueuedTracking"}
    assert conditional == QUEUED_ONLY_RESOURCES
    assert {
        name for name, output in TEMPLATE["Outputs"].items() if output.get("Condition")
    } == QUEUED_ONLY_OUTPUTS
    for section, queued_only in (
        ("Resources", QUEUED_ONLY_RESOURCES),
        ("Outputs", QUEUED_ONLY_OUTPUTS),
    ):
        # resources of another parameter's condition (the optional web ACL,
        # the account's logging role): the same in both modes
        others = {
            name
            for name, entry in TEMPLATE[section].items()
            if entry.get("Condition") not in (None, "QueuedTracking")
        }
        queued, sync = (
            set(DEPLOYED[mode][section]) for mode in (tracking_queue.QUEUED, tracking_queue.SYNC)
        )
        unconditional = set(TEMPLATE[section]) - others
        assert queued - others == unconditional
        assert unconditional - sync == queued_only
        assert queued & others == sync & others


# every value of each parameter a condition reads that changes what is deployed
CONDITIONAL_PARAMETERS = {
    "TrackingWrites": tracking_queue.MODES,
    "ProtectionWebAcl": ("false", "true"),
    "ApiGatewayLoggingRole": ("create", "existing"),
    "AlarmTopicArn": ("", "arn:aws:sns:eu-west-1:123456789012:on-call"),
    "ImportBucketName": ("", "acme-propsync-imports"),
}


def test_the_conditional_parameters_are_those_the_conditions_read():
    read = {name for _, name in references(TEMPLATE["Conditions"])}
    assert read == set(CONDITIONAL_PARAMETERS)


@pytest.mark.parametrize(
    "parameters",
    [
        dict(zip(CONDITIONAL_PARAMETERS, values, strict=True))
        for values in itertools.product(*CONDITIONAL_PARAMETERS.values())
    ],
    ids=lambda parameters: "-".join(value.split(":")[0] or "none" for value in parameters.values()),
)
def test_every_reference_names_something_deployed_with_any_parameters(parameters):
    """A resource or output a condition leaves out is referred to by nothing
    deployed with it (CloudFormation refuses such a template at deploy
    time), whatever the parameters the conditions read."""
    stack = deployed(TEMPLATE, **parameters)
    known = set(stack["Resources"]) | set(stack["Parameters"])
    dangling = [
        (path, name)
        for path, name in references(stack)
        if not name.startswith("AWS::") and name not in known
    ]
    assert dangling == []


@pytest.mark.parametrize("mode", tracking_queue.MODES)
def test_the_tracking_routes_are_told_their_mode_and_in_queued_mode_their_queue(mode):
    variables = DEPLOYED[mode]["Resources"]["TrackingFunction"]["Properties"]["Environment"]
    expected = {tracking_queue.TRACKING_WRITES_ENV: {"Ref": "TrackingWrites"}}
    if mode == tracking_queue.QUEUED:
        expected[tracking_queue.QUEUE_URL_ENV] = {"Ref": "TrackingQueue"}
    assert variables["Variables"] == expected


def test_the_worker_is_given_exactly_the_queue_urls_its_code_reads():
    assert (REPO_ROOT / WORKER["CodeUri"] / "worker.py").is_file()
    assert WORKER["Handler"] == "worker.lambda_handler"
    assert WORKER["Environment"]["Variables"] == {
        tracking_queue.QUEUE_URL_ENV: {"Ref": "TrackingQueue"},
        tracking_queue.DEAD_LETTER_QUEUE_URL_ENV: {"Ref": "TrackingDeadLetterQueue"},
    }


def test_the_worker_reads_the_tracking_queue_and_reports_partial_batch_failures():
    [event] = WORKER["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["TrackingQueue", "Arn"]}
    # only the failed messages come back, not the whole batch
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_a_received_message_stays_hidden_while_the_worker_may_still_run_it():
    """AWS's advice for an SQS event source: a visibility timeout of at least
    six times the function's timeout (plus the batching window), since Lambda
    retries a throttled invocation of a batch it already received."""
    [event] = WORKER["Events"].values()
    window = event["Properties"].get("MaximumBatchingWindowInSeconds", 0)
    assert TRACKING_QUEUE["VisibilityTimeout"] >= 6 * WORKER["Timeout"] + window


@pytest.mark.parametrize("queue", ["TrackingQueue", "TrackingDeadLetterQueue"])
def test_each_queue_takes_a_message_as_large_as_the_routes_pack(queue):
    """The routes fill a message up to MAX_MESSAGE_BYTES; the dead-letter
    queue takes the same messages when SQS redrives them."""
    size = RESOURCES[queue]["Properties"]["MaximumMessageSize"]
    assert size == tracking_queue.MAX_MESSAGE_BYTES == 1048576  # SQS's largest


def test_a_failing_message_reaches_the_dead_letter_queue_after_the_time_the_template_says():
    """After each failed receive the worker hides the message for
    tracking_queue.retry_delay (jittered from half to all of it); after the
    maxReceiveCount-th, the next receive moves it to the dead-letter queue.
    The template's comment gives the resulting span; this keeps it true."""
    redrive = TRACKING_QUEUE["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["TrackingDeadLetterQueue", "Arn"]}
    receives = range(1, redrive["maxReceiveCount"] + 1)
    shortest = sum(tracking_queue.retry_delay(n, lambda: 0.0) for n in receives)
    longest = sum(tracking_queue.retry_delay(n, lambda: 1.0) for n in receives)
    base, cap = tracking_queue.RETRY_BASE_SECONDS, tracking_queue.MAX_RETRY_SECONDS
    text = TEMPLATE_PATH.read_text().split("\n  TrackingQueue:\n", 1)[1].split("\n\n", 1)[0]
    comment = " ".join(line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line)
    assert f"after {base:.0f} s, {2 * base:.0f} s, ... {cap / 60:.0f} min" in comment
    assert f"the {len(receives)} receives" in comment
    assert f"span {shortest / 60:.0f} min to {longest / 3600:.1f} h" in comment
    # long before SQS deletes it unread
    assert longest < TRACKING_QUEUE["MessageRetentionPeriod"]


def alarm_of(name: str) -> dict:
    alarm = RESOURCES[name]["Properties"]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    # a queue without traffic for 6 hours reports nothing: no data is no alarm
    assert alarm["TreatMissingData"] == "notBreaching"
    return alarm


def test_an_alarm_fires_on_any_command_in_the_dead_letter_queue():
    alarm = alarm_of("TrackingDeadLetterAlarm")
    # messages SQS redrives count here, never in NumberOfMessagesSent
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["TrackingDeadLetterQueue", "QueueName"]}}
    ]
    assert alarm["Threshold"] == 0


def test_an_alarm_fires_when_the_oldest_queued_command_waits_longer_than_the_parameter():
    alarm = alarm_of("TrackingQueueAgeAlarm")
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["TrackingQueue", "QueueName"]}}
    ]
    assert alarm["Threshold"] == {"Ref": "QueueAgeAlarmSeconds"}
    assert alarm["EvaluationPeriods"] == 1  # the first minute over the threshold
    assert TEMPLATE["Parameters"]["QueueAgeAlarmSeconds"]["Type"] == "Number"


def test_an_alarm_fires_when_the_worker_keeps_retrying():
    """SQS leaves messages received three times or more out of the age
    metric: while every message keeps failing only the worker's own metric
    says so, before the dead-letter queue does."""
    alarm = RESOURCES["TrackingRetriesAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Statistic"]) == ("RetriedCommands", "Sum")
    assert alarm["TreatMissingData"] == "notBreaching"
    globals_env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert alarm["Namespace"] == globals_env["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [
        {"Name": "service", "Value": globals_env["POWERTOOLS_SERVICE_NAME"]}
    ]
    worker = (REPO_ROOT / "functions" / "tracking" / "worker.py").read_text()
    assert '"RetriedCommands"' in worker
    assert alarm["Threshold"] == 0
    # one message failing on every receive fires it, whichever way the
    # jitter of its retry delays falls: it fails in enough distinct minutes
    for draw in (0.0, 1.0):
        failed_at, minutes = 0.0, set()
        for receive in range(1, 30):
            minutes.add(int(failed_at // 60))
            failed_at += tracking_queue.retry_delay(receive, draw=lambda d=draw: d)
        window = {m for m in minutes if m < alarm["EvaluationPeriods"]}
        assert len(window) >= alarm["DatapointsToAlarm"], (draw, sorted(minutes))


def test_sam_deploys_the_queued_mode_with_the_worker_and_its_roles():
    """What the SAM transform makes of the queued mode: each branch of the
    routes' !If is a whole named policy, the worker's event source mapping
    reports partial failures, and the worker's role is its own statements plus
    the managed policies SAM adds (logs, X-Ray, and for the SQS event source
    AWSLambdaSQSQueueExecutionRole: receive, delete, get attributes)."""
    [resources] = (
        deployment["Resources"]
        for deployment in translated(({"TrackingWrites": "queued"}, "layer-1.zip"))
    )
    for branch in resources["TrackingFunctionRole"]["Properties"]["Policies"][0]["Fn::If"][1:]:
        assert set(branch) == {"PolicyName", "PolicyDocument"}
    mapping = resources["TrackingWorkerFunctionCommands"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    assert mapping["Condition"] == "QueuedTracking"
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    role = resources["TrackingWorkerFunctionRole"]
    assert role["Condition"] == "QueuedTracking"
    assert [arn.rsplit("/", 1)[1] for arn in role["Properties"]["ManagedPolicyArns"]] == [
        "AWSLambdaBasicExecutionRole",
        "AWSXrayWriteOnlyAccess",
        "AWSLambdaSQSQueueExecutionRole",
    ]
    [policy] = role["Properties"]["Policies"]
    assert policy["PolicyDocument"]["Statement"] == WORKER["Policies"][0]["Statement"]


# ---------------------------------------------------------------- web console


def test_the_console_is_served_by_a_function_of_its_own_without_snapstart():
    """Its handler imports the standard library only (no boto3, no layer
    code), so its cold start is small without SnapStart, whose hooks would
    build a DynamoDB client it never uses."""
    console = RESOURCES["ConsoleFunction"]["Properties"]
    assert console["CodeUri"] == "functions/console"
    assert console["Handler"] == "app.lambda_handler"
    assert "SnapStart" not in console
    tree = ast.parse((REPO_ROOT / "functions" / "console" / "app.py").read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_the_console_has_a_log_group_kept_30_days_as_the_others():
    log_groups = {
        resource["Properties"]["LogGroupName"]["Fn::Sub"]: resource["Properties"]
        for resource in resources_of_type(TEMPLATE, "AWS::Logs::LogGroup").values()
    }
    assert log_groups["/aws/lambda/${ConsoleFunction}"]["RetentionInDays"] == 30


def test_the_console_may_upload_to_the_import_buckets_regional_origin():
    """The page's CSP names the origin the presigned POST goes to: the bucket
    the import functions read (the same name), at its regional endpoint."""
    origin = RESOURCES["ConsoleFunction"]["Properties"]["Environment"]["Variables"][
        "PROPSYNC_UPLOAD_ORIGIN"
    ]["Fn::Sub"]
    bucket = RESOURCES["ImportFunction"]["Properties"]["Environment"]["Variables"][
        "PROPSYNC_IMPORT_BUCKET"
    ]
    assert RESOURCES["ImportBucket"]["Properties"]["BucketName"] == bucket
    assert origin == ["https://${Bucket}.s3.${AWS::Region}.${AWS::URLSuffix}", {"Bucket": bucket}]


def test_the_stack_names_the_consoles_address():
    assert TEMPLATE["Outputs"]["ConsoleUrl"]["Value"] == {
        "Fn::Sub": "https://${PropsyncApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1/console"
    }
