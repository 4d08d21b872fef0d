"""One access_token per app for every worker and instance, cached in Redis.

Processes that each fetch their own token invalidate one another (40001), so
exactly one process fetches: it takes a Redis lock, checks again that nobody
refreshed meanwhile, and fetches; the others keep using the cached token, or
wait for the new one. The token is refreshed ahead of expiry: stable_token
hands out a new token in the current one's last 5 minutes. The token is
sealed at rest (services/crypto/sealing.py), like session_keys: a Redis dump,
MONITOR or slowlog never shows a credential that can call WeChat's APIs.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from services import errors
from services.crypto.sealing import Sealer
from services.stores.redis import Keys, compare_and_set, guard, load_script
from services.telemetry import NO_TELEMETRY, Telemetry
from services.wechat import TOKEN_ERRORS, StableToken, WeChatErrcode

log = logging.getLogger(__name__)
T = TypeVar("T")


class AccessTokenStore:
    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: Keys,
        appid: str,
        sealer: Sealer,
        fetch: Callable[[], StableToken],
        refresh_ahead: int = 300,
        # Longer than a fetch can take (two attempts of connect + read timeout),
        # and waiters outlast it, so a crashed holder's lock frees in time.
        lock_ttl: float = 20.0,
        wait: float = 25.0,
        poll: float = 0.05,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self.redis = client
        self.appid = appid
        self.telemetry = telemetry
        self.keys = keys
        self.key = keys.access_token(appid)
        self.lock_key = keys.access_token_lock(appid)
        self.sealer = sealer
        self.fetch = fetch
        self.refresh_ahead = refresh_ahead
        self.lock_ttl = lock_ttl
        self.wait = wait
        self.poll = poll
        self._compare_and_set = load_script(client, "compare_and_set")

    def call(self, use: Callable[[str], T]) -> T:
        """Run `use(access_token)`; if WeChat says it was replaced or expired,
        drop it (only if it is still the cached one), refresh once, retry once."""
        access_token = self.current()
        try:
            return use(access_token)
        except WeChatErrcode as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.warning(
                "WeChat %s rejected the access_token (%s); refreshing", exc.endpoint, exc.errcode
            )
        self.invalidate(access_token)
        try:
            return use(self.current())
        except WeChatErrcode as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.error("WeChat %s rejected a fresh access_token too (%s)", exc.endpoint, exc.errcode)
            raise errors.WeChatTokenRejected() from None

    def current(self) -> str:
        """The shared access_token, fetched or refreshed if need be."""
        value, ttl = self._cached()
        if value is not None and ttl > self.refresh_ahead:
            return value
        return self._refresh(usable=value)

    def invalidate(self, access_token: str) -> bool:
        """Drop the cached access_token, but only if it is still this one."""
        with guard(self.redis):
            return compare_and_set(self._compare_and_set, self.key, self.sealer.seal(access_token))

    def _cached(self) -> tuple[str | None, float]:
        with guard(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(self.key)
            pipe.pttl(self.key)
            sealed, pttl = pipe.execute()
        # Sealed under another SECRET_KEY (rotated): as if there were none.
        value = self.sealer.open(sealed) if sealed is not None else None
        return value, pttl / 1000

    def _refresh(self, usable: str | None) -> str:
        """Refresh under the lock; without it, use the still-valid token or wait."""
        deadline = time.monotonic() + self.wait
        while True:
            lock_id = secrets.token_hex(16)
            with guard(self.redis):
                locked = self.redis.set(
                    self.lock_key, lock_id, nx=True, px=int(self.lock_ttl * 1000)
                )
            if locked:
                try:
                    return self._fetch_unless_refreshed()
                finally:
                    with guard(self.redis):
                        compare_and_set(self._compare_and_set, self.lock_key, lock_id)
            if usable is not None:
                return usable  # another process is refreshing; this one is still valid
            time.sleep(self.poll)
            value, _ = self._cached()
            if value is not None:
                return value
            if time.monotonic() > deadline:
                log.error("gave up waiting for another process to fetch the access_token")
                raise errors.WeChatBusy()

    def _fetch_unless_refreshed(self) -> str:
        value, ttl = self._cached()
        if value is not None and ttl > self.refresh_ahead:
            return value  # someone refreshed between our read and our lock
        fetched = self.fetch()
        self.telemetry.token_refresh(self.appid)
        with guard(self.redis):
            self.redis.set(self.key, self.sealer.seal(fetched.value), ex=fetched.expires_in)
        log.info("fetched a new access_token (expires in %ss)", fetched.expires_in)
        return fetched.value
