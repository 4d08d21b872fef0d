"""Client for the WeChat server APIs this service calls.

One pooled `requests.Session`, a (connect, read) timeout on every call, and the
errcode checked on every reply. Nothing here logs or raises a message that
contains the app secret, a session_key, an openid or an access_token: request
exceptions carry the URL (with `secret=` in its query), so they are never
chained or formatted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from services import errors
from services.telemetry import NO_TELEMETRY, Telemetry

log = logging.getLogger(__name__)

# errcodes whose meaning is the same on every endpoint we call.
COMMON_ERRORS: Mapping[int, type[errors.ServiceError]] = {
    -1: errors.WeChatBusy,
    45011: errors.WeChatRateLimited,
}

# WeChat's words for "your app credentials are wrong", and the setting to fix.
CREDENTIAL_ERRORS: Mapping[int, str] = {
    40013: "WECHAT_APPID",  # invalid appid
    41002: "WECHAT_APPID",  # appid missing
    40125: "WECHAT_SECRET",  # invalid appsecret
    41004: "WECHAT_SECRET",  # appsecret missing
    40001: "WECHAT_SECRET",  # on the token endpoints: secret does not match the appid
    40164: "the IP whitelist in the WeChat console",  # this server's IP is not allowed
}

# The access_token was replaced (40001) or ran out (42001): refresh once, retry once.
TOKEN_ERRORS = frozenset({40001, 42001})


@dataclass(frozen=True)
class Code2Session:
    openid: str = field(repr=False)
    session_key: str = field(repr=False)
    unionid: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class OAuthLogin:
    """An official account's web login (网页授权): who the code belongs to, and
    with scope snsapi_userinfo the profile /sns/userinfo gave (WeChat's names)."""

    openid: str = field(repr=False)
    unionid: str | None = field(default=None, repr=False)
    scope: str = "snsapi_base"
    profile: dict[str, Any] | None = field(default=None, repr=False)


# /sns/userinfo's fields, in the names the profile uses.
USERINFO_FIELDS = {
    "nickname": "nickName",
    "headimgurl": "avatarUrl",
    "sex": "gender",
    "city": "city",
    "province": "province",
    "country": "country",
}


@dataclass(frozen=True)
class StableToken:
    value: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True)
class ContentVerdict:
    """msgSecCheck's answer: suggest is "pass", "review" or "risky"."""

    suggest: str
    label: int
    trace_id: str


# msgSecCheck and mediaCheckAsync: 61010 means the user has not opened the
# mini program in the last two hours; quota errcodes are theirs.
CONTENT_ERRORS: Mapping[int, type[errors.ServiceError]] = {
    61010: errors.WeChatVisitExpired,
    44991: errors.WeChatRateLimited,
    45009: errors.WeChatRateLimited,
    87020: errors.WeChatRateLimited,
}
SUGGESTIONS = frozenset({"pass", "review", "risky"})


@dataclass(frozen=True)
class PhoneInfo:
    phone_number: str = field(repr=False)
    pure_phone_number: str = field(repr=False)
    country_code: str


class WeChatErrcode(Exception):
    """A reply carried a non-zero errcode that the caller has to interpret."""

    def __init__(self, endpoint: str, errcode: int):
        super().__init__(f"WeChat {endpoint} answered errcode {errcode}")
        self.endpoint = endpoint
        self.errcode = errcode


def http_session(
    api_base: str = "https://api.weixin.qq.com", pool_size: int = 32
) -> requests.Session:
    """The one pooled session for api.weixin.qq.com; retries are ours, not urllib3's."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "wx-session-service"
    # The environment's proxy and CA settings (HTTPS_PROXY, NO_PROXY,
    # REQUESTS_CA_BUNDLE), read once here: with trust_env requests reads
    # and parses the whole environment again on every call.
    session.trust_env = False
    host = urlsplit(api_base).hostname or ""
    proxies = urllib.request.getproxies()
    if urllib.request.proxy_bypass(host):  # NO_PROXY names it
        proxies = {}
    session.proxies = {scheme: url for scheme, url in proxies.items() if scheme != "no"}
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    return session


def hmac_sha256_hex(session_key: str, message: bytes = b"") -> str:
    """WeChat's user-state signature: the key is the session_key *string*, not its bytes."""
    return hmac.new(session_key.encode("ascii"), message, hashlib.sha256).hexdigest()


