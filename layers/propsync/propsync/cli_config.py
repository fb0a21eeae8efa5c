"""Where the `propsync` command finds the service: the table, the import
bucket, the AWS endpoints, region and credentials (docs/DECISIONS.md: "The
propsync command finds its stack by itself").

One source gives all of them:

- a deployed stack (``--stack NAME`` or ``PROPSYNC_STACK``): its CloudFormation
  outputs ``PropsyncTableName`` and ``ImportBucketName`` (and ``ApiUrl``, the
  API and stage whose authorizer cache revoke-key and unlock-key flush), read
  with the usual ``AWS_PROFILE`` / ``AWS_REGION`` and credentials;
- the local stack (``--local``, or found by itself): the
  ``.local/credentials.json`` that `make run` writes, looked for in
  ``PROPSYNC_LOCAL_DIR``, else in ``.local/`` of the working directory or of
  the nearest folder above it that has one;
- the environment alone, as the Lambda functions are configured, when
  ``PROPSYNC_TABLE_NAME`` is set and neither of the above is asked for.

Whatever the source, ``PROPSYNC_TABLE_NAME``, ``PROPSYNC_IMPORT_BUCKET`` and
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` win where they are set
(and ``--bucket`` over all of them): the source fills in the rest.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from propsync.access import AUTHORIZER_CACHE_SECONDS
from propsync.bucket import BUCKET_ENV, ImportBucket
from propsync.store.access import AccessStore
from propsync.store.dynamo import TABLE_NAME_ENV, client_config
from propsync.store.imports import ImportStore

STACK_ENV = "PROPSYNC_STACK"
LOCAL_DIR_ENV = "PROPSYNC_LOCAL_DIR"
LOCAL_CREDENTIALS = "credentials.json"
# the outputs of template.yaml the command reads
TABLE_OUTPUT = "PropsyncTableName"
BUCKET_OUTPUT = "ImportBucketName"
API_OUTPUT = "ApiUrl"
# what make run signs with unless the environment has credentials (stack.py)
LOCAL_REGION = "eu-west-1"
LOCAL_KEY = "local"
START_LOCAL = "start the local stack with `make run`"
NAME_A_STACK = f"name a deployed stack with --stack NAME (or {STACK_ENV})"
_GIVE_BUCKET = f"give --bucket or set {BUCKET_ENV}"
# An unreachable endpoint is tried this often, not the five times a Lambda's
# client tries: a person waits for the answer.
_ATTEMPTS = 2


class ConfigError(Exception):
    """The command cannot tell where the service is; the message, one line,
    says what to do."""


@dataclass(frozen=True)
class ApiStage:
    """A REST API and its stage: where API Gateway caches the authorizer's answers."""

    rest_api_id: str
    stage: str

    @classmethod
    def from_url(cls, url: str) -> ApiStage | None:
        """From the stack's ApiUrl output, ``https://<api id>.execute-api.
        <region>.<domain>/<stage>``; None for any other URL (a custom domain
        names no API)."""
        parts = urlsplit(url)
        api_id, _, rest = (parts.hostname or "").partition(".")
        stage = parts.path.strip("/")
        if not (api_id and rest.startswith("execute-api.") and stage) or "/" in stage:
            return None
        return cls(api_id, stage)

    def cache_path(self, region: str | None) -> str:
        """The resource flushing needs apigateway:DELETE on."""
        return (
            f"arn:aws:apigateway:{region or '<region>'}::/restapis/{self.rest_api_id}"
            f"/stages/{self.stage}/cache/authorizers"
        )


