"""The contract tier: Schemathesis explores the live service (gunicorn, two
workers, real Redis, the WeChat emulator) from its own OpenAPI document:
every operation, stateful links from login onwards, every check."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.constants import PUSH_TOKEN
from support.servers import UNLIMITED_LOGINS, Server
from wechat_emulator import EmulatorControl, EmulatorServer

METRICS_TOKEN = "contract-metrics-token-0123456789"
RESULTS: list[str] = []  # Schemathesis's own count of the cases it generated


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in RESULTS:
        terminalreporter.write_line(f"schemathesis: {line}")


@pytest.fixture(scope="session")
def contract_service(launch: Callable[..., Any]) -> Iterator[Server]:
    """The service as deployed, except that thousands of logins come from one
    address (the login limits are lifted); WeChat pushes content-check
    verdicts to it, as `make run` sets up."""
    with launch(tracebacks=False, METRICS_TOKEN=METRICS_TOKEN, **UNLIMITED_LOGINS) as server:
        yield server


@pytest.fixture
def metrics_token() -> str:
    return METRICS_TOKEN


@pytest.fixture
def summary() -> list[str]:
    """Lines for the end of the run."""
    return RESULTS


@pytest.fixture
def pushes_to(contract_service: Server, emulator_server: EmulatorServer) -> Iterator[None]:
    with EmulatorControl(emulator_server.url) as wechat:
        wechat.reset()
        wechat.configure_push(url=f"{contract_service.url}/wechat/push", token=PUSH_TOKEN)
        yield
        wechat.remove_push_config()


@pytest.fixture
def issued_file(tmp_path: Path, handed_out: set[str]) -> Iterator[Path]:
    """Where hooks.py writes every openid, unionid and session_key it was
    given; they join the secrets the gunicorn log is checked for."""
    path = tmp_path / "issued.txt"
    path.touch()
    yield path
    handed_out.update(line for line in path.read_text().splitlines() if line)
