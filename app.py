"""The application factory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask.typing import ResponseReturnValue
from werkzeug.middleware.proxy_fix import ProxyFix

import commands
import config as settings
import embedded
import logs
from blueprints import auth, errors, health, oauth, user
from extensions import db, limiter, migrate
from services import container, redis_store
from services.rate_limits import storage_uri
from services.users import configure_sqlite
from session_interface import MiniProgramSessionInterface

MAX_BODY_BYTES = 64 * 1024


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    values = {**settings.load(), **(config or {})}
    app = Flask(__name__, instance_path=values["INSTANCE_PATH"])
    app.config.update(values)
    settings.validate(app.config)
    logs.configure(app.config["LOG_LEVEL"], [app.config["WECHAT_SECRET"]])
    if app.config["DEV_MODE"]:
        app.logger.warning(
            "WECHAT_APPID is not set: development mode against the WeChat emulator at %s",
            app.config["WECHAT_API_BASE"],
        )
    if not app.config["REDIS_URL"]:
        app.config["REDIS_URL"] = embedded.redis_url(Path(app.instance_path) / "redis.db")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=app.config["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(app.config["DATABASE_URL"], app.instance_path),
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        RATELIMIT_STORAGE_URI=storage_uri(app.config["REDIS_URL"]),
        RATELIMIT_STRATEGY="moving-window",
        RATELIMIT_STORAGE_OPTIONS={
            "key_prefix": redis_store.Keys(app.config["REDIS_KEY_PREFIX"]).limits()
        },
        RATELIMIT_KEY_PREFIX="login-ip",
        RATELIMIT_HEADERS_ENABLED=True,
        # Redis down: let the request through; the login itself then answers 503.
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    if app.config["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"])
    app.json.ensure_ascii = False  # nicknames stay readable UTF-8
    app.json.sort_keys = False  # the profile keeps WeChat's field order

    db.init_app(app)
    migrate.init_app(app, db, directory=str(settings.ROOT / "migrations"))
    limiter.init_app(app)
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)

    client = redis_store.connect(app.config["REDIS_URL"])
    services = container.build(app.config, client, engine)
    app.extensions["wx_services"] = services
    app.session_interface = MiniProgramSessionInterface(app, services.sessions)

    app.before_request(auth.load_user)
    app.after_request(no_store)
    app.register_blueprint(errors.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(user.bp)
    commands.init_app(app)
    return app


def engine_options(url: str, instance_path: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        return {"connect_args": {"timeout": 10}}
    # pre_ping: a database restarted under us costs one reconnect, not a 500.
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "pool_size": 5,
        "max_overflow": 10,
    }
    if url.startswith(("mysql", "mariadb")):
        # utf8 in MySQL is 3 bytes: emoji and other 4-byte characters need utf8mb4.
        options["connect_args"] = {"charset": "utf8mb4"}
    return options


def no_store(response: ResponseReturnValue) -> ResponseReturnValue:
    """Every answer is personal or about a credential: no cache may keep it."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response
