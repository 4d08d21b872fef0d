"""jscode2session: single-use codes, expiry, blocked users, session_key rotation."""

from __future__ import annotations

import base64
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from support.emulator import (
    APPID,
    OTHER_APPID,
    OTHER_SECRET,
    SECRET,
    TIMEOUT,
    WeChat,
    assert_error,
    errcode,
)
from wechat_emulator import EmulatorControl, EmulatorServer

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
