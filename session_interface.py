"""Flask-Session's Redis interface, adapted to mini programs.

Mini programs have no cookie jar: the client keeps the Set-Cookie value in wx
storage and replays it as a Cookie header, or sends the same token as
`Authorization: Bearer <token>`. Both are read here. Storage goes through
`services.sessions.SessionStore`, whose writes are atomic scripts; this class
only reads a session, and sets or clears the cookie when a view asks it to.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask, Request, Response
from flask_session.redis import RedisSession, RedisSessionInterface

from services.errors import ServiceError
from services.sessions import IssuedSession, SessionRecord, SessionStore


class MiniProgramSession(RedisSession):
    """The request's session: the stored record, if any, and what the view
    decided (`issued` a new one, or `ended` this one)."""

    record: SessionRecord | None = None
    issued: IssuedSession | None = None
    ended: bool = False
    # Set when the store could not be read; views that need a user raise it.
    failure: ServiceError | None = None


class MiniProgramSessionInterface(RedisSessionInterface):
    session_class = MiniProgramSession

    def __init__(self, app: Flask, store: SessionStore) -> None:
        super().__init__(
            app,
            client=store.redis,
            key_prefix=store.keys.session_prefix(),
            permanent=True,
        )
        self.store = store

    def open_session(self, app: Flask, request: Request) -> MiniProgramSession:
        session = self.session_class(sid=None)
        token = self.token(app, request)
        if token is None:
            return session
        try:
            record = self.store.load(token)
        except ServiceError as exc:
            session.failure = exc
            return session
        if record is not None:
            session = self.session_class(
                {"user_id": record.user_id, "profile": record.profile}, sid=record.sid
            )
            session.record = record
        return session

    @staticmethod
    def token(app: Flask, request: Request) -> str | None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
        return request.cookies.get(app.config["SESSION_COOKIE_NAME"]) or None

    def save_session(self, app: Flask, session: MiniProgramSession, response: Response) -> None:
        attributes = {
            "path": self.get_cookie_path(app),
            "domain": self.get_cookie_domain(app),
            "secure": self.get_cookie_secure(app),
            "httponly": self.get_cookie_httponly(app),
            "samesite": self.get_cookie_samesite(app),
        }
        name = self.get_cookie_name(app)
        if session.issued is not None:
            issued = session.issued
            response.set_cookie(
                name,
                issued.sid,
                max_age=issued.expires_in,
                expires=datetime.now(UTC) + timedelta(seconds=issued.expires_in),
                **attributes,
            )
        elif session.ended:
            response.delete_cookie(name, **attributes)
        response.vary.update(("Cookie", "Authorization"))
