"""`make run` as a newcomer uses it: start the stack as a subprocess, then run
the README's curl walk-through over real HTTP and check every answer."""

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from exponea_python_sdk import Exponea
from exponea_python_sdk.exceptions import APIException

from propsync.tracking_queue import (
    DEAD_LETTER_QUEUE_URL_ENV,
    MODES,
    QUEUE_URL_ENV,
    QUEUED,
    SYNC,
    TRACKING_WRITES_ENV,
)
from propsync_local.apigw import HttpResponse
from propsync_local.cfn_template import REPO_ROOT
from propsync_local.processes import ServerError, listening_socket, serving_on
from tests.support.openapi_check import check_answer
from tests.support.servers import dynamodb_client_for, free_port, single_threaded_moto_server


def readme_walkthrough(heading: str = "## Try it") -> tuple[dict[str, str], list[str]]:
    """The variables and curl commands of the first sh block under a README
    heading (the "Try it" walk-through by default)."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split(heading, 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README has no sh block under 'Try it'"
    variables, commands = {}, []
    for line in block.group(1).splitlines():
        if line.startswith("curl "):
            commands.append(line)
        elif "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            variables[name] = value
    return variables, commands


@contextmanager
def running_stack(local_dir: Path, **extra_env: str) -> Iterator[dict]:
    """`make run` in its own process group on free ports; stopped on exit."""
    api_port, aws_port = free_port(), free_port()
    env = {
        **os.environ,
        "PROPSYNC_API_PORT": str(api_port),
        "PROPSYNC_AWS_PORT": str(aws_port),
        "PROPSYNC_LOCAL_DIR": str(local_dir),
    }
    for variable in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "PROPSYNC_TABLE_NAME",
        TRACKING_WRITES_ENV,  # make run's default (sync) unless a test asks
    ):
        env.pop(variable, None)
    for variable in [name for name in env if name.startswith("POWERTOOLS_")]:
        env.pop(variable)  # a developer's shell has none (tests/conftest.py sets them)
    env.update(extra_env)
    log_path = local_dir / "make-run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the whole group (make, stack, moto) can be stopped
        )
    try:
        _wait_until_up(f"http://127.0.0.1:{api_port}", process, log_path)
        yield {"api": f"http://127.0.0.1:{api_port}", "dir": local_dir, "log": log_path}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_stack_to_exit(local_dir: Path, **extra_env: str) -> tuple[int, str]:
    """`make run` that is expected to stop by itself: its exit code and output
    (stdout and stderr). One that is still running after the time a fresh
    machine needs to build the venv is stopped, and the test fails."""
    env = {**os.environ, "PROPSYNC_LOCAL_DIR": str(local_dir), **extra_env}
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"make run did not stop by itself:\n{output[-3000:]}") from None
    return process.returncode, output


def own_lines(output: str) -> list[str]:
    """The stack's output without make's (its echo of the recipe and its error line)."""
    return [
        line
        for line in output.splitlines()
        if line and not line.startswith(("make", "PYTHONPATH="))
    ]


PORT_VARIABLES = ("PROPSYNC_AWS_PORT", "PROPSYNC_API_PORT")


@pytest.mark.parametrize("variable", PORT_VARIABLES)
@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"])
def test_a_port_in_use_is_refused_before_anything_is_written(variable, address, tmp_path):
    """Another program listening on one of the stack's ports (on 127.0.0.1,
    or on every address as a published container port does): the stack says
    which variable to change, in one line, exits non-zero, writes no
    credentials, and never connects to that program."""
    with socket.create_server((address, 0)) as foreign:
        foreign.setblocking(False)
        port = foreign.getsockname()[1]
        ports = {name: str(free_port()) for name in PORT_VARIABLES}
        code, output = run_stack_to_exit(tmp_path, **{**ports, variable: str(port)})
        with pytest.raises(BlockingIOError):
            foreign.accept()  # nothing ever connected to it

    assert code != 0, output
    assert "Traceback" not in output
    [message] = own_lines(output)
    assert f"127.0.0.1:{port}" in message
    assert "in use" in message
    assert f"set {variable} to a free port" in message
    assert not (tmp_path / "credentials.json").exists()


@pytest.mark.parametrize("variable", PORT_VARIABLES)
@pytest.mark.parametrize("value", ["http", "-1", "65536", "3000.5"])
def test_a_port_that_is_not_a_port_number_is_refused(variable, value, tmp_path):
    ports = {name: str(free_port()) for name in PORT_VARIABLES}
    code, output = run_stack_to_exit(tmp_path, **{**ports, variable: value})

    assert code != 0, output
    assert "Traceback" not in output
    [message] = own_lines(output)
    assert f"{variable}={value!r} is not a port number" in message
    assert not (tmp_path / "credentials.json").exists()


def test_a_server_that_exits_before_serving_is_reported_and_its_port_closed():
    listening = listening_socket()
    port = listening.getsockname()[1]
    command = [sys.executable, "-c", "import sys; sys.exit(3)"]

    with (
        pytest.raises(ServerError, match="exited with 3 before serving"),
        serving_on("quitter", command, listening),
    ):
        pass

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("local")) as running:
        yield running


def _wait_until_up(api: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 180  # a fresh machine builds the venv first
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{api}/nothing-here", timeout=2):
                pass
        except urllib.error.HTTPError:
            return  # the front answered (404): it is up
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"make run did not come up:\n{log_path.read_text()[-3000:]}")


def run_curl(command: str, variables: dict[str, str]) -> dict:
    result = subprocess.run(
        ["bash", "-c", command],
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


def test_the_readme_walkthrough(stack):
    variables, commands = readme_walkthrough()
    assert len(commands) == 4
    variables["API"] = stack["api"]  # the README's port, moved to a free one

    tracked = run_curl(commands[0], variables)
    assert tracked["success"] is True
    first = tracked["results"][0]
    assert first["success"] is True
    assert first["applied"] == ["first_name", "email"]

    read = run_curl(commands[1], variables)
    assert read == {
        "properties": {
            "first_name": {"value": "Marian", "last_update": 1570001049},
            "email": {"value": "marian@new.example", "last_update": 1570001049},
        }
    }

    older = run_curl(commands[2], variables)["results"][0]
    assert older == {
        "success": True,
        "customer_id": first["customer_id"],
        "applied": ["loyalty_tier"],
        "stale": ["email"],
    }

    again = run_curl(commands[3], variables)
    assert again["properties"]["email"] == {
        "value": "marian@new.example",
        "last_update": 1570001049,
    }
    assert again["properties"]["loyalty_tier"] == {"value": "gold", "last_update": 1570000000}


def test_the_readme_login_merges_the_anonymous_profile(stack):
    variables, _ = readme_walkthrough()
    _, commands = readme_walkthrough("### A login merges")
    assert len(commands) == 4
    variables["API"] = stack["api"]

    account, anonymous, login = (run_curl(c, variables)["results"][0] for c in commands[:3])
    read = run_curl(commands[3], variables)

    assert anonymous["success"] is True
    assert login["customer_id"] == account["customer_id"]
    assert login["merged"] == [anonymous["customer_id"]]
    assert read == {
        "properties": {"email": "anna@new.example", "last_page": "/shoes", "logged_in": True}
    }


def test_credentials_are_written_for_other_tools(stack):
    path = stack["dir"] / "credentials.json"
    assert path.stat().st_mode & 0o777 == 0o600  # it holds the key's secret
    credentials = json.loads(path.read_text())
    assert credentials["project_token"] == "00000000-0000-0000-0000-000000000000"
    assert credentials["api_key_id"] == "demo-key"
    assert credentials["api_secret"] == "demo-secret-change-me"
    assert credentials["api_url"] == stack["api"]
    assert credentials["aws_endpoint_url"].startswith("http://127.0.0.1:")
    assert "import_bucket" in credentials
    assert credentials["tracking_writes"] == SYNC  # the default mode


def test_make_run_says_its_data_does_not_survive_a_restart(stack):
    output = stack["log"].read_text()
    assert "data is kept in memory only: stopping make run loses it" in output
    assert "the propsync command finds the stack there" in output


def test_the_propsync_command_finds_the_running_stack(stack):
    done = admin(stack, "config")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    credentials = json.loads((stack["dir"] / "credentials.json").read_text())
    assert shown["source"] == f"the local stack ({stack['dir'] / 'credentials.json'})"
    assert (shown["table"], shown["import_bucket"], shown["region"]) == (
        credentials["table_name"],
        credentials["import_bucket"],
        credentials["region"],
    )
    done = admin(stack, "list-keys", "--project", credentials["project_token"])
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["api_key_id"] for line in done.stdout.splitlines()] == ["demo-key"]


def test_private_routes_need_the_key_over_http(stack):
    request = urllib.request.Request(f"{stack['api']}/api/customers/01JDQ6Z0Q9X6V1N0K3W9M5T2RB")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    assert json.loads(refused.value.read()) == {
        "success": False,
        "error": "Access key not provided",
    }


def original_sdk(stack) -> Exponea:
    """The original product's SDK, pointed at the running stack with its demo key."""
    credentials = json.loads((stack["dir"] / "credentials.json").read_text())
    return Exponea(
        credentials["project_token"],
        username=credentials["api_key_id"],
        password=credentials["api_secret"],
        url=stack["api"],
    )


