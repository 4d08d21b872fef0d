"""What the fuzz tier found, one class at a time: the smallest request that
showed each, sent over real HTTP to gunicorn, with the answer it must get."""

from __future__ import annotations

import json
import re
import socket

import pytest

from dev.waiting import wait_until
from support.fuzzing import ERRORS
from support.rawhttp import Answer, Connection, chunked, request_bytes

pytestmark = [pytest.mark.gunicorn, pytest.mark.sqlite_only]

HOST = ("Host", "127.0.0.1")
CHUNKED_JSON = [HOST, ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]


def exchange(url: str, data: bytes, *, half_close: bool = False) -> list[Answer]:
    """Every answer the server writes for `data`, until it closes."""
    with Connection(url) as conn:
        conn.send(data)
        if half_close:
            conn.finish_sending()
        answers = [conn.read_answer()]
        if answers[0].keeps_alive and not half_close:
            conn.send(request_bytes("GET", "/healthz", [HOST, ("Connection", "close")]))
        while not conn.closed_by_server():
            answers.append(conn.read_answer())
    return answers


def error_of(answer: Answer) -> str:
    assert (answer.header("Content-Type") or "").startswith("application/json"), answer.text()
    body = json.loads(answer.body)
    assert body["code"] == ERRORS[body["error"]][1] and body["message"], body
    return body["error"]


def honest(answers: list[Answer]) -> Answer:
    """The first answer, after checking its Connection header told the truth:
    after keep-alive the next request on the connection was answered."""
    first = answers[0]
    if first.keeps_alive:
        assert [a.status for a in answers] == [first.status, 200], [a.text() for a in answers]
    else:
        assert len(answers) == 1, [a.text() for a in answers]
    return first


# -- a body whose chunked framing is broken ----------------------------------------


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # a chunk size that is not hex
        b"3\r\nabcXX0\r\n\r\n",  # no CRLF after the chunk
        b"3;=\r\nabc\r\n0\r\n\r\n",  # a malformed chunk extension
        b"3\r\nabc\r\n0\r\nHost: x\r\n\r\n",  # a trailer that may not be one
    ],
)
def test_a_broken_chunked_body_is_400_invalid_body(fuzz_service, chunks):
    """Was: 500 internal_error and a traceback, on every endpoint that reads a body."""
    answers = exchange(
        fuzz_service.url,
        request_bytes(
            "POST",
            "/oauth/logout",
            CHUNKED_JSON,
            chunks,
        ),
    )
    assert answers[0].status == 400
    assert error_of(answers[0]) == "invalid_body"
    assert "Traceback" not in fuzz_service.log_text()


# -- a chunked body over the 64 KB limit ---------------------------------------------


def chunked_login(server, control, extra: int, half_close: bool = False) -> list[Answer]:
    """A login with a fresh code whose JSON body, padded with spaces to 64 KiB
    and `extra` bytes more, is sent in 8 KiB chunks."""
    code = control.login()["code"]
    body = b'{"code": "%s"}' % code.encode()
    body += b" " * (64 * 1024 - len(body) + extra)
    request = request_bytes("POST", "/oauth/login", CHUNKED_JSON, chunked(body, [8192] * 20))
    return exchange(server.url, request, half_close=half_close)


@pytest.mark.parametrize("extra", [1, 200_000])
def test_a_chunked_body_over_the_limit_is_413(fuzz_service, control, extra):
    """Was: the first 64 KB were read and parsed as the whole body, so a valid
    object padded past the limit logged in (200)."""
    answers = chunked_login(fuzz_service, control, extra, half_close=True)
    assert answers[0].status == 413
    assert error_of(answers[0]) == "payload_too_large"


def test_a_chunked_body_of_exactly_the_limit_is_read(fuzz_service, control):
    answers = chunked_login(fuzz_service, control, 0)
    assert answers[0].status == 200, answers[0].text()


# -- keep-alive promised on a connection the server then closes -----------------------


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        # a body the service never reads, over gunicorn's 64 KiB drain
        ("GET", "/healthz", [("Content-Length", "70000")], b"x" * 70000),
        # refused by its Content-Length, unread
        ("POST", "/oauth/login", [("Content-Length", "70000")], b"x" * 70000),
        # a 401 before the body is read; the drain then hits the broken chunk
        ("POST", "/user/bindinfo", [("Transfer-Encoding", "chunked")], b"zz\r\nabc\r\n0\r\n\r\n"),
        # a 404 with a body that is still coming
        ("POST", "/nowhere", [("Content-Length", "10")], b"abc"),
    ],
)
def test_the_connection_header_tells_the_truth(fuzz_service, method, path, headers, body):
    """Was: 'Connection: keep-alive', then the server closed the connection
    (the next request was lost), or wrote a second, HTML 400 answer on it."""
    data = request_bytes(method, path, [HOST, ("Content-Type", "application/json"), *headers], body)
    with Connection(fuzz_service.url) as conn:
        conn.send(data)
        first = conn.read_answer(method)
        assert first.status == 200 or error_of(first)
        if first.keeps_alive:
            conn.send(request_bytes("GET", "/healthz", [HOST]))
            assert conn.read_answer().status == 200
        else:
            assert conn.closed_by_server()


