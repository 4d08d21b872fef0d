"""/avatars: avatars this service stores, public, cacheable for good (a
content hash names each one, so its bytes never change)."""

from __future__ import annotations

import re

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue

from blueprints import avatar_service
from services.errors import NotFound

bp = Blueprint("avatars", __name__)

NAME = re.compile(r"([0-9a-f]{64})\.jpg")
CACHE_FOREVER = "public, max-age=31536000, immutable"


@bp.get("/avatars/<name>")
def avatar(name: str) -> ResponseReturnValue:
    match = NAME.fullmatch(name)
    data = avatar_service().image(match[1]) if match else None
    if data is None:
        raise NotFound("There is no such avatar (or it was withdrawn).")
    response = Response(data, mimetype="image/jpeg")
    response.headers["Cache-Control"] = CACHE_FOREVER
    response.set_etag(match[1])
    return response.make_conditional(request)
