"""The Basic-auth authorizer: statuses and messages end to end, and its
answers as API Gateway receives them (from the events/ sample)."""

import base64
import copy
import json

import pytest

from propsync.access import Permission
from propsync_local.apigw import EVENTS_DIR, LambdaContext, authorizer_handler
from tests.conftest import PROJECT
from tests.support.api import basic

CUSTOMER = "01JDQ6Z0Q9X6V1N0K3W9M5T2RB"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "status", "message"),
    [
        (None, 401, "Access key not provided"),
        ("", 401, "Access key not provided"),
        ("Bearer abc", 401, "Access key not provided"),
        ("Basic", 401, "Access key not provided"),
        ("Basic !!!not-base64!!!", 401, "Access key not provided"),
        ("Basic " + b64("no-colon"), 401, "Access key not provided"),
        ("Basic " + b64(":secret"), 401, "Access key not provided"),
        ("Basic " + b64("unknown-key:secret"), 401, "Access key not found"),
    ],
)
def test_refusals_of_the_credential(api, authorization, status, message):
    response = api.get_customer(CUSTOMER, authorization=authorization)
    assert response.status == status
    assert response.json() == {"success": False, "error": message}


def test_a_wrong_secret_is_403_invalid_secret(api):
    response = api.get_customer(CUSTOMER, authorization=basic(api.key_id, "wrong"))
    assert response.status == 403
    assert response.json() == {"success": False, "error": "invalid secret"}


def test_a_known_key_with_an_empty_secret_is_not_provided(api):
    """Not 403 "invalid secret": an empty secret is no credential at all."""
    response = api.get_customer(CUSTOMER, authorization="Basic " + b64(f"{api.key_id}:"))
    assert response.status == 401
    assert response.json() == {"success": False, "error": "Access key not provided"}


def test_a_revoked_key_is_not_found(api):
    header = api.new_key(PROJECT, frozenset(p.value for p in Permission))
    key_id = base64.b64decode(header.split()[1]).decode().split(":")[0]
    assert api.get_customer(CUSTOMER, authorization=header).status == 404  # accepted
    assert api.access.revoke_api_key(key_id)
    response = api.get_customer(CUSTOMER, authorization=header)
    assert response.status == 401
    assert response.json()["error"] == "Access key not found"


def test_secrets_are_stored_only_as_salted_hashes(api, dynamodb_client, table_name):
    items = dynamodb_client.scan(TableName=table_name)["Items"]
    dumped = json.dumps(items)
    assert api.secret not in dumped
    key_item = next(i for i in items if i["pk"]["S"] == f"apikey#{api.key_id}")
    assert len(key_item["salt"]["S"]) == 32
    assert len(key_item["secret_hash"]["S"]) == 64


def authorizer_event(authorization: str) -> dict:
    event = json.loads((EVENTS_DIR / "AuthorizerFunction.Request.json").read_text())
    event = copy.deepcopy(event)
    event["headers"]["Authorization"] = authorization
    return event


def test_an_accepted_key_is_allowed_on_the_whole_api_with_its_project_in_context(api):
    event = authorizer_event(api.authorization)
    answer = authorizer_handler()(event, LambdaContext("AuthorizerFunction"))
    assert answer["principalId"] == api.key_id
    statement = answer["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/v1/*/*"
    assert answer["context"] == {
        "key_id": api.key_id,
        "project": PROJECT,
        "permissions": "customer_properties:get,customer_properties:set",
    }


def test_a_malformed_credential_is_api_gateways_unauthorized(api):
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer_handler()(authorizer_event("Bearer x"), LambdaContext("AuthorizerFunction"))


def test_a_refused_key_carries_no_project_in_its_answer(api):
    answer = authorizer_handler()(
        authorizer_event(basic(api.key_id, "wrong")), LambdaContext("AuthorizerFunction")
    )
    assert answer["context"] == {"auth_status": 403, "auth_error": "invalid secret"}
    assert "project" not in answer["context"]
