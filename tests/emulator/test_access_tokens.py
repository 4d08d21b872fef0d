"""/cgi-bin/token and /cgi-bin/stable_token with WeChat's invalidation rules."""

from __future__ import annotations

import re
from typing import Any

import pytest

from support.emulator import (
    APPID,
    DOC_SESSION_KEY,
    OTHER_APPID,
    OTHER_SECRET,
    SECRET,
    TOKEN_ERRMSG,
    TOKEN_VALID,
    WeChat,
    assert_error,
    errcode,
)
from wechat_emulator import EmulatorControl

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
