"""A single-threaded moto server on 127.0.0.1.

moto's own ``moto_server`` command serves requests on many threads, and its
DynamoDB then checks a condition and writes in two steps that another request
can slip between: a conditional write is no longer atomic. Served on one
thread, every request runs alone, as each DynamoDB item write does, so tests of
concurrent writers (and the local stack) see DynamoDB's guarantees.

Its S3 enforces the policy of a browser-form upload as S3 does
(propsync_local.s3_post_policy), which moto alone does not.

Usage: ``python -m propsync_local.moto_server --port 4566``; ``running`` hands
it a socket already bound and listening (``--fd``), so that the port it serves
is the one its parent checked.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
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
from werkzeug.serving import make_server

from propsync_local.processes import ServerError, serving_on
from propsync_local.s3_post_policy import PostPolicy

DEFAULT_PORT = 4566
_LOCAL_PACKAGES = Path(__file__).resolve().parents[1]


MotoServerError = ServerError  # the server did not start listening


def running(
    listening: socket.socket, output: IO[bytes] | int = subprocess.DEVNULL
) -> AbstractContextManager[str]:
    """Run the server as a subprocess on ``listening`` (a socket bound to
    127.0.0.1 and listening, see processes.listening_socket; it passes to the
    server); yields its URL once it answers, and stops it on exit."""
    port, fd = listening.getsockname()[1], listening.fileno()
    return serving_on(
        "moto server",
        [sys.executable, "-m", "propsync_local.moto_server", "--port", f"{port}", "--fd", f"{fd}"],
        listening,
        env={**os.environ, "PYTHONPATH": str(_LOCAL_PACKAGES)},
        output=output,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PROPSYNC_AWS_PORT", DEFAULT_PORT))
    )
    parser.add_argument(
        "--fd", type=int, help="serve on this inherited listening socket (bound to --port)"
    )
    args = parser.parse_args(argv)
    # Ctrl-C reaches every process of the terminal's foreground group: the
    # stack that started this server stops it when it is done with it (after
    # applying what the tracking queue holds, which lives in this process).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    server = make_server(
        "127.0.0.1",
        args.port,
        PostPolicy(DomainDispatcherApplication(create_backend_app)),
        threaded=False,
        processes=1,
        request_handler=MotoRequestHandler,
        fd=args.fd,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
