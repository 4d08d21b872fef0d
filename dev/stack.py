"""Starting the pieces of the stack as separate processes, the way they are
deployed: the WeChat emulator, an embedded Redis, and gunicorn with
gunicorn.conf.py. `make run`, the benchmark and the multi-process tests all
start the service through here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

import config
from wechat_emulator import DEFAULT_APPID, DEFAULT_SECRET, EmulatorServer

ROOT = config.ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(port: int = 0, apps: Mapping[str, str] | None = None) -> EmulatorServer:
    """The WeChat emulator on a real socket, serving from a background thread."""
    apps = apps or {DEFAULT_APPID: DEFAULT_SECRET}
    return EmulatorServer(host="127.0.0.1", port=port, apps=dict(apps)).start()


def service_env(settings: Mapping[str, str], inherit: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment without any setting the service reads
    (except those named in `inherit`), plus `settings`."""
    keep = set(inherit)
    drop = config.variables() - keep
    env = {name: value for name, value in os.environ.items() if name not in drop}
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(settings)
    return env


@dataclass
class Gunicorn:
    """A running gunicorn master with its workers."""

    url: str
    log: Path
    process: subprocess.Popen
    workers: int

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every worker has booted and the service answers HTTP."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log_text()}")
            # Without a captured log (make run prints to the terminal), HTTP alone tells.
            booted = self.log.name == os.devnull or self.log_text().count("Booting worker")
            if booted is True or booted >= self.workers:
                try:
                    requests.get(f"{self.url}/healthz", timeout=2)
                    return
                except requests.ConnectionError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not start within {timeout} s:\n{self.log_text()}")

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_gunicorn(
    env: Mapping[str, str],
    log: Path | None = None,
    *,
    workers: int = 2,
    port: int | None = None,
    args: Iterable[str] = (),
) -> Gunicorn:
    """gunicorn -c gunicorn.conf.py wsgi:app on 127.0.0.1; its output goes to
    `log` (or to this process's output when None)."""
    port = port or free_port()
    env = {**env, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": str(workers)}
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *args, "wsgi:app"]
    if log is None:
        process = subprocess.Popen(command, cwd=ROOT, env=env)
    else:
        with log.open("w") as sink:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
            )
    return Gunicorn(f"http://127.0.0.1:{port}", log or Path(os.devnull), process, workers)


@contextmanager
def running_gunicorn(env: Mapping[str, str], log: Path, **kwargs: object) -> Iterator[Gunicorn]:
    server = start_gunicorn(env, log, **kwargs)  # type: ignore[arg-type]
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
