"""Builds every service from settings and clients; the app keeps one of these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import Engine

from services.access_token import AccessTokenProvider
from services.login import LoginService
from services.opendata import OpenDataCipher
from services.profile import ProfileService
from services.redis_store import Keys
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
        secret_key=config["SECRET_KEY"],
        history=config["SESSION_KEY_HISTORY"],
        ttl=config["SESSION_TTL"],
    )
    tokens = AccessTokenProvider(client, keys=keys, fetch=wechat.stable_token)
    login = LoginService(
        wechat=wechat, users=users, sessions=sessions, session_keys=session_keys, tokens=tokens
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
    )
