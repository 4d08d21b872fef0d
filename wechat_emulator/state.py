"""In-memory model of the WeChat side: apps, users, codes, tokens, faults and the call log.

Every public method takes the one lock, so the HTTP layer can call it from many threads.
Time comes from an injectable clock plus an offset that the control API can only move forward.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from . import crypto

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

DEFAULT_PHONE = "13800138000"
DEFAULT_COUNTRY_CODE = "86"

ENDPOINTS = (
    "jscode2session",
    "token",
    "stable_token",
    "getuserphonenumber",
    "checksession",
    "resetusersessionkey",
)
ANY_ENDPOINT = "*"
ROTATE_MODES = ("never", "always", "min_interval")

ERRMSGS: dict[int, str] = {
    -1: "system error",
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40013: "invalid appid",
    40029: "invalid code",
    40125: "invalid appsecret",
    40163: "code been used",
    40164: "invalid ip, not in whitelist",
    40226: "code blocked",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    43002: "require POST method",
    44002: "empty post data",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit mustslower retry next minute",
    47001: "data format error",
    48001: "api unauthorized",
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


class ControlError(Exception):
    """A bad request to the control API (HTTP 400 unless told otherwise)."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.message = message
        self.status = status
        super().__init__(message)


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
class User:
    appid: str
    openid: str
    session_key: str
    key_issued_at: float
    unionid: str | None = None
    blocked: bool = False
    retired_keys: list[RetiredKey] = field(default_factory=list)

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
        self._clock = clock or time.time
        self._base_apps = dict(apps) if apps else {DEFAULT_APPID: DEFAULT_SECRET}
        self.default_appid = next(iter(self._base_apps))
        self._clear()

    def _clear(self) -> None:
        self._offset = 0.0
        self._config = Config()
        self._apps = dict(self._base_apps)
        self._users: dict[tuple[str, str], User] = {}
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

    def add_app(self, appid: str, secret: str) -> None:
        if not appid or not secret:
            raise ControlError("appid and secret must be non-empty")
        with self._lock:
            self._apps[appid] = secret

    def reset(self) -> None:
        with self._lock:
            self._clear()

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

    def login(
        self,
        appid: str | None = None,
        openid: str | None = None,
        unionid: str | None = None,
        blocked: bool | None = None,
    ) -> dict[str, Any]:
        """wx.login: make sure the user exists, maybe rotate its key, issue a login code."""
        with self._lock:
            appid = self._resolve_appid(appid)
            now = self._now()
            user = self._users.get((appid, openid or ""))
            if user is None:
                user = User(appid, openid or crypto.new_openid(), crypto.new_session_key(), now)
                self._users[(appid, user.openid)] = user
            elif self._should_rotate(user, now):
                user.replace_key(now, "login")
            if unionid is not None:
                user.unionid = unionid
            if blocked is not None:
                user.blocked = blocked
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
                "unionid": user.unionid,
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
                "unionid": user.unionid,
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
        if self._apps[appid] != secret:
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
            if user.unionid:
                reply["unionid"] = user.unionid
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


def _as_text(value: Any) -> str | None:
    """Body fields may be any JSON type; a non-string simply fails the lookup it feeds."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)