def test_the_original_sdk_reads_attributes_and_consents(stack):
    """The original product's Python SDK (exponea-python-sdk 0.2.0), as a
    client installs it, against `make run` over HTTP: attribute types propsync
    does not have come back as None (the SDK logs a warning) without an
    exception, and the rest as stored."""
    exponea = original_sdk(stack)
    ids = {"registered": "sdk-user"}
    tracked = exponea.tracking.update_customer_properties(
        {**ids, "cookie": "sdk-cookie"}, {"email": "sdk@example.com", "tier": "gold"}
    )
    assert tracked is True

    attributes = exponea.customer.get_customer_attributes(
        {"cookie": "sdk-cookie"},
        properties=["email", "tier", "never_set"],
        segmentations=["5f3a0000"],
        ids=["registered", "cookie"],
        expressions=["e-1"],
        aggregations=["a-1"],
        predictions=["p-1"],
    )
    consents = exponea.customer.get_customer_consents(ids, ["newsletter", "sms"])

    assert attributes == {
        "properties": {"email": "sdk@example.com", "tier": "gold", "never_set": None},
        "segmentations": {"5f3a0000": None},
        "ids": {"registered": "sdk-user", "cookie": ["sdk-cookie"]},
        "expressions": {"e-1": None},
        "aggregations": {"a-1": None},
        "predictions": {"p-1": None},
    }
    assert consents == {"newsletter": None, "sms": None}
    assert exponea.customer.get_customer(ids)["properties"] == {
        "email": "sdk@example.com",
        "tier": "gold",
    }
    # a refusal reaches the SDK's caller as its exception, with propsync's words
    with pytest.raises(APIException, match="Customer does not exist"):
        exponea.customer.get_customer_attributes({"registered": "nobody"}, properties=["email"])


