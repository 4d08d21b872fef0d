"""What getUserProfile/getPhoneNumber hand the client: encryptedData and signatures."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
import requests
from Crypto.Cipher import AES
from Crypto.Util.Padding import unpad

from support.emulator import (
    APPID,
    DOC_RAW_DATA,
    DOC_RAW_SESSION_KEY,
    DOC_RAW_SIGNATURE,
    TIMEOUT,
)
from wechat_emulator import EmulatorControl, EmulatorServer
from wechat_emulator.crypto import rawdata_signature

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
