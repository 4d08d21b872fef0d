"""checksession and resetusersessionkey."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

import pytest

from support.emulator import (
    TOKEN_ERRMSG,
    WeChat,
    assert_error,
    errcode,
)
from wechat_emulator import EmulatorControl
from wechat_emulator.crypto import session_signature

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
