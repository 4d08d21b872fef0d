"""/oauth: turn a wx.login code into a session, and end sessions."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, g
from flask.typing import ResponseReturnValue

from blueprints import login_service, ok
from blueprints.auth import load_user, login_required
from blueprints.extensions import limiter
from blueprints.inputs import body_fields, flag_field, text_field
from blueprints.session import end_session, start_session
from services.errors import UnsupportedLoginType

bp = Blueprint("oauth", __name__, url_prefix="/oauth")
bp.before_request(load_user)

# wx.login codes are short printable tokens; anything else is not worth a call.
JS_CODE = re.compile(r"[\x21-\x7e]+")


@bp.post("/login")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
def login() -> ResponseReturnValue:
    fields = body_fields()
    js_code = text_field(fields, "code", max_length=128, pattern=JS_CODE)
    login_type = text_field(fields, "type", required=False, max_length=32) or "wxapp"
    if login_type != "wxapp":
        raise UnsupportedLoginType()
    issued = login_service().login(js_code)
    start_session(issued)
    return ok({"token": issued.token, "expiresIn": issued.expires_in})


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Ends this session, or with {"all": true} every session of the user, at
    once on every worker and instance. Without a session it is a no-op."""
    everywhere = flag_field(body_fields(), "all")
    return ok({"ended": end_session(everywhere)})


@bp.get("/check")
@login_required
def check() -> ResponseReturnValue:
    """Is the session alive (else 401), and does WeChat still accept the
    session_key? If not, call wx.login before asking the user for data."""
    valid = login_service().session_key_valid(g.user.id)
    return ok({"session": True, "sessionKeyValid": valid})
