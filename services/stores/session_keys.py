"""The few most recent session_keys of each identity (a user in one mini
program: session_keys are per app), newest first, in Redis.

WeChat may hand out a new session_key on any wx.login, and data the client
encrypted a moment earlier is still under the previous one, so decryption
tries the recent keys in turn. Keys are sealed at rest (services/crypto/sealing.py):
a Redis dump, MONITOR or slowlog never shows one. Sealing is deterministic, so
the same session_key seen twice stays one entry.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from services.crypto.sealing import Sealer
from services.stores.redis import Keys, guard


@dataclass(frozen=True)
class RecentKey:
    session_key: str = field(repr=False)
    age: float


@dataclass(frozen=True)
class RingEntry:
    """A session_key ready to be recorded by a script that writes the
    identity's other keys at the same time (SessionStore.issue: one slot,
    one round trip), as record() would."""

    sealed: str = field(repr=False)
    seen_at: float
    history: int
    ttl: int


class SessionKeyRing:
    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: Keys,
        sealer: Sealer,
        history: int,
        ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.history = history
        self.ttl = ttl
        self.clock = clock
        self.sealer = sealer

    def record(self, identity_id: int, session_key: str) -> None:
        """Remember a session_key as the identity's newest; forget the oldest.
        (A login records its entry() through the session script instead.)"""
        entry = self.entry(session_key)
        key = self.keys.identity(identity_id, "session_keys")
        with guard(self.redis):
            pipe = self.redis.pipeline(transaction=True)
            pipe.zadd(key, {entry.sealed: entry.seen_at})
            pipe.zremrangebyrank(key, 0, -(entry.history + 1))
            pipe.expire(key, entry.ttl)
            pipe.execute()

    def entry(self, session_key: str) -> RingEntry:
        return RingEntry(
            sealed=self.sealer.seal(session_key),
            seen_at=self.clock(),
            history=self.history,
            ttl=self.ttl,
        )

    def recent(self, identity_id: int) -> list[RecentKey]:
        """Newest first. Entries sealed under another SECRET_KEY are skipped."""
        with guard(self.redis):
            entries = self.redis.zrevrange(
                self.keys.identity(identity_id, "session_keys"),
                0,
                self.history - 1,
                withscores=True,
            )
        now = self.clock()
        found = []
        for sealed, seen_at in entries:
            session_key = self.sealer.open(sealed)
            if session_key is not None:
                found.append(RecentKey(session_key=session_key, age=max(0.0, now - seen_at)))
        return found

    def forget(self, identity_id: int) -> None:
        with guard(self.redis):
            self.redis.delete(self.keys.identity(identity_id, "session_keys"))

    def newest(self, identity_id: int) -> str | None:
        recent = self.recent(identity_id)
        return recent[0].session_key if recent else None


class CheckSessionCache:
    """WeChat's recent answer to "is this session_key still valid?" for an
    identity, for a short while: asking again at once would only spend quota.
    Keyed by a hash of the key, so a new session_key is asked about afresh."""

    def __init__(self, client: redis.Redis, *, keys: Keys, ttl: int) -> None:
        self.redis = client
        self.keys = keys
        self.ttl = ttl

    def get(self, identity_id: int, session_key: str) -> bool | None:
        if not self.ttl:
            return None
        with guard(self.redis):
            cached = self.redis.get(self.keys.identity(identity_id, "checked"))
        if cached is None:
            return None
        digest, _, valid = cached.partition(":")
        return valid == "1" if digest == _digest(session_key) else None

    def put(self, identity_id: int, session_key: str, valid: bool) -> None:
        if not self.ttl:
            return
        value = f"{_digest(session_key)}:{int(valid)}"
        with guard(self.redis):
            self.redis.set(self.keys.identity(identity_id, "checked"), value, ex=self.ttl)


def _digest(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()[:16]
