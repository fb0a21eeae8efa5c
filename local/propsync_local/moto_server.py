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
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

DEFAULT_PORT = 4566
_LOCAL_PACKAGES = Path(__file__).resolve().parents[1]


class MotoServerError(RuntimeError):
    """The server did not start listening."""


@contextmanager
def running(port: int, output: IO[bytes] | int = subprocess.DEVNULL) -> Iterator[str]:
    """Run the server as a subprocess on 127.0.0.1:``port``; yields its URL
    once it listens, and stops it on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "propsync_local.moto_server", "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(_LOCAL_PACKAGES)},
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_listening(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise MotoServerError(
                f"moto server exited with {process.returncode} before listening: "
                f"is port {port} free?"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise MotoServerError(f"moto server did not listen on 127.0.0.1:{port} within 30 s")


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
