"""Server-side sessions in Redis.

A session is a hash `session:<token>` holding only what the server needs to
answer without the database: the user id and a copy of the profile that
/user/info shows, tagged with the profile's version. The client holds only its
token. Each user has a bounded index of live sessions (for logout-everywhere
and for pushing a new profile into every session) and a short-lived pointer
to the newest session (for collapsing parallel logins into one). See README
"Session model".
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from services import errors
from services.stores.redis import Keys, guard, load_script

# Long enough for any login that read a user row before its deletion to
# reach the issue script (gunicorn's request timeout is 30 s).
DELETION_MARK_TTL = 300
# secrets.token_urlsafe(32): 256 random bits in 43 URL-safe characters, with no
# '=' or '&' that mini program cookie interceptors would mangle.
TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class IssuedSession:
    """What a login hands the client: its token, and for how long it lives."""

    token: str = field(repr=False)
    user_id: int
    expires_in: int
    reused: bool


@dataclass(frozen=True)
class SessionRecord:
    """A live session as stored."""

    token: str = field(repr=False)
    user_id: int
    profile: dict[str, Any]
    profile_version: int


def is_token(value: str) -> bool:
    return bool(TOKEN_PATTERN.fullmatch(value))


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class SessionStore:
    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: Keys,
        ttl: int,
        renew_interval: int,
        max_per_user: int,
        dedup_window: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.ttl = ttl
        self.renew_interval = renew_interval
        self.max_per_user = max_per_user
        self.dedup_window = dedup_window
        self.clock = clock
        self._issue = load_script(client, "issue_session")
        self._renew = load_script(client, "renew_session")
        self._revoke = load_script(client, "revoke_session")
        self._revoke_user = load_script(client, "revoke_user")
        self._sync = load_script(client, "sync_profile")

    def issue(self, user_id: int, profile: dict[str, Any], version: int) -> IssuedSession:
        """A fresh session, or within the de-duplication window the user's
        newest one (so parallel logins of one user share a token)."""
        with guard():
            token, *rest = self._issue(
                keys=[
                    self.keys.user_sessions(user_id),
                    self.keys.user_login(user_id),
                    self.keys.user_profile(user_id),
                    self.keys.user_deleted(user_id),
                ],
                args=[
                    self.keys.session_prefix(),
                    new_token(),
                    self.ttl,
                    self.dedup_window,
                    int(self.clock()),
                    self.max_per_user,
                    user_id,
                    version,
                    _dump(profile),
                ],
            )
        if token is None:
            raise errors.AccountDeleted()
        return IssuedSession(
            token=token, user_id=user_id, expires_in=self.ttl, reused=bool(rest[0])
        )

    def load(self, token: str) -> SessionRecord | None:
        """One round trip, two commands; the expiry slides at most once per
        renew interval, and reading never rewrites the session."""
        if not is_token(token):
            return None
        key = self.keys.session(token)
        with guard():
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(key)
            pipe.pttl(key)
            data, pttl = pipe.execute()
            record = _record(token, data)
            if record and 0 <= pttl < (self.ttl - self.renew_interval) * 1000:
                self._renew(
                    keys=[key, self.keys.user_sessions(record.user_id)],
                    args=[self.ttl, int(self.clock()), token],
                )
        return record

    def reissue(self, token: str) -> IssuedSession | None:
        """The live session behind `token`, as a login hands it out again
        (with the time it has left), or None if it has ended."""
        if not is_token(token):
            return None
        key = self.keys.session(token)
        with guard():
            pipe = self.redis.pipeline(transaction=False)
            pipe.hget(key, "uid")
            pipe.ttl(key)
            user_id, ttl = pipe.execute()
        if user_id is None or ttl <= 0:
            return None
        return IssuedSession(token=token, user_id=int(user_id), expires_in=ttl, reused=True)

    def revoke(self, token: str) -> bool:
        """End one session; True if it was live."""
        if not is_token(token):
            return False
        key = self.keys.session(token)
        with guard():
            user_id = self.redis.hget(key, "uid")
            if user_id is None:
                return False
            return bool(
                self._revoke(
                    keys=[
                        key,
                        self.keys.user_sessions(int(user_id)),
                        self.keys.user_login(int(user_id)),
                    ],
                    args=[token],
                )
            )

    def revoke_user(self, user_id: int) -> int:
        """End every session of the user; how many were live."""
        return self._end_user(user_id, mark_ttl=0)

    def forget_user(self, user_id: int) -> int:
        """For a user being deleted: end every session, drop the profile
        snapshot, and refuse the user new sessions for a while (a login that
        read the row before it went). How many sessions were live."""
        return self._end_user(user_id, mark_ttl=DELETION_MARK_TTL)

    def _end_user(self, user_id: int, mark_ttl: int) -> int:
        with guard():
            return int(
                self._revoke_user(
                    keys=[
                        self.keys.user_sessions(user_id),
                        self.keys.user_login(user_id),
                        self.keys.user_profile(user_id),
                        self.keys.user_deleted(user_id),
                    ],
                    args=[self.keys.session_prefix(), mark_ttl],
                )
            )

    def live_tokens(self, user_id: int) -> list[str]:
        with guard():
            return list(self.redis.zrange(self.keys.user_sessions(user_id), 0, -1))

    def sync_profile(self, user_id: int, profile: dict[str, Any], version: int) -> int:
        """Put a newer profile into every live session of the user."""
        with guard():
            return int(
                self._sync(
                    keys=[self.keys.user_sessions(user_id), self.keys.user_profile(user_id)],
                    args=[self.keys.session_prefix(), version, _dump(profile), self.ttl],
                )
            )


def _dump(profile: dict[str, Any]) -> str:
    return json.dumps(profile, ensure_ascii=False, separators=(",", ":"))


def _record(token: str, data: dict[str, str]) -> SessionRecord | None:
    try:
        return SessionRecord(
            token=token,
            user_id=int(data["uid"]),
            profile=json.loads(data["profile"]),
            profile_version=int(data["pv"]),
        )
    except (KeyError, ValueError):
        return None
