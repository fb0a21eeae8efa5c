"""The `propsync` command: projects, their id types, API keys and imports,
against the local stack (`make run`) or a deployed one (--stack NAME).

Where it finds the service is propsync.cli_config's work; this module parses
the command line, runs the command and turns every refusal into one line on
stderr and a non-zero exit (docs/DECISIONS.md: "The propsync command finds
its stack by itself"). `python -m propsync.admin` is the same command.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from propsync.access import (
    AUTHORIZER_CACHE_SECONDS,
    DEFAULT_PERMISSIONS,
    LOCKOUT,
    Permission,
    create_api_key,
    is_project_token,
    parse_permissions,
)
from propsync.bucket import ImportBucket
from propsync.cli_config import (
    API_OUTPUT,
    BUCKET_OUTPUT,
    LOCAL_DIR_ENV,
    STACK_ENV,
    TABLE_OUTPUT,
    ConfigError,
    Settings,
    settings,
)
from propsync.errors import (
    IdTypeKindError,
    InvalidCustomerIdsError,
    InvalidMappingError,
    UnknownProjectError,
)
from propsync.id_type_cache import ID_TYPES_CACHE_SECONDS
from propsync.id_types import DEFAULT_ID_TYPES, HARD, SOFT, IdTypes
from propsync.imports import ImportFile, check_mapping_and_header, import_file, name_problem
from propsync.limits import MAX_MAPPING_BYTES
from propsync.store.access import AccessStore
from propsync.store.dynamo import TABLE_NAME_ENV
from propsync.store.imports import ExecutionRecord, ImportStore

PROG = "propsync"
# the report's errors printed after an import; the report holds the others
ERRORS_SHOWN = 5
INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


class CommandError(Exception):
    """A refusal: ``message`` on stderr (one line; a mapping's problems, a
    line each), exit ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class _Context:
    """The parsed command line, and the settings made from it the first time
    a command needs them (a command refused before that reaches nothing)."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.found: Settings | None = None  # once made

    @property
    def settings(self) -> Settings:
        if self.found is None:
            self.found = settings(
                stack=self.args.stack,
                local=self.args.local,
                bucket=getattr(self.args, "bucket", None),
            )
        return self.found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.stack and args.local:  # one before the command, the other after it
        parser.error("--stack and --local cannot be used together")
    context = _Context(args)
    try:
        return COMMANDS[args.command](context)
    except CommandError as error:
        _say(str(error))
        return error.code
    except ConfigError as error:
        _say(str(error))
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return INTERRUPTED
    except (BotoCoreError, ClientError, OSError) as error:
        # Not a bug of the command: AWS, the network or the machine said no.
        # One line, with the exception's type so nothing is hidden.
        _say(_failure(error, context.found))
        return 1


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _failure(error: BaseException, found: Settings | None) -> str:
    """One line for an error of AWS, the network or the machine; ``found``:
    the settings the command was using, if it got that far."""
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        url = error.kwargs.get("endpoint_url", "the endpoint")
        hint = found.unreachable_hint if found else "check AWS_ENDPOINT_URL and the network"
        return f"cannot reach {url}: {hint} ({type(error).__name__})"
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials: set AWS_PROFILE (after `aws configure` or `aws sso login`) or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; for the local stack, start `make run`"
        )
    if isinstance(error, NoRegionError):
        return "no AWS region: set AWS_REGION, or give the AWS_PROFILE's configuration one"
    if isinstance(error, ProfileNotFound):
        return f"{error}: check AWS_PROFILE (profiles are in ~/.aws/config)"
    text = " ".join(str(error).split())  # one line, whatever the message holds
    if isinstance(error, ClientError) and found is not None:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return f"there is no DynamoDB table {found.table!r} (from {found.source}): {text}"
        if code == "NoSuchBucket":
            return f"there is no bucket {found.bucket!r} (from {found.source}): {text}"
    return f"{type(error).__name__}: {text}"


# ------------------------------------------------------------------ the parser

WHERE = f"""\
where it finds propsync (`{PROG} config` shows what it found):
  --stack NAME   a deployed stack (or {STACK_ENV}=NAME): its outputs
                 {TABLE_OUTPUT} and {BUCKET_OUTPUT} (and {API_OUTPUT}, the
                 API whose authorizer cache revoke-key and unlock-key flush),
                 read with AWS_PROFILE / AWS_REGION as any AWS tool does
  --local        the local stack: the .local/credentials.json that `make run`
                 writes, found from the repository or any folder in it
                 ({LOCAL_DIR_ENV} names another folder)
  neither        the environment alone if {TABLE_NAME_ENV} is set,
                 else the local stack if one is found
{TABLE_NAME_ENV}, PROPSYNC_IMPORT_BUCKET and AWS_ENDPOINT_URL win over what
the stack says, and --bucket over all of them. --stack and --local may stand
before or after the command."""

EXAMPLES = {
    "": """\
  propsync create-project --name "My shop"
  propsync create-key --project TOKEN --permission customer_properties:get
  propsync import --project TOKEN --name crm --mapping mapping.json people.csv
  propsync --stack propsync list-keys --project TOKEN""",
    "create-project": """\
  propsync create-project --name "My shop"
  propsync create-project --name "My shop" \\
      --token 6f1c1c9e-3a6b-4bb4-9a57-0c1f2b1e2d3a
  propsync --stack propsync create-project --name "My shop\"""",
    "set-id-type": """\
  propsync set-id-type --project TOKEN --id-type email --soft
  propsync set-id-type --project TOKEN --id-type crm_id --hard""",
    "list-id-types": """\
  propsync list-id-types --project TOKEN""",
    "create-key": """\
  propsync create-key --project TOKEN
  propsync create-key --project TOKEN --permission customer_properties:get
  propsync create-key --project TOKEN --permission customer_properties:get \\
      --permission customer_properties:set
  propsync create-key --project TOKEN --permission customers:anonymize
  propsync create-key --project TOKEN --permission customers:import""",
    "list-keys": """\
  propsync list-keys --project TOKEN
  propsync list-keys --project TOKEN --stack propsync""",
    "revoke-key": """\
  propsync revoke-key KEY_ID
  propsync --stack propsync revoke-key KEY_ID  # flushes the authorizer cache""",
    "unlock-key": """\
  propsync unlock-key KEY_ID
  propsync --stack propsync unlock-key KEY_ID  # flushes the authorizer cache""",
    "import": """\
  propsync import --project TOKEN --name crm --mapping mapping.json people.csv
  propsync import --project TOKEN --name crm june.csv.gz  # its mapping is there
  propsync import --project TOKEN --name crm --no-follow people.csv""",
    "config": """\
  propsync config
  propsync config --stack propsync""",
}