def test_the_original_sdk_erases_a_customer_that_a_late_batch_cannot_bring_back(stack):
    """The SDK's anonymize_customer against `make run`; then a batch from a
    device that was offline since before the erasure (its update_timestamp
    older) is answered success and writes nothing; a newer update starts a
    new customer."""
    exponea = original_sdk(stack)
    ids = {"registered": "sdk-erased", "cookie": "sdk-erased-phone"}
    offline_since = time.time() - 3600
    assert exponea.tracking.update_customer_properties(ids, {"email": "gone@example.com"}) is True

    assert exponea.customer.anonymize_customer({"registered": "sdk-erased"}) is True

    with pytest.raises(APIException, match="Customer does not exist"):
        exponea.customer.get_customer(ids)
    late = exponea.tracking.update_customer_properties(
        {"cookie": "sdk-erased-phone"}, {"email": "gone@example.com"}, batch=True
    )
    late["data"]["update_timestamp"] = offline_since
    assert exponea.tracking.batch_commands([late]) == [True]
    with pytest.raises(APIException, match="Customer does not exist"):
        exponea.customer.get_customer({"cookie": "sdk-erased-phone"})
    assert exponea.customer.anonymize_customer({"registered": "sdk-erased"}) is True  # again
    assert exponea.tracking.update_customer_properties(
        {"registered": "sdk-erased"}, {"tier": "new"}
    )
    assert exponea.customer.get_customer({"registered": "sdk-erased"})["properties"] == {
        "tier": "new"
    }


def test_another_dynamodb_endpoint_is_used_and_its_table_created(tmp_path):
    """AWS_ENDPOINT_URL_DYNAMODB points the stack at another engine (dynalite,
    DynamoDB Local, a region); here a second moto server plays that engine."""
    with single_threaded_moto_server() as engine:
        with running_stack(tmp_path, AWS_ENDPOINT_URL_DYNAMODB=engine) as running:
            variables, commands = readme_walkthrough()
            variables["API"] = running["api"]
            assert run_curl(commands[0], variables)["results"][0]["success"] is True
        other = dynamodb_client_for(engine)
        items = other.scan(TableName="propsync-local")["Items"]
        # the walkthrough's customer (the sample customer has a first_name too)
        assert any(
            item.get("i:registered", {}).get("SS") == ["mgalik"] and "p:first_name" in item
            for item in items
        )
    credentials = json.loads((tmp_path / "credentials.json").read_text())
    assert credentials["dynamodb_endpoint_url"] == engine
    output = (tmp_path / "make-run.log").read_text()
    assert f"the table is in {engine} and keeps what that engine keeps" in output
    assert "in memory only: stopping make run loses their files and reports" in output


