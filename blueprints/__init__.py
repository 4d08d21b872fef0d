"""The HTTP layer: one blueprint per resource (oauth, user, avatars, push,
health, docs), the errors blueprint that renders every failure as JSON, the session interface,
the before_request hook that loads the user, and the operator commands.

Views are thin: they parse input (inputs.py), call a use case through the
accessors below, and return data with ok(). README "Layout" maps each route
to its view, use case and stores.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify
from flask.typing import ResponseReturnValue

from services.apps import Apps
from services.graph import ServiceGraph
from services.usecases.accounts import AccountService
from services.usecases.avatars import AvatarService
from services.usecases.login import LoginService
from services.usecases.profile import ProfileService
from services.usecases.push import PushService
from services.usecases.readiness import Readiness

GRAPH = "service_graph"


def graph() -> ServiceGraph:
    return current_app.extensions[GRAPH]


def apps() -> Apps:
    return graph().apps


def login_service() -> LoginService:
    return graph().login


def profile_service() -> ProfileService:
    return graph().profile


def avatar_service() -> AvatarService:
    return graph().avatars


def account_service() -> AccountService:
    return graph().accounts


def push_service() -> PushService:
    return graph().push


def readiness() -> Readiness:
    return graph().readiness


def ok(data: Any = None, status: int = 200) -> ResponseReturnValue:
    return jsonify({"code": 0, "data": data}), status


def ok_json(data_json: str) -> Response:
    """ok() for data that is JSON text already (a session's stored profile):
    the hottest read sends it on without decoding and encoding it again."""
    return current_app.response_class(
        f'{{"code":0,"data":{data_json}}}\n', mimetype=current_app.json.mimetype
    )
