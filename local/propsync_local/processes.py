"""Local servers as subprocesses: started, awaited, stopped.

A server we start on a port of our choosing gets a socket this process has
already bound and made listen (``listening_socket``, then ``serving_on``):
binding is the check that the port is free, so no other program can take it
in between, and nothing is ever sent to a server we did not start. ``serving``
(a server that binds its own port, and is merely awaited on it) is left for
test engines that cannot be handed a socket (dynalite).
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO


class ServerError(RuntimeError):
    """A server did not start listening."""


def listening_socket(port: int = 0) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:``port`` (0: any free port) and
    listening, for ``serving_on``; OSError (EADDRINUSE) if the port is taken.
    Connections that arrive before the server accepts them wait in its backlog."""
    return socket.create_server(("127.0.0.1", port))


@contextmanager
def serving_on(
    name: str,
    command: Sequence[str],
    listening: socket.socket,
    *,
    env: Mapping[str, str] | None = None,
    output: IO[bytes] | int = subprocess.DEVNULL,
    timeout: float = 30.0,
) -> Iterator[str]:
    """Run ``command``, a server that serves on the listening socket it
    inherits (descriptor ``listening.fileno()``); yield its URL once it has
    answered an HTTP request; terminate it on exit. This process's copy of the
    socket is closed once the server has it, so the port closes when the
    server exits."""
    port = listening.getsockname()[1]
    fd = listening.fileno()
    try:
        process = subprocess.Popen(
            list(command),
            env=dict(env) if env else None,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=(fd,),
        )
    finally:
        listening.close()
    with _stopped_on_exit(process):
        deadline = time.monotonic() + timeout
        # The socket listens already, so a connection always succeeds: the
        # server is up when it answers, and a server that died resets it.
        while not _answers_http(port, max(deadline - time.monotonic(), 0.1)):
            if process.poll() is not None:
                raise ServerError(f"{name} exited with {process.returncode} before serving")
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{name} did not answer on 127.0.0.1:{port} within {timeout:.0f} s"
                )
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"


def _answers_http(port: int, timeout: float) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


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
    """Run ``command`` (a server that binds 127.0.0.1:``port`` itself); yield
    its URL once something listens there; terminate it on exit. For test
    engines on a port just found free; anything that must not mistake another
    program for its server uses ``serving_on``."""
    process = subprocess.Popen(
        list(command), env=dict(env) if env else None, stdout=output, stderr=subprocess.STDOUT
    )
    with _stopped_on_exit(process):
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


@contextmanager
def _stopped_on_exit(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """Terminate ``process`` on exit (kill it if it lingers)."""
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
