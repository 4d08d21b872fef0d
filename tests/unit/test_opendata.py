"""OpenDataCipher: WeChat's published vectors, data made by other
implementations, mangled base64, and every way data can fail."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time

import pytest
from Crypto.Cipher import AES
from Crypto.Util.Padding import pad

from services import errors
from services.crypto.opendata import OpenDataCipher, b64decode_lenient, decrypt, rawdata_signature
from support.constants import APPID
from support.vectors import (
    DEMO_APPID,
    DEMO_DATA,
    DEMO_IV,
    DEMO_OPENID,
    DEMO_SESSION_KEY,
    RAW_DATA,
    RAW_SESSION_KEY,
    RAW_SIGNATURE,
)

KEY = "o0q0otL8aEzpcZL/FT9WsQ=="
OTHER_KEY = "5tF5KuDigyB6e4m7FigHvw=="


def encrypt(plaintext: str, session_key: str = KEY) -> tuple[str, str]:
    iv = os.urandom(16)
    cipher = AES.new(base64.b64decode(session_key), AES.MODE_CBC, iv)
    ciphertext = cipher.encrypt(pad(plaintext.encode(), 16, style="pkcs7"))
    return base64.b64encode(ciphertext).decode(), base64.b64encode(iv).decode()


def payload(**fields) -> str:
    body = {"nickName": "小明", **fields}
    body.setdefault("watermark", {"timestamp": int(time.time()), "appid": APPID})
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


@pytest.fixture
def cipher() -> OpenDataCipher:
    return OpenDataCipher(APPID, max_age=600)


def test_wechat_demo_vector_opens():
    demo = OpenDataCipher(DEMO_APPID, max_age=0)  # the demo was made in 2016
    opened = demo.open(DEMO_DATA, DEMO_IV, [DEMO_SESSION_KEY], openid=DEMO_OPENID)
    assert opened["nickName"] == "Band"
    assert opened["unionId"] == "ocMvos6NjeKLIBqg5Mr9QjxrP1FA"
    assert opened["watermark"] == {"timestamp": 1477314187, "appid": DEMO_APPID}


def test_wechat_demo_vector_is_refused_for_another_app():
    with pytest.raises(errors.WatermarkMismatch):
        OpenDataCipher(APPID, max_age=0).open(DEMO_DATA, DEMO_IV, [DEMO_SESSION_KEY])


def test_wechat_rawdata_signature_example():
    assert rawdata_signature(RAW_DATA, RAW_SESSION_KEY) == RAW_SIGNATURE


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_data_encrypted_by_openssl_opens(cipher):
    iv = os.urandom(16)
    done = subprocess.run(
        [
            "openssl",
            "enc",
            "-aes-128-cbc",
            "-K",
            base64.b64decode(KEY).hex(),
            "-iv",
            iv.hex(),
            "-base64",
            "-A",
        ],
        input=payload(nickName="OpenSSL 🐱").encode(),
        capture_output=True,
        check=True,
    )
    opened = cipher.open(done.stdout.decode(), base64.b64encode(iv).decode(), [KEY])
    assert opened["nickName"] == "OpenSSL 🐱"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.replace("+", " "),  # a form encoder that did not escape '+'
        lambda s: s.replace("+", "-").replace("/", "_"),  # URL-safe alphabet
        lambda s: s.rstrip("="),  # padding dropped
        lambda s: "\n".join(s[i : i + 64] for i in range(0, len(s), 64)),  # MIME line breaks
        lambda s: f"{s}\n",
    ],
)
def test_mangled_base64_still_opens(mangle):
    demo = OpenDataCipher(DEMO_APPID, max_age=0)
    assert demo.open(mangle(DEMO_DATA), mangle(DEMO_IV), [DEMO_SESSION_KEY])["nickName"] == "Band"


def test_the_newest_key_that_opens_wins(cipher):
    data, iv = encrypt(payload(), OTHER_KEY)
    assert cipher.open(data, iv, [KEY, OTHER_KEY])["nickName"] == "小明"


def test_no_key_opens_it_is_session_key_stale(cipher):
    data, iv = encrypt(payload(), OTHER_KEY)
    with pytest.raises(errors.SessionKeyStale):
        cipher.open(data, iv, [KEY])
    with pytest.raises(errors.SessionKeyStale):
        cipher.open(data, iv, [])


def test_wrong_keys_are_told_apart_from_bad_content():
    """Strict padding and UTF-8: a thousand wrong keys never 'open' the data."""
    ciphertext, iv = base64.b64decode(DEMO_DATA), base64.b64decode(DEMO_IV)
    assert all(decrypt(ciphertext, os.urandom(16), iv) is None for _ in range(1000))


@pytest.mark.parametrize(
    ("data", "iv", "error"),
    [
        ("this is not base64!", DEMO_IV, errors.MalformedEncryptedData),
        (base64.b64encode(b"x" * 15).decode(), DEMO_IV, errors.MalformedEncryptedData),
        ("", DEMO_IV, errors.MalformedEncryptedData),
        ("密文", DEMO_IV, errors.MalformedEncryptedData),
        (DEMO_DATA, base64.b64encode(b"x" * 15).decode(), errors.MalformedIv),
        (DEMO_DATA, base64.b64encode(b"x" * 32).decode(), errors.MalformedIv),
        (DEMO_DATA, "@@@@", errors.MalformedIv),
    ],
)
def test_malformed_input(cipher, data, iv, error):
    with pytest.raises(error):
        cipher.open(data, iv, [KEY])


@pytest.mark.parametrize(
    ("plaintext", "error"),
    [
        ("not json at all", errors.PayloadNotJson),
        ("[1, 2, 3]", errors.PayloadNotJson),
        ('{"nickName": "x"}', errors.WatermarkMismatch),
        (
            payload(watermark={"appid": "wxsomeoneelse00000", "timestamp": 1}),
            errors.WatermarkMismatch,
        ),
        (payload(watermark={"appid": APPID}), errors.WatermarkMismatch),
        (payload(watermark={"appid": APPID, "timestamp": "now"}), errors.WatermarkMismatch),
        (
            payload(watermark={"appid": APPID, "timestamp": int(time.time()) - 601}),
            errors.PayloadExpired,
        ),
        (
            payload(watermark={"appid": APPID, "timestamp": int(time.time()) + 3600}),
            errors.PayloadExpired,
        ),
        (payload(openId="oSomebodyElse0000000000000000"), errors.PayloadUserMismatch),
    ],
)
def test_data_that_opens_but_is_not_valid(cipher, plaintext, error):
    data, iv = encrypt(plaintext)
    with pytest.raises(error):
        cipher.open(data, iv, [KEY], openid="oThisUser000000000000000000000")


def test_freshness_check_can_be_turned_off():
    data, iv = encrypt(payload(watermark={"appid": APPID, "timestamp": 1}))
    assert OpenDataCipher(APPID, max_age=0).open(data, iv, [KEY])["nickName"] == "小明"


def test_signature_is_checked_in_constant_time_against_the_opening_key(cipher):
    raw = '{"nickName":"小明"}'
    data, iv = encrypt(payload(), OTHER_KEY)
    good = rawdata_signature(raw, OTHER_KEY)
    assert cipher.open(data, iv, [KEY, OTHER_KEY], raw_data=raw, signature=good.upper())
    with pytest.raises(errors.SignatureMismatch):
        cipher.open(data, iv, [OTHER_KEY], raw_data=raw + " ", signature=good)
    with pytest.raises(errors.SignatureMismatch):
        cipher.open(data, iv, [OTHER_KEY], raw_data=raw, signature=rawdata_signature(raw, KEY))


@pytest.mark.parametrize("value", ["+AAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAA+==", "++++"])
def test_a_plus_at_either_end_survives_form_mangling(value):
    assert b64decode_lenient(value.replace("+", " ")) == base64.b64decode(value)


def test_lenient_base64_is_still_base64():
    assert b64decode_lenient("aGVsbG8") == b"hello"
    with pytest.raises(ValueError):
        b64decode_lenient("a*b=")
