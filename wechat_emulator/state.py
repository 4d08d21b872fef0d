"""In-memory model of the WeChat side: apps, users, codes, tokens, faults and the call log.

Every public method takes the one lock, so the HTTP layer can call it from many threads;
the asynchronous side (media checks, push deliveries: see delivery.py) keeps its records
here too and waits on the lock's condition. Time comes from an injectable clock plus an
offset that the control API can only move forward.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from . import crypto, security
from .delivery import Deliveries
from .errors import ControlError
from .push import Answer, Outgoing, PushConfig, PushConfigError

DEFAULT_APPID = "wx0123456789abcdef"
DEFAULT_SECRET = "emulator-secret-0123456789abcdef"

TOKEN_LIFETIME = 7200
# Old and new tokens overlap for 5 minutes after a refresh.
TOKEN_OVERLAP = 300
# A stable token is renewed in its last 5 minutes, so expires_in is always >= 300.
STABLE_RENEW_WINDOW = 300
# Force refreshes closer together than this are ignored by WeChat.
FORCE_REFRESH_MIN_GAP = 30
PHONE_CODE_TTL = 300
# msgSecCheck/mediaCheckAsync need the user to have visited the app in the last 2 hours.
VISIT_WINDOW = 7200
MAX_TEXT_LENGTH = 2500
OAUTH_CODE_TTL = 300
SNS_TOKEN_LIFETIME = 7200
APP_KINDS = ("miniprogram", "official_account")
OAUTH_SCOPES = ("snsapi_base", "snsapi_userinfo")
USER_EVENTS = (
    "user_authorization_revoke",
    "user_authorization_cancellation",
    "user_info_modified",
)
# The "platform push service" account that events come from (FromUserName).
PUSH_SENDER = "\x00platform-push-service"
DEFAULT_AVATAR = "https://thirdwx.qlogo.cn/mmopen/vi_32/{}/132"
PROFILE_FIELDS = ("nickname", "sex", "province", "city", "country", "headimgurl")
MAX_WAIT = 120.0

DEFAULT_PHONE = "13800138000"
DEFAULT_COUNTRY_CODE = "86"

ENDPOINTS = (
    "jscode2session",
    "token",
    "stable_token",
    "getuserphonenumber",
    "checksession",
    "resetusersessionkey",
    "msg_sec_check",
    "media_check_async",
    "oauth2_access_token",
    "sns_userinfo",
)
ANY_ENDPOINT = "*"
ROTATE_MODES = ("never", "always", "min_interval")

ERRMSGS: dict[int, str] = {
    -1: "system error",
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40013: "invalid appid",
    40029: "invalid code",
    40125: "invalid appsecret",
    40129: "invalid scene",
    40163: "code been used",
    40164: "invalid ip, not in whitelist",
    40226: "code blocked",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    43002: "require POST method",
    43104: "appid and openid not match",
    44002: "empty post data",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit mustslower retry next minute",
    47001: "data format error",
    48001: "api unauthorized",
    61010: "code is expired",
    87014: "risky content",
    87008: "invalid sig_method",
    87009: "invalid signature",
}


def standard_errmsg(errcode: int) -> str:
    return ERRMSGS.get(errcode, "emulated error")


class WeChatError(Exception):
    """An errcode reply from a WeChat-side endpoint."""

    def __init__(self, errcode: int, errmsg: str | None = None, *, add_rid: bool = True) -> None:
        self.errcode = errcode
        self.errmsg = standard_errmsg(errcode) if errmsg is None else errmsg
        self.add_rid = add_rid
        super().__init__(f"{errcode} {self.errmsg}")


@dataclass
class Config:
    rotate: str = "never"
    rotate_min_interval: float = 300.0
    code_ttl: float = 300.0
    success_errcode: bool = False
    content_type: str = "text/plain"


@dataclass(frozen=True)
class RetiredKey:
    session_key: str
    issued_at: float
    retired_at: float
    reason: str


@dataclass
class App:
    appid: str
    secret: str
    kind: str = "miniprogram"
    # The Open Platform account the app is bound to; unbound apps never get unionids.
    open_platform: str | None = None
    # Original id (gh_...), the ToUserName of pushes.
    username: str = ""
    push: PushConfig | None = None

    def __post_init__(self) -> None:
        if not self.appid or not self.secret:
            raise ControlError("appid and secret must be non-empty")
        if self.kind not in APP_KINDS:
            raise ControlError(f"kind must be one of {APP_KINDS}")
        if self.open_platform == "":
            raise ControlError("open_platform must be a non-empty string or null")
        self.username = self.username or crypto.original_id(self.appid)

    def public(self) -> dict[str, Any]:
        return {
            "appid": self.appid,
            "secret": self.secret,
            "kind": self.kind,
            "open_platform": self.open_platform,
            "username": self.username,
            "push": self.push.public() if self.push else None,
        }


@dataclass
class User:
    appid: str
    openid: str
    session_key: str
    key_issued_at: float
    # An explicit unionid given to the control login (the original, person-less way).
    unionid: str | None = None
    blocked: bool = False
    retired_keys: list[RetiredKey] = field(default_factory=list)
    # The person this openid belongs to, when it was derived from one.
    person: str | None = None
    # Last wx.login: content security wants a visit in the last 2 hours.
    last_visit: float | None = None
    # Profile of a person-less user (a person's profile lives with the person).
    profile: dict[str, Any] | None = None

    def replace_key(self, now: float, reason: str, *, keep_issue_time: bool = False) -> None:
        self.retired_keys.append(RetiredKey(self.session_key, self.key_issued_at, now, reason))
        self.session_key = crypto.new_session_key()
        if not keep_issue_time:
            self.key_issued_at = now


@dataclass
class LoginCode:
    code: str
    appid: str
    openid: str
    session_key: str
    expires_at: float
    used: bool = False


@dataclass
class PhoneCode:
    code: str
    appid: str
    openid: str
    phone_number: str
    pure_phone_number: str
    country_code: str
    issued_at: float
    used: bool = False


@dataclass
class OAuthCode:
    code: str
    appid: str
    openid: str
    scope: str
    expires_at: float
    snapshot: bool = False
    used: bool = False


@dataclass
class SnsToken:
    value: str
    appid: str
    openid: str
    scope: str
    expires_at: float


@dataclass
class Attempt:
    request: Outgoing
    sent_at: float
    answer: Answer | None = None

    def public(self) -> dict[str, Any]:
        reply = self.answer.public() if self.answer else None
        return {
            **self.request.public(),
            "sent_at": self.sent_at,
            "response": reply,
            "accepted": bool(self.answer and self.answer.accepted),
        }


@dataclass
class PushRecord:
    """One delivery to the service: the first attempt and every retry."""

    id: int
    appid: str
    kind: str  # "event" or "verify"
    event: dict[str, Any] | None
    mode: str
    format: str
    status: str = "sending"  # then "accepted" or "failed"
    attempts: list[Attempt] = field(default_factory=list)
    replay_of: int | None = None
    redelivery_of: int | None = None
    trace_id: str | None = None
    echostr: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "appid": self.appid,
            "kind": self.kind,
            "event": self.event,
            "mode": self.mode,
            "format": self.format,
            "status": self.status,
            "replay_of": self.replay_of,
            "redelivery_of": self.redelivery_of,
            "trace_id": self.trace_id,
            "echostr": self.echostr,
            "attempts": [a.public() for a in self.attempts],
        }


@dataclass
class MediaCheck:
    trace_id: str
    appid: str
    openid: str
    media_url: str
    media_type: int
    scene: int
    created_at: float
    delay: float
    status: str = "queued"  # held -> queued -> running -> done
    sha256: str | None = None
    size: int | None = None
    download_error: str | None = None
    event: dict[str, Any] | None = None
    push_id: int | None = None
    error: str | None = None

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MediaSettings:
    # Seconds (real time) between the check being queued and its verdict being sent.
    delay: float = 0.0
    # New checks are held until released through the control API.
    hold: bool = False


@dataclass
class AccessToken:
    value: str
    appid: str
    family: str
    issued_at: float
    expires_at: float
    # Set once the token has been replaced: from this moment on it answers 40001.
    revoked_at: float | None = None


@dataclass
class Fault:
    endpoint: str
    errcode: int | None = None
    errmsg: str | None = None
    delay: float = 0.0
    drop: bool = False
    times: int = 1
    content_type: str | None = None
    body: str | None = None
    remaining: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.endpoint != ANY_ENDPOINT and self.endpoint not in ENDPOINTS:
            raise ControlError(f"unknown endpoint {self.endpoint!r}; use one of {ENDPOINTS} or '*'")
        if self.delay < 0:
            raise ControlError("delay must be >= 0")
        if self.times < 0:
            raise ControlError("times must be >= 0 (0 means forever)")
        self.remaining = self.times

    def public(self) -> dict[str, Any]:
        return asdict(self)


class EmulatorState:
    def __init__(
        self,
        apps: Mapping[str, str] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        # Asynchronous work (media checks, deliveries) waits on this, under the same lock.
        self._changed = threading.Condition(self._lock)
        self._clock = clock or time.time
        self._base_apps = dict(apps) if apps else {DEFAULT_APPID: DEFAULT_SECRET}
        self.default_appid = next(iter(self._base_apps))
        self._generation = 0
        self._closed = False
        self._clear()
        self.deliveries = Deliveries(self)

    def _clear(self) -> None:
        # Work started before a reset belongs to an older generation and is dropped.
        self._generation += 1
        self._offset = 0.0
        self._config = Config()
        self._apps = {appid: App(appid, secret) for appid, secret in self._base_apps.items()}
        self._users: dict[tuple[str, str], User] = {}
        self._person_profiles: dict[str, dict[str, Any]] = {}
        self._oauth_codes: dict[str, OAuthCode] = {}
        self._sns_tokens: dict[str, SnsToken] = {}
        self._text_rules = security.Rules()
        self._media_rules = security.Rules()
        self._media_settings = MediaSettings()
        self._media_checks: dict[str, MediaCheck] = {}
        self._pushes: dict[int, PushRecord] = {}
        self._next_push_id = 1
        self._codes: dict[str, LoginCode] = {}
        self._phone_codes: dict[str, PhoneCode] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._current_token: dict[tuple[str, str], AccessToken] = {}
        self._last_force_refresh: dict[str, float] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._calls: list[dict[str, Any]] = []

    # ----- clock, config, apps -------------------------------------------------------------

    def _now(self) -> float:
        return self._clock() + self._offset

    def now(self) -> float:
        with self._lock:
            return self._now()

    def advance_clock(self, seconds: float) -> float:
        if seconds < 0:
            raise ControlError("the emulator clock never goes backward")
        with self._lock:
            self._offset += seconds
            return self._now()

    def config(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self._config)

    def configure(self, **updates: Any) -> dict[str, Any]:
        with self._lock:
            try:
                new = replace(self._config, **updates)
            except TypeError as exc:
                raise ControlError(f"unknown config key: {exc}") from exc
            _validate_config(new)
            self._config = new
            return asdict(new)

    def add_app(
        self,
        appid: str,
        secret: str,
        kind: str | None = None,
        open_platform: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """Register an app, or re-register it (its users and push configuration stay)."""
        with self._lock:
            existing = self._apps.get(appid)
            app = App(
                appid,
                secret,
                kind or (existing.kind if existing else "miniprogram"),
                open_platform,
                username or (existing.username if existing else ""),
                existing.push if existing else None,
            )
            self._apps[appid] = app
            return app.public()

    def apps(self) -> list[dict[str, Any]]:
        with self._lock:
            return [app.public() for app in self._apps.values()]

    def reset(self) -> None:
        with self._lock:
            self._clear()
            self._changed.notify_all()

    def close(self) -> None:
        """Wake every waiting worker for good (the server is stopping)."""
        with self._lock:
            self._closed = True
            self._generation += 1
            self._changed.notify_all()

    # ----- control-side actions (what the WeChat client would do) --------------------------

    def _resolve_appid(self, appid: str | None) -> str:
        appid = appid or self.default_appid
        if appid not in self._apps:
            raise ControlError(f"unknown appid {appid!r}; register it with /__emulator__/apps")
        return appid

    def _user(self, appid: str, openid: str, status: int = 400) -> User:
        user = self._users.get((appid, openid))
        if user is None:
            raise ControlError(f"unknown user {openid!r} for appid {appid!r}", status=status)
        return user

    def _person_openid(self, appid: str, person: str | None, openid: str | None) -> str | None:
        """The openid a control call names: given, derived from a person, or None."""
        if person is None:
            return openid
        if not person:
            raise ControlError("person must be a non-empty string")
        derived = crypto.derived_openid(appid, person)
        if openid is not None and openid != derived:
            raise ControlError(f"person {person!r} has openid {derived!r} in app {appid!r}")
        return derived

    def _ensure_user(self, appid: str, openid: str | None, person: str | None, now: float) -> User:
        user = self._users.get((appid, openid or ""))
        if user is None:
            user = User(appid, openid or crypto.new_openid(), crypto.new_session_key(), now)
            user.person = person
            self._users[(appid, user.openid)] = user
        return user

    def _unionid(self, user: User) -> str | None:
        """A person's unionid comes from the app's Open Platform binding (none if unbound);
        a person-less user has the unionid a control login gave it, if any."""
        if user.person is None:
            return user.unionid
        platform = self._apps[user.appid].open_platform
        return crypto.derived_unionid(platform, user.person) if platform else None

    def login(
        self,
        appid: str | None = None,
        openid: str | None = None,
        unionid: str | None = None,
        blocked: bool | None = None,
        person: str | None = None,
    ) -> dict[str, Any]:
        """wx.login: make sure the user exists, maybe rotate its key, issue a login code.
        A login is also a visit, which content security asks for."""
        with self._lock:
            appid = self._resolve_appid(appid)
            if self._apps[appid].kind != "miniprogram":
                raise ControlError(f"{appid!r} is an official account, not a mini program")
            if person is not None and unionid is not None:
                raise ControlError("a person's unionid comes from the app's open_platform")
            openid = self._person_openid(appid, person, openid)
            now = self._now()
            existing = self._users.get((appid, openid or ""))
            user = self._ensure_user(appid, openid, person, now)
            if existing is not None and self._should_rotate(user, now):
                user.replace_key(now, "login")
            user.person = user.person or person
            if unionid is not None:
                user.unionid = unionid
            if blocked is not None:
                user.blocked = blocked
            user.last_visit = now
            code = LoginCode(
                crypto.new_login_code(),
                appid,
                user.openid,
                user.session_key,
                now + self._config.code_ttl,
            )
            self._codes[code.code] = code
            return {
                "code": code.code,
                "openid": user.openid,
                "unionid": self._unionid(user),
                "session_key": user.session_key,
            }

    def _should_rotate(self, user: User, now: float) -> bool:
        # WeChat may refresh the session_key on wx.login, but not more often than some
        # undisclosed minimum period; the modes let tests pick a behaviour.
        mode = self._config.rotate
        if mode == "always":
            return True
        if mode == "min_interval":
            return now - user.key_issued_at > self._config.rotate_min_interval
        return False

    def issue_phone_code(
        self,
        openid: str,
        appid: str | None = None,
        phone_number: str = DEFAULT_PHONE,
        pure_phone_number: str | None = None,
        country_code: str = DEFAULT_COUNTRY_CODE,
    ) -> str:
        """The code a <button open-type="getPhoneNumber"> hands to the mini program."""
        with self._lock:
            appid = self._resolve_appid(appid)
            code = PhoneCode(
                crypto.new_phone_code(),
                appid,
                openid,
                phone_number,
                phone_number if pure_phone_number is None else pure_phone_number,
                country_code,
                self._now(),
            )
            self._phone_codes[code.code] = code
            return code.code

    def open_data(
        self,
        openid: str | None,
        *,
        data: Mapping[str, Any] | None = None,
        raw: str | None = None,
        watermark: Mapping[str, Any] | None = None,
        add_watermark: bool = True,
        appid: str | None = None,
        session_key: str | None = None,
    ) -> dict[str, str]:
        """encryptedData/iv/rawData/signature as the WeChat client would produce them."""
        if (data is None) == (raw is None):
            raise ControlError("give exactly one of 'data' (an object) or 'raw' (a string)")
        with self._lock:
            appid = self._resolve_appid(appid)
            if session_key is None:
                if not openid:
                    raise ControlError("openid is required unless session_key is given")
                session_key = self._user(appid, openid).session_key
            now = self._now()
        if data is not None:
            raw_data = crypto.compact_json(data)
            payload = dict(data)
            if add_watermark:
                # Real payloads carry the watermark as the last key, timestamp before appid.
                payload.pop("watermark", None)
                wm = watermark or {}
                payload["watermark"] = {
                    "timestamp": wm.get("timestamp", int(now)),
                    "appid": wm.get("appid", appid),
                }
            plaintext = crypto.compact_json(payload)
        else:
            assert raw is not None
            raw_data = plaintext = raw
        try:
            encrypted, iv = crypto.encrypt_open_data(plaintext, session_key)
        except ValueError as exc:
            raise ControlError(str(exc)) from exc
        return {
            "encryptedData": encrypted,
            "iv": iv,
            "rawData": raw_data,
            "signature": crypto.rawdata_signature(raw_data, session_key),
        }

    def user_info(self, openid: str, appid: str | None = None) -> dict[str, Any]:
        with self._lock:
            user = self._user(self._resolve_appid(appid), openid, status=404)
            return {
                "openid": user.openid,
                "unionid": self._unionid(user),
                "session_key": user.session_key,
                "blocked": user.blocked,
            }

    # ----- WeChat-side endpoints -----------------------------------------------------------

    def _check_app(
        self, appid: str | None, secret: str | None, grant_type: Any, expected_grant: str
    ) -> None:
        """Parameter checks shared by code2Session and both token endpoints, in WeChat's order."""
        if not appid:
            raise WeChatError(41002)
        if not secret:
            raise WeChatError(41004)
        if grant_type != expected_grant:
            raise WeChatError(40002)
        if appid not in self._apps:
            raise WeChatError(40013)
        if self._apps[appid].secret != secret:
            raise WeChatError(40125)

    def jscode2session(
        self,
        appid: str | None,
        secret: str | None,
        js_code: str | None,
        grant_type: str | None,
    ) -> dict[str, Any]:
        if appid and secret and not js_code:
            raise WeChatError(41008)
        with self._lock:
            self._check_app(appid, secret, grant_type, "authorization_code")
            code = self._consume_login_code(appid, js_code)
            user = self._users[(appid, code.openid)]
            if user.blocked:
                raise WeChatError(40226)
            # The key returned is the one current when the code was issued, even if the
            # user's key rotated since.
            reply: dict[str, Any] = {"session_key": code.session_key, "openid": user.openid}
            unionid = self._unionid(user)
            if unionid:
                reply["unionid"] = unionid
            if self._config.success_errcode:
                reply.update(errcode=0, errmsg="ok")
            return reply

    def _consume_login_code(self, appid: str, js_code: str) -> LoginCode:
        code = self._codes.get(js_code)
        if code is None or code.appid != appid:
            raise WeChatError(40029)
        if code.used:
            raise WeChatError(40163)
        if self._now() > code.expires_at:
            raise WeChatError(40029)
        code.used = True
        return code

    def client_token(
        self, appid: str | None, secret: str | None, grant_type: str | None
    ) -> dict[str, Any]:
        """GET /cgi-bin/token: every call mints a new token."""
        with self._lock:
            self._check_app(appid, secret, grant_type, "client_credential")
            assert appid is not None
            now = self._now()
            previous = self._current_token.get((appid, "token"))
            if previous is not None:
                cutoff = min(previous.expires_at, now + TOKEN_OVERLAP)
                if previous.revoked_at is None or previous.revoked_at > cutoff:
                    previous.revoked_at = cutoff
            token = self._mint_token(appid, "token", now)
            return {"access_token": token.value, "expires_in": TOKEN_LIFETIME}

    def stable_token(self, body: Mapping[str, Any] | None) -> dict[str, Any]:
        """POST /cgi-bin/stable_token: a token family of its own, reused while it lasts."""
        if body is None:
            raise WeChatError(47001)
        appid, secret = _as_text(body.get("appid")), _as_text(body.get("secret"))
        with self._lock:
            self._check_app(appid, secret, body.get("grant_type"), "client_credential")
            assert appid is not None
            now = self._now()
            current = self._current_token.get((appid, "stable"))
            if body.get("force_refresh") is True:
                token = self._force_refresh_stable(appid, current, now)
            elif current is not None and current.expires_at - now > STABLE_RENEW_WINDOW:
                token = current
            else:
                # In the last 5 minutes a new token is minted; the old one simply runs out.
                token = self._mint_token(appid, "stable", now)
            return {"access_token": token.value, "expires_in": int(token.expires_at - now)}

    def _force_refresh_stable(
        self, appid: str, current: AccessToken | None, now: float
    ) -> AccessToken:
        last = self._last_force_refresh.get(appid)
        recent = last is not None and now - last < FORCE_REFRESH_MIN_GAP
        if recent and current is not None and current.expires_at > now:
            return current
        if current is not None:
            current.revoked_at = now
        self._last_force_refresh[appid] = now
        return self._mint_token(appid, "stable", now)

    def _mint_token(self, appid: str, family: str, now: float) -> AccessToken:
        token = AccessToken(crypto.new_access_token(), appid, family, now, now + TOKEN_LIFETIME)
        self._tokens[token.value] = token
        self._current_token[(appid, family)] = token
        return token

    def _checked_post(
        self, access_token: str | None, method: str, raw_body: bytes
    ) -> tuple[AccessToken, Mapping[str, Any]]:
        """The token and JSON body of a POST-only endpoint, or the matching
        errcode (43002 for another method). Lock must be held."""
        token = self._check_token(access_token)
        if method != "POST":
            raise WeChatError(43002)
        return token, _post_body(raw_body)

    def _check_token(self, access_token: str | None) -> AccessToken:
        """Lock must be held. Returns the token or raises the matching errcode."""
        if not access_token:
            raise WeChatError(41001)
        token = self._tokens.get(access_token)
        now = self._now()
        if token is None or (token.revoked_at is not None and now >= token.revoked_at):
            raise WeChatError(40001)
        if now >= token.expires_at:
            raise WeChatError(42001)
        return token

    def user_phone_number(
        self, access_token: str | None, body: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        with self._lock:
            token = self._check_token(access_token)
            if body is None:
                raise WeChatError(47001)
            code_value = _as_text(body.get("code"))
            phone = self._phone_codes.get(code_value or "")
            if phone is None:
                raise WeChatError(40029)
            if phone.appid != token.appid:
                raise WeChatError(40013)
            expired = self._now() - phone.issued_at > PHONE_CODE_TTL
            if phone.used or expired:
                raise WeChatError(40029)
            openid = body.get("openid")
            if openid is not None and openid != phone.openid:
                raise WeChatError(40029)
            phone.used = True
            return {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": phone.phone_number,
                    "purePhoneNumber": phone.pure_phone_number,
                    # The docs show a number; the live API sends a string.
                    "countryCode": str(phone.country_code),
                    "watermark": {"timestamp": int(phone.issued_at), "appid": phone.appid},
                },
            }

    def _signed_user(
        self,
        access_token: str | None,
        openid: str | None,
        signature: str | None,
        sig_method: str | None,
    ) -> User:
        """Shared checks of checksession and resetusersessionkey. Lock must be held."""
        token = self._check_token(access_token)
        if sig_method != "hmac_sha256":
            raise WeChatError(87008)
        user = self._users.get((token.appid, openid or ""))
        if user is None or signature is None:
            raise WeChatError(87009)
        if not crypto.signatures_equal(crypto.session_signature(user.session_key), signature):
            raise WeChatError(87009)
        return user

    def check_session(
        self,
        access_token: str | None,
        openid: str | None,
        signature: str | None,
        sig_method: str | None,
    ) -> dict[str, Any]:
        with self._lock:
            self._signed_user(access_token, openid, signature, sig_method)
            return {"errcode": 0, "errmsg": "ok"}

    def reset_session_key(
        self,
        access_token: str | None,
        openid: str | None,
        signature: str | None,
        sig_method: str | None,
    ) -> dict[str, Any]:
        with self._lock:
            user = self._signed_user(access_token, openid, signature, sig_method)
            # The new key inherits the old key's lifetime: a reset does not extend it.
            user.replace_key(self._now(), "reset", keep_issue_time=True)
            return {
                "errcode": 0,
                "errmsg": "ok",
                "openid": user.openid,
                "session_key": user.session_key,
            }

    # ----- persons and profiles -----------------------------------------------------------------

    def _profile(self, user: User) -> dict[str, Any]:
        name = user.person or user.openid
        seed = hashlib.sha256(f"{user.appid}\x00{name}".encode()).hexdigest()
        # Since 2021-12-27 sns/userinfo sends no gender or region: 0 and "".
        profile: dict[str, Any] = {
            "nickname": user.person or "微信用户",
            "sex": 0,
            "province": "",
            "city": "",
            "country": "",
            "headimgurl": DEFAULT_AVATAR.format(seed),
        }
        overrides = self._person_profiles.get(user.person) if user.person else user.profile
        profile.update(overrides or {})
        return profile

    def set_profile(
        self,
        fields: Mapping[str, Any],
        person: str | None = None,
        appid: str | None = None,
        openid: str | None = None,
    ) -> dict[str, Any]:
        """What sns/userinfo tells about a person (in every app) or one person-less user."""
        _validate_profile(fields)
        with self._lock:
            if person:
                profile = self._person_profiles.setdefault(person, {})
                profile.update(fields)
                return dict(profile)
            if not openid:
                raise ControlError("give a person, or an openid (with appid)")
            user = self._user(self._resolve_appid(appid), openid)
            user.profile = {**(user.profile or {}), **fields}
            return self._profile(user)

    # ----- official-account web OAuth -------------------------------------------------------

    def oauth_authorize(
        self,
        scope: str,
        appid: str | None = None,
        person: str | None = None,
        openid: str | None = None,
        snapshot: bool = False,
    ) -> dict[str, Any]:
        """The browser redirect to redirect_uri?code=...: a code for this user and scope."""
        if scope not in OAUTH_SCOPES:
            raise ControlError(f"scope must be one of {OAUTH_SCOPES}")
        with self._lock:
            appid = self._resolve_appid(appid)
            if self._apps[appid].kind != "official_account":
                raise ControlError(f"{appid!r} is not an official account (register it with kind)")
            openid = self._person_openid(appid, person, openid)
            now = self._now()
            user = self._ensure_user(appid, openid, person, now)
            user.person = user.person or person
            code = OAuthCode(
                crypto.new_oauth_code(), appid, user.openid, scope, now + OAUTH_CODE_TTL, snapshot
            )
            self._oauth_codes[code.code] = code
            return {
                "code": code.code,
                "openid": user.openid,
                "unionid": self._unionid(user),
                "scope": scope,
            }

    def oauth_access_token(
        self, appid: str | None, secret: str | None, code: str | None, grant_type: str | None
    ) -> dict[str, Any]:
        """GET /sns/oauth2/access_token: the same parameter checks as code2Session."""
        if appid and secret and not code:
            raise WeChatError(41008)
        with self._lock:
            self._check_app(appid, secret, grant_type, "authorization_code")
            now = self._now()
            entry = self._oauth_codes.get(code or "")
            if entry is None or entry.appid != appid:
                raise WeChatError(40029)
            if entry.used:
                raise WeChatError(40163)
            if now > entry.expires_at:
                raise WeChatError(40029)
            entry.used = True
            token = SnsToken(
                crypto.new_access_token(),
                entry.appid,
                entry.openid,
                entry.scope,
                now + SNS_TOKEN_LIFETIME,
            )
            self._sns_tokens[token.value] = token
            reply: dict[str, Any] = {
                "access_token": token.value,
                "expires_in": SNS_TOKEN_LIFETIME,
                "refresh_token": crypto.new_refresh_token(),
                "openid": entry.openid,
                "scope": entry.scope,
            }
            if entry.snapshot:
                reply["is_snapshotuser"] = 1
            unionid = self._unionid(self._users[(entry.appid, entry.openid)])
            # unionid only with snsapi_userinfo, and only for an app bound to an Open Platform.
            if entry.scope == "snsapi_userinfo" and unionid:
                reply["unionid"] = unionid
            return reply

    def sns_userinfo(self, access_token: str | None, openid: str | None) -> dict[str, Any]:
        with self._lock:
            if not access_token:
                raise WeChatError(41001)
            token = self._sns_tokens.get(access_token)
            if token is None:
                raise WeChatError(40001)
            if self._now() >= token.expires_at:
                raise WeChatError(42001)
            if token.scope != "snsapi_userinfo":
                raise WeChatError(48001)
            if openid != token.openid:
                raise WeChatError(40003)
            user = self._users[(token.appid, token.openid)]
            reply: dict[str, Any] = {"openid": user.openid, **self._profile(user), "privilege": []}
            unionid = self._unionid(user)
            if unionid:
                reply["unionid"] = unionid
            return reply

    # ----- content security -------------------------------------------------------------------

    def set_rules(
        self, text: Mapping[str, Any] | None = None, media: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Replace the text and/or media rules (a section not given is left as it is)."""
        try:
            text_rules = (
                None if text is None else security.parse_rules(text, security.TEXT_LABELS, "text")
            )
            media_rules = (
                None
                if media is None
                else security.parse_rules(media, security.MEDIA_LABELS, "media")
            )
        except security.RulesError as exc:
            raise ControlError(str(exc)) from exc
        with self._lock:
            self._text_rules = text_rules or self._text_rules
            self._media_rules = media_rules or self._media_rules
            return self._rules_public()

    def clear_rules(self) -> dict[str, Any]:
        with self._lock:
            self._text_rules = security.Rules()
            self._media_rules = security.Rules()
            return self._rules_public()

    def rules(self) -> dict[str, Any]:
        with self._lock:
            return self._rules_public()

    def _rules_public(self) -> dict[str, Any]:
        return {"text": self._text_rules.public(), "media": self._media_rules.public()}

    def _visitor(self, token: AccessToken, openid: Any) -> User:
        """The openid checks of msgSecCheck and mediaCheckAsync. Lock must be held."""
        if not isinstance(openid, str) or not openid:
            raise WeChatError(40003)
        user = self._users.get((token.appid, openid))
        if user is None:
            if any(known == openid for _, known in self._users):
                raise WeChatError(43104)
            raise WeChatError(40003)
        # 61010 "code is expired": no visit (wx.login) in the last 2 hours.
        if user.last_visit is None or self._now() - user.last_visit > VISIT_WINDOW:
            raise WeChatError(61010)
        return user

    def msg_sec_check(
        self, access_token: str | None, method: str, raw_body: bytes
    ) -> dict[str, Any]:
        """POST /wxa/msg_sec_check: v2 when version is 2, v1 (87014) when it is absent."""
        with self._lock:
            token, body = self._checked_post(access_token, method, raw_body)
            content = body.get("content")
            version = body.get("version")
            if not isinstance(content, str):
                raise WeChatError(47001)
            if version is None:
                return self._msg_sec_check_v1(content)
            if not _is_version_2(version):
                raise WeChatError(47001)
            optional = [body.get(k) for k in ("title", "nickname", "signature")]
            if any(v is not None and not isinstance(v, str) for v in optional):
                raise WeChatError(47001)
            scene = _small_int(body.get("scene"))
            if scene not in security.SCENES:
                raise WeChatError(40129)
            self._visitor(token, body.get("openid"))
            if len(content) > MAX_TEXT_LENGTH:
                raise WeChatError(47001)
            title, nickname, signature = optional
            if scene != security.PROFILE_SCENE:
                signature = None  # "signature 仅在 scene 为 1 时有效"
            texts = [t for t in (content, title, nickname, signature) if t]
            result, detail = security.text_verdict(self._text_rules, texts)
            return {
                "errcode": 0,
                "errmsg": "ok",
                "result": result,
                "detail": detail,
                "trace_id": crypto.new_trace_id(),
            }

    def _msg_sec_check_v1(self, content: str) -> dict[str, Any]:
        result, _ = security.text_verdict(self._text_rules, [content])
        if result["suggest"] == "risky":
            raise WeChatError(87014)
        return {"errcode": 0, "errmsg": "ok"}

    def media_check_async(
        self, access_token: str | None, method: str, raw_body: bytes
    ) -> dict[str, Any]:
        """POST /wxa/media_check_async: answers at once; the verdict is pushed later."""
        with self._lock:
            token, body = self._checked_post(access_token, method, raw_body)
            media_url = body.get("media_url")
            if not isinstance(media_url, str) or not media_url:
                raise WeChatError(47001)
            if not _is_version_2(body.get("version")):
                raise WeChatError(47001)
            media_type = _small_int(body.get("media_type"))
            if media_type not in (1, 2):
                raise WeChatError(40004)
            scene = _small_int(body.get("scene"))
            if scene not in security.SCENES:
                raise WeChatError(40129)
            user = self._visitor(token, body.get("openid"))
            settings = self._media_settings
            check = MediaCheck(
                crypto.new_trace_id(),
                token.appid,
                user.openid,
                media_url,
                media_type,
                scene,
                self._now(),
                settings.delay,
                status="held" if settings.hold else "queued",
            )
            self._media_checks[check.trace_id] = check
            generation = self._generation
        self.deliveries.start_media_check(check.trace_id, generation)
        return {"errcode": 0, "errmsg": "ok", "trace_id": check.trace_id}

    # ----- media checks: timing, verdicts, waiting ------------------------------------------

    def media_settings(self, delay: float | None = None, hold: bool | None = None) -> dict:
        if delay is not None and not 0 <= delay <= MAX_WAIT:
            raise ControlError(f"delay must be 0..{MAX_WAIT} seconds")
        with self._lock:
            if delay is not None:
                self._media_settings.delay = delay
            if hold is not None:
                self._media_settings.hold = hold
            return asdict(self._media_settings)

    def media_checks(self) -> dict[str, Any]:
        with self._lock:
            return {
                "settings": asdict(self._media_settings),
                "checks": [self._check_public(c) for c in self._media_checks.values()],
            }

    def _check_public(self, check: MediaCheck) -> dict[str, Any]:
        record = check.public()
        pushed = self._pushes.get(check.push_id or 0)
        record["push"] = pushed.public() if pushed else None
        return record

    def release_media_checks(self, trace_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            if trace_id is not None:
                check = self._media_checks.get(trace_id)
                if check is None:
                    raise ControlError(f"no media check {trace_id!r}", status=404)
                if check.status != "held":
                    raise ControlError(f"media check {trace_id!r} is {check.status}", status=409)
            released = [
                c.trace_id
                for c in self._media_checks.values()
                if c.status == "held" and trace_id in (None, c.trace_id)
            ]
            for key in released:
                self._media_checks[key].status = "queued"
            self._changed.notify_all()
            return {"released": released}

    def await_media_turn(self, trace_id: str, generation: int) -> MediaCheck | None:
        """Block while the check is held, then for its delay; then mark it running. None
        when a reset (or the server stopping) made the check obsolete."""
        with self._lock:
            check = self._media_checks.get(trace_id)
            while check is not None and generation == self._generation and check.status == "held":
                self._changed.wait()
            deadline = time.monotonic() + (check.delay if check else 0)
            while generation == self._generation and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            if check is None or generation != self._generation:
                return None
            check.status = "running"
            return replace(check)

    def media_check_event(
        self, trace_id: str, generation: int, data: bytes | None, download_error: str | None
    ) -> dict[str, Any] | None:
        """Decide the verdict on the downloaded bytes and build the wxa_media_check event."""
        with self._lock:
            check = self._media_checks.get(trace_id)
            if check is None or generation != self._generation:
                return None
            if data is None:
                errcode, errmsg = security.DOWNLOAD_FAILED, "download failed"
                check.download_error = download_error or "download failed"
                result, detail = security.download_failed_verdict()
            else:
                errcode, errmsg = 0, "ok"
                check.sha256 = hashlib.sha256(data).hexdigest()
                check.size = len(data)
                result, detail = security.media_verdict(
                    self._media_rules, check.sha256, check.media_url
                )
            app = self._apps[check.appid]
            check.event = {
                "ToUserName": app.username,
                "FromUserName": self._push_sender(app.appid),
                "CreateTime": int(self._now()),
                "MsgType": "event",
                "Event": "wxa_media_check",
                "appid": app.appid,
                "trace_id": trace_id,
                "version": 2,
                "errcode": errcode,
                "errmsg": errmsg,
                "result": result,
                "detail": detail,
            }
            return json.loads(json.dumps(check.event))

    def finish_media_check(
        self, trace_id: str, generation: int, push_id: int | None, error: str | None
    ) -> None:
        with self._lock:
            check = self._media_checks.get(trace_id)
            if check is None or generation != self._generation:
                return
            check.status = "done"
            check.push_id = push_id
            check.error = error
            self._changed.notify_all()

    def wait_media_checks(self, timeout: float, release: bool = False) -> dict[str, Any]:
        """Wait until every media check has been decided and delivered (or failed to be)."""
        if not 0 < timeout <= MAX_WAIT:
            raise ControlError(f"timeout must be in (0, {MAX_WAIT}] seconds")
        deadline = time.monotonic() + timeout
        if release:
            self.release_media_checks()
        with self._lock:
            while True:
                checks = list(self._media_checks.values())
                held = [c for c in checks if c.status == "held"]
                if held:
                    raise ControlError(
                        f"{len(held)} media check(s) are held: release them first "
                        "(or wait with release: true)",
                        status=409,
                    )
                pending = [c for c in checks if c.status != "done"]
                if not pending:
                    return {"checks": [self._check_public(c) for c in checks]}
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise ControlError(
                        f"{len(pending)} media check(s) still pending after {timeout} s",
                        status=504,
                    )
                self._changed.wait(left)

    # ----- message push: configuration, the delivery log, platform events -------------------

    def _push_sender(self, appid: str) -> str:
        return crypto.derived_openid(appid, PUSH_SENDER)

    def configure_push(self, appid: str | None, **fields: Any) -> dict[str, Any]:
        with self._lock:
            app = self._apps[self._resolve_appid(appid)]
            try:
                app.push = PushConfig(**fields)
            except PushConfigError as exc:
                raise ControlError(str(exc)) from exc
            return app.push.public()

    def push_config(self, appid: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            push = self._apps[self._resolve_appid(appid)].push
            return push.public() if push else None

    def remove_push_config(self, appid: str | None = None) -> None:
        with self._lock:
            self._apps[self._resolve_appid(appid)].push = None

    def push_target(self, appid: str | None) -> tuple[str, PushConfig, str, str, int]:
        """(appid, config, ToUserName, FromUserName, generation) for a delivery."""
        with self._lock:
            appid = self._resolve_appid(appid)
            app = self._apps[appid]
            if app.push is None:
                raise ControlError(f"no push configuration for {appid!r}", status=409)
            return appid, app.push, app.username, self._push_sender(appid), self._generation

    def open_push(self, generation: int, appid: str, kind: str, config: PushConfig, **kw: Any):
        """Start a delivery log entry; None when a reset made the delivery obsolete."""
        with self._lock:
            if generation != self._generation:
                return None
            record = PushRecord(
                self._next_push_id, appid, kind, mode=config.mode, format=config.format, **kw
            )
            self._next_push_id += 1
            self._pushes[record.id] = record
            return record.id

    def _current_push(self, generation: int, push_id: int) -> PushRecord | None:
        """The delivery, unless a reset came since it started. Lock must be held."""
        return self._pushes.get(push_id) if generation == self._generation else None

    def push_sent(self, generation: int, push_id: int, request: Outgoing) -> int | None:
        with self._lock:
            record = self._current_push(generation, push_id)
            if record is None:
                return None
            record.attempts.append(Attempt(request, self._now()))
            return len(record.attempts) - 1

    def push_answered(self, generation: int, push_id: int, index: int, answer: Answer) -> None:
        with self._lock:
            record = self._current_push(generation, push_id)
            if record is not None:
                record.attempts[index].answer = answer

    def close_push(self, generation: int, push_id: int, accepted: bool) -> dict[str, Any] | None:
        with self._lock:
            record = self._current_push(generation, push_id)
            if record is None:
                return None
            record.status = "accepted" if accepted else "failed"
            self._changed.notify_all()
            return record.public()

    def push_record(self, push_id: int) -> PushRecord:
        """A copy of a logged delivery (to replay or redeliver it)."""
        with self._lock:
            record = self._pushes.get(push_id)
            if record is None:
                raise ControlError(f"no push {push_id}", status=404)
            return replace(record, attempts=list(record.attempts), event=record.event)

    def pushes(
        self, appid: str | None = None, event: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            return [
                p.public()
                for p in self._pushes.values()
                if appid in (None, p.appid)
                and kind in (None, p.kind)
                and event in (None, (p.event or {}).get("Event"))
            ]

    def clear_pushes(self) -> None:
        with self._lock:
            self._pushes.clear()
            for check in self._media_checks.values():
                check.push_id = None

    def user_event(
        self,
        event: str,
        appid: str | None = None,
        person: str | None = None,
        openid: str | None = None,
        revoke_info: str | None = None,
        create_time: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """The platform's event about a user (reference §15): (appid, message)."""
        if event not in USER_EVENTS:
            raise ControlError(f"event must be one of {USER_EVENTS}")
        if event == "user_authorization_revoke":
            if not revoke_info:
                raise ControlError('user_authorization_revoke needs revoke_info (e.g. "6")')
        elif revoke_info is not None:
            raise ControlError(f"{event} carries no RevokeInfo")
        with self._lock:
            appid = self._resolve_appid(appid)
            openid = self._person_openid(appid, person, openid)
            if not openid:
                raise ControlError("give a person or an openid")
            message: dict[str, Any] = {
                "ToUserName": self._apps[appid].username,
                "FromUserName": self._push_sender(appid),
                "CreateTime": int(self._now()) if create_time is None else create_time,
                "MsgType": "event",
                "Event": event,
                "OpenID": openid,
                "AppID": appid,
            }
            if revoke_info is not None:
                message["RevokeInfo"] = revoke_info
            return appid, message

    # ----- faults ----------------------------------------------------------------------------

    def add_faults(self, faults: Iterable[Fault]) -> int:
        faults = list(faults)
        with self._lock:
            for fault in faults:
                self._faults.setdefault(fault.endpoint, []).append(fault)
        return len(faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.public() for queue in self._faults.values() for f in queue]

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume one use of the oldest pending fault for this endpoint, else for '*'."""
        with self._lock:
            for key in (endpoint, ANY_ENDPOINT):
                queue = self._faults.get(key)
                if not queue:
                    continue
                fault = queue[0]
                if fault.times:  # times == 0 means forever
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        queue.pop(0)
                return fault
            return None

    # ----- call log --------------------------------------------------------------------------

    def record_call(
        self,
        endpoint: str,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Any,
    ) -> dict[str, Any]:
        with self._lock:
            record = {
                "endpoint": endpoint,
                "method": method,
                "path": path,
                "query": dict(query),
                "body": body,
                "timestamp": self._now(),
                "errcode": None,
            }
            self._calls.append(record)
            return record

    def finish_call(self, record: dict[str, Any], errcode: int | None) -> None:
        with self._lock:
            record["errcode"] = errcode

    def calls(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._calls if endpoint in (None, c["endpoint"])]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()


def _validate_config(config: Config) -> None:
    if config.rotate not in ROTATE_MODES:
        raise ControlError(f"rotate must be one of {ROTATE_MODES}")
    if config.rotate_min_interval < 0:
        raise ControlError("rotate_min_interval must be >= 0")
    if config.code_ttl <= 0:
        raise ControlError("code_ttl must be > 0")
    if not config.content_type:
        raise ControlError("content_type must be non-empty")


def _post_body(raw: bytes) -> Mapping[str, Any]:
    """A WeChat-side JSON body: 44002 when empty, 47001 when not a JSON object."""
    if not raw.strip():
        raise WeChatError(44002)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise WeChatError(47001) from None
    if not isinstance(body, dict):
        raise WeChatError(47001)
    return body


def _small_int(value: Any) -> int | None:
    """scene, media_type: a JSON number, or a string of digits as SDKs typed as String send."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 4:
        return int(value)
    return None


def _is_version_2(value: Any) -> bool:
    return _small_int(value) == 2


def _validate_profile(fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - set(PROFILE_FIELDS))
    if unknown:
        raise ControlError(f"unknown profile field(s) {unknown}; allowed: {list(PROFILE_FIELDS)}")
    for key, value in fields.items():
        if key == "sex":
            if isinstance(value, bool) or value not in (0, 1, 2):
                raise ControlError("sex must be 0, 1 or 2")
        elif not isinstance(value, str):
            raise ControlError(f"{key!r} must be a string")


def _as_text(value: Any) -> str | None:
    """Body fields may be any JSON type; a non-string simply fails the lookup it feeds."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)
