"""The session as the views see it: Flask-Session's server-side interface on
this service's SessionStore, and the two ways a view changes it.

    start_session(issued)   after a login: the response sets the cookie
    end_session(everywhere) logout: ends it (or all of the user's) in Redis
                            now, and the response deletes the cookie

Mini programs have no cookie jar: the client keeps the Set-Cookie value in wx
storage and replays it as a Cookie header, or sends the same token as
`Authorization: Bearer <token>`. Both reach the same session.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Request, Response, g, session
from flask_session.base import ServerSideSession, ServerSideSessionInterface

from blueprints import login_service
from services.errors import SessionStoreUnavailable
from services.stores.sessions import IssuedSession, SessionStore

# The answer depends on the token, which comes in either header.
VARY = ("Cookie", "Authorization")


class MiniProgramSession(ServerSideSession):
    """flask.session: `user_id` and `profile` once load()ed, when a live
    token was presented."""

    # The store could not be read: views that need a user answer 503, not 401.
    unavailable: bool = False
    # Seconds the cookie lives, and its SameSite: set by start_session().
    expires_in: int | None = None
    samesite: str | None = None
    _retrieve: Callable[[], dict[str, Any] | None] | None = None

    @property
    def token(self) -> str | None:
        """The session's token (Flask-Session calls it sid)."""
        return self.sid

    def load(self) -> None:
        """Read the session from the store, once; routes that need no user
        (health, avatars, the push URL) never do, so never wait on Redis."""
        retrieve, self._retrieve = self._retrieve, None
        if retrieve is None:
            return
        self.accessed = True  # the answer now depends on the token
        try:
            data = retrieve()
        except SessionStoreUnavailable:
            self.unavailable = True
            return
        if data:
            dict.update(self, data)  # what was stored is not a change
        else:
            self.sid = None


class MiniProgramSessionInterface(ServerSideSessionInterface):
    """Flask-Session's interface for a custom store; SessionStore is the store."""

    session_class = MiniProgramSession

    def __init__(self, app: Flask, store: SessionStore) -> None:
        super().__init__(app, key_prefix="", permanent=True)
        self.store = store

    # Overridden because the token may come as a Bearer header, an anonymous
    # request must not be handed a new id, and the store is read lazily.
    def open_session(self, app: Flask, request: Request) -> MiniProgramSession:
        opened = self.session_class()
        token = bearer_token(request) or request.cookies.get(self.get_cookie_name(app))
        if token:
            opened.sid = token
            opened._retrieve = lambda: self._retrieve_session_data(token)
        return opened

    # Overridden for Max-Age (phone clocks drift, Expires alone is unreliable)
    # and so deletion carries the same attributes as setting (SameSite=None
    # needs Secure for a browser to accept either).
    def save_session(self, app: Flask, session: MiniProgramSession, response: Response) -> None:
        if session.accessed or session.modified:
            if "Vary" in response.headers:
                response.vary.update(VARY)
            else:  # the common case, without parsing and rebuilding a header set
                response.headers["Vary"] = ", ".join(VARY)
        if not session.modified:
            return
        name, attributes = self.get_cookie_name(app), self.cookie_attributes(app, session)
        if not session:  # end_session() has already ended it in the store
            response.delete_cookie(name, **attributes)
            return
        self._upsert_session(app.permanent_session_lifetime, session, session.token)
        expires_in = session.expires_in or 0
        response.set_cookie(
            name,
            session.token,
            max_age=expires_in,
            expires=datetime.now(UTC) + timedelta(seconds=expires_in),
            **attributes,
        )

    def cookie_attributes(self, app: Flask, session: MiniProgramSession) -> dict[str, Any]:
        samesite = session.samesite or self.get_cookie_samesite(app)
        return {
            "path": self.get_cookie_path(app),
            "domain": self.get_cookie_domain(app),
            # Browsers drop a SameSite=None cookie that is not Secure.
            "secure": self.get_cookie_secure(app) or samesite == "None",
            "httponly": self.get_cookie_httponly(app),
            "samesite": samesite,
        }

    # -- Flask-Session's storage hooks -------------------------------------

    def _retrieve_session_data(self, store_id: str) -> dict[str, Any] | None:
        record = self.store.load(store_id)
        if record is None:
            return None
        return {
            "user_id": record.account_id,
            "identity_id": record.identity_id,
            "appid": record.appid,
            "profile_json": record.profile_json,
        }

    def _upsert_session(self, session_lifetime: timedelta, session: Any, store_id: str) -> None:
        """Nothing to write: the login script stored the session, atomically
        with the user's index and the de-duplication pointer."""

    def _delete_session(self, store_id: str) -> None:
        self.store.revoke(store_id)


def bearer_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def start_session(issued: IssuedSession) -> None:
    """The response to this request sets the session cookie for `issued`."""
    session.clear()
    session.sid = issued.token
    session.expires_in = issued.expires_in
    session.samesite = g.app.cookie_samesite
    session["user_id"] = issued.account_id


def end_session(everywhere: bool = False) -> int:
    """End the calling session now (with everywhere=True, every session of its
    user), on every worker and instance; the response deletes the cookie.
    Returns how many sessions ended."""
    if session.unavailable:
        raise SessionStoreUnavailable()  # the token may still be live: say so
    session.samesite = g.app.cookie_samesite
    ended = 0
    if g.user is not None:
        login = login_service()
        ended = login.logout_everywhere(g.user.id) if everywhere else login.logout(g.user.token)
    session.clear()
    return ended
