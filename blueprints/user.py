"""/user: the logged-in user's profile, and binding it from WeChat's data."""

from __future__ import annotations

import re

from flask import Blueprint, g
from flask.typing import ResponseReturnValue

from blueprints import ok, profile_service
from blueprints.auth import login_required
from blueprints.inputs import body_fields, text_field

bp = Blueprint("user", __name__, url_prefix="/user")

PHONE_CODE = re.compile(r"[\x21-\x7e]+")


@bp.get("/info")
@login_required
def info() -> ResponseReturnValue:
    return ok(g.user.profile)


@bp.post("/bindinfo")
@login_required
def bindinfo() -> ResponseReturnValue:
    """encryptedData and iv from getUserProfile/getUserInfo; rawData and
    signature, when sent, are checked too."""
    fields = body_fields()
    profile = profile_service().bind_info(
        g.user.id,
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
        profile = profile_service().bind_phone_code(g.user.id, code)
    else:
        profile = profile_service().bind_phone_data(g.user.id, *sealed_fields(fields))
    return ok(profile)


def sealed_fields(fields: dict) -> tuple[str, str]:
    """encryptedData and iv, untrimmed: a space at either end is a '+' that a
    form encoder failed to escape."""
    return (
        text_field(fields, "encryptedData", max_length=16_384, strip=False),
        text_field(fields, "iv", max_length=64, strip=False),
    )
