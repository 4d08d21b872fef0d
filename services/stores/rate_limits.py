"""Rate limits counted in Redis with the `limits` library (moving windows):
logins per client address and per WeChat user, and calls to WeChat per
account, so that no one client or user can spend the app's WeChat quota for
everyone."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from limits import parse_many
from limits.storage import Storage
from limits.strategies import MovingWindowRateLimiter

from services import errors
from services.stores.redis import guard


class RateLimit:
    def __init__(self, storage: Storage, limits: str, *, scope: str, message: str) -> None:
        self.items = parse_many(limits)
        self.storage = storage
        self.scope = scope
        self.message = message
        self.limiter = MovingWindowRateLimiter(storage)

    def hit(self, *who: str) -> None:
        """Count one; over any of the limits is RateLimited. The key holds a
        hash: no openid is written to Redis."""
        key = hashlib.sha256("\x1f".join(who).encode()).hexdigest()[:32]
        with guard(self.storage):
            for item in self.items:
                if not self.limiter.hit(item, self.scope, key):
                    reset_at = self.limiter.get_window_stats(item, self.scope, key)[0]
                    break
            else:
                return
        raise errors.RateLimited(
            self.message, retry_after=max(1, math.ceil(reset_at - time.time()))
        )


@dataclass(frozen=True)
class Windows:
    """Moving windows that a store's own Lua script counts, next to the other
    writes of the same login (SessionStore.issue): the per-user login limit,
    kept in the identity's hash slot, costs no round trip of its own. The
    algorithm is the `limits` library's moving window: one list of hit
    times, newest first; a hit is refused while the `amount`-th newest is
    younger than the window."""

    pairs: tuple[tuple[int, int], ...]  # (amount, seconds)
    message: str

    @classmethod
    def parse(cls, limits: str, message: str) -> Windows:
        return cls(tuple((i.amount, i.get_expiry()) for i in parse_many(limits)), message)

    def argument(self) -> str:
        """What the script reads: `amount:seconds` pairs, comma separated."""
        return ",".join(f"{amount}:{seconds}" for amount, seconds in self.pairs)

    def refused(self, wait_seconds: float) -> errors.RateLimited:
        return errors.RateLimited(self.message, retry_after=max(1, math.ceil(wait_seconds)))