def admin_import(stack: dict, *args: str) -> subprocess.CompletedProcess:
    return admin(stack, "import", *args)


def admin(stack: dict, *args: str) -> subprocess.CompletedProcess:
    """The propsync command as a developer runs it beside `make run`: nothing
    set but where the stack's credentials.json is (PROPSYNC_LOCAL_DIR, since
    these stacks write theirs to a temporary folder)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PROPSYNC_", "AWS_"))
    }
    env |= {
        "PYTHONPATH": str(REPO_ROOT / "layers" / "propsync"),
        "PROPSYNC_LOCAL_DIR": str(stack["dir"]),
    }
    # -m rather than .venv/bin/propsync: the shared virtualenv's script may
    # run another checkout's sources; this runs this one's, as pytest does
    return subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "python"), "-m", "propsync.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


DEMO_KEY_AUTHORIZATION = "Basic ZGVtby1rZXk6ZGVtby1zZWNyZXQtY2hhbmdlLW1l"  # demo-key:its secret


def http_json(method: str, url: str, body: dict | None = None, auth: bool = False) -> dict:
    request = urllib.request.Request(url, method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", DEMO_KEY_AUTHORIZATION)
    with urllib.request.urlopen(request, timeout=30) as response:
        return documented(method, url, response.status, response.read())


def http_answer(method: str, url: str, body: dict | None, authorization: str | None = None):
    """(status, JSON answer), whatever the status."""
    request = urllib.request.Request(url, method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, documented(method, url, response.status, response.read())
    except urllib.error.HTTPError as error:
        return error.code, documented(method, url, error.code, error.read())


def documented(method: str, url: str, status: int, body: bytes) -> Any:
    """The answer's JSON, once it is checked against docs/openapi.json: over
    real HTTP too, every answer is one the document describes."""
    text = body.decode("utf-8")
    path = urllib.parse.urlsplit(url).path
    check_answer(method, path, HttpResponse(status, {"Content-Type": "application/json"}, text))
    return json.loads(text)


def test_the_merging_flows_over_http(stack):
    """The flows of docs/API.md "Merging" against `make run`, in a project of
    their own with a second hard id type set by the propsync command."""
    created = admin(stack, "create-project", "--name", "merging")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["project_token"]
    for args in (("set-id-type", "--project", token, "--id-type", "crm_id", "--hard"),):
        done = admin(stack, *args)
        assert done.returncode == 0, done.stderr
    key = admin(stack, "create-key", "--project", token, "--permission", "customer_properties:get")
    assert key.returncode == 0, key.stderr
    secrets = json.loads(key.stdout)
    basic = (
        "Basic "
        + base64.b64encode(f"{secrets['api_key_id']}:{secrets['api_secret']}".encode()).decode()
    )
    track = f"{stack['api']}/track/v2/projects/{token}"

    def command(ids, properties, timestamp):
        return {
            "name": "customers",
            "data": {"customer_ids": ids, "properties": properties, "update_timestamp": timestamp},
        }

    def batch(*commands):
        status, answer = http_answer("POST", f"{track}/batch", {"commands": list(commands)})
        assert status == 200, answer
        return answer["results"]

    def export(ids):
        url = f"{stack['api']}/data/v2/projects/{token}/customers/export-one"
        return http_answer("POST", url, {"customer_ids": ids}, basic)

    # an anonymous command and the login after it, in one batch
    [account] = batch(command({"registered": "anna"}, {"tier": "gold"}, 100))
    anonymous, login = batch(
        command({"cookie": "c1"}, {"page": "/shoes"}, 200),
        command({"registered": "anna", "cookie": "c1"}, {"in": True}, 300),
    )
    assert login["merged"] == [anonymous["customer_id"]]
    # a late update by the merged-away cookie lands on the account
    [late] = batch(command({"cookie": "c1"}, {"tier": "silver", "coupon": "X"}, 50))
    assert late["customer_id"] == account["customer_id"]
    assert (late["applied"], late["stale"]) == (["coupon"], ["tier"])
    # export-one by either id lists both
    status, exported = export({"cookie": "c1"})
    assert status == 200, exported
    assert exported["ids"] == {"cookie": ["c1"], "registered": "anna"}
    assert exported["properties"] == {"tier": "gold", "page": "/shoes", "in": True, "coupon": "X"}
    # a cookie of another account moves to the one that logs in on it
    batch(command({"registered": "bob", "cookie": "shared"}, {"name": "Bob"}, 100))
    [moved] = batch(command({"registered": "anna", "cookie": "shared"}, {}, 400))
    assert moved["moved_ids"] == {"cookie": "shared"}
    # customers with different values of a hard id type never merge
    batch(command({"registered": "carl", "crm_id": "k1"}, {"name": "Carl"}, 100))
    status, refused = http_answer(
        "POST",
        f"{track}/customers",
        {"customer_ids": {"registered": "anna", "crm_id": "k1"}, "properties": {"x": 1}},
    )
    assert status == 409, refused
    assert "never merged" in refused["errors"][0]


def test_the_product_documents_example_end_to_end(stack, tmp_path):
    """A snapshot taken at 8:00 is imported at 10:00 while real-time tracking
    changed one of its properties at 9:00: that property keeps the 9:00 value
    and last_update, every other property holds the file's value."""
    credentials = json.loads((stack["dir"] / "credentials.json").read_text())
    token = credentials["project_token"]
    ten = int(time.time())
    eight, nine = ten - 2 * 3600, ten - 3600
    http_json(
        "POST",
        f"{stack['api']}/track/v2/projects/{token}/batch",
        {
            "commands": [
                {
                    "name": "customers",
                    "data": {
                        "customer_ids": {"registered": "snapshot-1"},
                        "properties": {"email": "fresh@example.com"},
                        "update_timestamp": nine,
                    },
                }
            ]
        },
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps(
            {
                "properties": [
                    {"from_column": "email", "to_property": "email", "type": "string"},
                    {"from_column": "tier", "to_property": "loyalty_tier", "type": "string"},
                    {"from_column": "born", "to_property": "birthday", "type": "date"},
                ],
                "ids": [{"from_column": "id", "to_id": "registered"}],
                "update_timestamp": {"from_column": "snapshot_time"},
                "constant_columns": [{"name": "snapshot_time", "value": str(eight)}],
                "timezone": "UTC",
            }
        )
    )
    data = tmp_path / "snapshot 8am.csv"
    data.write_text("id,email,tier,born\nsnapshot-1,stale@example.com,gold,1990-05-17\n")

    done = admin_import(
        stack, "--project", token, "--name", "crm", "--mapping", str(mapping), str(data)
    )

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "succeeded"
    assert summary["properties_applied"] == 2
    assert summary["properties_ignored_as_stale"] == 1
    read = http_json(
        "GET",
        f"{stack['api']}/api/customers/snapshot-1?id_type=registered&include_timestamps=1",
        auth=True,
    )
    assert read["properties"] == {
        "email": {"value": "fresh@example.com", "last_update": nine},
        "loyalty_tier": {"value": "gold", "last_update": eight},
        "birthday": {"value": 642902400, "last_update": eight},
    }


