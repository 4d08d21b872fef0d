"""HTTP layer: one blueprint per resource, plus the errors blueprint."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue

from services.container import Services


def services() -> Services:
    return current_app.extensions["wx_services"]


def ok(data: Any = None, status: int = 200) -> ResponseReturnValue:
    return jsonify({"code": 0, "data": data}), status