def _text(value: str) -> str:
    """An option's value that must say something (a name, a stack)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def _seconds(value: str) -> float:
    """A positive number of seconds."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not seconds > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return seconds


def _examples(command: str) -> str:
    return f"examples:\n{EXAMPLES[command]}"


def _where_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--stack and --local, on the main parser (with defaults) and on each
    command (without: a value given before the command is kept)."""
    group = parser.add_argument_group("where propsync is")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--stack",
        metavar="NAME",
        type=_text,
        default=None if defaults else argparse.SUPPRESS,
        help=f"a deployed CloudFormation stack (default: ${STACK_ENV})",
    )
    where.add_argument(
        "--local",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="the local stack of `make run` (.local/credentials.json)",
    )


def _project_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", required=True, metavar="TOKEN", help="project token")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="propsync administration: projects, their id types, API keys and imports.",
        epilog=f"{_examples('')}\n\n{WHERE}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _where_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str = "") -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=textwrap.fill(f"{summary}. {description}".strip(), 79),
            epilog=_examples(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _where_options(sub, defaults=False)
        return sub

    project = command(
        "create-project",
        "create a project, print its token",
        "A new project knows the id types registered (hard: one value per customer) "
        "and cookie (soft: many).",
    )
    project.add_argument("--name", required=True, type=_text, help="the project's name, for people")
    project.add_argument("--token", help="a UUID to use as the token (default: a new one)")

    seconds = f"{ID_TYPES_CACHE_SECONDS:.0f}"
    id_type = command(
        "set-id-type",
        f"add an id type to a project; tracking accepts it within {seconds} s (each container "
        "caches a project's id types that long)",
        "Imports started after it know it at once. An id type's kind never changes, "
        "and id types are not removed.",
    )
    _project_option(id_type)
    id_type.add_argument("--id-type", required=True, help="its name, e.g. email")
    kind = id_type.add_mutually_exclusive_group(required=True)
    kind.add_argument(
        "--hard", dest="kind", action="store_const", const=HARD, help="one value per customer"
    )
    kind.add_argument(
        "--soft", dest="kind", action="store_const", const=SOFT, help="many values per customer"
    )

    _project_option(command("list-id-types", "list a project's id types and kinds"))

    key = command(
        "create-key",
        "create an API key, print its id and secret",
        "The secret is printed once, now, and never stored: only its salted hash is.",
    )
    _project_option(key)
    key.add_argument(
        "--permission",
        action="append",
        default=[],
        choices=[p.value for p in Permission],
        metavar="PERMISSION",
        help=f"one of {', '.join(p.value for p in Permission)}; repeat for several; default: "
        f"{' and '.join(sorted(DEFAULT_PERMISSIONS))} ({Permission.ANONYMIZE_CUSTOMERS.value}, "
        f"which erases customers for good, and {Permission.IMPORT_CUSTOMERS.value}, which starts "
        "imports through the API, only when named)",
    )

    _project_option(command("list-keys", "list a project's keys (never secrets)"))

    flush = (
        "With --stack it then flushes the authorizer cache of the stack's API stage "
        "(needs apigateway:DELETE on .../stages/STAGE/cache/authorizers), so the next "
        "request runs the authorizer again; exit 2 if that fails."
    )
    revoke = command(
        "revoke-key",
        f"revoke a key; requests with it are refused within {AUTHORIZER_CACHE_SECONDS} s "
        "(API Gateway caches each authorizer answer that long), sooner when its cache is flushed",
        flush,
    )
    revoke.add_argument("key_id", metavar="KEY_ID")

    unlock = command(
        "unlock-key",
        f"lift the lock of a key that got {LOCKOUT.failures} wrong secrets within "
        f"{LOCKOUT.window_seconds:.0f} s (locked for {LOCKOUT.lock_seconds:.0f} s), and forget "
        "its wrong secrets",
        f"{flush} A key whose id an attacker keeps guessing at is locked again; give its "
        "users a new key (create-key) and revoke this one.",
    )
    unlock.add_argument("key_id", metavar="KEY_ID")

    upload = command(
        "import",
        "check a mapping against a file, upload both, follow the import until its report",
        "The mapping is checked against the file's header and the project's id types "
        "first: on a problem nothing is uploaded. Exit 0 succeeded, 2 partially "
        "succeeded, 1 failed, incomplete or not finished in time.",
    )
    upload.add_argument("file", type=Path, metavar="FILE", help="the CSV file (.csv or .csv.gz)")
    _project_option(upload)
    upload.add_argument("--name", required=True, help="import name (a folder of the bucket)")
    upload.add_argument(
        "--mapping",
        type=Path,
        metavar="FILE",
        help="mapping.json to upload first (default: the one already in the import's folder)",
    )
    upload.add_argument("--bucket", metavar="NAME", help="import bucket (default: the stack's)")
    upload.add_argument(
        "--timeout", type=_seconds, default=3600.0, metavar="SECONDS", help="how long to follow it"
    )
    upload.add_argument("--no-follow", action="store_true", help="upload only")

    command("config", "show where propsync is: the source, table, bucket, region and endpoints")
    return parser


# ------------------------------------------------------------------ commands


def _checked_token(token: str) -> str:
    if not is_project_token(token):
        raise CommandError(f"--project {token!r} is not a project token (a UUID)")
    return token


def _project(context: _Context) -> tuple[AccessStore, IdTypes]:
    """The access store and the id types of the command's --project;
    CommandError if it is no project token (checked before anything is
    asked of AWS) or there is no such project."""
    token = _checked_token(context.args.project)
    access = context.settings.access_store()
    id_types = access.project_id_types(token)
    if id_types is None:
        raise CommandError(f"no project {token}: create it first")
    return access, id_types


def _print(value: Any) -> None:
    print(json.dumps(value))


def create_project(context: _Context) -> int:
    args = context.args
    token = args.token or str(uuid.uuid4())
    if not is_project_token(token):
        raise CommandError(f"--token {token!r} is not a UUID; project tokens are UUIDs", 2)
    if not context.settings.access_store().create_project(token, args.name):
        raise CommandError(f"project {token} already exists")
    _print({"project_token": token, "name": args.name, "id_types": DEFAULT_ID_TYPES.to_item()})
    return 0


def set_id_type(context: _Context) -> int:
    """A JSON line, or one line saying what was refused (exit 1; 2 for a name
    no id type may have)."""
    args = context.args
    _checked_token(args.project)
    access = context.settings.access_store()
    try:
        added = access.add_id_type(args.project, args.id_type, hard=args.kind == HARD)
    except UnknownProjectError:
        raise CommandError(f"no project {args.project}: create it first") from None
    except InvalidCustomerIdsError as error:  # the name
        raise CommandError(str(error), 2) from None
    except IdTypeKindError as error:
        raise CommandError(str(error)) from None
    seconds = f"{ID_TYPES_CACHE_SECONDS:.0f}"
    _print(
        {
            "project_token": args.project,
            "id_type": args.id_type,
            "kind": args.kind,
            "added": added,
            "note": (
                f"tracking and the customer routes accept it within {seconds} s (each "
                "container caches a project's id types that long); imports started from now on"
                if added
                else "the project already has this id type, with this kind: nothing changed"
            ),
        }
    )
    return 0


def list_id_types(context: _Context) -> int:
    _, id_types = _project(context)
    for name, kind in id_types.to_item().items():
        _print({"id_type": name, "kind": kind})
    return 0


def create_key(context: _Context) -> int:
    args = context.args
    access, _ = _project(context)
    permissions = parse_permissions(args.permission or sorted(DEFAULT_PERMISSIONS))
    new = create_api_key(access, args.project, permissions)
    _print(
        {
            "api_key_id": new.key_id,
            "api_secret": new.secret,
            "project_token": args.project,
            "permissions": sorted(permissions),
            "note": "the secret is shown only now; store it safely",
        }
    )
    return 0


def list_keys(context: _Context) -> int:
    access, _ = _project(context)
    records = access.list_api_keys(context.args.project)
    failures = access.key_failures_of([record.key_id for record in records])
    now = time.time()
    for record in records:
        failed = failures.get(record.key_id)
        _print(
            {
                "api_key_id": record.key_id,
                "permissions": sorted(record.permissions),
                "created": record.created,
                "revoked": record.revoked,
                # the end of its lock while one is in force (unlock-key lifts it)
                "locked_until": failed.locked_until if failed and failed.locked(now) else None,
            }
        )
    return 0


def revoke_key(context: _Context) -> int:
    """Exit 0 when revoked and the authorizer cache flushed (or there is none
    to flush, or none is known), 2 when revoked but the flush failed, 1 when
    there is no such key."""
    key_id = context.args.key_id
    if not context.settings.access_store().revoke_api_key(key_id):
        raise CommandError(f"no API key {key_id}")
    cache, code = _flush_authorizer_cache(context.settings, "refused", "refused_within_seconds")
    _print({"api_key_id": key_id, "revoked": True, **cache})
    return code


def unlock_key(context: _Context) -> int:
    """Exit codes as revoke-key's; 1 for a revoked key too (nothing to unlock)."""
    key_id = context.args.key_id
    access = context.settings.access_store()
    record = access.get_api_key(key_id)
    if record is None:
        raise CommandError(f"no API key {key_id}")
    if record.revoked:
        # unlocking would change nothing: a revoked key is refused (401) whatever its lock
        raise CommandError(
            f"API key {key_id} is revoked: it stays refused, locked or not; "
            "create-key makes a new one"
        )
    cleared = access.clear_key_failures(key_id)
    was_locked = cleared is not None and cleared.locked(time.time())
    cache, code = _flush_authorizer_cache(
        context.settings, "authorized again", "authorized_within_seconds"
    )
    _print(
        {
            "api_key_id": key_id,
            "was_locked": was_locked,
            "wrong_secrets_cleared": cleared.failed_secrets if cleared else 0,
            **cache,
        }
    )
    return code


