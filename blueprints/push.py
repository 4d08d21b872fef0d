"""/wechat/push: the message-push URL (开发管理 → 消息推送) where WeChat sends
content-check verdicts and events about users. Each app has its own, named
by its appid; /wechat/push alone is the default app's."""

from __future__ import annotations

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue

from blueprints import apps, push_service

bp = Blueprint("push", __name__, url_prefix="/wechat")


@bp.get("/push")
@bp.get("/push/<appid>")
def verify(appid: str | None = None) -> ResponseReturnValue:
    """The console's check of the URL: answer echostr when the signature is ours."""
    return text(push_service().verify_url(apps().get(appid), request.args))


@bp.post("/push")
@bp.post("/push/<appid>")
def receive(appid: str | None = None) -> ResponseReturnValue:
    push_service().receive(apps().get(appid), request.args, request.get_data())
    return text("success")  # anything else makes WeChat deliver it again


def text(body: str) -> Response:
    return Response(body, mimetype="text/plain")
