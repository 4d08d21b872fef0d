"""Crypto and random-identifier helpers used by the emulator to produce WeChat-shaped data.

Everything here *produces* data the way WeChat does. The one decryption, of message-push
ciphertext, exists for the emulator's own round-trip tests and for reading a service's
encrypted reply; the service under test is expected to do the reverse with its own code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import string
import struct
from typing import Any

from Crypto.Cipher import AES

BLOCK_SIZE = 16
SESSION_KEY_BYTES = 16
# Message push (消息推送) pads to the AES-256 key size, not the AES block size.
PUSH_BLOCK_SIZE = 32
PUSH_RANDOM_BYTES = 16
ENCODING_AES_KEY_LENGTH = 43

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


def pkcs7_unpad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    if not data or len(data) % block_size:
        raise ValueError("ciphertext is not a whole number of blocks")
    pad_len = data[-1]
    if not 1 <= pad_len <= block_size or data[-pad_len:] != bytes([pad_len]) * pad_len:
        raise ValueError("bad PKCS#7 padding")
    return data[:-pad_len]


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


# ----- message push (消息推送) ------------------------------------------------------------------


def push_signature(*parts: str) -> str:
    """sha1 of the parts sorted lexicographically and joined: `signature` is over
    (token, timestamp, nonce), `msg_signature` adds the Encrypt text."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def push_aes_key(encoding_aes_key: str) -> bytes:
    """AESKey = Base64_Decode(EncodingAESKey + "="): 43 characters give 32 bytes."""
    if len(encoding_aes_key) != ENCODING_AES_KEY_LENGTH or not encoding_aes_key.isascii():
        raise ValueError("EncodingAESKey must be 43 characters of [A-Za-z0-9]")
    if not encoding_aes_key.isalnum():
        raise ValueError("EncodingAESKey must be 43 characters of [A-Za-z0-9]")
    return base64.b64decode(encoding_aes_key + "=")


def encrypt_push_message(
    message: bytes, encoding_aes_key: str, appid: str, random_prefix: bytes | None = None
) -> str:
    """Encrypt = base64(AES-256-CBC(random(16) + len(msg) as 4 bytes big-endian + msg + appid)),
    PKCS#7-padded to 32 bytes, with IV = the first 16 bytes of the key."""
    key = push_aes_key(encoding_aes_key)
    prefix = new_push_random() if random_prefix is None else random_prefix
    if len(prefix) != PUSH_RANDOM_BYTES:
        raise ValueError("the random prefix must be 16 bytes")
    full = prefix + struct.pack(">I", len(message)) + message + appid.encode("utf-8")
    cipher = AES.new(key, AES.MODE_CBC, key[:BLOCK_SIZE])
    return base64.b64encode(cipher.encrypt(pkcs7_pad(full, PUSH_BLOCK_SIZE))).decode("ascii")


def decrypt_push_message(encrypt: str, encoding_aes_key: str) -> tuple[bytes, str]:
    """The inverse of encrypt_push_message: returns (msg, appid). Raises ValueError."""
    key = push_aes_key(encoding_aes_key)
    try:
        ciphertext = base64.b64decode(encrypt, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("Encrypt is not valid base64") from exc
    if not ciphertext or len(ciphertext) % BLOCK_SIZE:
        raise ValueError("ciphertext is not a whole number of AES blocks")
    full = AES.new(key, AES.MODE_CBC, key[:BLOCK_SIZE]).decrypt(ciphertext)
    full = pkcs7_unpad(full, PUSH_BLOCK_SIZE)
    if len(full) < PUSH_RANDOM_BYTES + 4:
        raise ValueError("plaintext too short")
    (length,) = struct.unpack(">I", full[PUSH_RANDOM_BYTES : PUSH_RANDOM_BYTES + 4])
    start = PUSH_RANDOM_BYTES + 4
    if start + length > len(full):
        raise ValueError("message length exceeds the plaintext")
    return full[start : start + length], full[start + length :].decode("utf-8")


def new_push_random() -> bytes:
    """The docs' examples use 16 lowercase hex characters ("a8eedb185eb2fecf")."""
    return secrets.token_hex(PUSH_RANDOM_BYTES // 2).encode("ascii")


def new_push_nonce() -> str:
    """Nonces in the docs are decimal numbers of 9-10 digits ("1514711492", "486452656")."""
    return str(secrets.randbelow(2**31 - 100_000_000) + 100_000_000)


def new_echostr() -> str:
    """The GET handshake's echostr, a 19-digit number in the docs ("4375120948345356249")."""
    return str(secrets.randbelow(9 * 10**18) + 10**18)


def new_encoding_aes_key() -> str:
    return random_string(ENCODING_AES_KEY_LENGTH, _ALNUM)


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


def _derived_id(*parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode("ascii")[:27]


def derived_openid(appid: str, person: str) -> str:
    """A person's openid in one app: stable, different in every app."""
    return _derived_id("openid", appid, person)


def derived_unionid(open_platform: str, person: str) -> str:
    """A person's unionid: one per Open Platform account, shared by its bound apps."""
    return _derived_id("unionid", open_platform, person)


def original_id(appid: str) -> str:
    """An app's original id (gh_ + 12 hex digits), the ToUserName of pushes."""
    return "gh_" + hashlib.sha1(appid.encode("utf-8")).hexdigest()[:12]


def new_login_code() -> str:
    return random_string(32, _ALNUM)


def new_phone_code() -> str:
    return secrets.token_hex(32)


def new_oauth_code() -> str:
    return random_string(32, _ALNUM)


def new_refresh_token() -> str:
    return random_string(110, _URLSAFE)


def new_access_token() -> str:
    # Real tokens are well over 100 characters; WeChat asks callers to store at least 512.
    return random_string(136, _URLSAFE)


def new_rid() -> str:
    """Request id WeChat appends to errmsg: three groups of 8 hex digits."""
    return "-".join(secrets.token_hex(4) for _ in range(3))


def new_trace_id() -> str:
    """Content-security trace_id, e.g. "60f96f1d-3845297a-1976a3ae": the rid's shape."""
    return new_rid()
