"""Crypto and random-identifier helpers used by the emulator to produce WeChat-shaped data.

Everything here *produces* data the way WeChat does; nothing decrypts. The service under
test is expected to do the reverse with its own code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import string
from typing import Any

from Crypto.Cipher import AES

BLOCK_SIZE = 16
SESSION_KEY_BYTES = 16

_ALNUM = string.ascii_letters + string.digits
# openids, unionids and access tokens use the URL-safe base64 alphabet.
_URLSAFE = _ALNUM + "_-"


def compact_json(value: Any) -> str:
    """Serialize like WeChat clients do: no spaces, raw UTF-8 instead of \\u escapes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def pkcs7_pad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    """PKCS#7: always add 1..block_size bytes, each equal to the pad length."""
    pad_len = block_size - len(data) % block_size
    return data + bytes([pad_len]) * pad_len


def aes128_cbc_encrypt(plaintext: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-128-CBC with PKCS#7 padding, the cipher used for mini-program open data."""
    if len(key) != 16:
        raise ValueError("AES-128 needs a 16-byte key")
    if len(iv) != BLOCK_SIZE:
        raise ValueError("the IV must be 16 bytes")
    return AES.new(key, AES.MODE_CBC, iv).encrypt(pkcs7_pad(plaintext))


def decode_session_key(session_key: str) -> bytes:
    """The AES key is the base64-decoded session_key; it must be exactly 16 bytes."""
    try:
        key = base64.b64decode(session_key, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("session_key is not valid base64") from exc
    if len(key) != SESSION_KEY_BYTES:
        raise ValueError("session_key must decode to 16 bytes")
    return key


def encrypt_open_data(plaintext: str, session_key: str, iv: bytes | None = None) -> tuple[str, str]:
    """Encrypt a UTF-8 string as WeChat does for encryptedData; returns (encryptedData, iv)."""
    iv = secrets.token_bytes(BLOCK_SIZE) if iv is None else iv
    ciphertext = aes128_cbc_encrypt(plaintext.encode("utf-8"), decode_session_key(session_key), iv)
    return base64.b64encode(ciphertext).decode("ascii"), base64.b64encode(iv).decode("ascii")


def session_signature(session_key: str, message: bytes = b"") -> str:
    """Login-state signature (checksession, resetusersessionkey).

    WeChat keys the HMAC with the session_key *string* (its base64 text), not the decoded
    bytes; for GET requests the message is empty.
    """
    return hmac.new(session_key.encode("ascii"), message, hashlib.sha256).hexdigest()


def rawdata_signature(raw_data: str, session_key: str) -> str:
    """signature = sha1(rawData + session_key), with the session_key as its base64 string."""
    return hashlib.sha1((raw_data + session_key).encode("utf-8")).hexdigest()


def signatures_equal(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def random_string(length: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_session_key() -> str:
    """24 base64 characters ending in "==" (16 random bytes)."""
    return base64.b64encode(secrets.token_bytes(SESSION_KEY_BYTES)).decode("ascii")


def new_openid() -> str:
    """Real openids are 28 characters and start with "o"; unionids have the same shape."""
    return "o" + random_string(27, _URLSAFE)


def new_login_code() -> str:
    return random_string(32, _ALNUM)


def new_phone_code() -> str:
    return secrets.token_hex(32)


def new_access_token() -> str:
    # Real tokens are well over 100 characters; WeChat asks callers to store at least 512.
    return random_string(136, _URLSAFE)


def new_rid() -> str:
    """Request id WeChat appends to errmsg: three groups of 8 hex digits."""
    return "-".join(secrets.token_hex(4) for _ in range(3))
