"""/healthz: the process answers. /readyz: Redis and the database answer too."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from blueprints import ok, readiness
from services.errors import NotReady

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return ok({"status": "ok"})


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    parts = readiness().parts()
    if not all(parts.values()):
        failing = ", ".join(name for name, up in parts.items() if not up)
        raise NotReady(f"Not ready: {failing} does not answer.", data=parts)
    return ok(parts)
