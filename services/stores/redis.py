"""Redis plumbing shared by the stores: key names, Lua scripts, and turning a
failing Redis into the domain error `SessionStoreUnavailable`.

Connecting (URLs, timeouts) is infrastructure: see infra/redis.py.
"""

from __future__ import annotations

import base64
import hashlib
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
    """Every Redis key the service writes, under one prefix.

    What one identity owns (its sessions, their index, its session_keys...)
    shares one hash tag, `{<tag>}`, so every script and pipeline touches one
    slot of a Redis Cluster; a session's token starts with that tag, so a
    token finds its slot without a lookup.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session(self, token: str) -> str:
        return f"{self.prefix}{{{token[:TAG_LENGTH]}}}:session:{token}"

    def session_prefix(self, tag: str) -> str:
        return f"{self.prefix}{{{tag}}}:session:"

    def identity(self, identity_id: int, what: str) -> str:
        """what: sessions | login | profile | session_keys | deleted."""
        return f"{self.prefix}{{{identity_tag(identity_id)}}}:identity:{identity_id}:{what}"

    def login_code(self, digest: str) -> str:
        return f"{self.prefix}code:{digest}"

    def limits(self) -> str:
        """Prefix for the rate limiters' counters (the `limits` library's keys)."""
        return f"{self.prefix}limits"

    def access_token(self, appid: str) -> str:
        return f"{self.prefix}{{app:{appid}}}:access_token"

    def access_token_lock(self, appid: str) -> str:
        return f"{self.prefix}{{app:{appid}}}:access_token:lock"

    def push(self, kind: str, digest: str) -> str:
        return f"{self.prefix}push:{kind}:{digest}"


# An identity's hash tag: a few characters of a hash of its id, so tags
# spread evenly over the cluster's slots and say nothing about the id.
TAG_LENGTH = 4


def identity_tag(identity_id: int) -> str:
    digest = hashlib.sha256(f"identity:{identity_id}".encode()).digest()
    return base64.b32encode(digest).decode("ascii")[:TAG_LENGTH].lower()


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
