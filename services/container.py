"""Builds every service from settings and clients; the app keeps one of these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import Engine

from services.access_token import AccessTokenProvider
from services.health import HealthCheck
from services.login import LoginService
from services.login_codes import LoginCodes
from services.opendata import OpenDataCipher
from services.profile import ProfileService
from services.rate_limits import OpenidRateLimit
from services.redis_store import Keys
from services.sealing import Sealer
from services.session_keys import SessionKeyRing
from services.sessions import SessionStore
from services.users import UserStore
from services.wechat import WeChatClient, http_session


@dataclass
class Services:
    wechat: WeChatClient
    users: UserStore
    sessions: SessionStore
    session_keys: SessionKeyRing
    tokens: AccessTokenProvider
    login: LoginService
    profile: ProfileService
    health: HealthCheck


def build(config: Mapping[str, Any], client: redis.Redis, engine: Engine) -> Services:
    keys = Keys(config["REDIS_KEY_PREFIX"])
    wechat = WeChatClient(
        appid=config["WECHAT_APPID"],
        secret=config["WECHAT_SECRET"],
        api_base=config["WECHAT_API_BASE"],
        http=http_session(),
        timeout=(config["WECHAT_CONNECT_TIMEOUT"], config["WECHAT_READ_TIMEOUT"]),
        retry_backoff=config["WECHAT_RETRY_BACKOFF"],
    )
    users = UserStore(engine)
    sessions = SessionStore(
        client,
        keys=keys,
        ttl=config["SESSION_TTL"],
        renew_interval=config["SESSION_RENEW_INTERVAL"],
        max_per_user=config["SESSIONS_PER_USER"],
        dedup_window=config["LOGIN_DEDUP_WINDOW"],
    )
    session_keys = SessionKeyRing(
        client,
        keys=keys,
        sealer=Sealer(config["SECRET_KEY"], "session_key at rest"),
        history=config["SESSION_KEY_HISTORY"],
        ttl=config["SESSION_TTL"],
    )
    tokens = AccessTokenProvider(client, keys=keys, fetch=wechat.stable_token)
    # An attempt owns a code for as long as one exchange can take.
    exchange_time = 2 * (config["WECHAT_CONNECT_TIMEOUT"] + config["WECHAT_READ_TIMEOUT"])
    codes = LoginCodes(
        client,
        keys=keys,
        sealer=Sealer(config["SECRET_KEY"], "login code exchange"),
        appid=config["WECHAT_APPID"],
        replay_ttl=config["LOGIN_CODE_REPLAY_TTL"],
        pending_ttl=exchange_time + config["WECHAT_RETRY_BACKOFF"] + 5,
    )
    limit = OpenidRateLimit(
        config["REDIS_URL"], config["LOGIN_RATE_LIMIT_OPENID"], key_prefix=keys.limits()
    )
    login = LoginService(
        wechat=wechat,
        users=users,
        sessions=sessions,
        session_keys=session_keys,
        tokens=tokens,
        codes=codes,
        limit=limit,
    )
    profile = ProfileService(
        users=users,
        sessions=sessions,
        session_keys=session_keys,
        cipher=OpenDataCipher(config["WECHAT_APPID"], max_age=config["WECHAT_WATERMARK_MAX_AGE"]),
        wechat=wechat,
        tokens=tokens,
    )
    return Services(
        wechat=wechat,
        users=users,
        sessions=sessions,
        session_keys=session_keys,
        tokens=tokens,
        login=login,
        profile=profile,
        health=HealthCheck(client, engine),
    )
