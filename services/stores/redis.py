"""Redis plumbing shared by the stores: key names, Lua scripts, and turning a
failing Redis into the domain error `SessionStoreUnavailable`.

Connecting (URLs, timeouts) is infrastructure: see infra/redis.py.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from redis.commands.core import Script

from services import errors
from services.telemetry import NO_TELEMETRY, Telemetry

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

    def session_pattern(self) -> str:
        """SCAN's MATCH for every session key (glob characters in the prefix escaped)."""
        prefix = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix)
        return f"{prefix}{{*}}:session:*"

    def is_session(self, key: str) -> bool:
        return (
            key.startswith(self.prefix)
            and key[len(self.prefix) :].find("}:session:") == TAG_LENGTH + 1
        )

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


@functools.lru_cache(maxsize=4096)
def identity_tag(identity_id: int) -> str:
    digest = hashlib.sha256(f"identity:{identity_id}".encode()).digest()
    return base64.b32encode(digest).decode("ascii")[:TAG_LENGTH].lower()


def load_script(client: redis.Redis, name: str) -> Script:
    return client.register_script((LUA_DIR / f"{name}.lua").read_text())


def compare_and_set(script: Script, key: str, expected: str, new: str = "", ms: int = 0) -> bool:
    """Run compare_and_set.lua: set (or with new='' delete) `key` only if it
    still holds `expected`. Callers wrap it in guard()."""
    return bool(script(keys=[key], args=[expected, new, ms]))


# Failures that mean Redis did not answer (as opposed to an answer that is an
# error, like OOM or READONLY): they open the outage's pause. RedisCluster
# raises RedisClusterException, which is not a RedisError, when no node answers.
UNREACHABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.RedisClusterException,
)
FAILED = (redis.RedisError, redis.exceptions.RedisClusterException)


class Outage:
    """How one Redis client is doing, per process. Once Redis fails to answer,
    calls fail at once for `pause` seconds (a stalled Redis costs one
    deadline, not one per request), then calls try again. Logged when it
    starts, once per `log_every` while it lasts, and when it ends."""

    def __init__(
        self, pause: float, log_every: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.pause = pause
        self.log_every = log_every
        self.clock = clock
        self.until = 0.0
        self.failures = 0
        self.logged_at: float | None = None
        self.lock = threading.Lock()
        self.telemetry: Telemetry = NO_TELEMETRY

    @property
    def ongoing(self) -> bool:
        return self.clock() < self.until

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            now = self.clock()
            self.until = now + self.pause
            self.failures += 1
            if self.logged_at is None or now - self.logged_at >= self.log_every:
                first = self.logged_at is None
                self.logged_at = now
                log.error(
                    "Redis %s: %s (%d failure(s) so far); failing fast for %.1f s at a time",
                    "is unreachable" if first else "is still unreachable",
                    type(exc).__name__,
                    self.failures,
                    self.pause,
                )

    def answered(self) -> None:
        if self.logged_at is None:
            return
        with self.lock:
            if self.logged_at is not None:
                log.warning("Redis answers again after %d failure(s)", self.failures)
                self.logged_at, self.failures, self.until = None, 0, 0.0


_outages: weakref.WeakKeyDictionary[Any, Outage] = weakref.WeakKeyDictionary()
DEFAULT_PAUSE = 1.0


def watch(
    client: Any,
    pause: float = DEFAULT_PAUSE,
    telemetry: Telemetry | None = None,
    *,
    same_as: Any = None,
) -> Outage:
    """The client's outage state, created on first use; `telemetry` counts
    its failures (create_app hands it in). `same_as`: another client of the
    same Redis (the rate limits' storage and the stores' client) whose state
    this one shares: one outage, so a request pays at most one deadline
    however many clients it goes through."""
    outage = _outages.get(client)
    if outage is None:
        shared = _outages.get(same_as) if same_as is not None else None
        outage = _outages.setdefault(client, shared or Outage(pause))
    if telemetry is not None:
        outage.telemetry = telemetry
    return outage


@contextmanager
def guard(client: Any) -> Iterator[None]:
    """The one place a Redis failure becomes a domain error (503
    session_store_unavailable); during an outage, at once."""
    outage = watch(client)
    if outage.ongoing:
        outage.telemetry.redis_error("failing_fast")
        raise errors.SessionStoreUnavailable()
    try:
        yield
    except UNREACHABLE as exc:
        outage.telemetry.redis_error("unreachable")
        outage.failed(exc)
        raise errors.SessionStoreUnavailable() from None
    except FAILED as exc:
        outage.telemetry.redis_error("error")
        log.error("Redis answered an error: %s: %s", type(exc).__name__, str(exc)[:200])
        raise errors.SessionStoreUnavailable() from None
    outage.answered()
