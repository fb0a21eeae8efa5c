"""The events/ samples are what `sam local invoke -e` sends: each one, as it is
on disk, runs through its real handler against the demo project and key."""

import json

import pytest

from propsync_local.apigw import EVENTS_DIR, LambdaContext, load_handler, routes
from propsync_local.cfn_template import load_template, resources_of_type
from propsync_local.stack import (
    DEFAULT_KEY_ID,
    DEFAULT_KEY_SECRET,
    DEFAULT_PROJECT_TOKEN,
    SAMPLE_CUSTOMER_ID,
    SAMPLE_CUSTOMER_IDS,
    SAMPLE_CUSTOMER_PROPERTIES,
    SAMPLE_CUSTOMER_UPDATED,
    SAMPLE_ERASURE_IDS,
    create_demo_access,
    create_sample_customer,
)
from tests.support.tracking_modes import accepted, assert_all_applied

SAM_ENV_VARS = EVENTS_DIR / "sam-local-env.json"


@pytest.fixture
def demo(api, imports, monkeypatch):
    """What a fresh `make run` creates: the demo project and key, the
    customer the samples name, and the import bucket."""
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", imports.bucket)
    create_demo_access(DEFAULT_PROJECT_TOKEN, DEFAULT_KEY_ID, DEFAULT_KEY_SECRET)
    create_sample_customer(DEFAULT_PROJECT_TOKEN)
    return api


def invoke(function: str, sample: str) -> dict:
    event = json.loads((EVENTS_DIR / f"{function}.{sample}.json").read_text())
    return load_handler(function)(event, LambdaContext(function))


def test_every_api_route_of_the_template_has_a_sample_event():
    for route in routes():
        assert route.sample_path.is_file(), f"missing {route.sample_path.name}"
        sample = json.loads(route.sample_path.read_text())
        assert sample["resource"] == route.resource
        assert sample["httpMethod"] == route.method
        assert ("authorizer" in sample["requestContext"]) == route.private


def test_the_tracking_samples_run(demo):
    batch = invoke("TrackingFunction", "Batch")
    assert batch["statusCode"] == 200
    results = json.loads(batch["body"])["results"]
    assert [r["success"] for r in results] == [True, True, True]
    customers = invoke("TrackingFunction", "Customers")
    assert customers["statusCode"] == 200
    assert invoke("TrackingFunction", "SystemTime")["statusCode"] == 200
    if demo.queued:
        # the handler was invoked as `sam local invoke` does: its commands
        # wait on the queue until the worker gets them
        assert results[2] == accepted("c-1")
        assert json.loads(customers["body"]) == accepted()
        assert demo.get_customer("mgalik", query={"id_type": "registered"}).status == 404
        assert demo.queues.deliver() == 2  # one message per request
        assert_all_applied(demo)
    read = demo.get_customer("mgalik", query={"id_type": "registered"})
    assert read.json() == {"properties": {"first_name": "Marian", "last_name": "Galik"}}


def test_the_tracking_worker_sample_runs_against_what_make_run_creates(demo):
    """A message of the demo project, as the tracking routes queue it."""
    answer = invoke("TrackingWorkerFunction", "SQS")
    assert answer == {"batchItemFailures": []}
    if demo.queued:
        assert_all_applied(demo)  # nothing dead-lettered
    read = demo.get_customer("mgalik", query={"id_type": "registered", "include_timestamps": "1"})
    assert read.status == 200, read.body
    assert read.json()["properties"] == {
        "first_name": {"value": "Marian", "last_update": 1570001049},
        "last_name": {"value": "Galik", "last_update": 1570001049},
    }


