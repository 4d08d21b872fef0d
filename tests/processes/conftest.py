"""Fixtures of the multi-process tier: the service under gunicorn, once or
twice, on the session's Redis, database and emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.servers import Server, gunicorn_instance
from wechat_emulator import EmulatorServer


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
