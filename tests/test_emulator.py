"""Tests of the WeChat emulator, over real HTTP against an in-process server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from Crypto.Cipher import AES
from Crypto.Util.Padding import unpad

from helpers import free_port
from wechat_emulator import EmulatorControl, EmulatorControlError, EmulatorServer
from wechat_emulator.crypto import rawdata_signature, session_signature
from wechat_emulator.server import wechat_json

APPID = "wx0123456789abcdef"
SECRET = "emulator-secret-0123456789abcdef"
OTHER_APPID = "wxfedcba9876543210"
OTHER_SECRET = "other-secret-fedcba9876543210"
REPO_ROOT = Path(__file__).resolve().parents[1]
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


# ----- fixtures and helpers ------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    srv = EmulatorServer(host="127.0.0.1", port=0, apps={APPID: SECRET})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def ctl(server: EmulatorServer) -> Iterator[EmulatorControl]:
    control = EmulatorControl(server.url)
    control.reset()
    yield control
    control.close()


@pytest.fixture
def wx(server: EmulatorServer, ctl: EmulatorControl) -> Iterator[WeChat]:
    client = WeChat(server.url)
    yield client
    client.http.close()


@pytest.fixture
def other_app(ctl: EmulatorControl) -> str:
    ctl.add_app(OTHER_APPID, OTHER_SECRET)
    return OTHER_APPID


# ----- crypto helpers and serialization --------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"", "46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128"),
        (b'{"foo":"bar"}', "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"),
    ],
)
def test_session_signature_known_answers(message: bytes, expected: str) -> None:
    assert session_signature(DOC_SESSION_KEY, message) == expected


def test_rawdata_signature_known_answer() -> None:
    assert rawdata_signature(DOC_RAW_DATA, DOC_RAW_SESSION_KEY) == DOC_RAW_SIGNATURE


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"a": "x/y"}, '{"a":"x\\/y"}'),
        ({"url": "http://t.cn/R"}, '{"url":"http:\\/\\/t.cn\\/R"}'),
        ({"a": "back\\/slash"}, '{"a":"back\\\\\\/slash"}'),
        ({"nick": "微信/🐱"}, '{"nick":"微信\\/🐱"}'),
    ],
)
def test_wechat_json_escapes_slashes(payload: dict[str, str], expected: str) -> None:
    encoded = wechat_json(payload)
    assert encoded == expected.encode("utf-8")
    assert json.loads(encoded) == payload


# ----- jscode2session ------------------------------------------------------------------------


def test_code2session_success_shape(ctl: EmulatorControl, wx: WeChat) -> None:
    login = ctl.login()
    response = wx.get(
        "/sns/jscode2session",
        appid=APPID,
        secret=SECRET,
        js_code=login["code"],
        grant_type="authorization_code",
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain"
    reply = response.json()
    assert reply == {"session_key": login["session_key"], "openid": login["openid"]}
    assert re.fullmatch(r"o[A-Za-z0-9_-]{27}", reply["openid"])
    assert re.fullmatch(r"[A-Za-z0-9+/]{22}==", reply["session_key"])
    assert len(base64.b64decode(reply["session_key"])) == 16
    assert re.fullmatch(r"[A-Za-z0-9]{32}", login["code"])
    assert ctl.user(reply["openid"]) == {
        "openid": reply["openid"],
        "unionid": None,
        "session_key": reply["session_key"],
        "blocked": False,
    }


def test_code2session_includes_unionid(ctl: EmulatorControl, wx: WeChat) -> None:
    unionid = "oUnion0123456789abcdefghijkl"
    login = ctl.login(openid="oOpenid0123456789abcdefghijk", unionid=unionid)
    reply = wx.code2session(login["code"])
    assert reply == {
        "session_key": login["session_key"],
        "openid": "oOpenid0123456789abcdefghijk",
        "unionid": unionid,
    }


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"appid": None}, 41002, "appid missing"),
        ({"appid": ""}, 41002, "appid missing"),
        ({"secret": None}, 41004, "appsecret missing"),
        ({"js_code": None}, 41008, "missing code"),
        ({"grant_type": "client_credential"}, 40002, "invalid grant_type"),
        ({"grant_type": None}, 40002, "invalid grant_type"),
        ({"appid": "wx00000000000000aa"}, 40013, "invalid appid"),
        ({"secret": "wrong-secret"}, 40125, "invalid appsecret"),
        ({"js_code": "NoSuchCode0123456789abcdefghijk"}, 40029, "invalid code"),
        # The checks run in a fixed order: appid, secret, js_code, grant_type, app, code.
        ({"appid": None, "secret": None, "js_code": None}, 41002, "appid missing"),
        ({"secret": None, "js_code": None, "grant_type": "x"}, 41004, "appsecret missing"),
        ({"js_code": None, "grant_type": "x"}, 41008, "missing code"),
        ({"grant_type": "x", "appid": "wx00000000000000aa"}, 40002, "invalid grant_type"),
        ({"appid": "wx00000000000000aa", "secret": "wrong"}, 40013, "invalid appid"),
    ],
)
def test_code2session_parameter_errors(
    ctl: EmulatorControl, wx: WeChat, overrides: dict[str, Any], code: int, message: str
) -> None:
    login = ctl.login()
    assert_error(wx.code2session(login["code"], **overrides), code, message)
    # A rejected request does not use up the code.
    assert errcode(wx.code2session(login["code"])) == 0


def test_code_is_single_use(ctl: EmulatorControl, wx: WeChat) -> None:
    code = ctl.login()["code"]
    assert errcode(wx.code2session(code)) == 0
    assert_error(wx.code2session(code), 40163, "code been used")


def test_code_single_use_under_concurrency(ctl: EmulatorControl, server: EmulatorServer) -> None:
    code = ctl.login()["code"]
    barrier = threading.Barrier(20)

    def exchange(_: int) -> int:
        client = WeChat(server.url)
        barrier.wait(timeout=TIMEOUT)
        try:
            return errcode(client.code2session(code))
        finally:
            client.http.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(exchange, range(20)))
    assert sorted(results) == [0] + [40163] * 19


@pytest.mark.parametrize(("ttl", "advance"), [(None, 301), (10, 11)])
def test_code_expires(ctl: EmulatorControl, wx: WeChat, ttl: float | None, advance: float) -> None:
    if ttl is not None:
        ctl.configure(code_ttl=ttl)
    fresh, stale = ctl.login()["code"], ctl.login()["code"]
    ctl.advance(advance - 2)
    assert errcode(wx.code2session(fresh)) == 0
    ctl.advance(2)
    assert_error(wx.code2session(stale), 40029, "invalid code")


def test_code_of_another_app_is_invalid(ctl: EmulatorControl, wx: WeChat, other_app: str) -> None:
    code = ctl.login(appid=other_app)["code"]
    assert_error(wx.code2session(code), 40029, "invalid code")
    reply = wx.code2session(code, appid=OTHER_APPID, secret=OTHER_SECRET)
    assert errcode(reply) == 0


def test_blocked_user_code_is_consumed(ctl: EmulatorControl, wx: WeChat) -> None:
    login = ctl.login(blocked=True)
    assert ctl.user(login["openid"])["blocked"] is True
    assert_error(wx.code2session(login["code"]), 40226, "code blocked")
    assert_error(wx.code2session(login["code"]), 40163, "code been used")
    unblocked = ctl.login(openid=login["openid"], blocked=False)
    assert errcode(wx.code2session(unblocked["code"])) == 0


def test_code_returns_key_current_at_issue(ctl: EmulatorControl, wx: WeChat) -> None:
    ctl.configure(rotate="always")
    first = ctl.login()
    second = ctl.login(openid=first["openid"])
    assert first["session_key"] != second["session_key"]
    # Exchange the newer code first: the older code still yields the older key.
    assert wx.code2session(second["code"])["session_key"] == second["session_key"]
    assert wx.code2session(first["code"])["session_key"] == first["session_key"]


@pytest.mark.parametrize(
    ("mode", "advance", "rotated"),
    [
        ("never", 10_000, False),
        ("always", 0, True),
        ("min_interval", 100, False),
        ("min_interval", 301, True),
    ],
)
def test_rotation_modes(
    ctl: EmulatorControl, wx: WeChat, mode: str, advance: float, rotated: bool
) -> None:
    assert ctl.configure(rotate=mode)["rotate"] == mode
    first = ctl.login()
    ctl.advance(advance)
    second = ctl.login(openid=first["openid"])
    assert (first["session_key"] != second["session_key"]) is rotated
    assert wx.code2session(second["code"])["session_key"] == second["session_key"]


def test_min_interval_is_configurable(ctl: EmulatorControl) -> None:
    ctl.configure(rotate="min_interval", rotate_min_interval=5)
    first = ctl.login()
    ctl.advance(6)
    assert ctl.login(openid=first["openid"])["session_key"] != first["session_key"]


def test_new_users_get_fresh_keys(ctl: EmulatorControl) -> None:
    keys = {ctl.login()["session_key"] for _ in range(5)}
    assert len(keys) == 5


def test_success_errcode_switch(ctl: EmulatorControl, wx: WeChat) -> None:
    ctl.configure(success_errcode=True)
    login = ctl.login()
    reply = wx.code2session(login["code"])
    assert reply["errcode"] == 0
    assert reply["errmsg"] == "ok"
    assert reply["openid"] == login["openid"]


# ----- response format -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sns/jscode2session"),
        ("GET", "/cgi-bin/token"),
        ("POST", "/cgi-bin/stable_token"),
        ("POST", "/wxa/business/getuserphonenumber"),
        ("GET", "/wxa/checksession"),
        ("GET", "/wxa/resetusersessionkey"),
    ],
)
def test_every_wechat_reply_is_text_plain(
    ctl: EmulatorControl, server: EmulatorServer, method: str, path: str
) -> None:
    response = requests.request(method, server.url + path, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain"
    assert errcode(response.json()) != 0
    ctl.configure(content_type="application/json")
    response = requests.request(method, server.url + path, timeout=TIMEOUT)
    assert response.headers["Content-Type"] == "application/json"


def test_slashes_escaped_on_the_wire(ctl: EmulatorControl, wx: WeChat) -> None:
    errmsg = "invalid appsecret, view more at http://t.cn/RAEkdVq"
    ctl.fault("token", errcode=40125, errmsg=errmsg)
    response = wx.get("/cgi-bin/token", grant_type="client_credential", appid=APPID, secret=SECRET)
    assert r"http:\/\/t.cn\/RAEkdVq" in response.text
    assert response.json() == {"errcode": 40125, "errmsg": errmsg}


def test_unknown_path_is_404(wx: WeChat) -> None:
    response = wx.get("/sns/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"errcode": -1, "errmsg": "not found"}


def test_keep_alive_reuses_one_connection(ctl: EmulatorControl, server: EmulatorServer) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    try:
        requests_made = [
            ("GET", "/cgi-bin/token", None),
            ("GET", "/nowhere", None),
            ("POST", "/cgi-bin/stable_token", b"{bad json"),
            ("POST", "/__emulator__/login", b"{}"),
            ("GET", "/__emulator__/calls", None),
        ]
        sock = None
        for method, path, body in requests_made:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            assert int(response.headers["Content-Length"]) == len(response.read())
            assert sock is None or conn.sock is sock
            sock = conn.sock
    finally:
        conn.close()


def test_handles_many_parallel_requests(ctl: EmulatorControl, server: EmulatorServer) -> None:
    ctl.fault("*", delay=0.3, times=0)

    def call(_: int) -> int:
        with requests.Session() as http:
            response = http.get(server.url + "/cgi-bin/token", timeout=TIMEOUT)
            return response.json()["errcode"]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=120) as pool:
        results = list(pool.map(call, range(120)))
    elapsed = time.monotonic() - started
    assert results == [41002] * 120
    assert elapsed < 6, elapsed  # 120 x 0.3 s would take 36 s if served one by one


# ----- access tokens -------------------------------------------------------------------------

TOKEN_PARAM_CASES = [
    ({"appid": None}, 41002, "appid missing"),
    ({"secret": None}, 41004, "appsecret missing"),
    ({"grant_type": "authorization_code"}, 40002, "invalid grant_type"),
    ({"grant_type": None}, 40002, "invalid grant_type"),
    ({"appid": "wx00000000000000aa"}, 40013, "invalid appid"),
    ({"secret": "wrong-secret"}, 40125, "invalid appsecret"),
]


@pytest.mark.parametrize(("overrides", "code", "message"), TOKEN_PARAM_CASES)
def test_token_parameter_errors(
    wx: WeChat, overrides: dict[str, Any], code: int, message: str
) -> None:
    assert_error(wx.token_reply(**overrides), code, message)


@pytest.mark.parametrize(("overrides", "code", "message"), TOKEN_PARAM_CASES)
def test_stable_token_parameter_errors(
    wx: WeChat, overrides: dict[str, Any], code: int, message: str
) -> None:
    assert_error(wx.stable_reply(**overrides), code, message)


def test_token_shape(wx: WeChat) -> None:
    reply = wx.token_reply()
    assert set(reply) == {"access_token", "expires_in"}
    assert reply["expires_in"] == 7200
    assert re.fullmatch(r"[A-Za-z0-9_-]{80,}", reply["access_token"])
    assert wx.probe(reply["access_token"]) == TOKEN_VALID


def test_token_overlap_window(ctl: EmulatorControl, wx: WeChat) -> None:
    first, second = wx.token(), wx.token()
    assert first != second
    ctl.advance(299)
    assert wx.probe(first) == TOKEN_VALID
    ctl.advance(2)
    assert_error(wx.check(first, "o-nobody", DOC_SESSION_KEY), 40001, TOKEN_ERRMSG)
    assert wx.probe(second) == TOKEN_VALID


def test_token_overlap_capped_by_own_expiry(ctl: EmulatorControl, wx: WeChat) -> None:
    first = wx.token()
    ctl.advance(7000)
    wx.token()
    ctl.advance(199)
    assert wx.probe(first) == TOKEN_VALID
    ctl.advance(2)
    # Replaced tokens answer 40001 once their overlap ends, even at their own expiry.
    assert wx.probe(first) == 40001


def test_token_errors(ctl: EmulatorControl, wx: WeChat) -> None:
    token = wx.token()
    assert_error(wx.check(None, "o-nobody", DOC_SESSION_KEY), 41001, "access_token missing")
    assert_error(wx.check("not-a-token", "o-nobody", DOC_SESSION_KEY), 40001, TOKEN_ERRMSG)
    ctl.advance(7201)
    assert_error(wx.check(token, "o-nobody", DOC_SESSION_KEY), 42001, "access_token expired")


def test_stable_token_requires_post(wx: WeChat) -> None:
    reply = wx.get(
        "/cgi-bin/stable_token", grant_type="client_credential", appid=APPID, secret=SECRET
    ).json()
    assert_error(reply, 43002, "require POST method")


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"", b'"text"'])
def test_stable_token_bad_body(wx: WeChat, body: bytes) -> None:
    assert_error(wx.post("/cgi-bin/stable_token", data=body).json(), 47001, "data format error")


def test_stable_token_normal_mode_reuses_token(ctl: EmulatorControl, wx: WeChat) -> None:
    first = wx.stable_reply()
    assert first["expires_in"] == 7200
    ctl.advance(100)
    again = wx.stable_reply(force_refresh=False)
    assert again["access_token"] == first["access_token"]
    assert 7098 <= again["expires_in"] <= 7100
    ctl.advance(6798)  # 302 s left: still the same token
    assert wx.stable() == first["access_token"]


def test_stable_token_renews_in_last_five_minutes(ctl: EmulatorControl, wx: WeChat) -> None:
    old = wx.stable()
    ctl.advance(6901)  # 299 s left
    renewed = wx.stable_reply()
    assert renewed["access_token"] != old
    assert renewed["expires_in"] == 7200
    assert wx.stable() == renewed["access_token"]
    assert wx.probe(old) == TOKEN_VALID  # the old one keeps working until its own expiry
    ctl.advance(300)
    assert wx.probe(old) == 42001
    assert wx.probe(renewed["access_token"]) == TOKEN_VALID


def test_stable_token_force_refresh(ctl: EmulatorControl, wx: WeChat) -> None:
    old = wx.stable()
    forced = wx.stable(force=True)
    assert forced != old
    assert_error(wx.check(old, "o-nobody", DOC_SESSION_KEY), 40001, TOKEN_ERRMSG)
    # A second force refresh within 30 s does not refresh.
    ctl.advance(29)
    assert wx.stable(force=True) == forced
    assert wx.probe(forced) == TOKEN_VALID
    ctl.advance(2)
    refreshed = wx.stable(force=True)
    assert refreshed != forced
    assert wx.probe(forced) == 40001
    assert wx.probe(refreshed) == TOKEN_VALID


def test_token_families_are_isolated(ctl: EmulatorControl, wx: WeChat) -> None:
    stable = wx.stable()
    plain = wx.token()
    wx.token()
    ctl.advance(301)
    assert wx.probe(plain) == 40001  # replaced within its own family
    assert wx.stable() == stable  # /cgi-bin/token calls did not touch the stable token
    latest_plain = wx.token()
    forced = wx.stable(force=True)
    assert forced != stable
    assert wx.probe(latest_plain) == TOKEN_VALID  # a force refresh did not touch it


def test_token_belongs_to_its_app(ctl: EmulatorControl, wx: WeChat, other_app: str) -> None:
    login = ctl.login()
    other_token = wx.token(OTHER_APPID, OTHER_SECRET)
    # The user exists only in APPID, so another app's token cannot see it.
    assert errcode(wx.check(other_token, login["openid"], login["session_key"])) == 87009
    assert errcode(wx.check(wx.token(), login["openid"], login["session_key"])) == 0


# ----- getuserphonenumber --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ("13800138000", "13800138000", "86")),
        ({"phoneNumber": "13912345678"}, ("13912345678", "13912345678", "86")),
        (
            {"phoneNumber": "+85261234567", "purePhoneNumber": "61234567", "countryCode": "852"},
            ("+85261234567", "61234567", "852"),
        ),
    ],
)
def test_phone_number_success(
    ctl: EmulatorControl, wx: WeChat, fields: dict[str, str], expected: tuple[str, str, str]
) -> None:
    openid = ctl.login()["openid"]
    issued_at = ctl.advance(0)["now"]
    code = ctl.phone_code(openid, **fields)["code"]
    assert re.fullmatch(r"[0-9a-f]{64}", code)
    ctl.advance(10)
    reply = wx.phone(wx.token(), {"code": code})
    watermark = reply["phone_info"].pop("watermark")
    phone_number, pure, country = expected
    assert reply == {
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": phone_number,
            "purePhoneNumber": pure,
            "countryCode": country,
        },
    }
    # The watermark carries the issue time, not the exchange time.
    assert set(watermark) == {"timestamp", "appid"}
    assert watermark["appid"] == APPID
    assert isinstance(watermark["timestamp"], int)
    assert int(issued_at) <= watermark["timestamp"] <= issued_at + 1


def test_phone_number_requires_post(ctl: EmulatorControl, wx: WeChat) -> None:
    reply = wx.get("/wxa/business/getuserphonenumber", access_token=wx.token()).json()
    assert_error(reply, 43002, "require POST method")


def test_phone_number_token_checked_before_body(wx: WeChat) -> None:
    path = "/wxa/business/getuserphonenumber"
    assert_error(wx.post(path, data=b"garbage").json(), 41001, "access_token missing")
    reply = wx.post(path, data=b"garbage", access_token="nope").json()
    assert_error(reply, 40001, TOKEN_ERRMSG)
    reply = wx.post(path, data=b"garbage", access_token=wx.token()).json()
    assert_error(reply, 47001, "data format error")


@pytest.mark.parametrize("payload", [{}, {"code": ""}, {"code": "0" * 64}])
def test_phone_number_missing_or_unknown_code(wx: WeChat, payload: dict[str, str]) -> None:
    assert_error(wx.phone(wx.token(), payload), 40029, "invalid code")


def test_phone_code_single_use(ctl: EmulatorControl, wx: WeChat) -> None:
    code = ctl.phone_code(ctl.login()["openid"])["code"]
    token = wx.token()
    assert errcode(wx.phone(token, {"code": code})) == 0
    assert_error(wx.phone(token, {"code": code}), 40029, "invalid code")


def test_phone_code_expires(ctl: EmulatorControl, wx: WeChat) -> None:
    openid = ctl.login()["openid"]
    fresh, stale = ctl.phone_code(openid)["code"], ctl.phone_code(openid)["code"]
    ctl.advance(299)
    token = wx.token()
    assert errcode(wx.phone(token, {"code": fresh})) == 0
    ctl.advance(2)
    assert_error(wx.phone(token, {"code": stale}), 40029, "invalid code")


def test_phone_code_other_appid(ctl: EmulatorControl, wx: WeChat, other_app: str) -> None:
    code = ctl.phone_code(ctl.login()["openid"])["code"]
    reply = wx.phone(wx.token(OTHER_APPID, OTHER_SECRET), {"code": code})
    assert_error(reply, 40013, "invalid appid")
    assert errcode(wx.phone(wx.token(), {"code": code})) == 0


def test_phone_code_openid_must_match(ctl: EmulatorControl, wx: WeChat) -> None:
    openid = ctl.login()["openid"]
    code = ctl.phone_code(openid)["code"]
    token = wx.token()
    wrong = {"code": code, "openid": ctl.login()["openid"]}
    assert_error(wx.phone(token, wrong), 40029, "invalid code")
    assert errcode(wx.phone(token, {"code": code, "openid": openid})) == 0


# ----- checksession / resetusersessionkey ----------------------------------------------------


def test_checksession_accepts_current_key(ctl: EmulatorControl, wx: WeChat) -> None:
    login = ctl.login()
    signature = hmac.new(login["session_key"].encode(), b"", hashlib.sha256).hexdigest()
    reply = wx.get(
        "/wxa/checksession",
        access_token=wx.token(),
        openid=login["openid"],
        signature=signature,
        sig_method="hmac_sha256",
    ).json()
    assert reply == {"errcode": 0, "errmsg": "ok"}


@pytest.mark.parametrize("path", ["/wxa/checksession", "/wxa/resetusersessionkey"])
@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("wrong_signature", 87009, "invalid signature"),
        ("uppercase_signature", 87009, "invalid signature"),
        ("decoded_key_signature", 87009, "invalid signature"),
        ("missing_signature", 87009, "invalid signature"),
        ("unknown_openid", 87009, "invalid signature"),
        ("old_key", 87009, "invalid signature"),
        ("sig_method_md5", 87008, "invalid sig_method"),
        ("sig_method_missing", 87008, "invalid sig_method"),
        ("token_missing", 41001, "access_token missing"),
        ("token_unknown", 40001, TOKEN_ERRMSG),
    ],
)
def test_signed_endpoint_errors(
    ctl: EmulatorControl, wx: WeChat, path: str, case: str, code: int, message: str
) -> None:
    ctl.configure(rotate="always")
    old = ctl.login()
    login = ctl.login(openid=old["openid"])
    key = login["session_key"]
    params: dict[str, Any] = {
        "access_token": wx.token(),
        "openid": login["openid"],
        "signature": session_signature(key),
        "sig_method": "hmac_sha256",
    }
    decoded_key = base64.b64decode(key)
    changes: dict[str, dict[str, Any]] = {
        "wrong_signature": {"signature": "0" * 64},
        "uppercase_signature": {"signature": session_signature(key).upper()},
        "decoded_key_signature": {
            "signature": hmac.new(decoded_key, b"", hashlib.sha256).hexdigest()
        },
        "missing_signature": {"signature": None},
        "unknown_openid": {"openid": "oUnknown000000000000000000000"},
        "old_key": {"signature": session_signature(old["session_key"])},
        "sig_method_md5": {"sig_method": "md5"},
        "sig_method_missing": {"sig_method": None},
        "token_missing": {"access_token": None},
        "token_unknown": {"access_token": "bogus"},
    }
    params.update(changes[case])
    assert_error(wx.get(path, **params).json(), code, message)
    assert ctl.user(login["openid"])["session_key"] == key  # nothing rotated


def test_resetusersessionkey_rotates(ctl: EmulatorControl, wx: WeChat) -> None:
    login = ctl.login()
    pending_code = ctl.login(openid=login["openid"])["code"]
    old_key = login["session_key"]
    token = wx.token()
    reply = wx.signed("/wxa/resetusersessionkey", token, login["openid"], old_key)
    assert set(reply) == {"errcode", "errmsg", "openid", "session_key"}
    assert (reply["errcode"], reply["errmsg"], reply["openid"]) == (0, "ok", login["openid"])
    new_key = reply["session_key"]
    assert new_key != old_key
    assert re.fullmatch(r"[A-Za-z0-9+/]{22}==", new_key)
    assert ctl.user(login["openid"])["session_key"] == new_key
    assert errcode(wx.check(token, login["openid"], old_key)) == 87009
    assert errcode(wx.check(token, login["openid"], new_key)) == 0
    again = wx.signed("/wxa/resetusersessionkey", token, login["openid"], old_key)
    assert_error(again, 87009, "invalid signature")
    # A code issued before the reset still carries the key of its issue time.
    assert wx.code2session(pending_code)["session_key"] == old_key


# ----- encrypt (open data) -------------------------------------------------------------------


def decrypt(result: dict[str, str], session_key: str) -> bytes:
    iv = base64.b64decode(result["iv"], validate=True)
    ciphertext = base64.b64decode(result["encryptedData"], validate=True)
    assert len(iv) == 16
    assert len(ciphertext) % 16 == 0
    cipher = AES.new(base64.b64decode(session_key), AES.MODE_CBC, iv)
    return unpad(cipher.decrypt(ciphertext), 16, style="pkcs7")


def test_encrypt_user_data_with_emoji(ctl: EmulatorControl) -> None:
    login = ctl.login()
    now = ctl.advance(0)["now"]
    data = {
        "openId": login["openid"],
        "nickName": "🐱𠀀 微信用户",
        "gender": 0,
        "avatarUrl": "https://thirdwx.qlogo.cn/mmopen/vi_32/x/132",
    }
    result = ctl.encrypt(login["openid"], data=data)
    plaintext = decrypt(result, login["session_key"])
    assert "𠀀".encode() in plaintext  # raw 4-byte UTF-8, not \\u escapes
    assert b"\\u" not in plaintext
    assert b"\\/" not in plaintext
    payload = json.loads(plaintext)
    assert list(payload)[-1] == "watermark"
    watermark = payload.pop("watermark")
    assert payload == data
    assert watermark["appid"] == APPID
    assert int(now) <= watermark["timestamp"] <= now + 1
    raw_data = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    assert result["rawData"] == raw_data
    expected = hashlib.sha1((raw_data + login["session_key"]).encode()).hexdigest()
    assert result["signature"] == expected


def test_encrypt_known_rawdata_signature(ctl: EmulatorControl) -> None:
    data = json.loads(DOC_RAW_DATA)
    result = ctl.encrypt(None, data=data, session_key=DOC_RAW_SESSION_KEY)
    assert result["rawData"] == DOC_RAW_DATA
    assert result["signature"] == DOC_RAW_SIGNATURE
    assert json.loads(decrypt(result, DOC_RAW_SESSION_KEY))["nickName"] == "Band"


@pytest.mark.parametrize(
    ("watermark", "add_watermark", "expected"),
    [
        ({"appid": "wxsomebodyelse0000", "timestamp": 1637744274}, True, "both"),
        ({"timestamp": 1}, True, "timestamp"),
        (None, False, "none"),
    ],
)
def test_encrypt_watermark_options(
    ctl: EmulatorControl, watermark: dict[str, Any] | None, add_watermark: bool, expected: str
) -> None:
    login = ctl.login()
    data = {"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86"}
    result = ctl.encrypt(
        login["openid"], data=data, watermark=watermark, add_watermark=add_watermark
    )
    payload = json.loads(decrypt(result, login["session_key"]))
    if expected == "none":
        assert payload == data
        return
    assert watermark is not None
    assert payload["watermark"]["timestamp"] == watermark["timestamp"]
    assert payload["watermark"]["appid"] == watermark.get("appid", APPID)


@pytest.mark.parametrize("raw", ["not json at all 🐱", "x" * 16, ""])
def test_encrypt_raw_string(ctl: EmulatorControl, raw: str) -> None:
    login = ctl.login()
    result = ctl.encrypt(login["openid"], raw=raw)
    assert decrypt(result, login["session_key"]) == raw.encode()
    assert len(base64.b64decode(result["encryptedData"])) == (len(raw.encode()) // 16 + 1) * 16
    assert result["rawData"] == raw
    assert result["signature"] == rawdata_signature(raw, login["session_key"])


def test_encrypt_uses_current_or_given_key(ctl: EmulatorControl) -> None:
    ctl.configure(rotate="always")
    first = ctl.login()
    second = ctl.login(openid=first["openid"])
    current = ctl.encrypt(first["openid"], data={"a": 1})
    assert json.loads(decrypt(current, second["session_key"]))["a"] == 1
    stale = ctl.encrypt(first["openid"], data={"a": 2}, session_key=first["session_key"])
    assert json.loads(decrypt(stale, first["session_key"]))["a"] == 2


@pytest.mark.parametrize(
    "payload",
    [
        {"openid": "oUnknown000000000000000000000", "data": {}},
        {"data": {"a": 1}},
        {"openid": "OWN", "data": {"a": 1}, "raw": "x"},
        {"openid": "OWN"},
        {"openid": "OWN", "data": [1, 2]},
        {"openid": "OWN", "data": {}, "session_key": "too-short"},
        {"openid": "OWN", "data": {}, "colour": "blue"},
    ],
)
def test_encrypt_bad_requests(
    ctl: EmulatorControl, server: EmulatorServer, payload: dict[str, Any]
) -> None:
    openid = ctl.login()["openid"]
    if payload.get("openid") == "OWN":
        payload = {**payload, "openid": openid}
    response = requests.post(server.url + "/__emulator__/encrypt", json=payload, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]


# ----- fault injection -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (-1, "system error"),
        (45011, "api minute-quota reach limit mustslower retry next minute"),
        (40226, "code blocked"),
        (40001, TOKEN_ERRMSG),
        (42001, "access_token expired"),
    ],
)
def test_fault_errcode_does_not_consume_code(
    ctl: EmulatorControl, wx: WeChat, code: int, message: str
) -> None:
    login = ctl.login()
    assert ctl.fault("jscode2session", errcode=code) == {"queued": 1}
    assert_error(wx.code2session(login["code"]), code, message)
    assert errcode(wx.code2session(login["code"])) == 0


def test_fault_custom_errmsg_is_verbatim(ctl: EmulatorControl, wx: WeChat) -> None:
    errmsg = "invalid code, hints: [ req_id: KfIawqLnRa-8oQBOA ]"
    ctl.fault("jscode2session", errcode=40029, errmsg=errmsg)
    assert wx.code2session(ctl.login()["code"]) == {"errcode": 40029, "errmsg": errmsg}


def test_fault_times_and_forever(ctl: EmulatorControl, wx: WeChat) -> None:
    ctl.fault("token", errcode=-1, times=2)
    assert [errcode(wx.token_reply()) for _ in range(3)] == [-1, -1, 0]
    ctl.fault("token", errcode=45011, times=0)
    assert [errcode(wx.token_reply()) for _ in range(4)] == [45011] * 4
    ctl.clear_faults()
    assert errcode(wx.token_reply()) == 0


def test_fault_wildcard_and_order(ctl: EmulatorControl, wx: WeChat) -> None:
    queued = ctl.faults(
        [
            {"endpoint": "*", "errcode": -1},
            {"endpoint": "token", "errcode": 45011},
            {"endpoint": "token", "errcode": 40164},
        ]
    )
    assert queued == {"queued": 3}
    # Endpoint-specific faults first, oldest first; then the wildcard.
    assert [errcode(wx.token_reply()) for _ in range(4)] == [45011, 40164, -1, 0]
    ctl.fault("*", errcode=-1)
    assert errcode(wx.stable_reply()) == -1
    assert errcode(wx.stable_reply()) == 0


def test_fault_delay(ctl: EmulatorControl, wx: WeChat) -> None:
    ctl.fault("token", delay=0.3)
    started = time.monotonic()
    reply = wx.token_reply()
    elapsed = time.monotonic() - started
    assert errcode(reply) == 0  # a delay alone lets the call go through
    assert 0.25 <= elapsed < 3
    ctl.fault("token", delay=0.3, errcode=-1)
    started = time.monotonic()
    assert errcode(wx.token_reply()) == -1
    assert time.monotonic() - started >= 0.25


def test_fault_drop(ctl: EmulatorControl, server: EmulatorServer, wx: WeChat) -> None:
    login = ctl.login()
    ctl.fault("jscode2session", drop=True)
    with pytest.raises(requests.ConnectionError):
        wx.code2session(login["code"])
    # The dropped call was logged without an errcode and did not use up the code.
    (call,) = ctl.calls("jscode2session")
    assert call["errcode"] is None
    assert errcode(wx.code2session(login["code"])) == 0


def test_fault_raw_body(ctl: EmulatorControl, wx: WeChat) -> None:
    body = "<html><body>502 Bad Gateway</body></html>"
    ctl.fault("token", body=body, content_type="text/html")
    response = wx.get("/cgi-bin/token")
    assert response.status_code == 200
    assert response.text == body
    assert response.headers["Content-Type"] == "text/html"
    with pytest.raises(ValueError):
        response.json()
    ctl.fault("token", body='{"errcode":-1}')
    response = wx.get("/cgi-bin/token")
    assert response.text == '{"errcode":-1}'
    assert response.headers["Content-Type"] == "text/plain"
    assert [c["errcode"] for c in ctl.calls("token")] == [None, -1]


@pytest.mark.parametrize(
    "fault",
    [
        {"endpoint": "nope", "errcode": -1},
        {"errcode": -1},
        {"endpoint": "token", "delay": -1},
        {"endpoint": "token", "times": -1},
        {"endpoint": "token", "times": "twice"},
        {"endpoint": "token", "errcode": "45011"},
        {"endpoint": "token", "drop": "yes"},
        {"endpoint": "token", "colour": "red"},
    ],
)
def test_bad_fault_rejected(ctl: EmulatorControl, fault: dict[str, Any]) -> None:
    with pytest.raises(EmulatorControlError) as info:
        ctl.faults([fault])
    assert info.value.status == 400


# ----- call log, config, clock, apps, users, reset ---------------------------------------------


def test_call_log(ctl: EmulatorControl, wx: WeChat) -> None:
    login = ctl.login()
    ctl.fault("jscode2session", errcode=45011)
    wx.code2session(login["code"])
    wx.code2session(login["code"])
    wx.stable_reply()
    wx.post("/cgi-bin/stable_token", data=b"nope")
    wx.get("/not/an/endpoint")
    calls = ctl.calls()
    assert [(c["endpoint"], c["errcode"]) for c in calls] == [
        ("jscode2session", 45011),
        ("jscode2session", 0),
        ("stable_token", 0),
        ("stable_token", 47001),
    ]
    first = calls[0]
    assert first["method"] == "GET"
    assert first["path"] == "/sns/jscode2session"
    assert first["query"] == {
        "appid": APPID,
        "secret": SECRET,
        "js_code": login["code"],
        "grant_type": "authorization_code",
    }
    assert first["body"] is None
    assert abs(first["timestamp"] - time.time()) < 60
    assert calls[2]["method"] == "POST"
    assert calls[2]["body"] == {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
    }
    assert calls[3]["body"] is None
    assert [c["errcode"] for c in ctl.calls("stable_token")] == [0, 47001]
    assert ctl.calls("checksession") == []
    ctl.clear_calls()
    assert ctl.calls() == []


def test_config_validation(ctl: EmulatorControl) -> None:
    config = ctl.configure()
    assert config == {
        "rotate": "never",
        "rotate_min_interval": 300.0,
        "code_ttl": 300.0,
        "success_errcode": False,
        "content_type": "text/plain",
    }
    for bad in ({"rotate": "sometimes"}, {"code_ttl": 0}, {"success_errcode": 1}, {"x": 1}):
        with pytest.raises(EmulatorControlError) as info:
            ctl.configure(**bad)
        assert info.value.status == 400


def test_clock_only_moves_forward(ctl: EmulatorControl) -> None:
    now = ctl.advance(3600)["now"]
    assert abs(now - (time.time() + 3600)) < 5
    with pytest.raises(EmulatorControlError) as info:
        ctl.advance(-1)
    assert info.value.status == 400


def test_unknown_user_and_bad_control_requests(
    ctl: EmulatorControl, server: EmulatorServer
) -> None:
    assert ctl.user("oUnknown000000000000000000000") is None
    base = server.url + "/__emulator__/"
    response = requests.post(base + "login", data=b"{not json", timeout=TIMEOUT)
    assert response.status_code == 400
    assert "error" in response.json()
    response = requests.post(base + "login", json={"appid": "wxnotregistered00"}, timeout=TIMEOUT)
    assert response.status_code == 400
    response = requests.post(base + "apps", json={"appid": "wx1"}, timeout=TIMEOUT)
    assert response.status_code == 400
    assert requests.get(base + "nothing", timeout=TIMEOUT).status_code == 404
    assert requests.get(base + "login", timeout=TIMEOUT).status_code == 405


def test_reset_clears_everything_but_initial_apps(
    ctl: EmulatorControl, wx: WeChat, other_app: str
) -> None:
    login = ctl.login(unionid="oUnion0123456789abcdefghijkl")
    phone = ctl.phone_code(login["openid"])["code"]
    token = wx.token()
    ctl.configure(rotate="always", content_type="application/json")
    ctl.advance(1000)
    ctl.fault("token", errcode=-1, times=0)
    assert ctl.reset() == {"reset": True}

    assert ctl.user(login["openid"]) is None
    assert ctl.calls() == []
    assert ctl.configure()["rotate"] == "never"
    assert abs(ctl.advance(0)["now"] - time.time()) < 5
    response = wx.get("/cgi-bin/token", grant_type="client_credential", appid=APPID, secret=SECRET)
    assert response.headers["Content-Type"] == "text/plain"
    assert errcode(response.json()) == 0  # fault queue is empty
    assert errcode(wx.code2session(login["code"])) == 40029
    assert errcode(wx.phone(wx.token(), {"code": phone})) == 40029
    assert wx.probe(token) == 40001
    assert errcode(wx.token_reply(appid=OTHER_APPID, secret=OTHER_SECRET)) == 40013


def test_server_start_stop_cycle() -> None:
    srv = EmulatorServer(apps={APPID: SECRET}).start()
    control = EmulatorControl(srv.url)
    assert control.login()["code"]
    srv.stop()
    srv.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        control.login()
    control.close()


# ----- CLI -----------------------------------------------------------------------------------


def test_cli_serves_and_stops() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMULATOR_", "WECHAT_"))}
    env["WECHAT_APPID"] = "wxcli0000000000000"
    process = subprocess.Popen(
        [sys.executable, "-m", "wechat_emulator", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        login = None
        deadline = time.monotonic() + 10
        while login is None:
            try:
                login = EmulatorControl(url, timeout=2).login()
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "CLI emulator did not start"
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.05)
        reply = requests.get(
            url + "/sns/jscode2session",
            params={
                "appid": "wxcli0000000000000",
                "secret": "emulator-secret-0123456789abcdef",
                "js_code": login["code"],
                "grant_type": "authorization_code",
            },
            timeout=TIMEOUT,
        ).json()
        assert reply["openid"] == login["openid"]
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert f"listening on {url}" in stdout
    assert "curl" in stdout
    assert stderr == ""  # per-request logging is off without --verbose
