"""`make run` as a newcomer runs it: nothing configured, the emulator on a
side port, embedded Redis and SQLite; the command-line client logs in."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest
import requests

from dev.stack import free_port, service_env
from dev.waiting import wait_until
from support.constants import ROOT

pytestmark = pytest.mark.gunicorn


def answers(url: str, process: subprocess.Popen) -> bool:
    assert process.poll() is None, "make run's program exited early"
    try:
        requests.get(url, timeout=1)
    except requests.ConnectionError:
        return False
    return True


def operators_work(service: str, printed: str) -> None:
    """The docs, the document and the metrics, with the token make run printed."""
    token = re.search(r"/metrics -H 'Authorization: Bearer (\S+)'", printed)
    assert token, printed
    metrics = requests.get(
        f"{service}/metrics", headers={"Authorization": f"Bearer {token[1]}"}, timeout=10
    )
    assert metrics.status_code == 200
    assert 'wx_logins_total{outcome="new"}' in metrics.text
    assert requests.get(f"{service}/openapi.json", timeout=10).json()["openapi"] == "3.1.0"
    assert "swagger-ui" in requests.get(f"{service}/docs", timeout=10).text


def test_run_command_works_with_nothing_configured(tmp_path):
    env = service_env({"INSTANCE_PATH": str(tmp_path / "instance")})
    port, emulator_port = free_port(), free_port()
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dev.run",
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
        wait_until(lambda: answers(service, process), timeout=60, what="make run to answer")
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
        operators_work(service, (tmp_path / "run.log").read_text())
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        log.close()
    output = (tmp_path / "run.log").read_text()
    assert "Try the flow" in output
    assert (tmp_path / "instance" / "app.db").exists()
    assert "Traceback" not in output
