"""Wires every service from settings and clients. create_app() builds one
ServiceGraph per app; the HTTP layer reaches the use cases through it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
import requests
from limits.storage import Storage
from sqlalchemy import Engine

import config as settings
from services.apps import App, Apps, PushSettings
from services.crypto.opendata import OpenDataCipher
from services.crypto.sealing import Sealer
from services.crypto.tokens import TokenMinter
from services.stores.access_token import AccessTokenStore
from services.stores.accounts import AccountStore
from services.stores.avatars import SqlAvatarStorage
from services.stores.login_codes import LoginCodeLedger
from services.stores.push_guard import PushGuard
from services.stores.rate_limits import RateLimit, Windows
from services.stores.redis import Keys
from services.stores.session_keys import CheckSessionCache, SessionKeyRing
from services.stores.sessions import SessionStore
from services.telemetry import NO_TELEMETRY, Telemetry
from services.usecases.accounts import AccountService
from services.usecases.avatars import AvatarService, AvatarSettings
from services.usecases.content import ContentSecurity
from services.usecases.login import LoginService
from services.usecases.profile import ProfileService
from services.usecases.publishing import AvatarFiles, Publisher
from services.usecases.push import PushService
from services.usecases.readiness import Readiness
from services.wechat import WeChatClient, http_session


@dataclass(frozen=True)
class ServiceGraph:
    apps: Apps
    login: LoginService
    profile: ProfileService
    avatars: AvatarService
    accounts: AccountService
    push: PushService
    readiness: Readiness
    # The session interface reads sessions straight from the store.
    sessions: SessionStore


def build_graph(
    config: Mapping[str, Any],
    client: redis.Redis,
    engine: Engine,
    limits: Storage,
    telemetry: Telemetry = NO_TELEMETRY,
) -> ServiceGraph:
    keys = Keys(config["REDIS_KEY_PREFIX"])
    http = http_session(config["WECHAT_API_BASE"])  # one pool for every app's calls
    apps = Apps(
        [_app(app, config, client, http, keys, telemetry) for app in settings.wechat_apps(config)]
    )
    accounts = AccountStore(engine)
    sessions = SessionStore(
        client,
        keys=keys,
        tokens=TokenMinter(config["SECRET_KEY"]),
        ttl=config["SESSION_TTL"],
        renew_interval=config["SESSION_RENEW_INTERVAL"],
        max_per_identity=config["SESSIONS_PER_USER"],
        dedup_window=config["LOGIN_DEDUP_WINDOW"],
    )
    session_keys = SessionKeyRing(
        client,
        keys=keys,
        sealer=Sealer(config["SECRET_KEY"], "session_key at rest"),
        history=config["SESSION_KEY_HISTORY"],
        ttl=config["SESSION_TTL"],
    )
    storage = SqlAvatarStorage(engine)
    files = AvatarFiles(accounts, storage)
    publisher = Publisher(accounts, sessions, files)
    wechat_limit = RateLimit(
        limits,
        config["WECHAT_CALL_RATE_LIMIT"],
        scope="wechat/account",
        message="Too many requests that reach WeChat for this user; wait before trying again.",
    )
    content = ContentSecurity(apps, accounts, config["PROFILE_REVIEW_POLICY"], wechat_limit)
    push_guard = PushGuard(client, keys=keys, window=2 * config["PUSH_MAX_AGE"])
    avatars = AvatarService(
        accounts=accounts,
        storage=storage,
        files=files,
        content=content,
        publisher=publisher,
        push_guard=push_guard,
        settings=AvatarSettings(
            max_pixels=config["AVATAR_MAX_PIXELS"],
            size=config["AVATAR_SIZE"],
            review_timeout=config["AVATAR_REVIEW_TIMEOUT"],
            review_policy=config["PROFILE_REVIEW_POLICY"],
        ),
    )
    account_service = AccountService(
        accounts=accounts,
        sessions=sessions,
        session_keys=session_keys,
        avatar_files=files,
        publisher=publisher,
    )
    return ServiceGraph(
        apps=apps,
        login=LoginService(
            apps=apps,
            accounts=accounts,
            sessions=sessions,
            session_keys=session_keys,
            client_limit=RateLimit(
                limits,
                config["LOGIN_RATE_LIMIT"],
                scope="login/client",
                message="Too many logins from this address; wait before trying again.",
            ),
            openid_limit=Windows.parse(
                config["LOGIN_RATE_LIMIT_OPENID"],
                "Too many logins for this WeChat user; wait before trying again.",
            ),
            wechat_limit=wechat_limit,
            publisher=publisher,
            checked=CheckSessionCache(client, keys=keys, ttl=config["CHECK_SESSION_CACHE"]),
            telemetry=telemetry,
        ),
        profile=ProfileService(
            accounts=accounts,
            session_keys=session_keys,
            content=content,
            publisher=publisher,
            wechat_limit=wechat_limit,
        ),
        avatars=avatars,
        accounts=account_service,
        push=PushService(
            max_age=config["PUSH_MAX_AGE"],
            guard=push_guard,
            avatars=avatars,
            accounts=account_service,
        ),
        readiness=Readiness(client, engine, config["REDIS_KEY_PREFIX"]),
        sessions=sessions,
    )


def _app(
    app: settings.WeChatApp,
    config: Mapping[str, Any],
    client: redis.Redis,
    http: requests.Session,
    keys: Keys,
    telemetry: Telemetry,
) -> App:
    wechat = WeChatClient(
        appid=app.appid,
        secret=app.secret,
        api_base=config["WECHAT_API_BASE"],
        http=http,
        timeout=(config["WECHAT_CONNECT_TIMEOUT"], config["WECHAT_READ_TIMEOUT"]),
        retry_backoff=config["WECHAT_RETRY_BACKOFF"],
        telemetry=telemetry,
    )
    # An attempt owns a code for as long as one exchange can take.
    exchange_time = 2 * (config["WECHAT_CONNECT_TIMEOUT"] + config["WECHAT_READ_TIMEOUT"])
    return App(
        appid=app.appid,
        kind=app.kind,
        wechat=wechat,
        access_token=AccessTokenStore(
            client,
            keys=keys,
            appid=app.appid,
            sealer=Sealer(config["SECRET_KEY"], "access_token at rest"),
            fetch=wechat.stable_token,
            telemetry=telemetry,
        ),
        login_codes=LoginCodeLedger(
            client,
            keys=keys,
            sealer=Sealer(config["SECRET_KEY"], "login code exchange"),
            appid=app.appid,
            replay_ttl=config["LOGIN_CODE_REPLAY_TTL"],
            pending_ttl=exchange_time + config["WECHAT_RETRY_BACKOFF"] + 5,
        ),
        cipher=OpenDataCipher(app.appid, max_age=config["WECHAT_WATERMARK_MAX_AGE"]),
        push=PushSettings(token=app.push_token, aes_key=app.push_aes_key),
        cookie_samesite=app.cookie_samesite,
    )
