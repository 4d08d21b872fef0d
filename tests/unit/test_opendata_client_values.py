"""OpenDataCipher with values of any shape a client can send alongside data
that really opens: rawData and signature of any text, watermarks of any
number. Each is a documented 4xx, never an exception (found by tests/fuzz)."""

from __future__ import annotations

import base64
import json
import os
import time

import pytest
from Crypto.Cipher import AES
from Crypto.Util.Padding import pad

from services import errors
from services.crypto.opendata import OpenDataCipher, rawdata_signature
from support.constants import APPID

KEY = "o0q0otL8aEzpcZL/FT9WsQ=="


def sealed(plaintext: str) -> tuple[str, str]:
    iv = os.urandom(16)
    cipher = AES.new(base64.b64decode(KEY), AES.MODE_CBC, iv)
    ciphertext = cipher.encrypt(pad(plaintext.encode(), 16, style="pkcs7"))
    return base64.b64encode(ciphertext).decode(), base64.b64encode(iv).decode()


def watermarked(timestamp: object = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    return json.dumps({"nickName": "x", "watermark": {"timestamp": stamp, "appid": APPID}})


@pytest.fixture
def cipher() -> OpenDataCipher:
    return OpenDataCipher(APPID, max_age=600)


@pytest.mark.parametrize("signature", ["é" * 40, "\ud800", "签名", "a\x00b", "\u0660" * 40])
def test_a_signature_that_is_not_ascii_is_a_mismatch(cipher, signature):
    """Was: TypeError from hmac.compare_digest (str arguments must be ASCII), a 500."""
    data, iv = sealed(watermarked())
    with pytest.raises(errors.SignatureMismatch):
        cipher.open(data, iv, [KEY], raw_data="{}", signature=signature)


@pytest.mark.parametrize("raw_data", ["\ud800", '{"nickName":"\udfff"}', "a\ud83d"])
def test_raw_data_that_is_not_unicode_is_a_mismatch(cipher, raw_data):
    """Was: UnicodeEncodeError (a lone surrogate, sent as a JSON \\u escape), a 500."""
    data, iv = sealed(watermarked())
    signature = rawdata_signature("{}", KEY)
    with pytest.raises(errors.SignatureMismatch):
        cipher.open(data, iv, [KEY], raw_data=raw_data, signature=signature)


def test_a_good_signature_still_matches(cipher):
    data, iv = sealed(watermarked())
    raw = '{"nickName":"小明🐱"}'
    opened = cipher.open(data, iv, [KEY], raw_data=raw, signature=rawdata_signature(raw, KEY))
    assert opened["nickName"] == "x"


@pytest.mark.parametrize(
    "timestamp", [10**400, -(10**400), 2**1024], ids=["1e400", "-1e400", "2^1024"]
)
def test_a_watermark_timestamp_of_any_size_is_expired(cipher, timestamp):
    """Was: OverflowError (an int past float's range minus the clock), a 500."""
    data, iv = sealed(watermarked(timestamp))
    with pytest.raises(errors.PayloadExpired):
        cipher.open(data, iv, [KEY])


def test_a_watermark_timestamp_of_any_size_passes_with_the_check_off():
    data, iv = sealed(watermarked(10**400))
    assert OpenDataCipher(APPID, max_age=0).open(data, iv, [KEY])["nickName"] == "x"


def test_the_watermark_age_is_still_checked_to_the_second(cipher):
    now = int(time.time())
    assert cipher.open(*sealed(watermarked(now - 590)), [KEY])
    with pytest.raises(errors.PayloadExpired):
        cipher.open(*sealed(watermarked(now - 700)), [KEY])
