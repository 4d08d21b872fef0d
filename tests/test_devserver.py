"""`make run` as a newcomer runs it: nothing configured, the emulator on a
side port, embedded Redis and SQLite; the command-line client logs in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from helpers import ROOT, free_port

pytestmark = pytest.mark.gunicorn

UNSET = ("WECHAT_", "SESSION_", "REDIS_URL", "DATABASE_URL", "SECRET_KEY", "LOGIN_")


def wait_for(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "devserver exited early"
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not come up")


def test_run_command_works_with_nothing_configured(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(UNSET)}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), PYTHONUNBUFFERED="1")
    port, emulator_port = free_port(), free_port()
    log = (tmp_path / "devserver.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "devserver.py",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    service, emulator = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{emulator_port}"
    try:
        wait_for(service, process)
        cli = [
            sys.executable,
            "-m",
            "miniprogram",
            "--service",
            service,
            "--emulator",
            emulator,
            "--storage",
            str(tmp_path / "storage.json"),
        ]
        for command in ("login", "info"):
            done = subprocess.run(
                [*cli, command],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["nickName"] is None
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        log.close()
    output = (tmp_path / "devserver.log").read_text()
    assert "Try the flow" in output
    assert (tmp_path / "instance" / "app.db").exists()
    assert "Traceback" not in output
