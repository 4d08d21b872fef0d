"""Who is calling: the before_request hook and the login_required guard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from flask import g, session

from services.errors import Unauthorized

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CurrentUser:
    id: int
    profile: dict[str, Any]
    sid: str = field(repr=False)


def load_user() -> None:
    """before_request: the session (already resolved from the Cookie or
    Authorization header by the session interface) becomes g.user, or None."""
    record = session.record
    g.user = (
        CurrentUser(id=record.user_id, profile=record.profile, sid=record.sid)
        if record is not None
        else None
    )


def login_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            # An unreadable store is a 503, not a reason to log in again.
            raise session.failure or Unauthorized()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
