"""/openapi.json: the API's OpenAPI document (blueprints/openapi.yaml, see
blueprints/openapi.py). /docs: the same, rendered by Swagger UI, whose files
come from the pinned flask-swagger-ui package: no CDN, works offline."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, send_from_directory
from flask.typing import ResponseReturnValue

from blueprints import openapi

bp = Blueprint("docs", __name__)

ASSETS = Path(str(files("flask_swagger_ui") / "dist"))
PAGE = Path(__file__).with_name("docs.html")


@cache
def document(cookie_name: str) -> dict[str, Any]:
    return openapi.build(cookie_name)


@bp.get("/openapi.json")
def spec() -> ResponseReturnValue:
    return jsonify(document(current_app.config["SESSION_COOKIE_NAME"]))


@bp.get("/docs")
def page() -> ResponseReturnValue:
    return Response(PAGE.read_bytes(), mimetype="text/html")


@bp.get("/docs/assets/<name>")
def asset(name: str) -> ResponseReturnValue:
    return send_from_directory(ASSETS, name)
