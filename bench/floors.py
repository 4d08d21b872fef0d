"""Reference apps ("floors") for the benchmark: the least work each service
endpoint cannot avoid, on the same framework, server settings, Redis, WeChat
and database as the service. `make bench` serves this module with exactly the
service's gunicorn settings (`gunicorn -c gunicorn.conf.py
'bench.floors:create_floors()'`, through dev/stack.py) and reports the
service's numbers as ratios to these.

    GET  /floor/framework   a bare Flask view answering a constant JSON
                            (the shape /user/info answers for an unbound user)
    GET  /floor/session     the same, plus one pipelined Redis round trip:
                            HGETALL + PTTL of the session hash named by the
                            `sid` cookie, as SessionStore.load does; 401 when
                            the hash is empty
    POST /floor/login       {"code"}: GET /sns/jscode2session with that code
                            on one pooled requests.Session (the service's own
                            http_session()), then one SQL upsert of the
                            identity row (appid, openid) on Core, in one
                            transaction
    GET  /healthz           for dev.stack's readiness wait

No hooks, no session interface, no extensions: whatever the service spends
beyond these is its own overhead.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import Engine, create_engine, func, insert, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

import config
from infra import database
from infra.redis import connect
from services.stores.models import Account, Identity, utcnow
from services.stores.redis import Keys
from services.wechat.client import http_session

# /user/info's answer for a user who has bound nothing yet.
PROFILE_FIELDS = (
    "nickName", "avatarUrl", "gender", "city", "province", "country", "language",
    "phoneNumber", "purePhoneNumber", "countryCode",
)  # fmt: skip
CONSTANT = {"code": 0, "data": dict.fromkeys(PROFILE_FIELDS)}
# What a login answers: a token-sized string and the session's lifetime.
LOGIN_ANSWER = {"code": 0, "data": {"token": "f" * 43, "expiresIn": 604800}}


def create_floors(settings: dict[str, Any] | None = None) -> Flask:
    settings = settings or config.load()
    app = Flask(__name__, static_folder=None)
    app.json.ensure_ascii = False  # the service's JSON settings (app.configure_flask)
    app.json.sort_keys = False
    redis = connect(settings["REDIS_URL"])
    keys = Keys(settings["REDIS_KEY_PREFIX"])
    cookie = settings["SESSION_COOKIE_NAME"]
    wechat = http_session(settings["WECHAT_API_BASE"])
    api_base = settings["WECHAT_API_BASE"]
    first = config.wechat_apps(settings)[0]  # the app the service's login serves by default
    timeout = (settings["WECHAT_CONNECT_TIMEOUT"], settings["WECHAT_READ_TIMEOUT"])
    url = settings["DATABASE_URL"]
    engine = create_engine(url, **database.engine_options(url, settings["INSTANCE_PATH"]))
    database.configure(engine)
    upsert = identity_upsert(engine)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"code": 0, "data": {"status": "ok"}})

    @app.get("/floor/framework")
    def framework() -> Any:
        return jsonify(CONSTANT)

    @app.get("/floor/session")
    def session() -> Any:
        token = request.cookies.get(cookie, "")
        pipe = redis.pipeline(transaction=False)
        pipe.hgetall(keys.session(token))
        pipe.pttl(keys.session(token))
        data, _pttl = pipe.execute()
        if not data:
            return jsonify({"code": 2001, "error": "unauthorized"}), 401
        return jsonify({"code": 0, "data": json.loads(data["profile"])})

    @app.post("/floor/login")
    def login() -> Any:
        code = request.get_json()["code"]
        reply = wechat.get(
            f"{api_base}/sns/jscode2session",
            params={
                "appid": first.appid,
                "secret": first.secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
            timeout=timeout,
        )
        answer = json.loads(reply.text)  # WeChat sends JSON as text/plain
        if "openid" not in answer:
            return jsonify({"code": 3001, "error": "code_invalid"}), 400
        with engine.begin() as connection:
            connection.execute(upsert(first.appid, answer["openid"], answer.get("unionid")))
        return jsonify(LOGIN_ANSWER)

    return app


def identity_upsert(engine: Engine) -> Any:
    """(appid, openid, unionid) -> one INSERT ... ON CONFLICT UPDATE of the
    identity row, every identity on one floor account made here."""
    with engine.begin() as connection:
        account_id = connection.scalar(select(func.min(Account.id)))
        if account_id is None:
            now = utcnow()
            values = {"created_at": now, "updated_at": now, "profile_version": 0}
            account_id = connection.execute(insert(Account).values(values)).inserted_primary_key[0]
    name = engine.dialect.name

    def statement(appid: str, openid: str, unionid: str | None) -> Any:
        row = {"account_id": account_id, "appid": appid, "openid": openid, "unionid": unionid}
        if name in {"mysql", "mariadb"}:
            stmt = mysql.insert(Identity).values(row)
            return stmt.on_duplicate_key_update(unionid=stmt.inserted.unionid)
        stmt = {"postgresql": postgresql, "sqlite": sqlite}[name].insert(Identity).values(row)
        return stmt.on_conflict_do_update(
            index_elements=[Identity.appid, Identity.openid],
            set_={"unionid": stmt.excluded.unionid},
        )

    return statement
