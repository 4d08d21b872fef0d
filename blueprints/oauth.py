"""/oauth: turn a login code into a session (a mini program's wx.login code,
or an official account's web-login code), and end sessions."""

from __future__ import annotations

import re

from flask import Blueprint, g, request
from flask.typing import ResponseReturnValue

from blueprints import login_service, ok
from blueprints.auth import load_user, login_required
from blueprints.inputs import body_fields, flag_field, text_field
from blueprints.observe import identified
from blueprints.session import end_session, start_session
from services.errors import UnsupportedLoginType

bp = Blueprint("oauth", __name__, url_prefix="/oauth")
bp.before_request(load_user)

# Login codes are short printable tokens; anything else is not worth a call.
CODE = re.compile(r"[\x21-\x7e]+")


@bp.post("/login")
def login() -> ResponseReturnValue:
    """{code, type}: type "wxapp" (the default) for a mini program's wx.login
    code, "mp" for an official account's web-login code; the app is the one
    X-WX-AppId names."""
    fields = body_fields()
    code = text_field(fields, "code", max_length=128, pattern=CODE)
    login_type = text_field(fields, "type", required=False, max_length=32) or g.app.login_type
    if login_type != g.app.login_type:
        raise UnsupportedLoginType(
            f'This app takes login type "{g.app.login_type}", not "{login_type[:32]}".'
        )
    # remote_addr: the client's address (ProxyFix sets it from X-Forwarded-For
    # when TRUSTED_PROXIES says how many proxies to believe).
    issued = login_service().login(g.app, code, client=request.remote_addr or "")
    identified(issued.account_id)
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
    valid = login_service().session_key_valid(g.app, g.user.identity_id)
    return ok({"session": True, "sessionKeyValid": valid})
