"""`make run` and the tests hold each handler to its function's DynamoDB
actions in template.yaml (propsync_local.iam): a code path that needs an
action its function lacks fails here as it would on AWS."""

import pytest
from botocore.exceptions import ClientError

from propsync.store.dynamo import (
    client_and_table_from_environment,
    import_client_and_table_from_environment,
)
from propsync_local import iam
from propsync_local.cfn_template import load_template, resources_of_type
from propsync_local.deployed_template import deployed


def write(client, table):
    client.update_item(
        TableName=table,
        Key={"pk": {"S": "iam-test"}},
        UpdateExpression="SET a = :a",
        ExpressionAttributeValues={":a": {"S": "x"}},
    )


def test_a_read_only_function_cannot_write(api):
    client, table = client_and_table_from_environment()
    with iam.running("CustomersReadFunction"), pytest.raises(ClientError) as refused:
        write(client, table)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "CustomersReadFunction is not authorized to perform: dynamodb:UpdateItem" in str(
        refused.value
    )


def test_a_function_granted_the_action_may_call_it_and_outside_handlers_anything_goes(api):
    client, table = client_and_table_from_environment()
    with iam.running("CustomersFunction"):
        write(client, table)
    write(client, table)  # no handler running: a test or a tool
    # two functions at once: what either may do is allowed
    with iam.running("CustomersReadFunction"), iam.running("CustomersFunction"):
        write(client, table)


def test_the_import_chunks_client_is_held_to_the_running_functions_policy_too(api):
    """The chunk function's paced client is a second client of the container:
    a function whose policy lacks an action cannot call it through that one."""
    client, table = import_client_and_table_from_environment()
    with iam.running("CustomersReadFunction"), pytest.raises(ClientError) as refused:
        write(client, table)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    with iam.running("ImportChunkFunction"):
        write(client, table)


@pytest.mark.parametrize("mode", ["sync", "queued"])
def test_the_actions_are_those_of_the_deployed_template(mode):
    template = deployed(load_template(), TrackingWrites=mode)
    for function in resources_of_type(template, "AWS::Serverless::Function"):
        granted = {
            action.removeprefix("dynamodb:")
            for policy in template["Resources"][function]["Properties"].get("Policies", [])
            for statement in policy["Statement"]
            for action in statement["Action"]
            if action.startswith("dynamodb:")
        }
        assert iam.dynamodb_actions(function, mode) == granted
    assert "UpdateItem" not in iam.dynamodb_actions("TrackingFunction", "queued")
    assert "UpdateItem" in iam.dynamodb_actions("TrackingFunction", "sync")


def test_a_function_of_the_other_mode_keeps_its_policy():
    """The worker exists only with TrackingWrites=queued; invoked against a
    synchronous stack (a sample, `sam local invoke`), it has its own actions."""
    queued = iam.dynamodb_actions("TrackingWorkerFunction", "queued")
    assert "UpdateItem" in queued
    assert iam.dynamodb_actions("TrackingWorkerFunction", "sync") == queued
