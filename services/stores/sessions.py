"""Server-side sessions in Redis.

A session is a hash holding only what the server needs to answer without the
database: the account id, the identity and app it was issued for, and a copy
of the profile /user/info shows, tagged with the profile's version. The
client holds only its token (services/crypto/tokens.py). Each identity has a
bounded index of live sessions (for logout-everywhere and for pushing a new
profile into every session) and a short-lived pointer to its newest session
(for collapsing parallel logins into one). See README "Session model".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from services import errors
from services.crypto.tokens import TokenMinter
from services.stores.rate_limits import Windows
from services.stores.redis import Keys, guard, identity_tag, load_script
from services.stores.session_keys import RingEntry

# Long enough for any login that read an account before its deletion to
# reach the issue script (gunicorn's request timeout is 30 s).
DELETION_MARK_TTL = 300


@dataclass(frozen=True)
class IssuedSession:
    """What a login hands the client: its token, and for how long it lives."""

    token: str = field(repr=False)
    account_id: int
    expires_in: int
    reused: bool


@dataclass(frozen=True)
class SessionRecord:
    """A live session as stored."""

    token: str = field(repr=False)
    account_id: int
    identity_id: int
    appid: str
    # The profile as stored, JSON text: /user/info sends it on as it is.
    profile_json: str
    profile_version: int

    @property
    def profile(self) -> dict[str, Any]:
        return json.loads(self.profile_json)


class SessionStore:
    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: Keys,
        tokens: TokenMinter,
        ttl: int,
        renew_interval: int,
        max_per_identity: int,
        dedup_window: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.tokens = tokens
        self.ttl = ttl
        self.renew_interval = renew_interval
        self.max_per_identity = max_per_identity
        self.dedup_window = dedup_window
        self.clock = clock
        self._issue = load_script(client, "issue_session")
        self._renew = load_script(client, "renew_session")
        self._revoke = load_script(client, "revoke_session")
        self._revoke_identity = load_script(client, "revoke_identity")
        self._sync = load_script(client, "sync_profile")

    def issue(
        self,
        *,
        identity_id: int,
        account_id: int,
        appid: str,
        profile: dict[str, Any],
        version: int,
        session_key: RingEntry | None = None,
        limit: Windows | None = None,
    ) -> IssuedSession:
        """A fresh session, or within the de-duplication window the identity's
        newest one (so parallel logins of one user in one app share a token).
        In the same script: the login counted against `limit` (RateLimited
        when over it, and nothing written) and `session_key` recorded in the
        identity's ring (services/stores/session_keys.py)."""
        tag = identity_tag(identity_id)
        now = self.clock()
        with guard(self.redis):
            token, *rest = self._issue(
                keys=[
                    *self._identity_keys(identity_id),
                    self.keys.identity(identity_id, "session_keys"),
                    self.keys.identity(identity_id, "logins"),
                ],
                args=[
                    self.keys.session_prefix(tag),
                    self.tokens.mint(tag),
                    self.ttl,
                    self.dedup_window,
                    int(now),
                    self.max_per_identity,
                    account_id,
                    version,
                    _dump(profile),
                    identity_id,
                    appid,
                    *_ring_arguments(session_key),
                    limit.argument() if limit else "",
                    repr(now),
                ],
            )
        if token is None:
            if rest and limit is not None:
                raise limit.refused(float(rest[0]))
            raise errors.AccountDeleted()
        return IssuedSession(token, account_id, self.ttl, reused=bool(rest[0]))

    def load(self, token: str) -> SessionRecord | None:
        """One round trip, two commands; the expiry slides at most once per
        renew interval, and reading never rewrites the session. A token this
        service did not mint is refused without asking Redis."""
        if not self.tokens.valid(token):
            return None
        key = self.keys.session(token)
        with guard(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(key)
            pipe.pttl(key)
            data, pttl = pipe.execute()
            record = _record(token, data)
            if record and 0 <= pttl < (self.ttl - self.renew_interval) * 1000:
                self._renew(
                    keys=[key, self.keys.identity(record.identity_id, "sessions")],
                    args=[self.ttl, int(self.clock()), token],
                )
        return record

    def count_live(self, exact_below: int = 1000, samples: int = 128) -> int:
        """How many sessions are live, for the metrics, at a cost that does
        not grow with them: Redis counts its keys in O(1) (DBSIZE); up to
        `exact_below` keys the session keys are counted exactly (one SCAN),
        beyond that `samples` random keys (one pipelined round trip of
        RANDOMKEY) tell which share of the keys are sessions. The estimate is
        within about ten per cent when sessions are a third of the keys or
        more. Keeping an exact count would cost every login and logout a
        write to one global key (a hot slot in a Cluster)."""
        with guard(self.redis):
            total = int(self.redis.dbsize())
            if total <= exact_below:
                return sum(
                    1 for _ in self.redis.scan_iter(match=self.keys.session_pattern(), count=1000)
                )
            pipe = self.redis.pipeline(transaction=False)
            for _ in range(samples):
                pipe.randomkey()
            drawn = pipe.execute()
        hits = sum(1 for key in drawn if key and self.keys.is_session(key))
        return round(total * hits / samples)

    def reissue(self, token: str) -> IssuedSession | None:
        """The live session behind `token`, as a login hands it out again
        (with the time it has left), or None if it has ended."""
        if not self.tokens.valid(token):
            return None
        key = self.keys.session(token)
        with guard(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hget(key, "uid")
            pipe.ttl(key)
            account_id, ttl = pipe.execute()
        if account_id is None or ttl <= 0:
            return None
        return IssuedSession(token, int(account_id), ttl, reused=True)

    def revoke(self, token: str) -> bool:
        """End one session; True if it was live."""
        if not self.tokens.valid(token):
            return False
        key = self.keys.session(token)
        with guard(self.redis):
            identity_id = self.redis.hget(key, "iid")
            if identity_id is None:
                return False
            sessions, login, *_ = self._identity_keys(int(identity_id))
            return bool(self._revoke(keys=[key, sessions, login], args=[token]))

    def revoke_identity(self, identity_id: int) -> int:
        """End every session of the identity; how many were live."""
        return self._end_identity(identity_id, mark_ttl=0)

    def forget_identity(self, identity_id: int) -> int:
        """For an account being deleted: end every session of the identity,
        drop its profile snapshot, and refuse it new sessions for a while (a
        login that read the account before it went). How many were live."""
        return self._end_identity(identity_id, mark_ttl=DELETION_MARK_TTL)

    def live_tokens(self, identity_id: int) -> list[str]:
        with guard(self.redis):
            return list(self.redis.zrange(self.keys.identity(identity_id, "sessions"), 0, -1))

    def sync_profile(
        self, identity_id: int, account_id: int, profile: dict[str, Any], version: int
    ) -> int:
        """Put a newer profile (and its account id) into every live session of
        the identity."""
        sessions, _, snapshot, _ = self._identity_keys(identity_id)
        with guard(self.redis):
            return int(
                self._sync(
                    keys=[sessions, snapshot],
                    args=[
                        self.keys.session_prefix(identity_tag(identity_id)),
                        version,
                        _dump(profile),
                        self.ttl,
                        account_id,
                    ],
                )
            )

    def _end_identity(self, identity_id: int, mark_ttl: int) -> int:
        with guard(self.redis):
            return int(
                self._revoke_identity(
                    keys=[
                        *self._identity_keys(identity_id),
                        self.keys.identity(identity_id, "logins"),
                    ],
                    args=[self.keys.session_prefix(identity_tag(identity_id)), mark_ttl],
                )
            )

    def _identity_keys(self, identity_id: int) -> list[str]:
        return [
            self.keys.identity(identity_id, what)
            for what in ("sessions", "login", "profile", "deleted")
        ]


def _ring_arguments(entry: RingEntry | None) -> list[Any]:
    if entry is None:
        return ["", 0, 0, 0]
    return [entry.sealed, repr(entry.seen_at), entry.history, entry.ttl]


def _dump(profile: dict[str, Any]) -> str:
    return json.dumps(profile, ensure_ascii=False, separators=(",", ":"))


def _checked(profile_json: str) -> str:
    """What _dump() wrote is an object; anything else in its place is no session.
    (A full parse would cost every read of /user/info a decode.)"""
    if not (profile_json.startswith("{") and profile_json.endswith("}")):
        raise ValueError("not a stored profile")
    return profile_json


def _record(token: str, data: dict[str, str]) -> SessionRecord | None:
    try:
        return SessionRecord(
            token=token,
            account_id=int(data["uid"]),
            identity_id=int(data["iid"]),
            appid=data["app"],
            profile_json=_checked(data["profile"]),
            profile_version=int(data["pv"]),
        )
    except (KeyError, ValueError):
        return None
