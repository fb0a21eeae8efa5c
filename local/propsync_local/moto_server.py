"""A single-threaded moto server on 127.0.0.1.

moto's own ``moto_server`` command serves requests on many threads, and its
DynamoDB then checks a condition and writes in two steps that another request
can slip between: a conditional write is no longer atomic. Served on one
thread, every request runs alone, as each DynamoDB item write does, so tests of
concurrent writers (and the local stack) see DynamoDB's guarantees.

Usage: ``python -m propsync_local.moto_server --port 4566``
"""

import argparse
import os

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

DEFAULT_PORT = 4566


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
