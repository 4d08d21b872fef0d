"""Session tokens: what the client holds instead of anything WeChat gave.

    <tag: 4> <random: 43> <mac: 8>     55 URL-safe characters

The tag is the session's Redis hash tag (its slot on a Cluster); the random
part is 256 bits from `secrets`; the MAC (HMAC-SHA256 under a key derived
from SECRET_KEY, cut to 48 bits) lets the service refuse a made-up token
without asking Redis, so a flood of bogus tokens costs CPU, not round trips.
No character is '=' or '&', which mini program cookie interceptors mangle.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets

from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF

RANDOM_BYTES = 32
MAC_BYTES = 6
TOKEN = re.compile(r"[a-z2-7]{4}[A-Za-z0-9_-]{43}[A-Za-z0-9_-]{8}")


class TokenMinter:
    def __init__(self, secret_key: str) -> None:
        self._key = HKDF(
            secret_key.encode(),
            32,
            salt=b"wx-session-service",
            hashmod=SHA256,
            context=b"session token",
        )

    def mint(self, tag: str) -> str:
        body = tag + secrets.token_urlsafe(RANDOM_BYTES)
        return body + self._mac(body)

    def valid(self, token: str) -> bool:
        if not TOKEN.fullmatch(token):
            return False
        body, mac = token[:-8], token[-8:]
        return hmac.compare_digest(self._mac(body), mac)

    def _mac(self, body: str) -> str:
        # hmac.digest: OpenSSL's one-shot HMAC, without building an HMAC object.
        digest = hmac.digest(self._key, body.encode("ascii"), "sha256")[:MAC_BYTES]
        return base64.urlsafe_b64encode(digest).decode("ascii")
