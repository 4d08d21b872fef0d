"""Redis plumbing shared by the stores: key names, Lua scripts, and turning a
failing Redis into the domain error `SessionStoreUnavailable`.

Connecting (URLs, timeouts) is infrastructure: see infra/redis.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.commands.core import Script

from services import errors

log = logging.getLogger(__name__)
LUA_DIR = Path(__file__).with_name("lua")


class Keys:
    """Every Redis key the service writes, under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session_prefix(self) -> str:
        return f"{self.prefix}session:"

    def session(self, token: str) -> str:
        return f"{self.session_prefix()}{token}"

    def user_sessions(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}:sessions"

    def user_login(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}:login"

    def user_profile(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}:profile"

    def user_session_keys(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}:session_keys"

    def user_deleted(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}:deleted"

    def push(self, kind: str, digest: str) -> str:
        return f"{self.prefix}push:{kind}:{digest}"

    def login_code(self, digest: str) -> str:
        return f"{self.prefix}code:{digest}"

    def limits(self) -> str:
        """Prefix for the rate limiters' counters (the `limits` library's keys)."""
        return f"{self.prefix}limits"

    def access_token(self) -> str:
        return f"{self.prefix}access_token"

    def access_token_lock(self) -> str:
        return f"{self.prefix}access_token:lock"


def load_script(client: redis.Redis, name: str) -> Script:
    return client.register_script((LUA_DIR / f"{name}.lua").read_text())


def compare_and_set(script: Script, key: str, expected: str, new: str = "", ms: int = 0) -> bool:
    """Run compare_and_set.lua: set (or with new='' delete) `key` only if it
    still holds `expected`. Callers wrap it in guard()."""
    return bool(script(keys=[key], args=[expected, new, ms]))


@contextmanager
def guard() -> Iterator[None]:
    """The one place a Redis failure becomes a domain error."""
    try:
        yield
    except redis.RedisError as exc:
        log.error("Redis failed: %s: %s", type(exc).__name__, exc)
        raise errors.SessionStoreUnavailable() from None