def _flush_authorizer_cache(
    found: Settings, outcome: str, seconds_field: str
) -> tuple[dict[str, Any], int]:
    """Flush the authorizer cache of the stack's API stage, so the next request
    with a key whose item changed is ``outcome`` (refused, authorized again):
    what to print about it (``seconds_field``: how long API Gateway may still
    answer from its cache), and the exit code (2 if the flush failed)."""
    seconds = found.authorizer_cache_seconds
    if seconds == 0:
        return {
            "authorizer_cache": "none",
            seconds_field: 0,
            "note": f"{found.source} runs the authorizer for every request: the next one "
            f"is {outcome}",
        }, 0
    stage = found.api_stage
    later = (
        f"requests with this key are {outcome} within {seconds} s: API Gateway caches "
        "each authorizer answer for that long"
    )
    if stage is None:
        return {
            "authorizer_cache": "not flushed",
            seconds_field: seconds,
            "note": f"{later} ({found.source} names no API; --stack NAME flushes its cache)",
        }, 0
    try:
        found.client("apigateway").flush_stage_authorizers_cache(
            restApiId=stage.rest_api_id, stageName=stage.stage
        )
    except (BotoCoreError, ClientError) as error:
        _say(
            f"the authorizer cache of API {stage.rest_api_id} stage {stage.stage} was not "
            f"flushed ({_failure(error, found)}): {later}; flushing needs apigateway:DELETE "
            f"on {stage.cache_path(found.region())}"
        )
        return {
            "authorizer_cache": "not flushed",
            seconds_field: seconds,
            "note": later,
        }, 2
    return {
        "authorizer_cache": "flushed",
        "api": stage.rest_api_id,
        "stage": stage.stage,
        seconds_field: seconds,
        "note": f"API Gateway accepted the flush of stage {stage.stage}'s authorizer cache: "
        f"the next request with this key runs the authorizer again and is {outcome}. It "
        f"flushes in the background (202 Accepted) and documents no delay; {seconds} s, the "
        "cache's lifetime, is the most it can take",
    }, 0


