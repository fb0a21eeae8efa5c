"""A single-threaded moto server on 127.0.0.1.

moto's own ``moto_server`` command serves requests on many threads, and its
DynamoDB then checks a condition and writes in two steps that another request
can slip between: a conditional write is no longer atomic. Served on one
thread, every request runs alone, as each DynamoDB item write does, so tests of
concurrent writers (and the local stack) see DynamoDB's guarantees.

Usage: ``python -m propsync_local.moto_server --port 4566``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

from propsync_local.processes import ServerError, serving

DEFAULT_PORT = 4566
_LOCAL_PACKAGES = Path(__file__).resolve().parents[1]


MotoServerError = ServerError  # the server did not start listening


def running(port: int, output: IO[bytes] | int = subprocess.DEVNULL) -> AbstractContextManager[str]:
    """Run the server as a subprocess on 127.0.0.1:``port``; yields its URL
    once it listens, and stops it on exit."""
    return serving(
        "moto server",
        [sys.executable, "-m", "propsync_local.moto_server", "--port", str(port)],
        port,
        env={**os.environ, "PYTHONPATH": str(_LOCAL_PACKAGES)},
        output=output,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PROPSYNC_AWS_PORT", DEFAULT_PORT))
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    run_simple(
        "127.0.0.1",
        args.port,
        DomainDispatcherApplication(create_backend_app),
        threaded=False,
        processes=1,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
