"""Start and stop local servers for tests (always on 127.0.0.1, always stopped)."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config

from propsync_local import moto_server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def single_threaded_moto_server() -> Iterator[str]:
    """Yields the endpoint URL of a fresh single-threaded moto server."""
    with moto_server.running(free_port()) as url:
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
