"""`propsync revoke-key` and `unlock-key` against a deployed stack flush the
authorizer cache of its API stage (FlushStageAuthorizersCache, found from the
stack's ApiUrl output), after the key's item changed; a failed flush is said
on stderr with exit 2, and the key stays revoked. moto has no
FlushStageAuthorizersCache, so API Gateway is botocore's Stubber; the stack
(CloudFormation) and the table are moto's and the engine's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from propsync import cli, cli_config
from propsync.access import LOCKOUT
from propsync.cli_config import ApiStage
from propsync_local.apigw import handle
from propsync_local.cfn_template import load_template
from tests.conftest import PROJECT
from tests.support.api import basic
from tests.support.stacks import create_stack

API_ID = "a1b2c3d4e5"
STAGE = "v1"
API_URL = f"https://{API_ID}.execute-api.eu-west-1.amazonaws.com/{STAGE}"
FLUSH = {"restApiId": API_ID, "stageName": STAGE}
CACHE_PATH = f"arn:aws:apigateway:eu-west-1::/restapis/{API_ID}/stages/{STAGE}/cache/authorizers"


@pytest.fixture
def tracking_writes() -> str:
    return "sync"


def run(capsys, *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    return code, lines, " ".join(captured.err.split())


@pytest.fixture
def stack(api, moto_endpoint, table_name, monkeypatch) -> str:
    """A propsync stack on moto: its outputs name the test's table (which the
    handlers find in PROPSYNC_TABLE_NAME, as in Lambda) and an API."""
    return create_stack(moto_endpoint, {"PropsyncTableName": table_name, "ApiUrl": API_URL})


class ApiGateway:
    """The apigateway client the command makes, stubbed; ``seen_at_flush``:
    what the key's items said (revoked, wrong secrets) as each flush was sent."""

    def __init__(self, api) -> None:
        self.client = boto3.client("apigateway", region_name="eu-west-1")
        self.stubber = Stubber(self.client)
        self.api = api
        self.seen_at_flush: list[tuple[bool, Any]] = []
        self.client.meta.events.register("provide-client-params.apigateway", self._record)

    def _record(self, **_kwargs: Any) -> None:
        record = self.api.access.get_api_key(self.api.key_id)
        self.seen_at_flush.append((record.revoked, self.api.access.key_failures(self.api.key_id)))


@pytest.fixture
def apigateway(api, monkeypatch) -> ApiGateway:
    gateway = ApiGateway(api)
    original = cli_config._client

    def client(session, service, endpoint, config=None):
        if service == "apigateway":
            return gateway.client
        return original(session, service, endpoint, config)

    monkeypatch.setattr(cli_config, "_client", client)
    gateway.stubber.activate()
    yield gateway
    gateway.stubber.deactivate()


def test_revoking_flushes_the_stages_authorizer_cache_after_the_revocation(
    api, stack, apigateway, capsys
):
    apigateway.stubber.add_response("flush_stage_authorizers_cache", {}, FLUSH)
    code, [answer], err = run(capsys, "--stack", stack, "revoke-key", api.key_id)
    assert (code, err) == (0, "")
    apigateway.stubber.assert_no_pending_responses()
    assert apigateway.seen_at_flush == [(True, None)]  # revoked before the flush
    assert answer["revoked"] is True
    assert (answer["authorizer_cache"], answer["api"], answer["stage"]) == (
        "flushed",
        API_ID,
        STAGE,
    )
    assert "the next request with this key runs the authorizer again" in answer["note"]
    # AWS answers 202 and documents no delay: the cache's lifetime stays the bound
    assert answer["refused_within_seconds"] == 300


@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDeniedException", 403), ("NotFoundException", 404), ("TooManyRequestsException", 429)],
)
def test_a_failed_flush_is_exit_2_and_the_key_stays_revoked(
    api, stack, apigateway, capsys, code, status
):
    apigateway.stubber.add_client_error(
        "flush_stage_authorizers_cache",
        service_error_code=code,
        service_message="no",
        http_status_code=status,
        expected_params=FLUSH,
    )
    exit_code, [answer], err = run(capsys, "--stack", stack, "revoke-key", api.key_id)
    assert exit_code == 2
    assert (answer["revoked"], answer["authorizer_cache"]) == (True, "not flushed")
    assert answer["refused_within_seconds"] == 300
    assert err.startswith(f"the authorizer cache of API {API_ID} stage {STAGE} was not flushed (")
    assert code in err
    assert "requests with this key are refused within 300 s" in err
    assert err.endswith(f"flushing needs apigateway:DELETE on {CACHE_PATH}")
    assert api.access.get_api_key(api.key_id).revoked
    response = handle("GET", "/api/key", headers={"Authorization": api.authorization})
    assert response.status == 401


def test_an_unreachable_api_gateway_is_exit_2_too(api, stack, apigateway, capsys, monkeypatch):
    def unreachable(**_kwargs):
        raise EndpointConnectionError(endpoint_url="https://apigateway.eu-west-1.amazonaws.com")

    monkeypatch.setattr(apigateway.client, "flush_stage_authorizers_cache", unreachable)
    code, [answer], err = run(capsys, "--stack", stack, "revoke-key", api.key_id)
    assert (code, answer["authorizer_cache"]) == (2, "not flushed")
    assert "cannot reach https://apigateway.eu-west-1.amazonaws.com" in err
    assert api.access.get_api_key(api.key_id).revoked


def test_no_such_key_flushes_nothing(api, stack, apigateway, capsys):
    code, out, err = run(capsys, "--stack", stack, "revoke-key", "no-such-key")
    assert (code, out, err) == (1, [], "no API key no-such-key")
    apigateway.stubber.assert_no_pending_responses()
    assert apigateway.seen_at_flush == []


