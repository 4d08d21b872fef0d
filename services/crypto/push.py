"""WeChat's message push (消息推送): signatures and the secure mode's cipher.

Signatures are sha1 over the sorted, concatenated strings: the Token, the
timestamp and the nonce (plaintext mode, and the GET handshake), plus the
Encrypt field in secure mode (msg_signature).

Secure mode: AES-256-CBC with the key base64-decoded from EncodingAESKey + "="
and the IV its first 16 bytes; PKCS#7 padding to 32-byte blocks (not AES's
16); the plaintext is 16 random bytes, the message length as 4 bytes in
network order, the message, then the appid it was sent for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct

from Crypto.Cipher import AES

from services import errors

PAD_BLOCK = 32


def signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, *extra])).encode()).hexdigest()


def signatures_match(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected, given.strip().lower())


class PushCipher:
    def __init__(self, encoding_aes_key: str) -> None:
        self._key = base64.b64decode(encoding_aes_key + "=")
        if len(self._key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")

    def decrypt(self, encrypted: str) -> tuple[bytes, str]:
        """(message, appid) from an Encrypt field; PushMalformed if it does not open."""
        try:
            ciphertext = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise errors.PushMalformed("Encrypt is not base64.") from None
        if not ciphertext or len(ciphertext) % AES.block_size:
            raise errors.PushMalformed("Encrypt is not whole AES blocks.")
        plain = AES.new(self._key, AES.MODE_CBC, self._key[:16]).decrypt(ciphertext)
        pad = plain[-1]
        if not 1 <= pad <= PAD_BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise errors.PushMalformed("Encrypt does not open with this EncodingAESKey.")
        body = plain[16:-pad]
        if len(body) < 4:
            raise errors.PushMalformed("Encrypt holds no message.")
        (length,) = struct.unpack(">I", body[:4])
        if length > len(body) - 4:
            raise errors.PushMalformed("Encrypt's message length is wrong.")
        try:
            appid = body[4 + length :].decode("ascii")
        except UnicodeDecodeError:
            raise errors.PushMalformed("Encrypt's appid is not text.") from None
        return body[4 : 4 + length], appid

    def encrypt(self, message: bytes, appid: str) -> str:
        """The Encrypt field WeChat would send (and replies other than "success" need)."""
        plain = secrets.token_bytes(16) + struct.pack(">I", len(message)) + message
        plain += appid.encode("ascii")
        pad = PAD_BLOCK - len(plain) % PAD_BLOCK
        plain += bytes([pad]) * pad
        return base64.b64encode(
            AES.new(self._key, AES.MODE_CBC, self._key[:16]).encrypt(plain)
        ).decode("ascii")
