"""Redis plumbing shared by the stores: key names, scripts, and turning an
unreachable Redis into a domain error.

The scripts touch keys derived inside them (a user's sessions), so the service
needs a single Redis primary (replicas and Sentinel are fine, Cluster is not).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from services import errors

log = logging.getLogger(__name__)
LUA_DIR = Path(__file__).with_name("lua")


class Keys:
    """Every Redis key the service writes, under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session_prefix(self) -> str:
        return f"{self.prefix}session:"

    def session(self, sid: str) -> str:
        return f"{self.session_prefix()}{sid}"

    def user_sessions(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}:sessions"

    def user_login(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}:login"

    def user_profile(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}:profile"

    def user_session_keys(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}:session_keys"

    def login_code(self, digest: str) -> str:
        return f"{self.prefix}code:{digest}"

    def limits(self) -> str:
        """Prefix for the rate limiters' counters (the `limits` library's keys)."""
        return f"{self.prefix}limits"

    def access_token(self) -> str:
        return f"{self.prefix}access_token"

    def access_token_lock(self) -> str:
        return f"{self.prefix}access_token:lock"


def connect(url: str) -> redis.Redis:
    """A client that fails fast: one retry covers a pooled connection the
    server closed; after that the request gets a 503 instead of hanging."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
    )


def load_script(client: redis.Redis, name: str) -> Script:
    return client.register_script((LUA_DIR / f"{name}.lua").read_text())


def compare_and_set(script: Script, key: str, expected: str, new: str = "", ms: int = 0) -> bool:
    """Run compare_and_set.lua: set (or with new='' delete) `key` only if it
    still holds `expected`. Callers wrap it in guard()."""
    return bool(script(keys=[key], args=[expected, new, ms]))


@contextmanager
def guard() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        log.error("Redis failed: %s: %s", type(exc).__name__, exc)
        raise errors.SessionStoreUnavailable() from None
