"""/user: the logged-in user's profile."""

from __future__ import annotations

from flask import Blueprint, g
from flask.typing import ResponseReturnValue

from blueprints import ok
from blueprints.auth import login_required

bp = Blueprint("user", __name__, url_prefix="/user")


@bp.get("/info")
@login_required
def info() -> ResponseReturnValue:
    return ok(g.user.profile)
