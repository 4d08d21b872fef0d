"""HTTP/1.1 over a plain socket, for requests that `requests` cannot send:
malformed framing, duplicated or lying Content-Length, chunked bodies with
bad sizes or trailers, bytes that are not UTF-8. It reads answers just as
strictly, so a test sees exactly what the server wrote: every answer on the
connection, its `Connection` header, and whether the server then closed.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TIMEOUT = 10.0


class ProtocolError(AssertionError):
    """The server wrote something that is not an HTTP/1.1 answer, or nothing in time."""


@dataclass
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes = field(repr=False, default=b"")

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None

    @property
    def keeps_alive(self) -> bool:
        """What the answer promises: HTTP/1.1 keeps the connection unless it says close."""
        connection = (self.header("Connection") or "").lower()
        return "close" not in connection

    def text(self) -> str:
        return (self.raw_head + self.body).decode("latin-1")


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


class Connection:
    """One TCP connection to the server; answers are read one at a time."""

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(address(url), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.eof = False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        # The server may answer and close before reading everything sent (an
        # oversized body, say); its answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def finish_sending(self) -> None:
        """Half-close: the server sees the end of what we send, and can still answer."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            raise ProtocolError("no answer from the server in time") from None
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def closed_by_server(self) -> bool:
        """True once the server has closed its side and nothing more is pending."""
        while not self.buffer and self._fill():
            pass
        return not self.buffer and self.eof

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise ProtocolError(f"connection closed mid-line: {self.buffer[:200]!r}")
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ProtocolError(f"body shorter than its length ({len(self.buffer)}/{size})")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_answer(self, method: str = "GET") -> Answer:
        """The next final answer (1xx interim answers are skipped)."""
        while True:
            answer = self._read_one(method)
            if answer.status >= 200:
                return answer

    def _read_one(self, method: str) -> Answer:
        status_line = self._line()
        head = [status_line]
        try:
            version, status, reason = ([*status_line.decode("latin-1").split(" ", 2), ""])[:3]
            code = int(status)
        except ValueError:
            raise ProtocolError(f"not a status line: {status_line[:200]!r}") from None
        if not version.startswith("HTTP/1."):
            raise ProtocolError(f"not a status line: {status_line[:200]!r}")
        headers = []
        while line := self._line():
            head.append(line)
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ProtocolError(f"not a header line: {line[:200]!r}")
            headers.append((name.strip(), value.strip()))
        answer = Answer(code, reason, headers, b"", b"\r\n".join(head) + b"\r\n\r\n")
        if method == "HEAD" and not answer.keeps_alive:
            # gunicorn writes its own error answers with a body whatever the
            # method (it may not know it); the connection ends with it anyway.
            while self._fill():
                pass
            answer.body, self.buffer = self.buffer, b""
            return answer
        if code < 200 or code in (204, 304) or method == "HEAD":
            return answer
        if "chunked" in (answer.header("Transfer-Encoding") or "").lower():
            answer.body = self._chunked()
        elif (length := answer.header("Content-Length")) is not None:
            answer.body = self._exactly(int(length))
        else:
            while self._fill():
                pass
            answer.body, self.buffer = self.buffer, b""
        return answer

    def _chunked(self) -> bytes:
        body = b""
        while True:
            size = int(self._line().split(b";", 1)[0], 16)
            if size == 0:
                while self._line():  # trailers, then the empty line
                    pass
                return body
            body += self._exactly(size)
            if self._line():
                raise ProtocolError("chunk not followed by CRLF")


def request_bytes(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | list[tuple[bytes, bytes]],
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    """A request exactly as given: no header is added, none is fixed up."""
    lines = [f"{method} {target} {version}".encode("latin-1")]
    for name, value in headers:
        name_b = name if isinstance(name, bytes) else name.encode("latin-1")
        value_b = value if isinstance(value, bytes) else value.encode("latin-1")
        lines.append(name_b + b": " + value_b)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunked(body: bytes, sizes: list[int] | None = None, final: bytes = b"0\r\n\r\n") -> bytes:
    """`body` in chunks of the given sizes (the rest in one chunk), then `final`."""
    out, rest = b"", body
    for size in sizes or []:
        if not rest:
            break
        piece, rest = rest[:size], rest[size:]
        if piece:
            out += b"%x\r\n%s\r\n" % (len(piece), piece)
    if rest:
        out += b"%x\r\n%s\r\n" % (len(rest), rest)
    return out + final