def show_config(context: _Context) -> int:
    print(json.dumps(context.settings.described(), indent=2))
    return 0


# ------------------------------------------------------------------ import


def mapping_problems(
    raw_mapping: bytes, data: IO[bytes], target: ImportFile, id_types: IdTypes
) -> list[str]:
    """Every problem the importer would find with the mapping and the file's
    header, found by the importer's own check on the file's first bytes.
    Leaves ``data`` anywhere."""
    try:
        check_mapping_and_header(raw_mapping, data, target, id_types)
    except InvalidMappingError as error:
        return [str(problem) for problem in error.problems]
    return []


def run_import(context: _Context) -> int:
    """Check, upload, then follow the execution with a progress bar on stderr
    and print its report on stdout. Exit 0 succeeded, 2 partially succeeded,
    1 failed or incomplete (or not finished in time)."""
    args = context.args
    target = _import_target(args.project, args.name, args.file)
    # Both files are opened before anything is uploaded: a mistyped path must
    # not leave a new mapping.json behind for the import's next file.
    try:
        mapping = args.mapping.read_bytes() if args.mapping else None
        data = args.file.open("rb")
    except OSError as error:
        raise CommandError(f"cannot read {error.filename}: {error.strerror}") from None
    with data:
        bucket = context.settings.import_bucket()
        imports = context.settings.import_store()
        _, id_types = _project(context)
        mapping_url = f"s3://{bucket.name}/{target.mapping_key}"
        checked = mapping
        if checked is None:
            checked = bucket.read(target.mapping_key, limit=MAX_MAPPING_BYTES)
            if checked is None:
                raise CommandError(
                    f"the import {args.name!r} has no mapping yet ({mapping_url}): "
                    "give one with --mapping mapping.json"
                )
        problems = mapping_problems(checked, data, target, id_types)
        if problems:
            raise CommandError(
                "\n  ".join(
                    [
                        f"{args.mapping or mapping_url} does not fit {args.file}; "
                        "nothing was uploaded:",
                        *problems,
                    ]
                )
            )
        data.seek(0)
        if mapping is not None:
            bucket.put(target.mapping_key, mapping, "application/json")
        before = imports.latest_for_file(target.key)
        bucket.put(target.key, data, "text/csv")
    _say(f"uploaded s3://{bucket.name}/{target.key}")
    if args.no_follow:
        return 0
    return _follow_to_report(bucket, imports, target, before, args.timeout)


