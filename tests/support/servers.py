"""The service as deployed, for the multi-process tests: gunicorn (through
dev/stack.py, as `make run` and the benchmark start it) talking to the
test's Redis, database and emulator."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from dev.stack import Gunicorn, running_gunicorn, service_env
from dev.waiting import wait_until
from support.constants import APPID, PUSH_TOKEN, SECRET, SECRET_KEY

ACCESS_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) .*pid=<?(?P<pid>\d+)>?'
)


@dataclass
class Server:
    """A running instance, with a way to tell which worker served a request."""

    gunicorn: Gunicorn

    @property
    def url(self) -> str:
        return self.gunicorn.url

    def log_text(self) -> str:
        return self.gunicorn.log_text()

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
        """The access log line of a request is written once it is answered."""

        def logged() -> int | None:
            for line in self.log_text().splitlines():
                if probe in line and (match := ACCESS_LINE.search(line)):
                    return int(match["pid"])
            return None

        return wait_until(logged, timeout=timeout, what="the request's access log line")


def instance_env(redis_url: str, database_url: str, emulator_url: str, **extra: str) -> dict:
    return service_env(
        {
            "WECHAT_APPID": APPID,
            "WECHAT_SECRET": SECRET,
            "WECHAT_API_BASE": emulator_url,
            "SECRET_KEY": SECRET_KEY,
            "WECHAT_PUSH_TOKEN": PUSH_TOKEN,
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "INFO",
            **extra,
        }
    )


# The per-IP and per-user login limits lifted: for an instance that thousands
# of logins from one address reach (the fuzz tier, the load of a failover).
UNLIMITED_LOGINS = {
    "LOGIN_RATE_LIMIT": "1000000/minute",
    "LOGIN_RATE_LIMIT_OPENID": "1000000/minute",
}


@contextmanager
def launched(
    tmp_path_factory: Any,
    redis_url: str,
    database_url: str,
    emulator_url: str,
    handed_out: set[str],
    *,
    workers: int = 2,
    logins: bool = True,
    tracebacks: bool = True,
    args: Iterable[str] = (),
    **settings: str,
) -> Iterator[Server]:
    """The one launcher of every tier: a gunicorn instance on the test's Redis,
    database and emulator (`settings` added to its environment). Once it stops,
    its whole log is checked for every secret the emulator handed out during
    the session; with `logins` the log must show a login (it really was
    captured), and with `tracebacks=False` it must hold no traceback. `args`
    go to gunicorn before the app (another app, as the benchmarks' floors)."""
    env = instance_env(redis_url, database_url, emulator_url, **settings)
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with running_gunicorn(env, log, workers=workers, args=args) as started:
        server = Server(started)
        yield server
    text = server.log_text()
    if logins:
        assert "POST /oauth/login" in text  # the log really was captured
    leaked = [secret for secret in handed_out if secret in text]
    assert not leaked, f"{len(leaked)} secret value(s) appeared in gunicorn's log"
    if not tracebacks:
        assert "Traceback" not in text
