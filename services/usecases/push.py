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
from services.apps import App
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
        max_age: int,
        guard: PushGuard,
        avatars: AvatarService,
        accounts: AccountService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_age = max_age
        self.guard = guard
        self.avatars = avatars
        self.accounts = accounts
        self.clock = clock

    def verify_url(self, app: App, query: Mapping[str, str]) -> str:
        """The console's URL check: echo echostr if the signature is ours."""
        timestamp, nonce = self._fresh(app, query)
        expected = signature(app.push.token, timestamp, nonce)
        if not signatures_match(expected, query.get("signature")):
            raise errors.PushSignatureInvalid()
        return query.get("echostr", "")

    def receive(self, app: App, query: Mapping[str, str], body: bytes) -> None:
        timestamp, nonce = self._fresh(app, query)
        message, given = _Opener(app, query, timestamp, nonce).open(body)
        if not self.guard.first_delivery(app.appid, timestamp, nonce, given):
            raise errors.PushReplayed()
        self._dispatch(app, message)

    def _fresh(self, app: App, query: Mapping[str, str]) -> tuple[str, str]:
        if not app.push.token:
            raise errors.PushNotConfigured()
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not timestamp.isdigit() or not nonce or len(nonce) > 64:
            raise errors.PushSignatureInvalid("The push has no timestamp and nonce.")
        if abs(self.clock() - int(timestamp)) > self.max_age:
            raise errors.PushExpired()
        return timestamp, nonce

    def _dispatch(self, app: App, message: dict[str, Any]) -> None:
        event = str(message.get("Event", ""))
        handler = self.HANDLERS.get(event)
        if handler is None:
            log.info("push %r ignored", event or message.get("MsgType"))
            return
        appid = str(message.get("appid") or message.get("AppID") or app.appid)
        if appid != app.appid:
            log.warning("push %r for another appid ignored", event)
            return
        identity = (event, appid, *(str(message.get(k, "")) for k in self.IDENTITY))
        if not self.guard.first_event(*identity):
            log.info("push %r delivered again; already handled", event)
            return
        handler(self, app, message)

    # WeChat's identity of an event: who, when, and for media checks the trace.
    IDENTITY: ClassVar[tuple[str, ...]] = ("FromUserName", "OpenID", "CreateTime", "trace_id")

    def _media_check(self, app: App, message: dict[str, Any]) -> None:
        result = message.get("result")
        suggest = str(result.get("suggest", "")) if isinstance(result, dict) else ""
        errcode = _int(message.get("errcode", 0))
        trace_id = str(message.get("trace_id", ""))
        if not trace_id or len(trace_id) > 64:
            raise errors.PushMalformed("wxa_media_check without a trace_id.")
        self.avatars.settle(trace_id, MediaVerdict(suggest=suggest, errcode=errcode))

    def _revoke(self, app: App, message: dict[str, Any]) -> None:
        self.accounts.withdraw(app.appid, _openid(message), str(message.get("RevokeInfo", "")))

    def _cancellation(self, app: App, message: dict[str, Any]) -> None:
        self.accounts.cancel(app.appid, _openid(message))

    def _info_modified(self, app: App, message: dict[str, Any]) -> None:
        # WeChat cleaned a risky nickname or avatar and does not say which:
        # ours go too.
        self.accounts.erase(app.appid, _openid(message), ("nickName", "avatar"))

    HANDLERS: ClassVar[dict[str, Callable[[PushService, App, dict[str, Any]], None]]] = {
        "wxa_media_check": _media_check,
        "user_authorization_revoke": _revoke,
        "user_authorization_cancellation": _cancellation,
        "user_info_modified": _info_modified,
    }


class _Opener:
    """A POSTed push's message, and the signature that vouched for it."""

    def __init__(self, app: App, query: Mapping[str, str], timestamp: str, nonce: str) -> None:
        self.app, self.query = app, query
        self.timestamp, self.nonce = timestamp, nonce

    def open(self, body: bytes) -> tuple[dict[str, Any], str]:
        if self.query.get("encrypt_type", "").lower() != "aes":
            given = self.query.get("signature", "")
            self._check(given)
            return parse_message(body), given
        # Secure (and compatible) mode: msg_signature covers the ciphertext;
        # WeChat says not to verify with `signature` here.
        encrypted = parse_message(body).get("Encrypt")
        given = self.query.get("msg_signature", "")
        if not isinstance(encrypted, str):
            raise errors.PushSignatureInvalid()
        self._check(given, encrypted)
        if not self.app.push.aes_key:
            log.error("an encrypted push arrived for an app with no push EncodingAESKey")
            raise errors.PushMalformed("Encrypted pushes need the app's EncodingAESKey.")
        plain, appid = PushCipher(self.app.push.aes_key).decrypt(encrypted)
        if appid != self.app.appid:
            raise errors.PushMalformed("The push was encrypted for another appid.")
        return parse_message(plain), given

    def _check(self, given: str, *extra: str) -> None:
        expected = signature(self.app.push.token, self.timestamp, self.nonce, *extra)
        if not signatures_match(expected, given):
            raise errors.PushSignatureInvalid()


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
