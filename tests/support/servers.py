"""Start and stop local servers for tests (always on 127.0.0.1, always stopped)."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config

from propsync_local import moto_server
from propsync_local.cfn_template import REPO_ROOT
from propsync_local.processes import listening_socket, serving


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


DYNALITE = REPO_ROOT / "node_modules" / ".bin" / "dynalite"


@contextmanager
def dynalite_server() -> Iterator[str]:
    """Yields the endpoint URL of a fresh in-memory dynalite (npm; `make test`
    installs it from package-lock.json). It locks per item, like DynamoDB."""
    if not DYNALITE.exists():
        raise RuntimeError(f"{DYNALITE} is missing: run `make test` (it runs npm ci)")
    port = free_port()
    command = [str(DYNALITE), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
    with serving("dynalite", command, port) as url:
        yield url


@contextmanager
def single_threaded_moto_server() -> Iterator[str]:
    """Yields the endpoint URL of a fresh single-threaded moto server."""
    with moto_server.running(listening_socket()) as url:
        yield url


def dynamodb_client_for(endpoint: str, **config: Any) -> Any:
    """A DynamoDB client for a local engine, with credentials that cannot reach AWS."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(**config) if config else None,
    )
