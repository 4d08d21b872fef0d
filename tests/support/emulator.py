"""Talking to the WeChat emulator as the service would: its WeChat-side
endpoints, with the constants and known answers the emulator tests share."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from Crypto.Cipher import AES

from support.constants import ROOT
from wechat_emulator import DEFAULT_APPID, DEFAULT_SECRET, EmulatorControlError
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


def app_of(ctl: Any, appid: str = APPID) -> dict[str, Any]:
    """The control API's listing of one app."""
    return next(a for a in ctl.apps() if a["appid"] == appid)


def event_envelope(ctl: Any, event: dict[str, Any], name: str) -> dict[str, Any]:
    """What every event pushed for the default app carries: to the app's
    username, from the platform's push service, at its time, `Event: name`."""
    return {
        "ToUserName": app_of(ctl)["username"],
        "FromUserName": event["FromUserName"],
        "CreateTime": event["CreateTime"],
        "MsgType": "event",
        "Event": name,
    }


def refused(call: Callable[..., object], *args: Any, **kwargs: Any) -> int:
    """The HTTP status with which the control API refuses `call(*args, **kwargs)`;
    it must refuse."""
    with pytest.raises(EmulatorControlError) as info:
        call(*args, **kwargs)
    return info.value.status


class WeChat:
    """Client for the WeChat-side endpoints (what the service under test would call)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def __enter__(self) -> WeChat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

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


# ----- message push: the official vectors and a real receiving peer --------------------------

# The worked examples of the official message-push page (reference §11): Token "AAAAA",
# EncodingAESKey "A" x 43, appid wxba5fad812f8e6fb9.
PUSH_TOKEN = "AAAAA"
PUSH_AES_KEY = "A" * 43
PUSH_APPID = "wxba5fad812f8e6fb9"
VERIFY_VECTOR = ("1714036504", "1514711492", "f464b24fc39322e44b38aa78f5edd27bd1441696")
PLAIN_POST_VECTOR = ("1714037059", "486452656", "899cf89e464efb63f54ddac96b0a0a235f53aa78")
SECURE_TIMESTAMP = "1714112445"
SECURE_NONCE = "415670741"
SECURE_SIGNATURE = "6c5c811b55cc85e0e1b54100749188c20beb3f5d"
SECURE_MSG_SIGNATURE = "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"
SECURE_ENCRYPT = (
    "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJ"
    "GQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRS"
    "rfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcf"
    "BgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="
)
SECURE_MESSAGE = (
    '{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY",'
    '"CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}'
)
REPLY_RANDOM = b"707722b803182950"
REPLY_MESSAGE = b'{"demo_resp":"good luck"}'
REPLY_TIMESTAMP = "1713424427"
REPLY_ENCRYPT = (
    "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
)
REPLY_MSG_SIGNATURE = "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1"


def sha1_signature(*parts: str) -> str:
    """The receiver's own signature check (not the emulator's code)."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def receiver_decrypt(encrypt: str, encoding_aes_key: str) -> tuple[bytes, str]:
    """What a receiving service does with Encrypt, written independently of the emulator."""
    key = base64.b64decode(encoding_aes_key + "=")
    plain = AES.new(key, AES.MODE_CBC, key[:16]).decrypt(base64.b64decode(encrypt))
    pad = plain[-1]
    assert 1 <= pad <= 32 and plain.endswith(bytes([pad]) * pad), "bad PKCS#7 padding"
    plain = plain[:-pad]
    length = int.from_bytes(plain[16:20], "big")
    return plain[20 : 20 + length], plain[20 + length :].decode()


def xml_to_dict(text: bytes | str) -> dict[str, Any]:
    """<xml> to a dict: nested elements become dicts, repeated ones lists, leaves text."""

    def convert(element: ET.Element) -> Any:
        if len(element) == 0:
            return element.text or ""
        result: dict[str, Any] = {}
        for child in element:
            value = convert(child)
            if child.tag in result:
                existing = result[child.tag]
                result[child.tag] = (
                    [*existing, value]
                    if isinstance(existing, list)
                    else [
                        existing,
                        value,
                    ]
                )
            else:
                result[child.tag] = value
        return result

    root = ET.fromstring(text)
    assert root.tag == "xml"
    return convert(root)


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    reply: bytes = b""

    def parsed(self, fmt: str) -> dict[str, Any]:
        return json.loads(self.body) if fmt == "json" else xml_to_dict(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"success"
    delay: float = 0.0


class PushReceiver:
    """The push URL's side, as a real HTTP server on 127.0.0.1: it records every request,
    answers GET verifications when the signature is right, answers POSTs with queued
    replies (else "success"), and serves media files for media_check_async to fetch."""

    def __init__(self, token: str = "ReceiverToken1") -> None:
        self.token = token
        self.received: list[Received] = []
        self.replies: list[Reply] = []
        self.media: dict[str, tuple[int, bytes]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                receiver._handle(self)

            do_POST = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def push_url(self) -> str:
        return self.url + "/wechat/push"

    def add_media(self, name: str, data: bytes, status: int = 200) -> str:
        with self.lock:
            self.media["/media/" + name] = (status, data)
        return f"{self.url}/media/{name}"

    def reply_with(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def pushes(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == "/wechat/push"]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        record = Received(handler.command, url.path, query, dict(handler.headers), body)
        with self.lock:
            self.received.append(record)
            media = self.media.get(url.path)
            reply = self.replies.pop(0) if self.replies and url.path == "/wechat/push" else None
        if media is not None:
            status, data = media
        elif reply is not None:
            if reply.delay:
                time.sleep(reply.delay)
            status, data = reply.status, reply.body
        elif handler.command == "GET" and url.path == "/wechat/push":
            status, data = self._verify(query)
        elif url.path == "/wechat/push":
            status, data = 200, b"success"
        else:
            status, data = 404, b"not found"
        record.status, record.reply = status, data
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the emulator gave up waiting (a timeout test)

    def _verify(self, query: dict[str, str]) -> tuple[int, bytes]:
        expected = sha1_signature(self.token, query.get("timestamp", ""), query.get("nonce", ""))
        if query.get("signature") != expected:
            return 403, b"bad signature"
        return 200, query.get("echostr", "").encode()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ContentChecks(WeChat):
    """The content-security and official-account endpoints, as the service calls them.

    Replies are decoded from their bytes as UTF-8: WeChat's `text/plain` has no charset,
    so requests' `.json()` would read Chinese text as ISO-8859-1 (a real-world quirk)."""

    def msg_sec_check(self, token: str | None, body: Any = None, **kw: Any) -> dict[str, Any]:
        return utf8_json(self.post("/wxa/msg_sec_check", body, access_token=token, **kw))

    def media_check(self, token: str | None, body: Any = None, **kw: Any) -> dict[str, Any]:
        return utf8_json(self.post("/wxa/media_check_async", body, access_token=token, **kw))

    def oauth_token(self, code: str | None, **overrides: Any) -> dict[str, Any]:
        params = {
            "appid": APPID,
            "secret": SECRET,
            "code": code,
            "grant_type": "authorization_code",
            **overrides,
        }
        return utf8_json(self.get("/sns/oauth2/access_token", **params))

    def userinfo(self, token: str | None, openid: str | None, **kw: Any) -> dict[str, Any]:
        return utf8_json(self.get("/sns/userinfo", access_token=token, openid=openid, **kw))


def utf8_json(response: requests.Response) -> Any:
    return json.loads(response.content.decode("utf-8"))