@dataclass(frozen=True)
class Settings:
    """Where the command's requests go, and where that was found (``source``,
    shown in errors and by `propsync config`)."""

    source: str
    session: boto3.Session
    table: str | None
    bucket: str | None
    # an endpoint per service, None for boto3's own choice (AWS_ENDPOINT_URL, AWS)
    endpoints: dict[str, str | None] = field(default_factory=dict)
    # said after "cannot reach <endpoint>"
    unreachable_hint: str = "check the endpoint (AWS_ENDPOINT_URL) and the network"
    # the error when a command needs the import bucket and none was found
    no_bucket: str = ""
    # the API whose authorizer cache a revocation flushes (a deployed stack's)
    api_stage: ApiStage | None = None
    # the longest API Gateway may answer for a key from its cache: none with
    # make run, which runs the authorizer for every request
    authorizer_cache_seconds: int = AUTHORIZER_CACHE_SECONDS

    def client(self, service: str, config: Config | None = None) -> Any:
        return _client(self.session, service, self.endpoints.get(service), config)

    @functools.cached_property
    def dynamodb(self) -> Any:
        """One client for both stores, configured as the Lambdas' are
        (store.dynamo.client_config) but for the attempts."""
        return self.client("dynamodb", client_config())

    def require_table(self) -> str:
        if not self.table:  # every source names one; kept for the type
            raise ConfigError(f"{self.source} names no table: set {TABLE_NAME_ENV}")
        return self.table

    def access_store(self) -> AccessStore:
        return AccessStore(self.dynamodb, self.require_table())

    def import_store(self) -> ImportStore:
        return ImportStore(self.dynamodb, self.require_table())

    def import_bucket(self) -> ImportBucket:
        if not self.bucket:
            raise ConfigError(
                self.no_bucket or f"{self.source} names no import bucket: {_GIVE_BUCKET}"
            )
        return ImportBucket(self.client("s3"), self.bucket)

    def region(self) -> str | None:
        region: str | None = self.session.region_name
        return region

    def described(self) -> dict[str, Any]:
        """What `propsync config` prints."""
        return {
            "source": self.source,
            "table": self.table,
            "import_bucket": self.bucket,
            "region": self.region(),
            "endpoints": {
                service: self.endpoints.get(service) or _environment_endpoint(service) or "AWS"
                for service in ("dynamodb", "s3")
            },
        }


def settings(*, stack: str | None, local: bool, bucket: str | None = None) -> Settings:
    """The settings of the source the options and environment choose (see the
    module's docstring); ConfigError if there is none."""
    stack = stack or (None if local else os.environ.get(STACK_ENV) or None)
    if stack:
        found = _stack_settings(stack)
    elif local:
        directory = _local_dir()
        if directory is None:
            raise ConfigError(f"no local stack: {START_LOCAL} ({_no_local_credentials()})")
        found = _local_settings(directory)
    elif os.environ.get(TABLE_NAME_ENV):
        found = Settings(
            source=f"the environment ({TABLE_NAME_ENV})",
            session=_aws_session(),
            table=None,
            bucket=None,
            no_bucket=f"{BUCKET_ENV} is not set: name the import bucket with it or with "
            "--bucket (--stack NAME finds a deployed stack's)",
        )
    else:
        directory = _local_dir()
        if directory is None:
            raise ConfigError(
                f"{TABLE_NAME_ENV} is not set and no local stack was found "
                f"({_no_local_credentials()}): {START_LOCAL}, or {NAME_A_STACK}"
            )
        found = _local_settings(directory)
    return dataclasses.replace(
        found,
        table=os.environ.get(TABLE_NAME_ENV) or found.table,
        bucket=bucket or os.environ.get(BUCKET_ENV) or found.bucket,
    )


# ------------------------------------------------------------ the local stack


def _local_dir() -> Path | None:
    """PROPSYNC_LOCAL_DIR if it holds credentials.json, else the nearest
    ``.local`` with one, from the working directory up."""
    explicit = os.environ.get(LOCAL_DIR_ENV)
    if explicit:
        directory = Path(explicit)
        return directory if (directory / LOCAL_CREDENTIALS).is_file() else None
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / ".local" / LOCAL_CREDENTIALS).is_file():
            return folder / ".local"
    return None