IMPORT_WAIT_SECONDS = 60  # the trigger polls every 0.5 s; a few rows take well under a second


def test_an_import_started_through_the_api_is_uploaded_with_its_form_and_followed(stack):
    """The import routes over make run's HTTP front, and the form's POST to
    its S3, as a script (or the console) runs them: start, upload, follow."""
    import requests  # noqa: PLC0415

    api = stack["api"]
    mapping = {
        "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
        "ids": [{"from_column": "id", "to_id": "registered"}],
    }
    body = "id,n\napi-row-1,1\napi-row-2,x\n"
    status, preview = http_answer(
        "POST",
        f"{api}/api/imports/preview",
        {"mapping": mapping, "sample": body},
        DEMO_KEY_AUTHORIZATION,
    )
    assert status == 200, preview
    assert [row["error"] for row in preview["rows"]] == [None, "'x' is not a number (column 'n')"]
    status, started = http_answer(
        "POST",
        f"{api}/api/imports",
        {"import_name": "api", "file_name": "rows.csv", "mapping": mapping, "header": ["id", "n"]},
        DEMO_KEY_AUTHORIZATION,
    )
    assert status == 201, started
    form = started["upload"]
    assert form["url"].startswith("http://127.0.0.1:")  # the local S3, path-style
    wrong = requests.post(
        form["url"],
        data={**form["fields"], "key": started["file_key"] + ".other.csv"},
        files={"file": ("rows.csv", body.encode())},
        timeout=30,
    )
    assert wrong.status_code == 403, wrong.text
    uploaded = requests.post(
        form["url"], data=form["fields"], files={"file": ("rows.csv", body.encode())}, timeout=30
    )
    assert uploaded.status_code == 204, uploaded.text
    query = urllib.parse.quote(started["file_key"], safe="")
    deadline = time.monotonic() + IMPORT_WAIT_SECONDS
    while True:
        listed = http_json("GET", f"{api}/api/imports?file_key={query}", auth=True)
        if listed["executions"] and listed["executions"][0]["status"] != "running":
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.2)
    [execution] = listed["executions"]
    assert execution["status"] == "partially_succeeded"
    read = http_json("GET", f"{api}/api/imports/{execution['execution_id']}", auth=True)
    assert read["report"]["rows_written"] == 1
    assert read["rejected_rows"] == [
        {"line": 3, "reason": "'x' is not a number (column 'n')", "row": "api-row-2,x"}
    ]