def test_a_body_read_to_its_end_keeps_the_connection(fuzz_service):
    with Connection(fuzz_service.url) as conn:
        for framing, body in [
            ([("Content-Length", "11")], b'{"all": ""}'),
            ([("Transfer-Encoding", "chunked")], chunked(b'{"all": ""}', [3])),
        ]:
            conn.send(request_bytes("POST", "/oauth/logout", [HOST, *framing], body))
            answer = conn.read_answer("POST")
            assert answer.status == 200 and answer.keeps_alive


# -- what gunicorn answers by itself ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
        (b"GET /healthz HTTP/1.1\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n", 431),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", 417),
        (b"G\x00T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        (b"POST /oauth/logout HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
        (b"POST /oauth/logout HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    ],
)
def test_gunicorns_own_errors_are_json(fuzz_service, data, status):
    """Was: an HTML page."""
    (answer,) = exchange(fuzz_service.url, data, half_close=True)
    assert answer.status == status
    assert error_of(answer) == "bad_request"
    assert answer.header("Cache-Control") == "no-store"
    assert not answer.keeps_alive
    # Findable in the log by its id, like any other answer.
    request_id = answer.header("X-Request-ID")
    assert request_id and re.fullmatch(r"[0-9a-f]{32}", request_id)
    wait_until(
        lambda: f"request_id={request_id}" in fuzz_service.log_text(),
        timeout=5,
        what="the refusal's log line",
    )


@pytest.mark.parametrize("coding", ["x-custom", "chunked;q=1", "", "*"])
def test_an_unknown_transfer_coding_is_400(fuzz_service, coding):
    """Was: 501 (a server error) with an HTML page."""
    data = request_bytes(
        "POST", "/oauth/logout", [HOST, ("Transfer-Encoding", coding)], b"0\r\n\r\n"
    )
    (answer,) = exchange(fuzz_service.url, data, half_close=True)
    assert answer.status == 400
    assert error_of(answer) == "bad_request"


@pytest.mark.parametrize("value", ["/prefix", "/oauth", "/healthz"])
def test_a_script_name_header_is_ignored(fuzz_service, value):
    """Was: 500 (gunicorn's ConfigurationProblem) when the path did not start
    with it, from any client on loopback, where gunicorn trusts the header."""
    data = request_bytes("GET", "/healthz", [HOST, ("SCRIPT_NAME", value)])
    answer = honest(exchange(fuzz_service.url, data))
    assert answer.status == 200, answer.text()


# -- an answer before the body was read ------------------------------------------------


@pytest.mark.parametrize(
    ("target", "content_type", "status", "slug"),
    [
        ("/user/avatar", "multipart/form-data; boundary=b0undary", 401, "unauthorized"),
        ("/oauth/logout", "application/json", 413, "payload_too_large"),
        ("/no/such/path", "application/json", 404, "not_found"),
    ],
)
def test_an_answer_given_before_the_body_is_read_lets_the_client_finish_sending(
    fuzz_service, target, content_type, status, slug
):
    """Was: the service answered (a 401 to wx.uploadFile on an ended session)
    and closed with the rest of the upload unread, so the kernel reset the
    connection: a client still sending saw EPIPE or ECONNRESET, and one that
    gives up on a failed write (Node's fetch, the mini program's uploadFile)
    never read the answer: no re-login, a failed upload. Now the unread body
    is drained (up to the largest upload, for a few seconds) before closing."""
    size = 1024 * 1024
    headers = [HOST, ("Content-Type", content_type), ("Content-Length", str(size))]
    with Connection(fuzz_service.url) as conn:
        conn.sock.sendall(request_bytes("POST", target, headers) + b"x" * 1024)
        answer = conn.read_answer("POST")  # the answer comes before the body is in
        assert answer.status == status
        assert error_of(answer) == slug
        assert not answer.keeps_alive
        conn.sock.sendall(b"x" * (size - 1024))  # raised BrokenPipe/ConnectionReset
        conn.sock.shutdown(socket.SHUT_WR)
        assert conn.sock.recv(1) == b""  # then a clean close, not a reset
