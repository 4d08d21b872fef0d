"""Talking to the WeChat emulator as the service would: its WeChat-side
endpoints, with the constants and known answers the emulator tests share."""

from __future__ import annotations

import re
from typing import Any

import requests

from support.constants import ROOT
from wechat_emulator import DEFAULT_APPID, DEFAULT_SECRET
from wechat_emulator.crypto import session_signature

APPID = DEFAULT_APPID
SECRET = DEFAULT_SECRET
OTHER_APPID = "wxfedcba9876543210"
OTHER_SECRET = "other-secret-fedcba9876543210"
REPO_ROOT = ROOT
TIMEOUT = 10

RID = r", rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$"
TOKEN_ERRMSG = "invalid credential, access_token is invalid or not latest"
TOKEN_VALID = 87009  # what the token probe answers when the token itself is accepted

# Known answers from the WeChat docs (see /work/shared/reference/wechat-api.md).
DOC_SESSION_KEY = "o0q0otL8aEzpcZL/FT9WsQ=="
DOC_RAW_DATA = (
    '{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou",'
    '"province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/'
    "1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ"
    '/0"}'
)
DOC_RAW_SESSION_KEY = "HyVFkGl5F5OQWJZZaNzBBg=="
DOC_RAW_SIGNATURE = "75e81ceda165f4ffa64f4068af58c64b8f54b88c"


class WeChat:
    """Client for the WeChat-side endpoints (what the service under test would call)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.url + path, params=params, timeout=TIMEOUT)

    def post(self, path: str, payload: Any = None, data: Any = None, **params: Any):
        return self.http.post(
            self.url + path, json=payload, data=data, params=params, timeout=TIMEOUT
        )

    def code2session(self, code: str | None, **overrides: Any) -> dict[str, Any]:
        params = {
            "appid": APPID,
            "secret": SECRET,
            "js_code": code,
            "grant_type": "authorization_code",
            **overrides,
        }
        return self.get("/sns/jscode2session", **params).json()

    def token_reply(self, **overrides: Any) -> dict[str, Any]:
        params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
        return self.get("/cgi-bin/token", **{**params, **overrides}).json()

    def token(self, appid: str = APPID, secret: str = SECRET) -> str:
        return self.token_reply(appid=appid, secret=secret)["access_token"]

    def stable_reply(self, **overrides: Any) -> dict[str, Any]:
        body = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET, **overrides}
        body = {k: v for k, v in body.items() if v is not None}
        return self.post("/cgi-bin/stable_token", body).json()

    def stable(self, force: bool = False) -> str:
        return self.stable_reply(force_refresh=force)["access_token"]

    def signed(self, path: str, token: str | None, openid: str, key: str, **kw: Any):
        params = {
            "access_token": token,
            "openid": openid,
            "signature": session_signature(key),
            "sig_method": "hmac_sha256",
            **kw,
        }
        return self.get(path, **params).json()

    def check(self, token: str | None, openid: str, key: str, **kw: Any) -> dict[str, Any]:
        return self.signed("/wxa/checksession", token, openid, key, **kw)

    def probe(self, token: str) -> int:
        """Token status through checksession: 87009 means the token itself was accepted."""
        return self.check(token, "o-nobody", DOC_SESSION_KEY)["errcode"]

    def phone(self, token: str | None, payload: Any = None, **kw: Any) -> dict[str, Any]:
        return self.post(
            "/wxa/business/getuserphonenumber", payload, access_token=token, **kw
        ).json()


def errcode(reply: dict[str, Any]) -> int:
    return reply.get("errcode", 0)


def assert_error(reply: dict[str, Any], code: int, message: str) -> None:
    assert reply["errcode"] == code, reply
    assert re.fullmatch(re.escape(message) + RID, reply["errmsg"]), reply
