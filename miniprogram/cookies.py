"""The cookie-storing interceptor mini programs need, since they have no
cookie jar: Set-Cookie values go to storage and come back as a Cookie header.

Unlike the interceptors in circulation, it honours Max-Age, Expires and
deletion, keeps several cookies, and does not mangle values containing '='.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from email.utils import parsedate_to_datetime
from typing import Any

from miniprogram.storage import Storage

STORAGE_KEY = "cookies"


def parse_set_cookie(header: str, now: float) -> tuple[str, str, float | None] | None:
    """(name, value, expires-at or None for a session cookie); expires-at in
    the past means the server deleted the cookie."""
    pair, *attributes = header.split(";")
    name, sep, value = pair.partition("=")
    name = name.strip()
    if not sep or not name:
        return None
    expires: float | None = None
    max_age: float | None = None
    for attribute in attributes:
        key, _, raw = attribute.partition("=")
        key = key.strip().lower()
        if key == "max-age":
            try:
                max_age = now + int(raw.strip())
            except ValueError:
                continue
        elif key == "expires":
            try:
                expires = parsedate_to_datetime(raw.strip()).timestamp()
            except (TypeError, ValueError):
                continue
    # Max-Age wins over Expires (RFC 6265 5.3).
    return name, value.strip().strip('"'), max_age if max_age is not None else expires


class CookieJar:
    def __init__(self, storage: Storage, clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.clock = clock

    def _live(self) -> dict[str, dict[str, Any]]:
        now = self.clock()
        stored = self.storage.get(STORAGE_KEY, {})
        return {
            name: cookie
            for name, cookie in stored.items()
            if cookie.get("expires") is None or cookie["expires"] > now
        }

    def store(self, set_cookie_headers: Iterable[str]) -> None:
        cookies = self._live()
        now = self.clock()
        for header in set_cookie_headers:
            parsed = parse_set_cookie(header, now)
            if parsed is None:
                continue
            name, value, expires = parsed
            if expires is not None and expires <= now:
                cookies.pop(name, None)
            else:
                cookies[name] = {"value": value, "expires": expires}
        self.storage.set(STORAGE_KEY, cookies)

    def header(self) -> str | None:
        cookies = self._live()
        if not cookies:
            return None
        return "; ".join(f"{name}={cookie['value']}" for name, cookie in cookies.items())

    def clear(self) -> None:
        self.storage.set(STORAGE_KEY, {})
