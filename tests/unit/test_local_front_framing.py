"""make run's HTTP front reads a request's body as API Gateway would take it:
by its Content-Length or chunked. A length that is not a number is a clear
400, never a dropped connection or a server left waiting for the end of the
input (it serves one request at a time); past 10 MB the body is not kept
whole, and apigw answers 413 (its own tests)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from propsync_local import apigw, stack


@pytest.fixture
def front(monkeypatch) -> Iterator[int]:
    """The front on a free port, with a handler that answers the body's length."""

    def echo(method, path, *, query=None, headers=None, body=None):
        answer = {
            "bytes": None if body is None else len(body),
            "start": (body or b"")[:16].decode(),
        }
        return apigw.HttpResponse(200, {"Content-Type": "application/json"}, json.dumps(answer))

    monkeypatch.setattr(apigw, "handle", echo)
    server = stack._FrontServer(("127.0.0.1", 0), stack._Front)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def exchange(port: int, request: bytes, *, close_write: bool = True) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        if close_write:
            connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(1 << 16):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def post(headers: str, body: bytes = b"") -> bytes:
    return b"POST /track HTTP/1.1\r\nHost: x\r\n" + headers.encode() + b"\r\n" + body


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "0x10", ""])
def test_a_content_length_that_is_not_a_number_is_a_clear_400(front, length):
    status, answer = exchange(front, post(f"Content-Length: {length}\r\n", b"{}"))
    assert status == 400
    assert answer["success"] is False
    assert answer["error"].startswith("Bad request: Content-Length ")


def test_a_negative_length_does_not_leave_the_server_waiting(front):
    """The client keeps its side open: a read "to the end" would wait for it."""
    status, _ = exchange(front, post("Content-Length: -1\r\n", b"{}"), close_write=False)
    assert status == 400
    assert exchange(front, post("Content-Length: 2\r\n", b"{}")) == (
        200,
        {"bytes": 2, "start": "{}"},
    )


def test_a_chunked_body_is_read_whole(front):
    chunked = b'4\r\n{"a"\r\n3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\nTrailer: x\r\n\r\n'
    status, answer = exchange(front, post("Transfer-Encoding: chunked\r\n", chunked))
    assert (status, answer) == (200, {"bytes": 8, "start": '{"a": 1}'})


def test_a_chunked_body_with_a_bad_size_is_a_400(front):
    status, answer = exchange(
        front, post("Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n")
    )
    assert status == 400
    assert "chunk" in answer["error"]


def test_a_body_over_10_mb_is_kept_to_one_byte_over_for_the_413(front):
    length = stack.MAX_REQUEST_BODY_BYTES + 5000
    status, answer = exchange(front, post(f"Content-Length: {length}\r\n", b"x" * length))
    assert (status, answer["bytes"]) == (200, stack.MAX_REQUEST_BODY_BYTES + 1)


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "FOO"])
def test_any_method_reaches_the_routes_never_a_501(front, method):
    """API Gateway answers a method no route has with its 404 (apigw's), not 501."""
    request = f"{method} /api/key HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
    assert exchange(front, request) == (200, {"bytes": None, "start": ""})


def test_a_method_no_route_has_is_apigws_404():
    response = apigw.handle("OPTIONS", "/api/key")
    assert (response.status, json.loads(response.body)) == (
        404,
        {"success": False, "error": "Not found"},
    )
