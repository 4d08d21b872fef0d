"""Fixtures of the multi-process tier: the service under gunicorn, once or
twice, on the session's Redis, database and emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.servers import Server


@pytest.fixture(scope="session")
def service(launch) -> Iterator[Server]:
    """The service under gunicorn (2 workers), shared by the tests that need it."""
    with launch() as server:
        yield server


@pytest.fixture(scope="session")
def second_service(launch) -> Iterator[Server]:
    """Another instance (2 workers) on the same Redis and database."""
    with launch() as server:
        yield server
