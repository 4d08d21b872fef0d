"""/healthz: the process answers. /readyz: Redis and the database answer too."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from blueprints import ok, services
from extensions import limiter
from services.errors import NotReady

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@limiter.exempt
def healthz() -> ResponseReturnValue:
    return ok({"status": "ok"})


@bp.get("/readyz")
@limiter.exempt
def readyz() -> ResponseReturnValue:
    parts = services().health.parts()
    if all(parts.values()):
        return ok(parts)
    failing = ", ".join(name for name, up in parts.items() if not up)
    error = NotReady(f"Not ready: {failing} does not answer.")
    return jsonify({**error.to_dict(), "data": parts}), error.status
