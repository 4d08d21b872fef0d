"""WeChat's message push (消息推送) for this mini program: the GET handshake
and the POSTed events, verified and, in secure mode, decrypted.

Every POST must carry a valid signature for the configured Token and a
timestamp within PUSH_MAX_AGE of now, and must not repeat a request already
received (replay). Events WeChat delivers again (it retries when it does not
hear "success" within 5 s) change nothing the second time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from services import errors
from services.crypto.push import PushCipher, signature, signatures_match
from services.stores.push_guard import PushGuard
from services.usecases.accounts import AccountService
from services.usecases.avatars import AvatarService, MediaVerdict
from services.wechat.push import parse_message

log = logging.getLogger(__name__)


class PushService:
    def __init__(
        self,
        *,
        appid: str,
        token: str,
        aes_key: str,
        max_age: int,
        guard: PushGuard,
        avatars: AvatarService,
        accounts: AccountService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.appid = appid
        self.token = token
        self.cipher = PushCipher(aes_key) if aes_key else None
        self.max_age = max_age
        self.guard = guard
        self.avatars = avatars
        self.accounts = accounts
        self.clock = clock

    def verify_url(self, query: Mapping[str, str]) -> str:
        """The console's URL check: echo echostr if the signature is ours."""
        timestamp, nonce = self._fresh(query)
        if not signatures_match(signature(self.token, timestamp, nonce), query.get("signature")):
            raise errors.PushSignatureInvalid()
        return query.get("echostr", "")

    def receive(self, query: Mapping[str, str], body: bytes) -> None:
        timestamp, nonce = self._fresh(query)
        message, given = self._open(query, body, timestamp, nonce)
        if not self.guard.first_delivery(timestamp, nonce, given):
            raise errors.PushReplayed()
        self._dispatch(message)

    def _fresh(self, query: Mapping[str, str]) -> tuple[str, str]:
        if not self.token:
            raise errors.PushNotConfigured()
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not timestamp.isdigit() or not nonce or len(nonce) > 64:
            raise errors.PushSignatureInvalid("The push has no timestamp and nonce.")
        if abs(self.clock() - int(timestamp)) > self.max_age:
            raise errors.PushExpired()
        return timestamp, nonce

    def _open(
        self, query: Mapping[str, str], body: bytes, timestamp: str, nonce: str
    ) -> tuple[dict[str, Any], str]:
        """The message, and the signature that vouched for it."""
        if query.get("encrypt_type", "").lower() != "aes":
            given = query.get("signature", "")
            if not signatures_match(signature(self.token, timestamp, nonce), given):
                raise errors.PushSignatureInvalid()
            return parse_message(body), given
        # Secure (and compatible) mode: msg_signature covers the ciphertext;
        # WeChat says not to verify with `signature` here.
        encrypted = parse_message(body).get("Encrypt")
        given = query.get("msg_signature", "")
        if not isinstance(encrypted, str) or not signatures_match(
            signature(self.token, timestamp, nonce, encrypted), given
        ):
            raise errors.PushSignatureInvalid()
        if self.cipher is None:
            log.error("an encrypted push arrived, but WECHAT_PUSH_AES_KEY is not set")
            raise errors.PushMalformed("Encrypted pushes need WECHAT_PUSH_AES_KEY.")
        plain, appid = self.cipher.decrypt(encrypted)
        if appid != self.appid:
            raise errors.PushMalformed("The push was encrypted for another appid.")
        return parse_message(plain), given

    def _dispatch(self, message: dict[str, Any]) -> None:
        event = str(message.get("Event", ""))
        handler = self.HANDLERS.get(event)
        if handler is None:
            log.info("push %r ignored", event or message.get("MsgType"))
            return
        appid = str(message.get("appid") or message.get("AppID") or self.appid)
        if appid != self.appid:
            log.warning("push %r for another appid ignored", event)
            return
        identity = (event, appid, *(str(message.get(k, "")) for k in self.IDENTITY))
        if not self.guard.first_event(*identity):
            log.info("push %r delivered again; already handled", event)
            return
        handler(self, message)

    # WeChat's identity of an event: who, when, and for media checks the trace.
    IDENTITY: ClassVar[tuple[str, ...]] = ("FromUserName", "OpenID", "CreateTime", "trace_id")

    def _media_check(self, message: dict[str, Any]) -> None:
        result = message.get("result")
        suggest = str(result.get("suggest", "")) if isinstance(result, dict) else ""
        errcode = _int(message.get("errcode", 0))
        trace_id = str(message.get("trace_id", ""))
        if not trace_id or len(trace_id) > 64:
            raise errors.PushMalformed("wxa_media_check without a trace_id.")
        self.avatars.settle(trace_id, MediaVerdict(suggest=suggest, errcode=errcode))

    def _revoke(self, message: dict[str, Any]) -> None:
        self.accounts.withdraw(_openid(message), str(message.get("RevokeInfo", "")))

    def _cancellation(self, message: dict[str, Any]) -> None:
        self.accounts.delete_by_openid(_openid(message), "wechat_cancellation")

    def _info_modified(self, message: dict[str, Any]) -> None:
        # WeChat cleaned a risky nickname or avatar and does not say which:
        # ours go too.
        self.accounts.erase(_openid(message), ("nickName", "avatar"))

    HANDLERS: ClassVar[dict[str, Callable[[PushService, dict[str, Any]], None]]] = {
        "wxa_media_check": _media_check,
        "user_authorization_revoke": _revoke,
        "user_authorization_cancellation": _cancellation,
        "user_info_modified": _info_modified,
    }


def _openid(message: Mapping[str, Any]) -> str:
    openid = message.get("OpenID") or message.get("FromUserName")
    if not isinstance(openid, str) or not openid:
        raise errors.PushMalformed("The event names no user.")
    return openid


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