def test_a_file_put_into_the_bucket_is_imported_and_reported(stack, tmp_path):
    credentials = json.loads((stack["dir"] / "credentials.json").read_text())
    token = credentials["project_token"]
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps(
            {
                "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
                "ids": [{"from_column": "id", "to_id": "registered"}],
            }
        )
    )
    data = tmp_path / "numbers.csv"
    data.write_text("id,n\n" + "".join(f"row-{i},{i}\n" for i in range(50)) + "bad,x\n")

    done = admin_import(
        stack, "--project", token, "--name", "nums", "--mapping", str(mapping), str(data)
    )

    assert done.returncode == 2, done.stderr  # partially succeeded
    summary = json.loads(done.stdout)
    assert (summary["rows_read"], summary["rows_written"], summary["rows_rejected"]) == (51, 50, 1)
    assert summary["errors"] == [{"line": 52, "reason": "'x' is not a number (column 'n')"}]
    assert summary["errors_shown"] == 1
    assert summary["report"].endswith(f"/reports/{token}/nums/numbers.csv.json")
    assert "100.0%" in done.stderr  # the progress bar reached the end


SAM_ENV_VARS = REPO_ROOT / "events" / "sam-local-env.json"
# make run's default AWS endpoint as a `sam local invoke` container sees it
# (events/sam-local-env.json); these tests' stacks run on free ports instead.
LOCAL_AWS_URL = "http://host.docker.internal:4566"

# `sam local invoke` without Docker: the handler in a process of its own, with
# only the environment SAM gives a function (the variables template.yaml
# declares, valued from --env-vars) plus AWS credentials and region.
_INVOKE = """
import json, sys
from propsync_local.apigw import EVENTS_DIR, LambdaContext, load_handler
function, sample = sys.argv[1:]
event = json.loads((EVENTS_DIR / f"{function}.{sample}.json").read_text())
print(json.dumps(load_handler(function)(event, LambdaContext(function))))
"""