class WeChatClient:
    def __init__(
        self,
        *,
        appid: str,
        secret: str,
        api_base: str,
        http: requests.Session,
        timeout: tuple[float, float] = (3.05, 5.0),
        retry_backoff: float = 0.2,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self.appid = appid
        self.telemetry = telemetry
        self._secret = secret
        self.api_base = api_base.rstrip("/")
        self.http = http
        self.timeout = timeout
        self.retry_backoff = retry_backoff

    # -- endpoints -----------------------------------------------------------

    def code2session(self, js_code: str) -> Code2Session:
        reply = self.call(
            "jscode2session",
            "GET",
            "/sns/jscode2session",
            params={
                "appid": self.appid,
                "secret": self._secret,
                "js_code": js_code,
                "grant_type": "authorization_code",
            },
            errors={
                40029: errors.CodeInvalid,
                41008: errors.CodeInvalid,  # missing code
                40163: errors.CodeUsed,
                40226: errors.CodeBlocked,
            },
        )
        openid, session_key = reply.get("openid"), reply.get("session_key")
        unionid = reply.get("unionid")
        if not (_is_text(openid) and _is_text(session_key)) or (
            unionid is not None and not _is_text(unionid)
        ):
            log.error("WeChat jscode2session answered without openid or session_key")
            raise errors.WeChatError()
        return Code2Session(openid=openid, session_key=session_key, unionid=unionid or None)

    def oauth_login(self, code: str) -> OAuthLogin:
        """Official-account web login: the code WeChat's redirect gave the page,
        exchanged at /sns/oauth2/access_token; with scope snsapi_userinfo the
        profile is fetched from /sns/userinfo with the user's own token."""
        reply = self.call(
            "oauth2_access_token",
            "GET",
            "/sns/oauth2/access_token",
            params={
                "appid": self.appid,
                "secret": self._secret,
                "code": code,
                "grant_type": "authorization_code",
            },
            errors={40029: errors.CodeInvalid, 40163: errors.CodeUsed, 41008: errors.CodeInvalid},
        )
        openid, user_token = reply.get("openid"), reply.get("access_token")
        unionid, scope = reply.get("unionid"), reply.get("scope")
        if not (_is_text(openid) and _is_text(user_token)) or (
            unionid is not None and not _is_text(unionid)
        ):
            log.error("WeChat oauth2/access_token answered without openid or access_token")
            raise errors.WeChatError()
        scope = scope if isinstance(scope, str) else "snsapi_base"
        profile = None
        if "snsapi_userinfo" in scope.split(","):
            info = self.call(
                "sns_userinfo",
                "GET",
                "/sns/userinfo",
                params={"access_token": user_token, "openid": openid, "lang": "zh_CN"},
            )
            profile = {
                ours: info[theirs] for theirs, ours in USERINFO_FIELDS.items() if theirs in info
            }
            unionid = unionid or (info.get("unionid") if _is_text(info.get("unionid")) else None)
        return OAuthLogin(openid=openid, unionid=unionid or None, scope=scope, profile=profile)

    def stable_token(self) -> StableToken:
        """POST /cgi-bin/stable_token in normal mode: the current token while it
        has over 5 minutes left, a new one (old one still valid) after that."""
        reply = self.call(
            "stable_token",
            "POST",
            "/cgi-bin/stable_token",
            body={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self._secret,
                "force_refresh": False,
            },
            errors={45009: errors.WeChatRateLimited},
        )
        value, expires_in = reply.get("access_token"), reply.get("expires_in")
        if not _is_text(value) or not isinstance(expires_in, int) or expires_in <= 0:
            log.error("WeChat stable_token answered without a usable access_token")
            raise errors.WeChatError()
        return StableToken(value=value, expires_in=expires_in)

    def get_phone_number(self, access_token: str, code: str, openid: str) -> PhoneInfo:
        """getuserphonenumber with the getPhoneNumber button's code; WeChat also
        checks that the code belongs to `openid`."""
        reply = self.call(
            "getuserphonenumber",
            "POST",
            "/wxa/business/getuserphonenumber",
            params={"access_token": access_token},
            body={"code": code, "openid": openid},
            errors={40029: errors.PhoneCodeInvalid, 40013: errors.PhoneCodeAppidMismatch},
            passthrough=TOKEN_ERRORS,
        )
        info = reply.get("phone_info")
        if not isinstance(info, dict):
            log.error("WeChat getuserphonenumber answered without phone_info")
            raise errors.WeChatError()
        fields = [info.get(name) for name in ("phoneNumber", "purePhoneNumber", "countryCode")]
        if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in fields):
            log.error("WeChat getuserphonenumber answered an unreadable phone_info")
            raise errors.WeChatError()
        # The docs show countryCode as a number; the live API sends a string.
        phone, pure, country = (str(v) for v in fields)
        return PhoneInfo(phone_number=phone, pure_phone_number=pure, country_code=country)

    def check_session(self, access_token: str, openid: str, session_key: str) -> bool:
        """Whether WeChat still accepts this session_key for the user (87009: no)."""
        try:
            self.call(
                "checksession",
                "GET",
                "/wxa/checksession",
                params={
                    "access_token": access_token,
                    "openid": openid,
                    "signature": hmac_sha256_hex(session_key),
                    "sig_method": "hmac_sha256",
                },
                passthrough=TOKEN_ERRORS | {87009},
            )
        except WeChatErrcode as exc:
            if exc.errcode == 87009:
                return False
            raise
        return True

    def msg_sec_check(
        self, access_token: str, *, content: str, openid: str, scene: int = 1
    ) -> ContentVerdict:
        """Text content security, v2. A risky text is errcode 0 too: the verdict
        is in result.suggest. Scene 1 is 资料 (a user's profile)."""
        reply = self.call(
            "msg_sec_check",
            "POST",
            "/wxa/msg_sec_check",
            params={"access_token": access_token},
            body={"content": content, "version": 2, "scene": scene, "openid": openid},
            errors=CONTENT_ERRORS,
            passthrough=TOKEN_ERRORS,
        )
        result = reply.get("result")
        suggest = result.get("suggest") if isinstance(result, dict) else None
        label = result.get("label") if isinstance(result, dict) else None
        if suggest not in SUGGESTIONS or not _is_number(label):
            log.error("WeChat msg_sec_check answered without a verdict")
            raise errors.WeChatError()
        return ContentVerdict(suggest, int(label), str(reply.get("trace_id") or ""))

    def media_check_async(
        self, access_token: str, *, media_url: str, openid: str, scene: int = 1
    ) -> str:
        """Image content security, v2: WeChat fetches media_url itself and
        pushes its verdict (wxa_media_check) later. Returns the trace_id."""
        reply = self.call(
            "media_check_async",
            "POST",
            "/wxa/media_check_async",
            params={"access_token": access_token},
            body={
                "media_url": media_url,
                "media_type": 2,  # an image
                "version": 2,
                "scene": scene,
                "openid": openid,
            },
            errors=CONTENT_ERRORS,
            passthrough=TOKEN_ERRORS,
        )
        trace_id = reply.get("trace_id")
        if not _is_text(trace_id) or len(trace_id) > 64:
            log.error("WeChat media_check_async answered without a trace_id")
            raise errors.WeChatError()
        return trace_id

    # -- machinery -----------------------------------------------------------

    def call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        errors: Mapping[int, type[errors.ServiceError]] | None = None,
        passthrough: frozenset[int] = frozenset(),
    ) -> dict[str, Any]:
        """Call an endpoint; -1 (system busy) is retried once after a short backoff.

        errcodes in `passthrough` are raised as WeChatErrcode for the caller;
        the rest become ServiceErrors through `errors`, then the common table.
        """
        for attempt in (1, 2):
            errcode, reply = self._counted(endpoint, method, path, params, body)
            if errcode == 0:
                return reply
            if errcode == -1 and attempt == 1:
                log.warning("WeChat %s answered -1 (system busy); retrying once", endpoint)
                time.sleep(self.retry_backoff)
                continue
            if errcode in passthrough:
                raise WeChatErrcode(endpoint, errcode)
            raise self._error(endpoint, errcode, errors or {})
        raise AssertionError("unreachable")

    def _counted(
        self,
        endpoint: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Any,
    ) -> tuple[int, dict[str, Any]]:
        """One exchange, reported to telemetry with its errcode or failure."""
        started = time.perf_counter()
        outcome = "bad_reply"
        try:
            reply = self._send(endpoint, method, path, params, body)
            errcode = _errcode(endpoint, reply)
            outcome = str(errcode)
            return errcode, reply
        except errors.WeChatTimeout:
            outcome = "timeout"
            raise
        except errors.WeChatUnreachable:
            outcome = "unreachable"
            raise
        finally:
            self.telemetry.wechat_call(endpoint, outcome, time.perf_counter() - started)

    def _send(
        self,
        endpoint: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Any,
    ) -> dict[str, Any]:
        try:
            response = self.http.request(
                method,
                self.api_base + path,
                params=params,
                data=None if body is None else json.dumps(body, ensure_ascii=False).encode(),
                headers=None if body is None else {"Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except requests.Timeout:
            log.warning("WeChat %s timed out", endpoint)
            raise errors.WeChatTimeout() from None
        except requests.RequestException as exc:
            log.warning("WeChat %s unreachable (%s)", endpoint, type(exc).__name__)
            raise errors.WeChatUnreachable() from None
        if response.status_code != 200:
            log.error("WeChat %s answered HTTP %s", endpoint, response.status_code)
            raise errors.WeChatError()
        # WeChat answers JSON as text/plain, so the Content-Type is ignored.
        try:
            reply = json.loads(response.content)
        except ValueError:
            log.error("WeChat %s answered something that is not JSON", endpoint)
            raise errors.WeChatError() from None
        if not isinstance(reply, dict):
            log.error("WeChat %s answered JSON that is not an object", endpoint)
            raise errors.WeChatError()
        return reply

    def _error(
        self,
        endpoint: str,
        errcode: int,
        specific: Mapping[int, type[errors.ServiceError]],
    ) -> errors.ServiceError:
        if errcode in specific:
            log.info("WeChat %s answered errcode %s", endpoint, errcode)
            return specific[errcode]()
        if errcode in COMMON_ERRORS:
            log.warning("WeChat %s answered errcode %s", endpoint, errcode)
            return COMMON_ERRORS[errcode]()
        if errcode in CREDENTIAL_ERRORS:
            log.error(
                "WeChat %s rejected the app credentials (errcode %s): check the %s setting",
                endpoint,
                errcode,
                CREDENTIAL_ERRORS[errcode],
            )
            return errors.WeChatMisconfigured()
        log.error("WeChat %s answered unexpected errcode %s", endpoint, errcode)
        return errors.WeChatError()


def _errcode(endpoint: str, reply: Mapping[str, Any]) -> int:
    # code2Session omits errcode on success; other endpoints send 0.
    errcode = reply.get("errcode", 0)
    if isinstance(errcode, bool) or not isinstance(errcode, int):
        log.error("WeChat %s answered a non-integer errcode", endpoint)
        raise errors.WeChatError()
    return errcode


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_number(value: Any) -> bool:
    if isinstance(value, str):
        return value.isdigit()
    return isinstance(value, int) and not isinstance(value, bool)
