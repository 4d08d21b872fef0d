"""Constants the test modules share: the one home for them."""

from __future__ import annotations

from config import ROOT
from wechat_emulator import DEFAULT_APPID

__all__ = ["APPID", "PUSH_AES_KEY", "PUSH_TOKEN", "ROOT", "SECRET", "SECRET_KEY"]

# The test app: the emulator's default appid with a secret of the tests' own,
# so that a leak of it in any response or log line is unmistakable.
APPID = DEFAULT_APPID
SECRET = "test-secret-5c0f7a9e1b2d4c6f"
SECRET_KEY = "test-secret-key-for-session-keys"
# The message push's Token and EncodingAESKey (43 characters).
PUSH_TOKEN = "testpushtoken7d2e"
PUSH_AES_KEY = "q3sKxjMneFW5uC0yoHHnXwQsQFuFsfPp2KT6GbeaCWZ"
