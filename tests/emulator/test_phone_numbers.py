"""getuserphonenumber and the getPhoneNumber button's codes."""

from __future__ import annotations

import re

import pytest

from support.emulator import (
    APPID,
    OTHER_APPID,
    OTHER_SECRET,
    TOKEN_ERRMSG,
    WeChat,
    assert_error,
    errcode,
)
from wechat_emulator import EmulatorControl

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
