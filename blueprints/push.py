"""/wechat/push: the mini program's message-push URL (开发管理 → 消息推送),
where WeChat sends content-check verdicts and events about users."""

from __future__ import annotations

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue

from blueprints import push_service

bp = Blueprint("push", __name__, url_prefix="/wechat")


@bp.get("/push")
def verify() -> ResponseReturnValue:
    """The console's check of the URL: answer echostr when the signature is ours."""
    return text(push_service().verify_url(request.args))


@bp.post("/push")
def receive() -> ResponseReturnValue:
    push_service().receive(request.args, request.get_data())
    return text("success")  # anything else makes WeChat deliver it again


def text(body: str) -> Response:
    return Response(body, mimetype="text/plain")
