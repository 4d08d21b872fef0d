"""Wires every service from settings and clients. create_app() builds one
ServiceGraph per app; the HTTP layer reaches the use cases through it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from limits.storage import Storage
from sqlalchemy import Engine

from services.crypto.opendata import OpenDataCipher
from services.crypto.sealing import Sealer
from services.stores.access_token import AccessTokenStore
from services.stores.avatars import SqlAvatarStorage
from services.stores.login_codes import LoginCodeLedger
from services.stores.push_guard import PushGuard
from services.stores.rate_limits import OpenidRateLimit
from services.stores.redis import Keys
from services.stores.session_keys import SessionKeyRing
from services.stores.sessions import SessionStore
from services.stores.users import UserStore
from services.usecases.accounts import AccountService
from services.usecases.avatars import AvatarService, AvatarSettings
from services.usecases.login import LoginService
from services.usecases.profile import ProfileService
from services.usecases.push import PushService
from services.usecases.readiness import Readiness
from services.wechat import WeChatClient, http_session


@dataclass(frozen=True)
class ServiceGraph:
    login: LoginService
    profile: ProfileService
    avatars: AvatarService
    accounts: AccountService
    push: PushService
    readiness: Readiness
    # The session interface reads sessions straight from the store.
    sessions: SessionStore


def build_graph(
    config: Mapping[str, Any], client: redis.Redis, engine: Engine, limits: Storage
) -> ServiceGraph:
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
    access_token = AccessTokenStore(client, keys=keys, fetch=wechat.stable_token)
    # An attempt owns a code for as long as one exchange can take.
    exchange_time = 2 * (config["WECHAT_CONNECT_TIMEOUT"] + config["WECHAT_READ_TIMEOUT"])
    login_codes = LoginCodeLedger(
        client,
        keys=keys,
        sealer=Sealer(config["SECRET_KEY"], "login code exchange"),
        appid=config["WECHAT_APPID"],
        replay_ttl=config["LOGIN_CODE_REPLAY_TTL"],
        pending_ttl=exchange_time + config["WECHAT_RETRY_BACKOFF"] + 5,
    )
    login = LoginService(
        wechat=wechat,
        users=users,
        sessions=sessions,
        session_keys=session_keys,
        access_token=access_token,
        login_codes=login_codes,
        openid_limit=OpenidRateLimit(limits, config["LOGIN_RATE_LIMIT_OPENID"]),
    )
    profile = ProfileService(
        users=users,
        sessions=sessions,
        session_keys=session_keys,
        cipher=OpenDataCipher(config["WECHAT_APPID"], max_age=config["WECHAT_WATERMARK_MAX_AGE"]),
        wechat=wechat,
        access_token=access_token,
        review_policy=config["PROFILE_REVIEW_POLICY"],
    )
    push_guard = PushGuard(client, keys=keys, window=2 * config["PUSH_MAX_AGE"])
    avatars = AvatarService(
        users=users,
        sessions=sessions,
        storage=SqlAvatarStorage(engine),
        wechat=wechat,
        access_token=access_token,
        push_guard=push_guard,
        settings=AvatarSettings(
            max_pixels=config["AVATAR_MAX_PIXELS"],
            size=config["AVATAR_SIZE"],
            review_timeout=config["AVATAR_REVIEW_TIMEOUT"],
            review_policy=config["PROFILE_REVIEW_POLICY"],
        ),
    )
    accounts = AccountService(
        users=users, sessions=sessions, session_keys=session_keys, avatars=avatars
    )
    push = PushService(
        appid=config["WECHAT_APPID"],
        token=config["WECHAT_PUSH_TOKEN"],
        aes_key=config["WECHAT_PUSH_AES_KEY"],
        max_age=config["PUSH_MAX_AGE"],
        guard=push_guard,
        avatars=avatars,
        accounts=accounts,
    )
    return ServiceGraph(
        login=login,
        profile=profile,
        avatars=avatars,
        accounts=accounts,
        push=push,
        readiness=Readiness(client, engine),
        sessions=sessions,
    )
