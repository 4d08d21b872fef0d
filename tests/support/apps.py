"""Building the app for tests, and what tests send with a request."""

from __future__ import annotations

from typing import Any

import flask_migrate

from app import create_app
from blueprints.extensions import db
from support.constants import APPID, PUSH_TOKEN, SECRET, SECRET_KEY


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(token: str, name: str = "sid") -> dict[str, str]:
    return {"Cookie": f"{name}={token}"}


def base_config(database_url: str, redis_url: str, api_base: str) -> dict[str, Any]:
    return {
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": SECRET,
        "WECHAT_API_BASE": api_base,
        "WECHAT_CONNECT_TIMEOUT": 1.0,
        "WECHAT_READ_TIMEOUT": 2.0,
        "WECHAT_RETRY_BACKOFF": 0.05,
        "SECRET_KEY": SECRET_KEY,
        "WECHAT_PUSH_TOKEN": PUSH_TOKEN,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "DEV_MODE": False,
        "LOG_LEVEL": "DEBUG",
        "TESTING": True,
    }


def migrate_database(url: str, redis_url: str) -> None:
    app = create_app(base_config(url, redis_url, "http://127.0.0.1:9"))
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


# What a session token looks like (services/crypto/tokens.py).
TOKEN_PATTERN = r"[a-z2-7]{4}[A-Za-z0-9_-]{51}"


def identity_of(app: Any, openid: str, appid: str = APPID) -> Any:
    """The identity record of a WeChat user in an app, from the app's graph."""
    from blueprints import GRAPH

    return app.extensions[GRAPH].login.accounts.find_identity(appid, openid)


def unknown_token(app: Any) -> str:
    """A token this service could have minted, for a session that never was."""
    from blueprints import GRAPH

    return app.extensions[GRAPH].sessions.tokens.mint("aaaa")
