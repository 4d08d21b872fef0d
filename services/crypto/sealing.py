"""Sealing values kept in Redis that must not be readable there: AES-SIV under
a key derived from SECRET_KEY, one derived key per purpose.

SIV is deterministic (the same value seals to the same text), which lets a
sealed value be a set member; it reveals only that two values are equal.
"""

from __future__ import annotations

import base64
import binascii

from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF

TAG = 16


class Sealer:
    def __init__(self, secret_key: str, purpose: str) -> None:
        self._key = HKDF(
            secret_key.encode(),
            32,
            salt=b"wx-session-service",
            hashmod=SHA256,
            context=purpose.encode(),
        )

    def seal(self, text: str) -> str:
        ciphertext, tag = AES.new(self._key, AES.MODE_SIV).encrypt_and_digest(text.encode())
        return base64.b64encode(tag + ciphertext).decode()

    def open(self, sealed: str) -> str | None:
        """The value, or None if it was sealed under another key or altered."""
        try:
            raw = base64.b64decode(sealed, validate=True)
            cipher = AES.new(self._key, AES.MODE_SIV)
            return cipher.decrypt_and_verify(raw[TAG:], raw[:TAG]).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
