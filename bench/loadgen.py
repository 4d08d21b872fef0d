"""Load generators: wrk (installed from Debian's package when missing and this
process may), or this module's own fallback, a selector-based HTTP/1.1 client
in worker processes. Both take the same description of what to send and give
the same Result; the scripts print which one ran.

A Load is either one static request (method, path, headers) repeated on
every connection, or a feed: a list of (cookie, body) lines, each sent once
(fresh login codes, fresh encryptedData).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

LUA = Path(__file__).with_name("lua") / "wrk.lua"


@dataclass
class Load:
    method: str
    path: str
    cookie: str = ""
    feed: list[tuple[str, str]] | None = None  # (cookie, JSON body), each used once

    def raw_requests(self, host: str) -> list[bytes]:
        lines = self.feed if self.feed is not None else [(self.cookie, "")]
        return [_raw(self.method, self.path, host, cookie, body) for cookie, body in lines]


def _raw(method: str, path: str, host: str, cookie: str, body: str) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if cookie:
        head.append(f"Cookie: {cookie}")
    data = body.encode()
    if body or method == "POST":
        head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)  # connect/read/write/status/timeout
    exhausted: int = 0  # feed lines that ran out (sent again): should be 0
    loadavg: float | None = None  # the machine's 1-minute load average just after
    cpu_us: float = 0.0  # the server's workers' CPU time per request, when measured

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "rps": round(self.rps, 1)}


class Wrk:
    name = "wrk"

    def __init__(self, path: str) -> None:
        self.path = path
        version = subprocess.run([path, "-v"], capture_output=True, text=True).stdout
        self.version = version.split("[")[0].strip() or "wrk"

    def describe(self) -> str:
        return self.version

    def run(
        self,
        url: str,
        load: Load,
        *,
        connections: int,
        threads: int,
        seconds: float,
        timeout: float = 10.0,
    ) -> Result:
        threads = max(1, min(threads, connections))
        command = [
            self.path, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
            f"--timeout={timeout:g}s", "-s", str(LUA),
        ]  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            if load.feed is None:
                if load.cookie:
                    command += ["-H", f"Cookie: {load.cookie}"]
                command += [f"{url}{load.path}", "--", "-"]
                if load.method != "GET":
                    raise ValueError("static loads are GETs")
            else:
                feed = Path(tmp, "feed.txt")
                feed.write_text("".join(f"{c}\t{b}\n" for c, b in load.feed))
                command += [f"{url}{load.path}", "--", str(feed), load.method, load.path]
                command.append(str(threads))
            done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
        line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        data = json.loads(line.removeprefix("WRK_JSON "))
        lat = data["latency_us"]
        return Result(
            requests=data["requests"],
            seconds=data["duration_us"] / 1e6,
            p50_ms=lat["p50"] / 1000,
            p90_ms=lat["p90"] / 1000,
            p99_ms=lat["p99"] / 1000,
            max_ms=lat["max"] / 1000,
            errors={k: v for k, v in data["errors"].items() if v},
            exhausted=data["exhausted"],
        )


class PyLoad:
    """The fallback: `threads` processes, each driving its share of the
    connections with a selector, keep-alive, one request in flight per
    connection (like wrk). Slower than wrk, so it competes harder for the
    same two cores: compare its numbers only with its own."""

    name = "python"

    def describe(self) -> str:
        return "bench/loadgen.py fallback (python selectors, wrk not available)"

    def run(
        self,
        url: str,
        load: Load,
        *,
        connections: int,
        threads: int,
        seconds: float,
        timeout: float = 10.0,
    ) -> Result:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        raw = load.raw_requests(f"{host}:{port}")
        processes = max(1, min(threads, connections))
        base, extra = divmod(connections, processes)
        jobs = []
        for i in range(processes):
            share = base + (i < extra)
            if load.feed is None:
                jobs.append((host, port, share, raw, False, seconds, timeout))
            else:
                jobs.append((host, port, share, raw[i::processes], True, seconds, timeout))
        context = multiprocessing.get_context("fork")
        with context.Pool(processes) as pool:
            outputs = pool.map(_drive, jobs)
        latencies = sorted(x for out in outputs for x in out["latencies"])
        errors: dict[str, int] = {}
        for out in outputs:
            for key, value in out["errors"].items():
                errors[key] = errors.get(key, 0) + value
        elapsed = max(out["elapsed"] for out in outputs)
        return Result(
            requests=len(latencies),
            seconds=elapsed,
            p50_ms=_pct(latencies, 50),
            p90_ms=_pct(latencies, 90),
            p99_ms=_pct(latencies, 99),
            max_ms=latencies[-1] if latencies else 0.0,
            errors={k: v for k, v in errors.items() if v},
            exhausted=sum(out["exhausted"] for out in outputs),
        )


def _pct(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    if len(sorted_ms) == 1:
        return sorted_ms[0]
    return statistics.quantiles(sorted_ms, n=100, method="inclusive")[int(q) - 1]


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = b""
        self.sent_at = 0.0


def _response_end(buf: bytes) -> tuple[int, int, bool] | None:
    """(length of the whole response, status, close) once `buf` holds it."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = buf[:head_end].decode("latin-1").lower()
    status = int(head[9:12])
    length = 0
    close = False
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name == "content-length":
            length = int(value)
        elif name == "connection" and "close" in value:
            close = True
    total = head_end + 4 + length
    return (total, status, close) if len(buf) >= total else None


