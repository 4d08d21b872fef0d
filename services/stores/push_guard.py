"""What WeChat already pushed: a push's signature parameters (a replayed
request is refused) and each event (WeChat retries, and a retried event must
change nothing twice). Shared by every worker and instance through Redis."""

from __future__ import annotations

import hashlib

import redis

from services.stores.redis import Keys, guard


class PushGuard:
    def __init__(self, client: redis.Redis, *, keys: Keys, window: int) -> None:
        self.redis = client
        self.keys = keys
        # Events are remembered for a day: WeChat's retries come within seconds.
        self.window = window
        self.event_window = max(window, 24 * 3600)

    def first_delivery(self, appid: str, timestamp: str, nonce: str, signature: str) -> bool:
        """False if this exact request (timestamp, nonce, signature) was seen."""
        return self._first("request", self.window, appid, timestamp, nonce, signature)

    def first_event(self, *identity: str) -> bool:
        """False if this event (WeChat's own identity of it) was handled."""
        return self._first("event", self.event_window, *identity)

    def park(self, trace_id: str, verdict: str) -> None:
        """Keep a verdict that arrived before its upload was recorded."""
        with guard(self.redis):
            self.redis.set(self.keys.push("parked", trace_id), verdict, ex=self.event_window)

    def claim_parked(self, trace_id: str) -> str | None:
        with guard(self.redis):
            return self.redis.getdel(self.keys.push("parked", trace_id))

    def _first(self, kind: str, ttl: int, *parts: str) -> bool:
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
        with guard(self.redis):
            return bool(self.redis.set(self.keys.push(kind, digest), "1", nx=True, ex=ttl))