def test_the_customers_samples_run_against_what_make_run_creates(demo):
    read = invoke("CustomersReadFunction", "GetCustomer")
    assert read["statusCode"] == 200, read["body"]
    assert json.loads(read["body"])["properties"] == {
        name: {"value": value, "last_update": SAMPLE_CUSTOMER_UPDATED}
        for name, value in SAMPLE_CUSTOMER_PROPERTIES.items()
    }

    edited = invoke("CustomersFunction", "PatchCustomer")
    assert edited["statusCode"] == 200, edited["body"]
    assert json.loads(edited["body"])["applied"] == ["loyalty_tier"]

    export = invoke("CustomersReadFunction", "ExportOne")
    assert export["statusCode"] == 200, export["body"]
    exported = json.loads(export["body"])
    assert exported["ids"] == SAMPLE_CUSTOMER_IDS
    assert exported["properties"] == {**SAMPLE_CUSTOMER_PROPERTIES, "loyalty_tier": "gold"}

    attributes = invoke("CustomersReadFunction", "Attributes")
    assert attributes["statusCode"] == 200, attributes["body"]
    [first_name, email, registered, consent] = json.loads(attributes["body"])["results"]
    # the sample asks with include_timestamps=1
    assert first_name == {
        "success": True,
        "value": SAMPLE_CUSTOMER_PROPERTIES["first_name"],
        "last_update": SAMPLE_CUSTOMER_UPDATED,
    }
    assert email["value"] == SAMPLE_CUSTOMER_PROPERTIES["email"]
    assert registered == {"success": True, "value": SAMPLE_CUSTOMER_IDS["registered"]}
    assert consent["success"] is False
    assert consent["error"].startswith("consents are not supported")

    key = invoke("CustomersReadFunction", "Key")
    assert key["statusCode"] == 200, key["body"]
    assert json.loads(key["body"])["key_id"] == DEFAULT_KEY_ID
    assert json.loads(key["body"])["project"] == DEFAULT_PROJECT_TOKEN


def test_the_anonymize_sample_erases_the_customer_make_run_creates_for_it(demo):
    assert demo.export_one(SAMPLE_ERASURE_IDS, project=DEFAULT_PROJECT_TOKEN).status == 200
    erased = invoke("CustomersEraseFunction", "Anonymize")
    assert erased["statusCode"] == 200, erased["body"]
    assert json.loads(erased["body"]) == {"success": True}
    assert demo.export_one(SAMPLE_ERASURE_IDS, project=DEFAULT_PROJECT_TOKEN).status == 404
    # the other samples' customer is untouched, and the sample runs again
    assert invoke("CustomersReadFunction", "GetCustomer")["statusCode"] == 200
    assert invoke("CustomersEraseFunction", "Anonymize")["statusCode"] == 200
    # make run again on a persistent engine does not bring the erased one back
    create_sample_customer(DEFAULT_PROJECT_TOKEN)
    assert demo.export_one(SAMPLE_ERASURE_IDS, project=DEFAULT_PROJECT_TOKEN).status == 404


def test_the_import_samples_run_against_what_make_run_creates(demo, imports):
    preview = invoke("ImportsApiFunction", "Preview")
    assert preview["statusCode"] == 200, preview["body"]
    rows = json.loads(preview["body"])["rows"]
    assert [row["error"] is None for row in rows] == [True, False]  # "x" is no number
    start = invoke("ImportsApiFunction", "Start")
    assert start["statusCode"] == 201, start["body"]
    file_key = json.loads(start["body"])["file_key"]
    assert file_key == f"imports/{DEFAULT_PROJECT_TOKEN}/sample/people.csv"
    assert f"imports/{DEFAULT_PROJECT_TOKEN}/sample/mapping.json" in list(imports.keys())
    listed = invoke("ImportsApiFunction", "List")
    assert listed["statusCode"] == 200, listed["body"]
    assert json.loads(listed["body"])["executions"] == []
    # the read sample names an execution a fresh make run does not have
    missing = invoke("ImportsApiFunction", "Get")
    assert missing["statusCode"] == 404, missing["body"]


