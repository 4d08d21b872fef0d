"""/openapi.json: the API's OpenAPI document (blueprints/openapi.yaml, see
blueprints/openapi.py). /docs: the same, rendered by Swagger UI, whose files
come from the pinned flask-swagger-ui package: no CDN, works offline."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, send_from_directory
from flask.typing import ResponseReturnValue

from blueprints import apps, openapi
from services import errors
from services.apps import Apps

bp = Blueprint("docs", __name__)

ASSETS = Path(str(files("flask_swagger_ui") / "dist"))
PAGE = Path(__file__).with_name("docs.html")
# What the page loads, and so all that is served of the package's folder.
SERVED = tuple(sorted(set(re.findall(r'"docs/assets/([\w.-]+)"', PAGE.read_text("utf-8")))))


@lru_cache(maxsize=16)  # per Flask app (its Apps) and cookie name
def document(cookie_name: str, served: Apps) -> dict[str, Any]:
    built = openapi.build(cookie_name, served)
    (name,) = built["paths"]["/docs/assets/{name}"]["get"]["parameters"]
    name["schema"]["enum"] = list(SERVED)
    return built


@bp.get("/openapi.json")
def spec() -> ResponseReturnValue:
    return jsonify(document(current_app.config["SESSION_COOKIE_NAME"], apps()))


@bp.get("/docs")
def page() -> ResponseReturnValue:
    return Response(PAGE.read_bytes(), mimetype="text/html")


@bp.get("/docs/assets/<name>")
def asset(name: str) -> ResponseReturnValue:
    if name not in SERVED:
        raise errors.NotFound()
    return send_from_directory(ASSETS, name)
