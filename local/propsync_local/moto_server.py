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

CORS as S3 applies it, for the console's uploads from a browser: moto's
server would answer every request of any web page with
``Access-Control-Allow-Origin`` (its global CORS, switched off here), and it
leaves the bucket's own CORS rules out of a form POST's answer (it applies
them to preflights and object reads only); here a POST's answer, the upload
stored or refused by its policy, gets the headers of the bucket's first rule
matching its origin and method, as S3 does, and none otherwise
(docs/DECISIONS.md: "The import bucket's CORS rule, on AWS and locally").
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

from moto.moto_server import werkzeug_app
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3.models import s3_backends
from moto.s3.responses import S3Response
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


def bucket_cors_headers(bucket_name: str, origin: str | None, method: str) -> dict[str, str]:
    """The CORS headers S3 adds to the answer (not a preflight's) to a
    ``method`` request from ``origin``: those of the bucket's first rule
    whose AllowedOrigin matches the origin (exactly, or with its one ``*``
    standing for any text) and whose AllowedMethod is the method; none
    without an Origin, for a bucket that does not exist, or when no rule
    matches. S3 evaluates them for every request, an error's answer too."""
    located = s3_backends.bucket_accounts.get(bucket_name)
    if not origin or located is None:
        return {}
    partition, account = located
    bucket = s3_backends[account][partition].buckets.get(bucket_name)
    for rule in bucket.cors if bucket is not None else []:
        if method in (rule.allowed_methods or []) and any(
            _origin_matches(origin, allowed) for allowed in rule.allowed_origins or []
        ):
            headers = {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ", ".join(rule.allowed_methods),
                "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
            }
            if rule.exposed_headers:
                headers["Access-Control-Expose-Headers"] = ", ".join(rule.exposed_headers)
            if rule.max_age_seconds is not None:
                headers["Access-Control-Max-Age"] = str(rule.max_age_seconds)
            return headers
    return {}


def _origin_matches(origin: str, allowed: str) -> bool:
    # the whole origin, not a prefix (moto's own matcher would let
    # http://127.0.0.1:30001 through a rule for http://127.0.0.1:3000)
    pattern = ".*".join(re.escape(part) for part in allowed.split("*"))
    return re.fullmatch(pattern, origin) is not None


def apply_bucket_cors_like_s3() -> None:
    """Only the buckets' CORS rules decide what a web page may read: no
    global CORS, and a POST to a bucket (a presigned form upload) answered
    with the headers of the bucket's rule for the request's Origin
    (bucket_cors_headers, which PostPolicy's refusals carry too)."""
    # read when each service's app is made
    werkzeug_app.DISABLE_GLOBAL_CORS = True  # type: ignore[attr-defined]
    post = S3Response._bucket_response_post
    if getattr(post, "_with_bucket_cors", False):
        return

    def with_bucket_cors(self: S3Response, request: Any, bucket_name: str) -> Any:
        status, headers, body = post(self, request, bucket_name)
        cors = bucket_cors_headers(bucket_name, request.headers.get("Origin"), "POST")
        return status, {**cors, **headers}, body

    with_bucket_cors._with_bucket_cors = True  # type: ignore[attr-defined]
    S3Response._bucket_response_post = with_bucket_cors  # type: ignore[method-assign]


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
    apply_bucket_cors_like_s3()
    server = make_server(
        "127.0.0.1",
        args.port,
        PostPolicy(
            DomainDispatcherApplication(create_backend_app), cors_headers=bucket_cors_headers
        ),
        threaded=False,
        processes=1,
        request_handler=MotoRequestHandler,
        fd=args.fd,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
