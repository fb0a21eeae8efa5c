"""propsync administration: projects, their id types and API keys.

    python -m propsync.admin create-project --name "My shop"
    python -m propsync.admin set-id-type --project TOKEN --id-type email --soft
    python -m propsync.admin list-id-types --project TOKEN
    python -m propsync.admin create-key --project TOKEN --permission customer_properties:get ...
    python -m propsync.admin list-keys --project TOKEN
    python -m propsync.admin revoke-key KEY_ID
    python -m propsync.admin import --project TOKEN --name crm --mapping mapping.json people.csv

The table is PROPSYNC_TABLE_NAME; endpoint, region and credentials come from
the environment as for any boto3 program (AWS_ENDPOINT_URL for the local stack,
AWS_PROFILE / AWS_REGION for an account); `import` uploads to the bucket
PROPSYNC_IMPORT_BUCKET (or --bucket) and follows the execution to its report.
A secret is printed once, when its key is created, and is never stored: only
its salted hash is.

A new project knows the id types registered (hard: one value per customer)
and cookie (soft: many). set-id-type adds one; tracking and the customer
routes accept it within 60 s (each Lambda container remembers a project's id
types that long), every import started after it knows it. An id type's kind
never changes, and id types are not removed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from propsync.access import (
    AUTHORIZER_CACHE_SECONDS,
    Permission,
    create_api_key,
    is_project_token,
    parse_permissions,
)
from propsync.errors import IdTypeKindError, InvalidCustomerIdsError, UnknownProjectError
from propsync.id_type_cache import ID_TYPES_CACHE_SECONDS
from propsync.id_types import DEFAULT_ID_TYPES, HARD, SOFT
from propsync.store.access import access_store_from_environment

if TYPE_CHECKING:
    from propsync.bucket import ImportBucket


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m propsync.admin",
        description=__doc__,
        # the examples in the docstring keep their lines
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    project = commands.add_parser("create-project", help="create a project, print its token")
    project.add_argument("--name", required=True)
    project.add_argument("--token", help="a UUID to use as the token (default: a new one)")

    id_type = commands.add_parser(
        "set-id-type",
        help="add an id type to a project; tracking accepts it within "
        f"{ID_TYPES_CACHE_SECONDS:.0f} s (each container caches a project's id types that long)",
    )
    id_type.add_argument("--project", required=True, help="project token")
    id_type.add_argument("--id-type", required=True, help="its name, e.g. email")
    kind = id_type.add_mutually_exclusive_group(required=True)
    kind.add_argument(
        "--hard", dest="kind", action="store_const", const=HARD, help="one value per customer"
    )
    kind.add_argument(
        "--soft", dest="kind", action="store_const", const=SOFT, help="many values per customer"
    )

    id_types = commands.add_parser("list-id-types", help="list a project's id types and kinds")
    id_types.add_argument("--project", required=True, help="project token")

    key = commands.add_parser("create-key", help="create an API key, print its id and secret")
    key.add_argument("--project", required=True, help="project token")
    key.add_argument(
        "--permission",
        action="append",
        default=[],
        choices=[p.value for p in Permission],
        help="repeat for several; default: all",
    )

    listing = commands.add_parser("list-keys", help="list a project's keys (never secrets)")
    listing.add_argument("--project", required=True)

    revoke = commands.add_parser(
        "revoke-key",
        help=f"revoke a key; requests with it are refused within {AUTHORIZER_CACHE_SECONDS} s "
        "(API Gateway caches each authorizer answer that long)",
    )
    revoke.add_argument("key_id")

    upload = commands.add_parser(
        "import", help="upload a mapping and a file, follow the import until its report"
    )
    upload.add_argument("file", type=Path, help="the CSV file (.csv or .csv.gz)")
    upload.add_argument("--project", required=True, help="project token")
    upload.add_argument("--name", required=True, help="import name (a folder of the bucket)")
    upload.add_argument("--mapping", type=Path, help="mapping.json to upload first")
    upload.add_argument("--bucket", help="import bucket (default: $PROPSYNC_IMPORT_BUCKET)")
    upload.add_argument("--timeout", type=float, default=3600.0, help="seconds to follow")
    upload.add_argument("--no-follow", action="store_true", help="upload only")

    args = parser.parse_args(argv)
    if args.command == "import":
        return run_import(args)
    if args.command in ("set-id-type", "list-id-types"):
        return run_id_types(args)
    access = access_store_from_environment()

    if args.command == "create-project":
        token = args.token or str(uuid.uuid4())
        if not is_project_token(token):
            print(f"--token {token!r} is not a UUID; project tokens are UUIDs", file=sys.stderr)
            return 2
        if not access.create_project(token, args.name):
            print(f"project {token} already exists", file=sys.stderr)
            return 1
        print(
            json.dumps(
                {
                    "project_token": token,
                    "name": args.name,
                    "id_types": DEFAULT_ID_TYPES.to_item(),
                }
            )
        )
        return 0
    if args.command == "create-key":
        if not access.project_exists(args.project):
            print(f"no project {args.project}: create it first", file=sys.stderr)
            return 1
        permissions = parse_permissions(args.permission or [p.value for p in Permission])
        new = create_api_key(access, args.project, permissions)
        print(
            json.dumps(
                {
                    "api_key_id": new.key_id,
                    "api_secret": new.secret,
                    "project_token": args.project,
                    "permissions": sorted(permissions),
                    "note": "the secret is shown only now; store it safely",
                }
            )
        )
        return 0
    if args.command == "list-keys":
        for record in access.list_api_keys(args.project):
            print(
                json.dumps(
                    {
                        "api_key_id": record.key_id,
                        "permissions": sorted(record.permissions),
                        "created": record.created,
                        "revoked": record.revoked,
                    }
                )
            )
        return 0
    # revoke-key
    if not access.revoke_api_key(args.key_id):
        print(f"no API key {args.key_id}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "api_key_id": args.key_id,
                "revoked": True,
                "refused_within_seconds": AUTHORIZER_CACHE_SECONDS,
                "note": f"requests with this key are refused within {AUTHORIZER_CACHE_SECONDS} s: "
                "API Gateway caches each authorizer answer for that long",
            }
        )
    )
    return 0


def run_id_types(args: argparse.Namespace) -> int:
    """set-id-type and list-id-types: a JSON line per id type, or one line on
    stderr saying what was refused (exit 1, 2 for a name no id type may have)."""
    if not is_project_token(args.project):
        print(f"--project {args.project!r} is not a project token (a UUID)", file=sys.stderr)
        return 1
    access = access_store_from_environment()
    if args.command == "list-id-types":
        id_types = access.project_id_types(args.project)
        if id_types is None:
            print(f"no project {args.project}: create it first", file=sys.stderr)
            return 1
        for name, kind in id_types.to_item().items():
            print(json.dumps({"id_type": name, "kind": kind}))
        return 0
    try:
        added = access.add_id_type(args.project, args.id_type, hard=args.kind == HARD)
    except UnknownProjectError:
        print(f"no project {args.project}: create it first", file=sys.stderr)
        return 1
    except InvalidCustomerIdsError as error:  # the name
        print(error, file=sys.stderr)
        return 2
    except IdTypeKindError as error:
        print(error, file=sys.stderr)
        return 1
    seconds = f"{ID_TYPES_CACHE_SECONDS:.0f}"
    print(
        json.dumps(
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
    )
    return 0


def _bucket(name: str | None) -> ImportBucket:
    """--bucket, else $PROPSYNC_IMPORT_BUCKET (RuntimeError naming it if unset)."""
    from propsync.bucket import ImportBucket, bucket_from_environment  # noqa: PLC0415

    if not name:
        return bucket_from_environment()
    import boto3  # noqa: PLC0415

    return ImportBucket(boto3.client("s3"), name)


def run_import(args: argparse.Namespace) -> int:
    """Upload, then follow the execution with a progress bar on stderr and
    print the report's summary on stdout. Exit 0 succeeded, 2 partially
    succeeded, 1 failed or incomplete (or not finished in time)."""
    from propsync.store.imports import import_store_from_environment  # noqa: PLC0415

    if not is_project_token(args.project):
        print(f"--project {args.project!r} is not a project token (a UUID)", file=sys.stderr)
        return 1
    if not args.file.name.endswith((".csv", ".csv.gz")):
        print("the file must end in .csv or .csv.gz", file=sys.stderr)
        return 1
    from propsync.imports import name_problem  # noqa: PLC0415

    problem = name_problem("import name", args.name) or name_problem("file name", args.file.name)
    if problem:  # the import function would refuse it: say so before uploading
        print(problem, file=sys.stderr)
        return 1
    # Both files are opened before anything is uploaded: a mistyped path must
    # not leave a new mapping.json behind for the import's next file.
    try:
        mapping = args.mapping.read_bytes() if args.mapping else None
        data = args.file.open("rb")
    except OSError as error:
        print(f"cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    with data:
        try:
            bucket = _bucket(args.bucket)
            imports = import_store_from_environment()
        except RuntimeError as error:  # a setting is missing: the message names it
            print(f"{error} (make run prints the local stack's values)", file=sys.stderr)
            return 1
        folder = f"imports/{args.project}/{args.name}"
        key = f"{folder}/{args.file.name}"
        if mapping is not None:
            bucket.put(f"{folder}/mapping.json", mapping, "application/json")
        before = imports.latest_for_file(key)
        bucket.put(key, data, "text/csv")
    print(f"uploaded s3://{bucket.name}/{key}", file=sys.stderr)
    if args.no_follow:
        return 0

    deadline = time.monotonic() + args.timeout
    record = None
    while time.monotonic() < deadline:
        record = imports.latest_for_file(key)
        if record and (before is None or record.execution_id != before.execution_id):
            _progress(record)
            if record.status != "running":
                break
        time.sleep(0.5)
    print(file=sys.stderr)
    if record is None or record.status == "running":
        print(
            "the import has not finished yet; its report will be written to "
            f"s3://{bucket.name}/reports/{args.project}/{args.name}/",
            file=sys.stderr,
        )
        return 1
    report_key = f"reports/{args.project}/{args.name}/{args.file.name}.json"
    report = json.loads(bucket.read(report_key) or b"{}")
    summary = {k: v for k, v in report.items() if k != "errors"}
    summary["first_errors"] = report.get("errors", [])[:5]
    print(json.dumps(summary, indent=2))
    return {"succeeded": 0, "partially_succeeded": 2}.get(record.status, 1)


def _progress(record: Any) -> None:
    total = record.bytes_total
    done = min(max(record.progress_bytes, record.counters["bytes_done"]), total) if total else 0
    rows = max(record.progress_rows, record.counters["rows_read"])
    if record.status != "running" and total:
        done = total
    fraction = done / total if total else 0.0
    bar = "#" * int(fraction * 30)
    sys.stderr.write(
        f"\r[{bar:<30}] {fraction:6.1%}  {done / 1e6:8.1f} of {total / 1e6:.1f} MB  "
        f"{rows} rows  {record.status}   "
    )
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
