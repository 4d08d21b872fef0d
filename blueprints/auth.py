"""Who is calling: the before_request hook and the login_required guard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from flask import g, session

from services.errors import SessionStoreUnavailable, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CurrentUser:
    id: int
    profile: dict[str, Any]
    token: str = field(repr=False)


def load_user() -> None:
    """before_request of the blueprints whose views need to know the user:
    the session (from the Cookie or the Authorization header, see
    blueprints/session.py) becomes g.user, or None."""
    session.load()
    user_id = session.get("user_id")
    g.user = (
        CurrentUser(id=user_id, profile=session.get("profile") or {}, token=session.token)
        if user_id is not None
        else None
    )


def login_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            # An unreadable store is a 503, not a reason to log in again.
            raise SessionStoreUnavailable() if session.unavailable else Unauthorized()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