def sam_local_invoke(function: str, sample: str, aws_url: str) -> dict:
    variables = json.loads(SAM_ENV_VARS.read_text())
    declared = {**variables["Parameters"], **variables.get(function, {})}
    env = {name: value.replace(LOCAL_AWS_URL, aws_url) for name, value in declared.items()}
    env |= {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "PYTHONPATH": f"{REPO_ROOT / 'layers' / 'propsync'}:{REPO_ROOT / 'local'}",
    }
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "python"), "-c", _INVOKE, function, sample],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_sam_env_vars_file_names_the_local_stacks_resources(stack):
    credentials = json.loads((stack["dir"] / "credentials.json").read_text())
    aws_url = credentials["aws_endpoint_url"]
    variables = json.loads(SAM_ENV_VARS.read_text())
    for function in ("TrackingFunction", "ImportFunction", "ImportChunkFunction"):
        env = {**variables["Parameters"], **variables.get(function, {})}
        assert env["AWS_ENDPOINT_URL"].replace(LOCAL_AWS_URL, aws_url) == aws_url
        assert env["PROPSYNC_TABLE_NAME"] == credentials["table_name"]
    for function in ("ImportFunction", "ImportChunkFunction"):
        env = variables[function]
        assert env["PROPSYNC_IMPORT_BUCKET"] == credentials["import_bucket"]
        queue = env["PROPSYNC_CHUNK_QUEUE_URL"].replace(LOCAL_AWS_URL, aws_url)
        assert queue == credentials["chunk_queue_url"]
    assert variables["ImportsApiFunction"]["PROPSYNC_IMPORT_BUCKET"] == credentials["import_bucket"]
    # the tracking queues: the stack makes them in either mode
    sqs = boto3.client(
        "sqs",
        endpoint_url=aws_url,
        region_name=credentials["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    queues = set(sqs.list_queues()["QueueUrls"])
    tracking_queue_urls = {
        variables[function][variable].replace(LOCAL_AWS_URL, aws_url)
        for function, variable in (
            ("TrackingFunction", QUEUE_URL_ENV),
            ("TrackingWorkerFunction", QUEUE_URL_ENV),
            ("TrackingWorkerFunction", DEAD_LETTER_QUEUE_URL_ENV),
        )
    }
    assert len(tracking_queue_urls) == 2  # the queue (routes and worker) and its DLQ
    assert tracking_queue_urls <= queues


def test_every_api_sample_works_against_a_fresh_local_stack(tmp_path):
    """Each sample of events/ for an API route, as `sam local invoke -e` sends
    it with events/sam-local-env.json, answers 2xx against a fresh `make run`:
    the customers samples name the customer the stack creates for them."""
    with running_stack(tmp_path) as running:
        aws_url = json.loads((running["dir"] / "credentials.json").read_text())["aws_endpoint_url"]

        def invoke(function: str, sample: str) -> tuple[int, dict]:
            answer = sam_local_invoke(function, sample, aws_url)
            return answer["statusCode"], json.loads(answer["body"])

        status, read = invoke("CustomersReadFunction", "GetCustomer")
        assert status == 200, read
        assert set(read["properties"]) >= {"first_name", "email"}
        assert all(p["last_update"] > 0 for p in read["properties"].values())

        status, edited = invoke("CustomersFunction", "PatchCustomer")
        assert status == 200, edited
        assert edited["applied"] == ["loyalty_tier"]

        status, exported = invoke("CustomersReadFunction", "ExportOne")
        assert status == 200, exported
        assert exported["properties"]["loyalty_tier"] == "gold"

        status, attributes = invoke("CustomersReadFunction", "Attributes")
        assert status == 200, attributes
        assert [result["success"] for result in attributes["results"]] == [True, True, True, False]

        status, erased = invoke("CustomersEraseFunction", "Anonymize")
        assert status == 200, erased

        authorizer = sam_local_invoke("AuthorizerFunction", "Request", aws_url)
        assert authorizer["policyDocument"]["Statement"][0]["Effect"] == "Allow"

        for sample in ("Batch", "Customers", "SystemTime"):
            status, tracked = invoke("TrackingFunction", sample)
            assert status == 200, tracked

        status, key = invoke("CustomersReadFunction", "Key")
        assert status == 200, key
        status, preview = invoke("ImportsApiFunction", "Preview")
        assert status == 200, preview
        status, started = invoke("ImportsApiFunction", "Start")
        assert status == 201, started
        status, listed = invoke("ImportsApiFunction", "List")
        assert status == 200, listed
        status, missing = invoke("ImportsApiFunction", "Get")  # names no execution (events/README)
        assert status == 404, missing


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"PROPSYNC_AWS_PORT": "same", "PROPSYNC_API_PORT": "same"}, "are both"),
        ({"PROPSYNC_LOCAL_PROJECT_TOKEN": "not-a-uuid"}, "is not a project token: use a UUID"),
        ({"PROPSYNC_LOCAL_KEY_ID": "a:b"}, "PROPSYNC_LOCAL_KEY_ID='a:b' cannot be used"),
        ({"PROPSYNC_LOCAL_KEY_ID": "k" * 129}, "must have at most 128 characters"),
        ({"PROPSYNC_LOCAL_KEY_SECRET": ""}, "PROPSYNC_LOCAL_KEY_SECRET='' cannot be used"),
    ],
)
def test_settings_that_cannot_work_are_refused_before_anything_is_written(
    settings, expected, tmp_path
):
    """The variable the user set is the one named: not a stack that answers
    'Invalid project id' or 401 to its own demo key, nor a busy-port error
    blaming the other port."""
    ports = {name: str(free_port()) for name in PORT_VARIABLES}
    same = str(free_port())
    chosen = {name: (same if value == "same" else value) for name, value in settings.items()}
    code, output = run_stack_to_exit(tmp_path, **{**ports, **chosen})

    assert code != 0, output
    assert "Traceback" not in output
    [message] = own_lines(output)
    assert expected in message
    assert not (tmp_path / "credentials.json").exists()