def test_without_a_stack_the_delay_is_said(api, capsys):
    """The environment alone names no API: nothing is flushed, exit 0."""
    code, [answer], err = run(capsys, "revoke-key", api.key_id)
    assert (code, err) == (0, "")
    assert (answer["authorizer_cache"], answer["refused_within_seconds"]) == ("not flushed", 300)
    assert "--stack NAME flushes its cache" in answer["note"]


def test_make_run_caches_nothing_so_the_next_request_is_refused(
    api, capsys, monkeypatch, tmp_path: Path, moto_endpoint, dynamodb_endpoint, table_name
):
    (tmp_path / "credentials.json").write_text(
        json.dumps(
            {
                "aws_endpoint_url": moto_endpoint,
                "dynamodb_endpoint_url": dynamodb_endpoint,
                "table_name": table_name,
                "import_bucket": "unused",
                "region": "eu-west-1",
            }
        )
    )
    monkeypatch.setenv("PROPSYNC_LOCAL_DIR", str(tmp_path))
    code, [answer], _ = run(capsys, "--local", "revoke-key", api.key_id)
    assert code == 0
    assert (answer["authorizer_cache"], answer["refused_within_seconds"]) == ("none", 0)
    response = handle("GET", "/api/key", headers={"Authorization": api.authorization})
    assert response.status == 401


# ---------------------------------------------------------------- unlock-key


def lock(api) -> None:
    for _ in range(LOCKOUT.failures):
        handle("GET", "/api/key", headers={"Authorization": basic(api.key_id, "wrong")})


def test_list_keys_shows_a_lock_and_unlock_key_lifts_it_then_flushes(
    api, stack, apigateway, capsys
):
    lock(api)
    _, [listed], _ = run(capsys, "--stack", stack, "list-keys", "--project", PROJECT)
    failures = api.access.key_failures(api.key_id)
    assert failures is not None
    assert listed["locked_until"] == failures.locked_until
    apigateway.stubber.add_response("flush_stage_authorizers_cache", {}, FLUSH)
    code, [answer], err = run(capsys, "--stack", stack, "unlock-key", api.key_id)
    assert (code, err) == (0, "")
    assert (answer["was_locked"], answer["wrong_secrets_cleared"]) == (True, LOCKOUT.failures)
    assert answer["authorizer_cache"] == "flushed"
    assert apigateway.seen_at_flush == [(False, None)]  # cleared before the flush
    response = handle("GET", "/api/key", headers={"Authorization": api.authorization})
    assert response.status == 200
    _, [listed], _ = run(capsys, "--stack", stack, "list-keys", "--project", PROJECT)
    assert listed["locked_until"] is None


def test_unlocking_a_key_that_is_not_locked_says_so(api, capsys):
    code, [answer], _ = run(capsys, "unlock-key", api.key_id)
    assert code == 0
    assert (answer["was_locked"], answer["wrong_secrets_cleared"]) == (False, 0)
    code, _, err = run(capsys, "unlock-key", "no-such-key")
    assert (code, err) == (1, "no API key no-such-key")


def test_a_revoked_key_is_not_unlocked_nor_said_to_be_authorized_again(
    api, stack, apigateway, capsys
):
    lock(api)
    apigateway.stubber.add_response("flush_stage_authorizers_cache", {}, FLUSH)
    assert run(capsys, "--stack", stack, "revoke-key", api.key_id)[0] == 0
    code, out, err = run(capsys, "--stack", stack, "unlock-key", api.key_id)
    assert (code, out) == (1, [])
    assert err == (
        f"API key {api.key_id} is revoked: it stays refused, locked or not; "
        "create-key makes a new one"
    )
    apigateway.stubber.assert_no_pending_responses()
    assert len(apigateway.seen_at_flush) == 1  # revoke-key's flush only
    response = handle("GET", "/api/key", headers={"Authorization": api.authorization})
    assert response.status == 401


def test_a_failed_flush_after_unlocking_is_exit_2_and_the_lock_stays_lifted(
    api, stack, apigateway, capsys
):
    lock(api)
    apigateway.stubber.add_client_error(
        "flush_stage_authorizers_cache", service_error_code="AccessDeniedException"
    )
    code, [answer], err = run(capsys, "--stack", stack, "unlock-key", api.key_id)
    assert (code, answer["authorizer_cache"]) == (2, "not flushed")
    assert answer["authorized_within_seconds"] == 300
    assert "requests with this key are authorized again within 300 s" in err
    assert api.access.key_failures(api.key_id) is None


# ---------------------------------------------------------------- the stack's API


def test_the_templates_api_url_names_the_api_and_stage_to_flush():
    """cli_config reads the API from the ApiUrl output: as the template
    writes it, it parses back to the API's id and its stage."""
    template = load_template()
    url = template["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]
    stage = template["Resources"]["PropsyncApi"]["Properties"]["StageName"]
    filled = (
        url.replace("${PropsyncApi}", API_ID)
        .replace("${AWS::Region}", "eu-west-1")
        .replace("${AWS::URLSuffix}", "amazonaws.com")
    )
    assert ApiStage.from_url(filled) == ApiStage(API_ID, stage)


@pytest.mark.parametrize(
    "url",
    ["", "https://api.example.com/v1", f"https://{API_ID}.execute-api.x.com/", "not a url"],
)
def test_an_api_url_of_no_rest_api_names_none(url):
    assert ApiStage.from_url(url) is None
