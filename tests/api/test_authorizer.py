"""The Basic-auth authorizer: statuses and messages end to end, and its
answers as API Gateway receives them (from the events/ sample)."""

import base64
import copy
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from propsync.access import Permission
from propsync_local.apigw import EVENTS_DIR, LambdaContext, authorizer_handler
from tests.conftest import PROJECT
from tests.support.api import basic
from tests.support.tracking_modes import accepted, assert_all_applied

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


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer abc", "Basic " + b64("unknown-key:secret"), "wrong secret"],
)
def test_the_tracking_routes_are_outside_the_authorizer_in_either_mode(api, authorization):
    """Their credential is the project token in the path (template.yaml: Auth
    NONE): a header the authorizer would refuse changes nothing, whether the
    route writes the command or queues it for the worker."""
    if authorization == "wrong secret":
        authorization = basic(api.key_id, "wrong")
    command = {"customer_ids": {"registered": "public"}, "properties": {"via": "sdk"}}
    response = api.request(
        "POST",
        f"/track/v2/projects/{PROJECT}/customers",
        json_body=command,
        authorization=authorization,
    )
    assert response.status == 200, response.body
    if not api.queued:
        assert response.json()["applied"] == ["via"]
    else:
        assert response.json() == accepted()
        assert_all_applied(api)
    read = api.get_customer("public", query={"id_type": "registered"})
    assert read.json() == {"properties": {"via": "sdk"}}


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
        "permissions": "customer_properties:get,customer_properties:set,customers:anonymize,"
        "customers:import",
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


def b64_bytes(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("authorization", "status", "message"),
    [
        ("Basic ÿÿÿÿ", 401, "Access key not provided"),  # non-ASCII, as latin-1 bytes arrive
        ("Basic dGVzdDp0ZXN0€", 401, "Access key not provided"),
        ("Basic \ud800", 401, "Access key not provided"),
        ("Bäsic " + b64("k:s"), 401, "Access key not provided"),
        ("Basic " + b64_bytes(b"\xff\xfe:\x80"), 401, "Access key not provided"),
        ("Basic " + b64("k" * 3000 + ":secret"), 401, "Access key not found"),
        ("Basic " + b64("ключ:секрет"), 401, "Access key not found"),
        ("Basic " + b64("\x00:\x00"), 401, "Access key not found"),
    ],
)
def test_odd_bytes_in_the_credential_are_refused_not_an_error(api, authorization, status, message):
    response = api.get_customer(CUSTOMER, authorization=authorization)
    assert (response.status, response.json()) == (status, {"success": False, "error": message})


AUTH = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
any_text = st.text(st.characters(blacklist_categories=()), max_size=40)  # surrogates too
credentials = st.one_of(
    any_text,
    any_text.map(lambda t: "Basic " + t),
    st.binary(max_size=60).map(lambda raw: "Basic " + b64_bytes(raw)),
    st.tuples(any_text, any_text).map(
        lambda pair: (
            "Basic " + b64_bytes(f"{pair[0]}:{pair[1]}".encode("utf-8", errors="surrogatepass"))
        )
    ),
    st.tuples(st.integers(1, 5000), any_text).map(
        lambda pair: (
            "Basic " + b64_bytes(("k" * pair[0] + ":" + pair[1]).encode("utf-8", "surrogatepass"))
        )
    ),
    st.binary(max_size=40).map(lambda raw: "Basic " + raw.decode("latin-1")),
    st.sampled_from(["Basic", "Basic ", "basic", " Basic  ", "Basic ====", "Basic Og=="]),
)


@AUTH
@given(authorization=credentials)
def test_any_authorization_header_is_a_401_or_403_never_an_error(api, authorization):
    """Through the authorizer handler and the route's handling of its answer."""
    response = api.get_customer(CUSTOMER, authorization=authorization)
    assert response.status in (401, 403), response.body
    assert response.json()["error"] in (
        "Access key not provided",
        "Access key not found",
        "invalid secret",
    )


@AUTH
@given(secret=st.text(min_size=1, max_size=40))
def test_any_wrong_secret_of_a_real_key_is_403_with_no_project(api, secret):
    assume(secret != api.secret)
    # each example is a first wrong secret: the 20th would lock the key (429,
    # tests/api/test_key_lockout.py)
    api.access.clear_key_failures(api.key_id)
    answer = authorizer_handler()(
        authorizer_event(basic(api.key_id, secret)), LambdaContext("AuthorizerFunction")
    )
    assert answer["context"] == {"auth_status": 403, "auth_error": "invalid secret"}


def test_a_key_id_no_lookup_could_find_cannot_be_created(api):
    from propsync.access import MAX_API_KEY_ID_CHARS, create_api_key  # noqa: PLC0415

    create_api_key(api.access, PROJECT, frozenset(), key_id="k" * MAX_API_KEY_ID_CHARS)
    with pytest.raises(ValueError, match=f"at most {MAX_API_KEY_ID_CHARS} characters"):
        create_api_key(api.access, PROJECT, frozenset(), key_id="k" * (MAX_API_KEY_ID_CHARS + 1))
