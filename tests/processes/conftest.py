"""Fixtures of the multi-process tier: the service under gunicorn, once or
twice, on the session's Redis, database and emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.servers import Server, gunicorn, instance_env
from wechat_emulator import EmulatorServer


def gunicorn_instance(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    database_url: str,
    emulator_url: str,
    handed_out: set[str],
) -> Iterator[Server]:
    """A gunicorn instance; once it stops, its whole log is checked for every
    secret the emulator handed out during the session."""
    env = instance_env(redis_url, database_url, emulator_url)
    with gunicorn(env, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as server:
        yield server
    log = server.log_text()
    assert "POST /oauth/login" in log  # the log really was captured
    leaked = [secret for secret in handed_out if secret in log]
    assert not leaked, f"{len(leaked)} secret value(s) appeared in gunicorn's log"


@pytest.fixture(scope="session")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    database_url: str,
    emulator_server: EmulatorServer,
    handed_out: set[str],
) -> Iterator[Server]:
    """The service under gunicorn (2 workers), shared by the tests that need it."""
    yield from gunicorn_instance(
        tmp_path_factory, redis_url, database_url, emulator_server.url, handed_out
    )


@pytest.fixture(scope="session")
def second_service(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    database_url: str,
    emulator_server: EmulatorServer,
    handed_out: set[str],
) -> Iterator[Server]:
    """Another instance (2 workers) on the same Redis and database."""
    yield from gunicorn_instance(
        tmp_path_factory, redis_url, database_url, emulator_server.url, handed_out
    )
