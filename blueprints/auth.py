"""Who is calling, and for which app: the before_request hooks and the
login_required guard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from flask import g, request, session

from blueprints import apps
from blueprints.observe import identified
from services.errors import SessionStoreUnavailable, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])
# The mini program knows its own appid (wx.getAccountInfoSync().miniProgram.appId);
# the JS client sends it. Without it, a request is for the default app.
APP_HEADER = "X-WX-AppId"


@dataclass(frozen=True)
class CurrentUser:
    id: int  # the account
    identity_id: int
    profile_json: str  # as stored: see ok_json()
    token: str = field(repr=False)


def load_app() -> None:
    """before_request: the app the request is for becomes g.app (400 unknown_app)."""
    g.app = apps().get(request.headers.get(APP_HEADER, "").strip() or None)


def load_user() -> None:
    """before_request of the blueprints whose views need to know the user:
    the session (from the Cookie or the Authorization header, see
    blueprints/session.py) becomes g.user, or None. A session belongs to the
    app it was issued for: presented to another app, it is nobody."""
    load_app()
    session.load()
    g.user = None
    if session.get("user_id") is not None and session.get("appid") == g.app.appid:
        g.user = CurrentUser(
            id=session["user_id"],
            identity_id=session["identity_id"],
            profile_json=session.get("profile_json") or "{}",
            token=session.token,
        )
        identified(g.user.id)


def login_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            # An unreadable store is a 503, not a reason to log in again.
            raise SessionStoreUnavailable() if session.unavailable else Unauthorized()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
