"""The application factory: settings, then infrastructure, then the services,
then the HTTP layer.

    create_app(config=None)   the app; `config` overrides the environment
    prepare_embedded(environ) before any worker starts, with nothing
                              configured: one embedded Redis for all of them
                              and the SQLite schema brought up to date
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from flask import Flask
from flask.typing import ResponseReturnValue
from werkzeug.middleware.proxy_fix import ProxyFix

import config as settings
from blueprints import GRAPH, avatars, commands, docs, errors, health, oauth, observe, push, user
from blueprints.extensions import db, migrate
from blueprints.session import MiniProgramSessionInterface
from infra import database, embedded, logs, metrics
from infra.redis import Timeouts, connect, limits_storage
from services.graph import build_graph
from services.stores.redis import Keys, watch

MAX_BODY_BYTES = 64 * 1024


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    values = {**settings.load(), **(config or {})}
    app = Flask(__name__, instance_path=values["INSTANCE_PATH"], static_folder=None)
    app.config.update(values)
    settings.validate(app.config)
    settings.validate_connections(app.config)
    logs.configure(app.config["LOG_LEVEL"], secrets(app.config), app.config["LOG_FORMAT"])
    if app.config["DEV_MODE"]:
        app.logger.warning(
            "WECHAT_APPID is not set: development mode against the WeChat emulator at %s",
            app.config["WECHAT_API_BASE"],
        )
    timeouts = Timeouts(socket=app.config["REDIS_TIMEOUT"], connect=app.config["REDIS_TIMEOUT"])
    limits = limits_storage(
        app.config["REDIS_URL"], key_prefix=limits_prefix(app.config), timeouts=timeouts
    )
    configure_flask(app)
    engine = init_extensions(app)
    client = connect(app.config["REDIS_URL"], timeouts=timeouts)
    telemetry = metrics.PrometheusTelemetry()
    watch(client, pause=app.config["REDIS_FAIL_FAST"], telemetry=telemetry)
    storage = limits.create()
    watch(storage, same_as=client)
    metrics.count_database_errors(engine)
    graph = build_graph(app.config, client, engine, storage, telemetry)
    app.extensions[GRAPH] = graph
    app.session_interface = MiniProgramSessionInterface(app, graph.sessions)
    app.after_request(no_store)
    observe.init_app(app)
    for blueprint in (errors.bp, health.bp, oauth.bp, user.bp, avatars.bp, push.bp, docs.bp):
        app.register_blueprint(blueprint)
    commands.init_app(app)
    return app


def secrets(config: Mapping[str, Any]) -> list[str]:
    """What no log line may show (infra/logs.py scrubs them)."""
    found = [config["SECRET_KEY"], config.get("METRICS_TOKEN", "")]
    for wechat_app in settings.wechat_apps(config):
        found += [wechat_app.secret, wechat_app.push_token, wechat_app.push_aes_key]
    return found


def configure_flask(app: Flask) -> None:
    """Flask's and its extensions' settings, derived from ours."""
    url = app.config["DATABASE_URL"]
    app.config.update(
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS=database.engine_options(url, app.instance_path),
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    if proxies := app.config["TRUSTED_PROXIES"]:
        # The client's address for the rate limits, the scheme for avatar URLs.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    app.json.ensure_ascii = False  # nicknames stay readable UTF-8
    app.json.sort_keys = False  # the profile keeps WeChat's field order


def init_extensions(app: Flask) -> Any:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(settings.ROOT / "migrations"))
    with app.app_context():
        engine = db.engine
    database.configure(engine)
    return engine


def limits_prefix(config: Mapping[str, Any]) -> str:
    return Keys(config["REDIS_KEY_PREFIX"]).limits()


def no_store(response: ResponseReturnValue) -> ResponseReturnValue:
    """Every answer is personal or about a credential: no cache may keep it."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def prepare_embedded(environ: MutableMapping[str, str]) -> None:
    """With nothing configured (make run, a bare `gunicorn wsgi:app`): start
    one embedded Redis for every worker and hand it on through REDIS_URL, and
    bring the embedded SQLite schema up to date. A no-op when REDIS_URL and
    DATABASE_URL are set, as in production."""
    if not environ.get("REDIS_URL"):
        environ["REDIS_URL"] = embedded.redis_url(settings.instance_path(environ) / "redis.db")
    if not environ.get("DATABASE_URL"):
        import flask_migrate

        app = create_app(settings.load(environ))
        with app.app_context():
            flask_migrate.upgrade()
            db.engine.dispose()
        # Workers (and anything else started from here) find it done.
        environ["DATABASE_URL"] = app.config["DATABASE_URL"]
