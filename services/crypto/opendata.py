"""WeChat open data: encryptedData + iv decrypted with a session_key.

The algorithm (开放数据校验与解密): AES-128-CBC, key = base64-decoded session_key,
iv = base64-decoded iv, PKCS#7 padding; the plaintext is JSON whose
`watermark.appid` must be ours. Optional rawData is signed as
hex(sha1(rawData + session_key)), with the session_key as its base64 text.

WeChat may give the user a new session_key at any wx.login, so the data may be
under the previous key; `open()` tries the user's recent keys, newest first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from Crypto.Cipher import AES
from Crypto.Util.Padding import unpad

from services import errors

BLOCK = 16


def b64decode_lenient(value: str) -> bytes:
    """Base64 as clients really send it: standard or URL-safe alphabet, padding
    optional, line breaks, and '+' turned into ' ' by a form encoder that
    skipped escaping. A space is never trimmed: at either end it was a '+'."""
    cleaned = "".join(value.split("\n")).replace("\r", "").replace("\t", "")
    cleaned = cleaned.replace(" ", "+").replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    return base64.b64decode(cleaned, validate=True)


def decrypt(ciphertext: bytes, key: bytes, iv: bytes) -> str | None:
    """The plaintext, or None when this key does not open the data: the
    padding is not strict PKCS#7 or the result is not UTF-8. A wrong key turns
    the last block into noise, which passes both checks with negligible odds."""
    plaintext = AES.new(key, AES.MODE_CBC, iv).decrypt(ciphertext)
    try:
        return unpad(plaintext, BLOCK, style="pkcs7").decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def rawdata_signature(raw_data: str, session_key: str) -> str:
    # rawData as the client sent it. Text that is not valid Unicode (a lone
    # surrogate from a JSON \u escape) cannot be what WeChat signed: it is
    # hashed as is, and simply does not match.
    return hashlib.sha1((raw_data + session_key).encode("utf-8", "surrogatepass")).hexdigest()


class OpenDataCipher:
    def __init__(self, appid: str, *, max_age: int, clock: Callable[[], float] = time.time) -> None:
        self.appid = appid
        self.max_age = max_age
        self.clock = clock

    def open(
        self,
        encrypted_data: str,
        iv: str,
        session_keys: Sequence[str],
        *,
        openid: str | None = None,
        raw_data: str | None = None,
        signature: str | None = None,
    ) -> dict[str, Any]:
        """The payload, from the newest key that opens it and validates."""
        ciphertext = _ciphertext(encrypted_data)
        iv_bytes = _iv(iv)
        rejected: errors.ServiceError | None = None
        for session_key in session_keys:
            key = _session_key_bytes(session_key)
            plaintext = decrypt(ciphertext, key, iv_bytes) if key else None
            if plaintext is None:
                continue
            try:
                return self._validate(plaintext, session_key, openid, raw_data, signature)
            except errors.ServiceError as exc:
                rejected = rejected or exc
        raise rejected or errors.SessionKeyStale()

    def _validate(
        self,
        plaintext: str,
        session_key: str,
        openid: str | None,
        raw_data: str | None,
        signature: str | None,
    ) -> dict[str, Any]:
        try:
            payload = json.loads(plaintext)
        except (ValueError, RecursionError):
            raise errors.PayloadNotJson() from None
        if not isinstance(payload, dict):
            raise errors.PayloadNotJson()
        self._check_watermark(payload.get("watermark"))
        if raw_data is not None and signature is not None:
            expected = rawdata_signature(raw_data, session_key).encode()
            # Compared as bytes: compare_digest refuses str that is not ASCII.
            given = signature.strip().lower().encode("utf-8", "surrogatepass")
            if not hmac.compare_digest(expected, given):
                raise errors.SignatureMismatch()
        # Old getUserInfo payloads name the user; newer ones do not.
        if openid is not None and payload.get("openId") not in (None, openid):
            raise errors.PayloadUserMismatch()
        return payload

    def _check_watermark(self, watermark: Any) -> None:
        if not isinstance(watermark, dict) or watermark.get("appid") != self.appid:
            raise errors.WatermarkMismatch()
        timestamp = watermark.get("timestamp")
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            raise errors.WatermarkMismatch("The data's watermark has no valid timestamp.")
        # In integers: a timestamp past float's range must not overflow.
        if self.max_age and abs(int(self.clock()) - timestamp) > self.max_age:
            raise errors.PayloadExpired()


def _ciphertext(encrypted_data: str) -> bytes:
    try:
        ciphertext = b64decode_lenient(encrypted_data)
    except (binascii.Error, ValueError):
        raise errors.MalformedEncryptedData() from None
    if not ciphertext or len(ciphertext) % BLOCK:
        raise errors.MalformedEncryptedData()
    return ciphertext


def _iv(iv: str) -> bytes:
    try:
        raw = b64decode_lenient(iv)
    except (binascii.Error, ValueError):
        raise errors.MalformedIv() from None
    if len(raw) != BLOCK:
        raise errors.MalformedIv()
    return raw


def _session_key_bytes(session_key: str) -> bytes | None:
    try:
        key = base64.b64decode(session_key, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == BLOCK else None
