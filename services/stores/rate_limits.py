"""Login attempts per WeChat user, counted in Redis with the `limits` library
(the engine behind Flask-Limiter, which guards the same endpoint per IP)."""

from __future__ import annotations

import hashlib
import math
import time

from limits import parse
from limits.storage import Storage
from limits.strategies import MovingWindowRateLimiter

from services import errors
from services.stores.redis import guard


class OpenidRateLimit:
    def __init__(self, storage: Storage, limit: str) -> None:
        self.item = parse(limit)
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)

    def hit(self, appid: str, openid: str) -> None:
        """Count one login of this user in this app; over the limit is
        RateLimited. The key holds a hash of the openid: no openid is written
        to Redis."""
        who = hashlib.sha256(f"{appid}:{openid}".encode()).hexdigest()[:32]
        with guard(self.storage):
            if self.limiter.hit(self.item, "login", "openid", who):
                return
            reset_at = self.limiter.get_window_stats(self.item, "login", "openid", who)[0]
        raise errors.RateLimited(
            "Too many logins for this WeChat user; wait before trying again.",
            retry_after=max(1, math.ceil(reset_at - time.time())),
        )
