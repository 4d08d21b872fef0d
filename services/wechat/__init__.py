"""The WeChat adapter: the server APIs this service calls, over one pooled
HTTP session per upstream, with a timeout on every call and the errcode
checked on every reply."""

from services.wechat.client import (
    TOKEN_ERRORS,
    Code2Session,
    ContentVerdict,
    OAuthLogin,
    PhoneInfo,
    StableToken,
    WeChatClient,
    WeChatErrcode,
    hmac_sha256_hex,
    http_session,
)

__all__ = [
    "TOKEN_ERRORS",
    "Code2Session",
    "ContentVerdict",
    "OAuthLogin",
    "PhoneInfo",
    "StableToken",
    "WeChatClient",
    "WeChatErrcode",
    "hmac_sha256_hex",
    "http_session",
]
