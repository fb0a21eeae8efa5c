"""The propsync command as a person meets it: where it finds the service (the
local stack's credentials.json, a CloudFormation stack's outputs, the
environment), one line on stderr for every refusal, the mapping checked
against the file before anything is uploaded, and examples in every --help."""

import gzip
import json
import os
import subprocess
import sys
import tomllib
import uuid
from io import BytesIO
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync import admin, cli
from propsync.cli import ERRORS_SHOWN, EXAMPLES, mapping_problems, shown_report
from propsync.id_types import DEFAULT_ID_TYPES
from propsync.import_mapping import DELIMITERS
from propsync.imports import import_file
from propsync.store.access import AccessStore
from propsync_local.cfn_template import REPO_ROOT
from tests.conftest import PROJECT
from tests.support.servers import free_port
from tests.support.stacks import create_stack

UNKNOWN = "44444444-4444-4444-4444-444444444444"
PEOPLE = b"id,first_name,email\nanna,Anna,anna@example.com\n"
MAPPING = {
    "properties": [{"from_column": "first_name", "to_property": "first_name", "type": "string"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
TOKEN_EXAMPLES = 10  # per command
# every command that takes --project, with the rest of its arguments
PROJECT_COMMANDS = {
    "list-keys": [],
    "create-key": [],
    "list-id-types": [],
    "set-id-type": ["--id-type", "email", "--soft"],
    "import": ["--name", "crm", "{file}"],
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # not what came before: the handlers' logs go to stdout
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def import_with_mapping(capsys, mapping: Path, data: Path) -> tuple[int, str, str]:
    """`propsync import --project PROJECT --name crm --mapping MAPPING DATA`."""
    return run(
        capsys,
        "import",
        "--project",
        PROJECT,
        "--name",
        "crm",
        "--mapping",
        str(mapping),
        str(data),
    )


def one_line(err: str) -> str:
    assert err.endswith("\n"), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


def project_argv(command: str, token: str, tmp_path: Path) -> list[str]:
    data = tmp_path / "people.csv"
    data.write_bytes(PEOPLE)
    rest = [a.replace("{file}", str(data)) for a in PROJECT_COMMANDS[command]]
    return [command, "--project", token, *rest]


@pytest.fixture
def no_configuration(monkeypatch):
    """Nothing says where propsync is: no table, no stack, no local stack."""
    for variable in ("PROPSYNC_TABLE_NAME", "PROPSYNC_IMPORT_BUCKET", "PROPSYNC_STACK"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def bucket(api, imports, monkeypatch) -> str:
    """The api fixture's table and project, and an empty import bucket."""
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", imports.bucket)
    return imports.bucket


# ------------------------------------------------------------ refusals


@pytest.mark.parametrize("command", sorted(PROJECT_COMMANDS))
def test_every_command_with_a_project_refuses_an_unknown_one(
    bucket, imports, capsys, tmp_path, command
):
    """list-keys printed nothing for an unknown project, as for one without
    keys; every command that takes --project now says there is none."""
    code, out, err = run(capsys, *project_argv(command, UNKNOWN, tmp_path))
    assert (code, out) == (1, "")
    assert one_line(err) == f"no project {UNKNOWN}: create it first"
    assert imports.keys() == []


@pytest.mark.parametrize("command", sorted(PROJECT_COMMANDS))
@given(token=st.text(max_size=40).filter(lambda t: not _is_uuid(t) and not t.startswith("-")))
@settings(max_examples=TOKEN_EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_project_token_that_is_not_a_uuid_is_refused_before_aws_is_asked(
    no_configuration, capsys, tmp_path, command, token
):
    """Checked before the configuration is even looked for: here there is none."""
    code, out, err = run(capsys, *project_argv(command, token, tmp_path))
    assert (code, out) == (1, "")
    assert one_line(err) == f"--project {token!r} is not a project token (a UUID)"


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


@pytest.mark.parametrize("missing", ["data", "mapping"])
def test_import_of_a_file_that_does_not_exist(bucket, imports, capsys, tmp_path, missing):
    data, mapping = tmp_path / "people.csv", tmp_path / "mapping.json"
    data.write_bytes(PEOPLE)
    mapping.write_text(json.dumps(MAPPING))
    (data if missing == "data" else mapping).unlink()
    code, out, err = import_with_mapping(capsys, mapping, data)
    assert (code, out) == (1, "")
    gone = data if missing == "data" else mapping
    assert one_line(err) == f"cannot read {gone}: No such file or directory"
    assert imports.keys() == []


def test_without_any_configuration_it_says_how_to_get_one(no_configuration, capsys):
    code, out, err = run(capsys, "list-keys", "--project", PROJECT)
    assert (code, out) == (1, "")
    line = one_line(err)
    assert line.startswith("PROPSYNC_TABLE_NAME is not set and no local stack was found")
    assert "start the local stack with `make run`" in line
    assert "--stack NAME (or PROPSYNC_STACK)" in line


def test_local_without_a_local_stack_says_to_start_one(no_configuration, capsys):
    code, _, err = run(capsys, "--local", "list-keys", "--project", PROJECT)
    assert code == 1
    assert one_line(err).startswith("no local stack: start the local stack with `make run`")


def test_an_unreachable_endpoint_is_one_line(no_configuration, monkeypatch, capsys):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", "propsync")
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    code, out, err = run(capsys, "list-keys", "--project", PROJECT)
    assert (code, out) == (1, "")
    line = one_line(err)
    assert line.startswith(f"cannot reach {url}")
    assert "EndpointConnectionError" in line


def test_a_local_stack_that_is_not_running_says_to_start_make_run(
    no_configuration, monkeypatch, capsys, tmp_path
):
    credentials = write_credentials(
        tmp_path, aws=f"http://127.0.0.1:{free_port()}", table="t", bucket="b"
    )
    monkeypatch.setenv("PROPSYNC_LOCAL_DIR", str(tmp_path))
    code, _, err = run(capsys, "list-id-types", "--project", PROJECT)
    assert code == 1
    assert f"is `make run` running? (its address comes from {credentials})" in one_line(err)


def test_a_table_that_does_not_exist_is_named(api, monkeypatch, capsys):
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", "no-such-table")
    code, _, err = run(capsys, "list-keys", "--project", PROJECT)
    assert code == 1
    assert one_line(err).startswith(
        "there is no DynamoDB table 'no-such-table' (from the environment (PROPSYNC_TABLE_NAME))"
    )


def test_any_other_aws_refusal_is_one_line_with_its_type(api, monkeypatch, capsys):
    def refused(*_args, **_kwargs):
        answer = {"Error": {"Code": "AccessDeniedException", "Message": "not\nallowed"}}
        raise ClientError(answer, "GetItem")

    monkeypatch.setattr(AccessStore, "project_id_types", refused)
    code, _, err = run(capsys, "list-keys", "--project", PROJECT)
    assert code == 1
    assert one_line(err) == (
        "ClientError: An error occurred (AccessDeniedException) when calling the GetItem "
        "operation: not allowed"
    )


def test_a_bug_is_not_hidden(api, monkeypatch):
    """Only AWS's, the network's and the machine's errors become one line."""

    def bug(*_args, **_kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(AccessStore, "project_id_types", bug)
    with pytest.raises(KeyError):
        cli.main(["list-keys", "--project", PROJECT])


# ------------------------------------------------------------ the local stack


def write_credentials(directory: Path, *, aws: str, table: str, bucket: str, **extra) -> Path:
    """credentials.json as `make run` writes it (propsync_local.stack)."""
    path = directory / "credentials.json"
    values = {
        "project_token": PROJECT,
        "api_url": "http://127.0.0.1:3000",
        "aws_endpoint_url": aws,
        "dynamodb_endpoint_url": aws,
        "table_name": table,
        "import_bucket": bucket,
        "region": "eu-west-1",
        **extra,
    }
    path.write_text(json.dumps(values))
    return path


@pytest.fixture
def local_stack(api, imports, moto_endpoint, dynamodb_endpoint, table_name, tmp_path, monkeypatch):
    """A credentials.json naming the test's table and bucket, and an
    environment that says nothing else."""
    for variable in ("PROPSYNC_TABLE_NAME", "PROPSYNC_IMPORT_BUCKET", "PROPSYNC_STACK"):
        monkeypatch.delenv(variable, raising=False)
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(variable)
    path = write_credentials(
        tmp_path,
        aws=moto_endpoint,
        table=table_name,
        bucket=imports.bucket,
        dynamodb_endpoint_url=dynamodb_endpoint,
    )
    monkeypatch.setenv("PROPSYNC_LOCAL_DIR", str(tmp_path))
    return path


def test_the_local_stack_is_found_from_its_credentials(local_stack, imports, capsys):
    code, out, _ = run(capsys, "list-id-types", "--project", PROJECT)
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"id_type": name, "kind": kind} for name, kind in DEFAULT_ID_TYPES.to_item().items()
    ]
    code, out, _ = run(capsys, "config")
    assert code == 0
    assert json.loads(out) == {
        "source": f"the local stack ({local_stack})",
        "table": json.loads(local_stack.read_text())["table_name"],
        "import_bucket": imports.bucket,
        "region": "eu-west-1",
        "endpoints": {
            "dynamodb": json.loads(local_stack.read_text())["dynamodb_endpoint_url"],
            "s3": json.loads(local_stack.read_text())["aws_endpoint_url"],
        },
    }


def test_the_local_stack_is_found_from_any_folder_of_the_repository(
    local_stack, capsys, monkeypatch, tmp_path
):
    """Without PROPSYNC_LOCAL_DIR: .local/ of the working directory or of the
    nearest folder above it that has one, as git finds .git."""
    repository = tmp_path / "repository"
    (repository / ".local").mkdir(parents=True)
    (repository / ".local" / "credentials.json").write_bytes(local_stack.read_bytes())
    (repository / "docs" / "deep").mkdir(parents=True)
    monkeypatch.delenv("PROPSYNC_LOCAL_DIR")
    monkeypatch.chdir(repository / "docs" / "deep")
    code, out, _ = run(capsys, "config")
    assert code == 0
    expected = repository / ".local" / "credentials.json"
    assert json.loads(out)["source"] == f"the local stack ({expected})"
    code, _, _ = run(capsys, "list-keys", "--project", PROJECT)
    assert code == 0


def test_environment_variables_win_over_the_local_stacks_values(local_stack, monkeypatch, capsys):
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", "from-the-environment")
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", "bucket-from-the-environment")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
    _, out, _ = run(capsys, "--local", "config")
    shown = json.loads(out)
    assert (shown["table"], shown["import_bucket"]) == (
        "from-the-environment",
        "bucket-from-the-environment",
    )
    assert shown["endpoints"]["s3"] == "http://127.0.0.1:1"
    # with PROPSYNC_TABLE_NAME set and no --local, the environment alone is used
    _, out, _ = run(capsys, "config")
    assert json.loads(out)["source"] == "the environment (PROPSYNC_TABLE_NAME)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON: start `make run` again to rewrite it"),
        ('{"api_url": "x"}', "does not name the local stack's table_name, import_bucket"),
    ],
)
def test_a_damaged_credentials_file_is_one_line(
    no_configuration, monkeypatch, capsys, tmp_path, content, message
):
    (tmp_path / "credentials.json").write_text(content)
    monkeypatch.setenv("PROPSYNC_LOCAL_DIR", str(tmp_path))
    code, _, err = run(capsys, "list-keys", "--project", PROJECT)
    assert code == 1
    assert message in one_line(err)


# ------------------------------------------------------------ a deployed stack


@pytest.fixture
def deployed(api, imports, moto_endpoint, table_name, monkeypatch) -> str:
    """A stack whose outputs name the test's table and bucket; the
    environment names neither."""
    for variable in ("PROPSYNC_TABLE_NAME", "PROPSYNC_IMPORT_BUCKET"):
        monkeypatch.delenv(variable, raising=False)
    outputs = {"PropsyncTableName": table_name, "ImportBucketName": imports.bucket}
    return create_stack(moto_endpoint, outputs)


@pytest.mark.parametrize(
    "where",
    [
        lambda stack: ["--stack", stack, "list-keys", "--project", PROJECT],
        lambda stack: ["list-keys", "--project", PROJECT, "--stack", stack],
        lambda stack: ["list-keys", "--project", PROJECT],  # PROPSYNC_STACK
    ],
    ids=["before the command", "after the command", "PROPSYNC_STACK"],
)
def test_a_stack_is_found_from_its_outputs(deployed, api, capsys, monkeypatch, where):
    monkeypatch.setenv("PROPSYNC_STACK", deployed)
    code, out, err = run(capsys, *where(deployed))
    assert (code, err) == (0, "")
    assert [json.loads(line)["api_key_id"] for line in out.splitlines()] == [api.key_id]


def test_config_shows_the_stacks_table_and_bucket(deployed, imports, table_name, capsys):
    code, out, _ = run(capsys, "config", "--stack", deployed)
    assert code == 0
    shown = json.loads(out)
    assert shown["source"] == f"stack {deployed!r} (eu-west-1)"
    assert (shown["table"], shown["import_bucket"]) == (table_name, imports.bucket)


def test_the_environment_wins_over_the_stacks_outputs(
    api, moto_endpoint, table_name, monkeypatch, capsys
):
    stack = create_stack(moto_endpoint, {"PropsyncTableName": "another-table"})
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", table_name)
    code, out, _ = run(capsys, "--stack", stack, "list-keys", "--project", PROJECT)
    assert code == 0
    assert [json.loads(line)["api_key_id"] for line in out.splitlines()] == [api.key_id]


def test_a_stack_without_the_outputs_is_refused(aws_endpoints, moto_endpoint, capsys):
    stack = create_stack(moto_endpoint, {})
    code, _, err = run(capsys, "--stack", stack, "list-keys", "--project", PROJECT)
    assert code == 1
    assert one_line(err).startswith(
        f"stack {stack!r} (eu-west-1) has no output PropsyncTableName: it is not a propsync stack"
    )


def test_a_stack_without_a_bucket_output_refuses_import_only(
    api, imports, moto_endpoint, table_name, monkeypatch, capsys, tmp_path
):
    monkeypatch.delenv("PROPSYNC_TABLE_NAME")
    stack = create_stack(moto_endpoint, {"PropsyncTableName": table_name})
    assert run(capsys, "--stack", stack, "list-keys", "--project", PROJECT)[0] == 0
    code, _, err = run(capsys, "--stack", stack, *project_argv("import", PROJECT, tmp_path))
    assert code == 1
    assert one_line(err) == (
        f"stack {stack!r} (eu-west-1) has no output ImportBucketName: "
        "give --bucket or set PROPSYNC_IMPORT_BUCKET"
    )
    assert imports.keys() == []


def test_a_stack_that_does_not_exist(aws_endpoints, capsys):
    code, _, err = run(capsys, "--stack", "no-such-stack", "list-keys", "--project", PROJECT)
    assert code == 1
    assert one_line(err).startswith("no CloudFormation stack 'no-such-stack' in eu-west-1: deploy")


def test_missing_aws_credentials_are_one_line(monkeypatch, capsys, tmp_path):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance to ask
    code, _, err = run(capsys, "--stack", "propsync", "list-keys", "--project", PROJECT)
    assert code == 1
    assert one_line(err).startswith("no AWS credentials: set AWS_PROFILE")


def test_stack_and_local_together_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--stack", "x", "list-keys", "--project", PROJECT, "--local"])
    assert exit_.value.code == 2
    assert "--stack and --local cannot be used together" in capsys.readouterr().err


# ------------------------------------------------------------ import


def test_the_mapping_is_checked_against_the_header_before_anything_is_uploaded(
    bucket, imports, capsys, tmp_path
):
    data, mapping = tmp_path / "people.csv", tmp_path / "mapping.json"
    data.write_bytes(PEOPLE)
    mapping.write_text(
        json.dumps(
            {
                "properties": [
                    {"from_column": "firstname", "to_property": "first_name", "type": "string"},
                    {"from_column": "mail", "to_property": "email", "type": "string"},
                ],
                "ids": [{"from_column": "id", "to_id": "registred"}],
            }
        )
    )
    code, out, err = import_with_mapping(capsys, mapping, data)
    assert (code, out) == (1, "")
    heading, *problems = err.splitlines()
    assert heading == f"{mapping} does not fit {data}; nothing was uploaded:"
    assert any("'registred' is not known to this project" in p for p in problems)
    assert imports.keys() == []

    mapping.write_text(
        json.dumps(
            {
                **MAPPING,
                "properties": [
                    {"from_column": "firstname", "to_property": "first_name", "type": "string"},
                    {"from_column": "mail", "to_property": "email", "type": "string"},
                ],
            }
        )
    )
    code, _, err = import_with_mapping(capsys, mapping, data)
    assert code == 1
    _, *problems = err.splitlines()
    assert len(problems) == 2  # every problem, one per line
    assert "'firstname'" in problems[0]
    assert "'mail'" in problems[1]
    assert imports.keys() == []


def test_without_mapping_the_one_in_the_bucket_is_checked(bucket, imports, capsys, tmp_path):
    data = tmp_path / "people.csv"
    data.write_bytes(PEOPLE)
    argv = ["import", "--project", PROJECT, "--name", "crm", "--no-follow", str(data)]
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert one_line(err).startswith(
        f"the import 'crm' has no mapping yet (s3://{bucket}/imports/{PROJECT}/crm/mapping.json)"
    )
    imports.put_mapping("crm", {**MAPPING, "ids": [{"from_column": "uid", "to_id": "registered"}]})
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith(f"s3://{bucket}/imports/{PROJECT}/crm/mapping.json does not fit")
    assert "ids[0].from_column: 'uid' is neither a column of the file" in err
    assert imports.keys() == [f"imports/{PROJECT}/crm/mapping.json"]

    imports.put_mapping("crm", MAPPING)
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert sorted(imports.keys()) == [
        f"imports/{PROJECT}/crm/mapping.json",
        f"imports/{PROJECT}/crm/people.csv",
    ]


def test_a_csv_gz_header_is_read_through_gzip(bucket, imports, capsys, tmp_path):
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    good, damaged = tmp_path / "people.csv.gz", tmp_path / "plain.csv.gz"
    good.write_bytes(gzip.compress(PEOPLE))
    damaged.write_bytes(PEOPLE)  # not compressed
    base = ["import", "--project", PROJECT, "--name", "crm", "--mapping", str(mapping)]
    code, _, err = run(capsys, *base, str(damaged))
    assert code == 1
    assert "is not a gzip file, or a damaged one" in err
    assert imports.keys() == []
    code, _, err = run(capsys, *base, "--no-follow", str(good))
    assert code == 0, err
    assert f"imports/{PROJECT}/crm/people.csv.gz" in imports.keys("imports/")


HEADER_EXAMPLES = 200
COLUMNS = st.lists(st.sampled_from(["id", "name", "email", "city", "zip", "age"]), unique=True)


@settings(max_examples=HEADER_EXAMPLES)
@given(
    header=COLUMNS.filter(bool),
    mapped=COLUMNS,
    delimiter=st.sampled_from(DELIMITERS),
    bom=st.booleans(),
    compressed=st.booleans(),
)
def test_the_check_refuses_exactly_the_mappings_whose_columns_the_file_lacks(
    header, mapped, delimiter, bom, compressed
):
    """Whatever the delimiter (found from the header, as the importer finds
    it), byte order mark or compression."""
    data = (b"\xef\xbb\xbf" if bom else b"") + (delimiter.join(header) + "\n").encode()
    if compressed:
        data = gzip.compress(data)
    document = {
        "properties": [{"from_column": c, "to_property": c, "type": "string"} for c in mapped],
        "ids": [{"from_column": "id", "to_id": "registered"}],
    }
    name = "people.csv.gz" if compressed else "people.csv"
    problems = mapping_problems(
        json.dumps(document).encode(),
        BytesIO(data),
        import_file(f"imports/{PROJECT}/crm/{name}"),
        DEFAULT_ID_TYPES,
    )
    missing = [c for c in {*mapped, "id"} if c not in header]
    assert bool(problems) == bool(missing)
    for column in missing:
        assert any(repr(column) in problem for problem in problems), (column, problems)


def test_the_printed_report_uses_the_stored_reports_names():
    report = {
        "status": "partially_succeeded",
        "rows_read": 10,
        "rows_rejected": 7,
        "errors": [{"line": n, "reason": "bad"} for n in range(7)],
        "problems": [],
    }
    shown = shown_report(report, "s3://b/reports/p/crm/people.csv.json")
    assert shown["errors"] == report["errors"][:ERRORS_SHOWN]
    assert shown["errors_shown"] == ERRORS_SHOWN
    assert shown["report"] == "s3://b/reports/p/crm/people.csv.json"
    assert {k: v for k, v in shown.items() if k not in ("errors", "errors_shown", "report")} == {
        k: v for k, v in report.items() if k != "errors"
    }


# ------------------------------------------------------------ help


@pytest.mark.parametrize("command", sorted(name for name in EXAMPLES if name))
def test_each_commands_help_lists_its_examples(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    examples = help_text.split("examples:\n", 1)[1]
    for example in EXAMPLES[command].splitlines():
        assert example in examples.splitlines()
    first = EXAMPLES[command].splitlines()[0].split()
    assert first[:2] == ["propsync", command]
    assert max(len(line) for line in help_text.splitlines()) <= 80


def test_every_command_has_examples():
    parser = cli.build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    assert set(commands.choices) == set(EXAMPLES) - {""} == set(cli.COMMANDS)


def test_the_main_help_says_where_it_finds_propsync(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    help_text = capsys.readouterr().out
    assert '  propsync create-project --name "My shop"\n' in help_text  # an example a line
    help_text = " ".join(help_text.split())
    assert "where it finds propsync" in help_text
    assert "--stack and --local may stand before or after the command" in help_text


# ------------------------------------------------------------ the installed command


def test_the_console_script_names_the_cli_main():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"propsync": "propsync.cli:main"}
    assert admin.main is cli.main  # python -m propsync.admin still works


# what the script pip writes for [project.scripts] runs
CONSOLE_SCRIPT = "import sys; from propsync.cli import main; sys.exit(main())"


@pytest.mark.parametrize(
    ("argv", "environment", "expected"),
    [
        (["list-keys", "--project", PROJECT], {}, "PROPSYNC_TABLE_NAME is not set"),
        (
            ["list-keys", "--project", PROJECT],
            {"PROPSYNC_TABLE_NAME": "t", "AWS_ENDPOINT_URL": "http://127.0.0.1:{port}"},
            "cannot reach http://127.0.0.1:",
        ),
        (["import", "--project", PROJECT, "--name", "crm", "missing.csv"], {}, "cannot read"),
    ],
    ids=["no configuration", "unreachable", "missing file"],
)
def test_no_traceback_reaches_the_user_of_the_command(tmp_path, argv, environment, expected):
    """The console script's entry point (pyproject: propsync.cli:main), run
    as its own process: one line on stderr, exit 1."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PROPSYNC_", "AWS_ENDPOINT_URL"))
    }
    env |= {"PYTHONPATH": str(REPO_ROOT / "layers" / "propsync")}
    env |= {"PROPSYNC_LOCAL_DIR": str(tmp_path)}
    env |= {k: v.replace("{port}", str(free_port())) for k, v in environment.items()}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from propsync.cli import main; sys.exit(main())",
            *argv,
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert one_line(done.stderr).startswith(expected) or expected in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["create-project", "--name", ""], "argument --name: must not be empty"),
        (["create-project", "--name", "  "], "argument --name: must not be empty"),
        (["list-keys", "--project", PROJECT, "--stack", ""], "argument --stack: must not be empty"),
        (
            ["import", "--project", PROJECT, "--name", "crm", "--timeout", "-1", "a.csv"],
            "argument --timeout: '-1' is not a positive number of seconds",
        ),
        (
            ["import", "--project", PROJECT, "--name", "crm", "--timeout", "nan", "a.csv"],
            "argument --timeout: 'nan' is not a positive number of seconds",
        ),
        (
            ["import", "--project", PROJECT, "--name", "crm", "--timeout", "soon", "a.csv"],
            "argument --timeout: 'soon' is not a number of seconds",
        ),
    ],
)
def test_option_values_that_cannot_mean_anything_are_refused_before_anything_is_done(
    argv, complaint, capsys
):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.rstrip().splitlines()[-1].endswith(complaint)