def _import_target(project: str, name: str, file: Path) -> ImportFile:
    """The data file's key in the bucket, refused here if the import function
    would refuse it."""
    _checked_token(project)
    if not file.name.endswith((".csv", ".csv.gz")):
        raise CommandError(f"{file} does not end in .csv or .csv.gz: the importer reads those")
    problem = name_problem("import name", name) or name_problem("file name", file.name)
    if problem:
        raise CommandError(problem)
    target = import_file(f"imports/{project}/{name}/{file.name}")
    assert target is not None  # a .csv or .csv.gz under imports/
    if target.problem:  # the key as a whole (its length)
        raise CommandError(target.problem)
    return target


def _follow_to_report(
    bucket: ImportBucket,
    imports: ImportStore,
    target: ImportFile,
    before: ExecutionRecord | None,
    timeout: float,
) -> int:
    report_url = f"s3://{bucket.name}/{target.report_key}"
    try:
        record = _follow(lambda: imports.latest_for_file(target.key), before, timeout)
    except KeyboardInterrupt:
        _say(f"\nstopped following; the import goes on, and its report will be {report_url}")
        return INTERRUPTED
    if record is None or record.status == "running":
        _say(f"the import has not finished yet; its report will be {report_url}")
        return 1
    code = {"succeeded": 0, "partially_succeeded": 2}.get(record.status, 1)
    # a file uploaded again before this import finished leaves its report
    # beside the newer upload's (imports.ImportFile.replaced_by_newer_upload)
    for reported in (target, target.replaced_by_newer_upload(record.execution_id)):
        raw_report = bucket.read(reported.report_key)
        if raw_report is not None:
            report_url = f"s3://{bucket.name}/{reported.report_key}"
            print(json.dumps(shown_report(json.loads(raw_report), report_url), indent=2))
            return code
    _say(f"the import ended {record.status}, but its report is not at {report_url}")
    return code


