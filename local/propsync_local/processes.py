"""Local servers as subprocesses: started, awaited on their port, stopped."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO


class ServerError(RuntimeError):
    """A server did not start listening."""


@contextmanager
def serving(
    name: str,
    command: Sequence[str],
    port: int,
    *,
    env: Mapping[str, str] | None = None,
    output: IO[bytes] | int = subprocess.DEVNULL,
    timeout: float = 30.0,
) -> Iterator[str]:
    """Run ``command`` (a server for 127.0.0.1:``port``); yield its URL once it
    listens; terminate it (kill it if it lingers) on exit."""
    process = subprocess.Popen(
        list(command), env=dict(env) if env else None, stdout=output, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise ServerError(
                    f"{name} exited with {process.returncode} before listening: "
                    f"is port {port} free?"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"{name} did not listen on 127.0.0.1:{port} within {timeout:.0f} s"
                    ) from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