def test_the_import_read_sample_reads_the_execution_it_is_given(demo, imports):
    """events/README.md: put an execution id of the list in the sample."""
    imports.put_mapping("sample", {"ids": [{"from_column": "idecko", "to_id": "registered"}]})
    execution, _ = imports.drop("sample", "people.csv", b"idecko\nsample-import-1\n")
    event = json.loads((EVENTS_DIR / "ImportsApiFunction.Get.json").read_text())
    event["pathParameters"]["execution_id"] = execution.execution_id
    event["path"] = f"/api/imports/{execution.execution_id}"
    read = load_handler("ImportsApiFunction")(event, LambdaContext("ImportsApiFunction"))
    assert read["statusCode"] == 200, read["body"]
    assert json.loads(read["body"])["report"]["status"] == "succeeded"


def test_the_sample_customer_is_created_once_and_never_reset(demo):
    """`make run` again on a persistent engine keeps what was written since."""
    invoke("CustomersFunction", "PatchCustomer")
    newer = demo.track(SAMPLE_CUSTOMER_IDS, {"first_name": "Janka"}, SAMPLE_CUSTOMER_UPDATED + 1)
    if not demo.queued:
        assert newer["customer_id"] == SAMPLE_CUSTOMER_ID
    else:
        assert newer == accepted()
        assert_all_applied(demo)
    assert demo.customer_id_of(SAMPLE_CUSTOMER_IDS) == SAMPLE_CUSTOMER_ID

    create_sample_customer(DEFAULT_PROJECT_TOKEN)

    read = json.loads(invoke("CustomersReadFunction", "GetCustomer")["body"])
    assert read["properties"]["loyalty_tier"]["value"] == "gold"
    assert read["properties"]["first_name"]["value"] == "Janka"


def test_the_tracking_worker_sample_is_a_message_the_batch_sample_queues(demo):
    """The sample stays what the routes write (its commands are the batch
    sample's customers command), so that it tests the worker as deployed."""
    if not demo.queued:
        pytest.skip("the synchronous routes queue nothing")
    invoke("TrackingFunction", "Batch")
    [message] = demo.queues.sqs.receive_message(QueueUrl=demo.queues.url, MaxNumberOfMessages=10)[
        "Messages"
    ]
    demo.queues.sqs.delete_message(QueueUrl=demo.queues.url, ReceiptHandle=message["ReceiptHandle"])
    queued = json.loads(message["Body"])
    worker_event = json.loads((EVENTS_DIR / "TrackingWorkerFunction.SQS.json").read_text())
    [record] = worker_event["Records"]
    sample = json.loads(record["body"])
    batch_event = json.loads((EVENTS_DIR / "TrackingFunction.Batch.json").read_text())

    assert queued.keys() == sample.keys()
    assert queued["request_id"] == batch_event["requestContext"]["requestId"]
    for key in ("format", "project", "commands"):
        assert queued[key] == sample[key], key
    assert type(queued["received_at"]) is type(sample["received_at"]) is float


def declared_environment(function: str) -> set[str]:
    """The variables template.yaml gives a function (Globals and its own)."""
    template = load_template()
    names = set(template["Globals"]["Function"]["Environment"]["Variables"])
    own = template["Resources"][function]["Properties"].get("Environment") or {}
    return names | set(own.get("Variables") or {})


def test_the_sam_env_vars_file_names_exactly_what_each_function_declares():
    """`sam local invoke --env-vars` passes a function only the variables the
    template declares: a name the file adds is silently dropped (an endpoint
    would not apply, and the function would call AWS), a name it misses keeps
    the template's value, which names no local resource."""
    variables = json.loads(SAM_ENV_VARS.read_text())
    functions = resources_of_type(load_template(), "AWS::Serverless::Function")
    assert set(variables) - {"Parameters"} <= set(functions)
    for function in functions:
        given = set(variables["Parameters"]) | set(variables.get(function, {}))
        assert given == declared_environment(function), function
    assert "AWS_ENDPOINT_URL" in variables["Parameters"]


def test_the_authorizer_sample_allows_the_demo_key(demo):
    event = json.loads((EVENTS_DIR / "AuthorizerFunction.Request.json").read_text())
    answer = load_handler("AuthorizerFunction")(event, LambdaContext("AuthorizerFunction"))
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert answer["context"]["project"] == DEFAULT_PROJECT_TOKEN
