"""Constants and small helpers the test modules share."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import flask_migrate

from app import create_app
from extensions import db

ROOT = Path(__file__).resolve().parent.parent
APPID = "wx0123456789abcdef"
SECRET = "test-secret-5c0f7a9e1b2d4c6f"
SECRET_KEY = "test-secret-key-for-session-keys"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(token: str, name: str = "sid") -> dict[str, str]:
    return {"Cookie": f"{name}={token}"}


def migrate_database(url: str, redis_url: str) -> None:
    app = create_app(base_config(url, redis_url, "http://127.0.0.1:9"))
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


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
