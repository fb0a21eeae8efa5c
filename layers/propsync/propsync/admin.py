"""propsync administration: projects and API keys.

    python -m propsync.admin create-project --name "My shop"
    python -m propsync.admin create-key --project TOKEN --permission customer_properties:get ...
    python -m propsync.admin list-keys --project TOKEN
    python -m propsync.admin revoke-key KEY_ID

The table is PROPSYNC_TABLE_NAME; endpoint, region and credentials come from
the environment as for any boto3 program (AWS_ENDPOINT_URL for the local stack,
AWS_PROFILE / AWS_REGION for an account). A secret is printed once, when its key
is created, and is never stored: only its salted hash is.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence

from propsync.access import Permission, create_api_key, is_project_token, parse_permissions
from propsync.store import access_store_from_environment


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m propsync.admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    project = commands.add_parser("create-project", help="create a project, print its token")
    project.add_argument("--name", required=True)
    project.add_argument("--token", help="a UUID to use as the token (default: a new one)")

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

    revoke = commands.add_parser("revoke-key", help="revoke a key; it stops working at once")
    revoke.add_argument("key_id")

    args = parser.parse_args(argv)
    access = access_store_from_environment()

    if args.command == "create-project":
        token = args.token or str(uuid.uuid4())
        if not is_project_token(token):
            print(f"--token {token!r} is not a UUID; project tokens are UUIDs", file=sys.stderr)
            return 2
        if not access.create_project(token, args.name):
            print(f"project {token} already exists", file=sys.stderr)
            return 1
        print(json.dumps({"project_token": token, "name": args.name}))
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
    print(json.dumps({"api_key_id": args.key_id, "revoked": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