def shown_report(report: dict[str, Any], report_url: str) -> dict[str, Any]:
    """The report as stored, its ``errors`` cut to the first ERRORS_SHOWN;
    ``errors_shown`` says how many are printed, ``report`` where all are."""
    errors = report.get("errors") or []
    return {
        **report,
        "errors": errors[:ERRORS_SHOWN],
        "errors_shown": min(len(errors), ERRORS_SHOWN),
        "report": report_url,
    }


def _follow(
    latest: Callable[[], ExecutionRecord | None], before: ExecutionRecord | None, timeout: float
) -> ExecutionRecord | None:
    """The execution the upload started, once it is no longer running (or
    as it is when ``timeout`` seconds have passed); a progress bar meanwhile."""
    deadline = time.monotonic() + timeout
    record = None
    while time.monotonic() < deadline:
        record = latest()
        if record and (before is None or record.execution_id != before.execution_id):
            _progress(record)
            if record.status != "running":
                break
        else:
            record = None  # the previous upload's execution, not this one's
        time.sleep(0.5)
    print(file=sys.stderr)
    return record


def _figure(value: float) -> str:
    """A figure as the API rounds it (to 0.1) and the web console then shows
    it: one decimal under 10, else whole, halves away from zero (the
    browser's Intl.NumberFormat), so both say the same pace."""
    shown = Decimal(str(round(value, 1)))
    places = Decimal("0.1") if abs(shown) < 10 else Decimal(1)
    return f"{shown.quantize(places, ROUND_HALF_UP):,}"


def _progress(record: ExecutionRecord) -> None:
    progress = record.progress
    bar = "#" * int(progress.fraction * 30)
    if record.status == "running" and record.running_since is None:
        pace = "waiting in the chunk queue"  # behind other imports' chunks
    else:
        pace = f"{_figure(record.rows_per_second(time.time()))} rows/s"
    sys.stderr.write(
        f"\r[{bar:<30}] {progress.fraction:6.1%}  {progress.bytes / 1e6:8.1f} of "
        f"{progress.bytes_total / 1e6:.1f} MB  {progress.rows} rows  {pace}  "
        f"throttled {record.throttled_seconds:,.0f} s  {record.status}   "
    )
    sys.stderr.flush()


COMMANDS: dict[str, Callable[[_Context], int]] = {
    "create-project": create_project,
    "set-id-type": set_id_type,
    "list-id-types": list_id_types,
    "create-key": create_key,
    "list-keys": list_keys,
    "revoke-key": revoke_key,
    "unlock-key": unlock_key,
    "import": run_import,
    "config": show_config,
}


if __name__ == "__main__":
    sys.exit(main())