def _drive(job: tuple) -> dict:
    host, port, count, raw, feed, seconds, timeout = job
    selector = selectors.DefaultSelector()
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "status": 0, "timeout": 0}
    exhausted = 0
    position = 0

    def next_request() -> bytes:
        nonlocal position, exhausted
        if not feed:
            return raw[0]
        position += 1
        if position > len(raw):
            exhausted += 1
            return raw[-1]
        return raw[position - 1]

    def send(conn: _Conn) -> None:
        conn.sent_at = time.perf_counter()
        conn.sock.sendall(next_request())  # small requests: the buffer takes them whole

    def open_conn() -> _Conn | None:
        try:
            conn = _Conn(host, port)
        except OSError:
            errors["connect"] += 1
            return None
        selector.register(conn.sock, selectors.EVENT_READ, conn)
        send(conn)
        return conn

    def reopen(conn: _Conn) -> None:
        selector.unregister(conn.sock)
        conn.sock.close()
        open_conn()

    start = time.perf_counter()
    deadline = start + seconds
    for _ in range(count):
        open_conn()
    while time.perf_counter() < deadline:
        now = time.perf_counter()
        for key, _ in selector.select(timeout=0.05):
            conn: _Conn = key.data
            try:
                chunk = conn.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                errors["read"] += 1
                reopen(conn)
                continue
            conn.buf += chunk
            end = _response_end(conn.buf)
            if end is None:
                continue
            total, status, close = end
            latencies.append((time.perf_counter() - conn.sent_at) * 1000)
            if status >= 400:
                errors["status"] += 1
            conn.buf = conn.buf[total:]
            if close:
                reopen(conn)
            elif time.perf_counter() < deadline:
                send(conn)
        for key in list(selector.get_map().values()):
            conn = key.data
            if now - conn.sent_at > timeout:
                errors["timeout"] += 1
                reopen(conn)
    elapsed = time.perf_counter() - start
    for key in list(selector.get_map().values()):
        key.data.sock.close()
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed, "exhausted": exhausted}


def ensure_wrk(install: bool = True) -> str | None:
    """The wrk binary; when missing and allowed, install Debian's package
    (the project's machines are Debian and the benchmark runs as root)."""
    found = shutil.which("wrk")
    if found or not install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    print("wrk not found: installing Debian's package (apt-get install -y wrk) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(command, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(command, env=env, capture_output=True)
    return shutil.which("wrk")


def pick(kind: str = "auto") -> Wrk | PyLoad:
    """kind: auto (wrk, installing it if needed, else the fallback), wrk, python."""
    if kind == "python":
        return PyLoad()
    path = ensure_wrk(install=True)
    if path:
        return Wrk(path)
    if kind == "wrk":
        raise SystemExit("wrk is not installed and could not be installed")
    print("wrk unavailable: falling back to bench/loadgen.py's python load generator")
    return PyLoad()