# ------------------------------------------------ queued tracking (make run)
# PROPSYNC_TRACKING_WRITES=queued: the routes queue the commands and a trigger
# runs TrackingWorkerFunction on the queue, as TrackingWrites=queued deploys it.

# How long a test waits for the worker before it fails: a bound, not a
# figure under test (the local worker polls every 0.1 s).
WORKER_WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def queued_stack(tmp_path_factory):
    with running_stack(
        tmp_path_factory.mktemp("queued"), **{TRACKING_WRITES_ENV: QUEUED}
    ) as running:
        yield running


def read_once_applied(url: str, expected: dict) -> tuple[int, dict]:
    """GET ``url`` (with the demo key) until it answers ``expected`` or the
    worker had WORKER_WAIT_SECONDS; the last (status, answer)."""
    deadline = time.monotonic() + WORKER_WAIT_SECONDS
    while True:
        status, answer = http_answer("GET", url, None, DEMO_KEY_AUTHORIZATION)
        if (status, answer) == (200, expected) or time.monotonic() > deadline:
            return status, answer
        time.sleep(0.1)


def test_queued_tracking_answers_at_once_and_the_worker_applies_the_commands(queued_stack):
    credentials = json.loads((queued_stack["dir"] / "credentials.json").read_text())
    token = credentials["project_token"]
    command = {
        "name": "customers",
        "command_id": "queued-1",
        "data": {
            "customer_ids": {"registered": "queued-e2e"},
            "properties": {"email": "q@example.com", "tier": "gold"},
            "update_timestamp": 1570001049,
        },
    }
    # no update_timestamp: stamped with the request's arrival at the API
    unstamped = {
        "name": "customers",
        "data": {"customer_ids": {"registered": "queued-e2e"}, "properties": {"seen": True}},
    }
    refused = {"name": "customers", "data": {"customer_ids": {}, "properties": {"x": 1}}}

    status, answer = http_answer(
        "POST",
        f"{queued_stack['api']}/track/v2/projects/{token}/batch",
        {"commands": [command, unstamped, refused]},
    )

    assert status == 200, answer
    assert answer["success"] is True
    # the original product's shape: success per command, nothing applied yet
    queued, queued_unstamped, failed = answer["results"]
    assert queued == {"success": True, "command_id": "queued-1"}
    assert queued_unstamped == {"success": True}
    # a bad command gets its error at once, as in the synchronous mode
    assert failed["success"] is False
    assert failed["errors"]
    url = f"{queued_stack['api']}/api/customers/queued-e2e?id_type=registered&include_timestamps=1"
    # the worker applies them later, the unstamped one at the request's arrival
    applied = {
        "properties": {
            "email": {"value": "q@example.com", "last_update": 1570001049},
            "tier": {"value": "gold", "last_update": 1570001049},
            "seen": {"value": True, "last_update": answer["start_time"]},
        }
    }
    assert read_once_applied(url, applied) == (200, applied)


def test_the_credentials_of_a_queued_stack_say_so(queued_stack):
    credentials = json.loads((queued_stack["dir"] / "credentials.json").read_text())
    assert credentials["tracking_writes"] == QUEUED


def test_the_worker_sample_applies_its_command_against_a_queued_stack(queued_stack):
    """events/TrackingWorkerFunction.SQS.json as `sam local invoke` sends it:
    a tracking message for the demo project, applied by the worker."""
    credentials = json.loads((queued_stack["dir"] / "credentials.json").read_text())

    answer = sam_local_invoke("TrackingWorkerFunction", "SQS", credentials["aws_endpoint_url"])

    assert answer == {"batchItemFailures": []}
    read = http_json(
        "GET",
        f"{queued_stack['api']}/api/customers/mgalik?id_type=registered&include_timestamps=1",
        auth=True,
    )
    assert read["properties"]["first_name"] == {"value": "Marian", "last_update": 1570001049}


@pytest.mark.parametrize("value", ["async", "QUEUED", "sync,queued"])
def test_a_tracking_mode_that_does_not_exist_is_refused_at_start(value, tmp_path):
    ports = {name: str(free_port()) for name in PORT_VARIABLES}
    code, output = run_stack_to_exit(tmp_path, **{**ports, TRACKING_WRITES_ENV: value})

    assert code != 0, output
    assert "Traceback" not in output
    [message] = own_lines(output)
    assert f"{TRACKING_WRITES_ENV}={value!r}" in message
    for mode in MODES:  # what is allowed
        assert re.search(rf"\b{mode}\b", message), message
    assert not (tmp_path / "credentials.json").exists()
