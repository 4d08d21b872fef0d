"""Running the service the way it is deployed: gunicorn processes, with
gunicorn.conf.py, talking to the test Redis, database and emulator."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql
import requests

from helpers import APPID, ROOT, SECRET, SECRET_KEY, free_port

ACCESS_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) .*pid=<?(?P<pid>\d+)>?'
)


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str, **kwargs) -> tuple[requests.Response, int]:
        """A request on a fresh connection, and the pid of the worker that served it."""
        return self.call("GET", path, **kwargs)

    def call(self, method: str, path: str, **kwargs) -> tuple[requests.Response, int]:
        probe = uuid.uuid4().hex
        separator = "&" if "?" in path else "?"
        headers = {"Connection": "close", **kwargs.pop("headers", {})}
        response = requests.request(
            method,
            f"{self.url}{path}{separator}probe={probe}",
            headers=headers,
            timeout=30,
            **kwargs,
        )
        return response, self.pid_of(probe)

    def pid_of(self, probe: str, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_text().splitlines():
                if probe in line and (match := ACCESS_LINE.search(line)):
                    return int(match["pid"])
            time.sleep(0.02)
        raise AssertionError("the access log has no line for the request")


def service_env(redis_url: str, database_url: str, emulator_url: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "SESSION_"))}
    env.update(
        WECHAT_APPID=APPID,
        WECHAT_SECRET=SECRET,
        WECHAT_API_BASE=emulator_url,
        SECRET_KEY=SECRET_KEY,
        REDIS_URL=redis_url,
        DATABASE_URL=database_url,
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextmanager
def gunicorn(env: dict, log: Path, workers: int = 2) -> Iterator[Server]:
    port = free_port()
    env = {**env, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": str(workers)}
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        wait_until_booted(server, workers)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_booted(server: Server, workers: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log_text()}")
        booted = server.log_text().count("Booting worker")
        if booted >= workers:
            try:
                requests.get(f"{server.url}/__ready__", timeout=2)
                return
            except requests.ConnectionError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not start:\n{server.log_text()}")


class ThrowawayMariaDB:
    """A private MariaDB server in a temporary directory, on its own port, that
    a test may stop and start (never the machine's shared server)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/outage"

    @staticmethod
    def available() -> bool:
        return all(shutil.which(tool) for tool in ("mariadb-install-db", "mariadbd"))

    def install(self) -> None:
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.workdir / 'data'}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={self.workdir / 'data'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.workdir / 'mysqld.sock'}",
                "--user=root",
                f"--log-error={self.workdir / 'error.log'}",
                "--innodb-buffer-pool-size=16M",
                "--skip-name-resolve",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                connection = pymysql.connect(host="127.0.0.1", port=self.port, user="root")
            except pymysql.err.OperationalError:
                time.sleep(0.1)
                continue
            with connection, connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE IF NOT EXISTS outage CHARACTER SET utf8mb4")
            return
        raise RuntimeError("the throwaway MariaDB did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None
