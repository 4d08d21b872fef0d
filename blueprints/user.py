"""/user: the logged-in user's profile (bound from WeChat's data, or filled
in on a profile page), the avatar upload, and deleting the account."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, g, request, session
from flask.typing import ResponseReturnValue

from blueprints import account_service, avatar_service, ok, ok_json, profile_service
from blueprints.auth import load_user, login_required
from blueprints.inputs import body_fields, text_field, uploaded_file

bp = Blueprint("user", __name__, url_prefix="/user")
bp.before_request(load_user)

PHONE_CODE = re.compile(r"[\x21-\x7e]+")


@bp.get("/info")
@login_required
def info() -> ResponseReturnValue:
    return ok_json(g.user.profile_json)


@bp.put("/profile")
@login_required
def profile() -> ResponseReturnValue:
    """What a profile page sends: nickName (from <input type="nickname">),
    gender, city, province, country. Texts pass WeChat's content security
    before anything is stored."""
    return ok(profile_service().update_profile(g.user.identity_id, body_fields()))


@bp.post("/avatar")
@login_required
def avatar() -> ResponseReturnValue:
    """The file <button open-type="chooseAvatar"> chose, as wx.uploadFile sends
    it; it becomes avatarUrl once WeChat's content security approves it."""
    upload = uploaded_file("file", current_app.config["AVATAR_MAX_BYTES"])
    result = avatar_service().upload(g.user.identity_id, upload, avatar_base_url())
    return ok(result, 202 if result["pendingAvatarUrl"] else 200)


@bp.delete("")
@login_required
def delete() -> ResponseReturnValue:
    """Erase the account (every identity, in every app) and end all its
    sessions; a later login starts afresh."""
    account_service().delete(g.user.id, reason="user")
    session.clear()  # its sessions are gone already: this deletes the cookie
    return ok({"deleted": True})


def avatar_base_url() -> str:
    """Where avatars are served from: AVATAR_BASE_URL (a CDN, say), else this service."""
    return current_app.config["AVATAR_BASE_URL"] or request.host_url.rstrip("/")


@bp.post("/bindinfo")
@login_required
def bindinfo() -> ResponseReturnValue:
    """encryptedData and iv from getUserProfile/getUserInfo; rawData and
    signature, when sent, are checked too."""
    fields = body_fields()
    profile = profile_service().bind_info(
        g.app,
        g.user.identity_id,
        *sealed_fields(fields),
        # rawData is signed byte for byte: it is used exactly as sent.
        raw_data=text_field(fields, "rawData", required=False, max_length=8192, strip=False),
        signature=text_field(fields, "signature", required=False, max_length=128),
    )
    return ok(profile)


@bp.post("/bindphone")
@login_required
def bindphone() -> ResponseReturnValue:
    """{code} from the getPhoneNumber button (current API), or the legacy
    {encryptedData, iv}."""
    fields = body_fields()
    if fields.get("code") is not None or fields.get("encryptedData") is None:
        code = text_field(fields, "code", max_length=256, pattern=PHONE_CODE)
        profile = profile_service().bind_phone_code(g.app, g.user.identity_id, code)
    else:
        profile = profile_service().bind_phone_data(
            g.app, g.user.identity_id, *sealed_fields(fields)
        )
    return ok(profile)


def sealed_fields(fields: dict) -> tuple[str, str]:
    """encryptedData and iv, untrimmed: a space at either end is a '+' that a
    form encoder failed to escape."""
    return (
        text_field(fields, "encryptedData", max_length=16_384, strip=False),
        text_field(fields, "iv", max_length=64, strip=False),
    )