def _no_local_credentials() -> str:
    explicit = os.environ.get(LOCAL_DIR_ENV)
    if explicit:
        return f"no {Path(explicit) / LOCAL_CREDENTIALS}"
    return f"no .local/{LOCAL_CREDENTIALS} here or in a folder above"


def _local_settings(directory: Path) -> Settings:
    path = directory / LOCAL_CREDENTIALS
    try:
        credentials = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except ValueError:
        raise ConfigError(f"{path} is not JSON: start `make run` again to rewrite it") from None
    needed = ("table_name", "import_bucket", "aws_endpoint_url")
    if not isinstance(credentials, dict) or any(
        not isinstance(credentials.get(key), str) for key in needed
    ):
        raise ConfigError(
            f"{path} does not name the local stack's {', '.join(needed)}: "
            "start `make run` again to rewrite it"
        )
    aws_url = credentials["aws_endpoint_url"]
    dynamodb_url = credentials.get("dynamodb_endpoint_url") or aws_url
    # make run signs with the environment's credentials if it has any, else
    # with these, which can reach nothing but a local engine
    session = boto3.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or LOCAL_KEY,
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or LOCAL_KEY,
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
        region_name=credentials.get("region") or LOCAL_REGION,
    )
    return Settings(
        source=f"the local stack ({path})",
        session=session,
        table=credentials["table_name"],
        bucket=credentials["import_bucket"],
        endpoints={
            "dynamodb": None if _environment_endpoint("dynamodb") else dynamodb_url,
            "s3": None if _environment_endpoint("s3") else aws_url,
        },
        unreachable_hint=f"is `make run` running? (its address comes from {path})",
        authorizer_cache_seconds=0,
    )


def _environment_endpoint(service: str) -> str | None:
    """The endpoint boto3 takes from the environment for ``service``, if any."""
    return (
        os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )


# ------------------------------------------------------------ a deployed stack


def _client(
    session: boto3.Session, service: str, endpoint: str | None, config: Config | None = None
) -> Any:
    retries = Config(retries={"mode": "standard", "max_attempts": _ATTEMPTS})
    return session.client(
        service,
        endpoint_url=endpoint,
        config=retries if config is None else config.merge(retries),
    )


def _aws_session() -> boto3.Session:
    """boto3's session, with AWS_REGION before AWS_DEFAULT_REGION and the
    profile's region, as the AWS CLI takes it (botocore alone reads only
    AWS_DEFAULT_REGION)."""
    return boto3.Session(region_name=os.environ.get("AWS_REGION") or None)


def _stack_settings(name: str) -> Settings:
    session = _aws_session()
    outputs = stack_outputs(_client(session, "cloudformation", None), name)
    source = f"stack {name!r} ({session.region_name})"
    if TABLE_OUTPUT not in outputs and not os.environ.get(TABLE_NAME_ENV):
        raise ConfigError(
            f"{source} has no output {TABLE_OUTPUT}: it is not a propsync stack, or its "
            f"deployment has not finished; {NAME_A_STACK}"
        )
    return Settings(
        source=source,
        session=session,
        table=outputs.get(TABLE_OUTPUT),
        bucket=outputs.get(BUCKET_OUTPUT),
        no_bucket=f"{source} has no output {BUCKET_OUTPUT}: {_GIVE_BUCKET}",
        api_stage=ApiStage.from_url(outputs.get(API_OUTPUT, "")),
    )


def stack_outputs(cloudformation: Any, name: str) -> dict[str, str]:
    """The stack's outputs by key; ConfigError if there is no such stack."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" not in error.response.get("Error", {}).get("Message", ""):
            raise
        stacks = []
    if not stacks:
        raise ConfigError(
            f"no CloudFormation stack {name!r} in {cloudformation.meta.region_name}: deploy "
            "it (.venv-sam/bin/sam deploy --guided), or check --stack, AWS_PROFILE and AWS_REGION"
        )
    return {
        output["OutputKey"]: output["OutputValue"]
        for output in stacks[0].get("Outputs", [])
        if "OutputKey" in output and "OutputValue" in output
    }
