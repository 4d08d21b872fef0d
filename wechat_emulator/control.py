"""Client for the emulator's /__emulator__/ control API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

DEFAULT_TIMEOUT = 10.0


class EmulatorControlError(RuntimeError):
    """The control API rejected a request (HTTP 4xx/5xx)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"emulator control API answered {status}: {message}")


class EmulatorControl:
    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> EmulatorControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        payload: Any = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        response = self._session.request(
            method,
            f"{self.base_url}/__emulator__/{path}",
            json=payload,
            params=params,
            timeout=timeout or self.timeout,
        )
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text}
        if response.status_code >= 400:
            message = body.get("error", response.text) if isinstance(body, dict) else body
            raise EmulatorControlError(response.status_code, str(message))
        return body

    def login(
        self,
        openid: str | None = None,
        unionid: str | None = None,
        appid: str | None = None,
        blocked: bool = False,
        person: str | None = None,
    ) -> dict[str, Any]:
        """Stand-in for wx.login: returns {"code", "openid", "unionid", "session_key"}.

        With `person`, the openid is that person's in this app and the unionid that of the
        app's Open Platform (none when the app is not bound). A login is also a "visit"."""
        payload = _without_none(
            {"openid": openid, "unionid": unionid, "appid": appid, "person": person}
        )
        payload["blocked"] = blocked
        return self._call("POST", "login", payload)

    def encrypt(
        self,
        openid: str | None,
        data: dict[str, Any] | None = None,
        raw: str | None = None,
        watermark: dict[str, Any] | None = None,
        add_watermark: bool = True,
        appid: str | None = None,
        session_key: str | None = None,
    ) -> dict[str, Any]:
        """Returns {"encryptedData", "iv", "rawData", "signature"}."""
        payload = _without_none(
            {
                "openid": openid,
                "data": data,
                "raw": raw,
                "watermark": watermark,
                "appid": appid,
                "session_key": session_key,
            }
        )
        payload["add_watermark"] = add_watermark
        return self._call("POST", "encrypt", payload)

    def phone_code(self, openid: str, **fields: Any) -> dict[str, Any]:
        """fields: appid, phoneNumber, purePhoneNumber, countryCode. Returns {"code"}."""
        return self._call("POST", "phonecode", {"openid": openid, **fields})

    def fault(self, endpoint: str, **kw: Any) -> dict[str, Any]:
        """kw: errcode, errmsg, delay, drop, times, content_type, body. Returns {"queued"}."""
        return self._call("POST", "faults", {"endpoint": endpoint, **kw})

    def faults(self, faults: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call("POST", "faults", faults)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "faults")

    def calls(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        params = {"endpoint": endpoint} if endpoint else None
        return self._call("GET", "calls", params=params)["calls"]

    def clear_calls(self) -> dict[str, Any]:
        return self._call("DELETE", "calls")

    def configure(self, **kw: Any) -> dict[str, Any]:
        """kw: rotate, rotate_min_interval, code_ttl, success_errcode, content_type."""
        return self._call("POST", "config", kw)

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the emulator clock forward; returns {"now"}."""
        return self._call("POST", "clock", {"advance": seconds})

    def add_app(
        self,
        appid: str,
        secret: str,
        kind: str | None = None,
        open_platform: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """kind: "miniprogram" (default) or "official_account"; open_platform: the Open
        Platform account it is bound to (unionids); username: its gh_ original id."""
        payload = _without_none(
            {
                "appid": appid,
                "secret": secret,
                "kind": kind,
                "open_platform": open_platform,
                "username": username,
            }
        )
        return self._call("POST", "apps", payload)

    def apps(self) -> list[dict[str, Any]]:
        return self._call("GET", "apps")["apps"]

    def set_profile(
        self,
        person: str | None = None,
        *,
        appid: str | None = None,
        openid: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """What sns/userinfo says: nickname, sex, province, city, country, headimgurl."""
        payload = _without_none({"person": person, "appid": appid, "openid": openid})
        return self._call("POST", "profile", {**payload, **fields})

    def oauth_code(
        self,
        scope: str = "snsapi_base",
        *,
        person: str | None = None,
        openid: str | None = None,
        appid: str | None = None,
        snapshot: bool = False,
    ) -> dict[str, Any]:
        """The official-account OAuth redirect: returns {"code", "openid", "unionid", "scope"}."""
        payload = _without_none(
            {"scope": scope, "person": person, "openid": openid, "appid": appid}
        )
        payload["snapshot"] = snapshot
        return self._call("POST", "oauth/authorize", payload)

    # ----- content security -------------------------------------------------------------------

    def set_rules(
        self, text: dict[str, Any] | None = None, media: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Each section: {"risky": [...], "review": [...], "label": int}. Text entries are
        words; media entries are a sha256 (hex) of the bytes or a substring of media_url."""
        return self._call("POST", "rules", _without_none({"text": text, "media": media}))

    def rules(self) -> dict[str, Any]:
        return self._call("GET", "rules")

    def clear_rules(self) -> dict[str, Any]:
        return self._call("DELETE", "rules")

    def media_settings(
        self, delay: float | None = None, hold: bool | None = None
    ) -> dict[str, Any]:
        """delay: seconds before a verdict is sent; hold: keep new checks until released."""
        return self._call("POST", "media_checks", _without_none({"delay": delay, "hold": hold}))

    def media_checks(self) -> list[dict[str, Any]]:
        return self._call("GET", "media_checks")["checks"]

    def release_media_checks(self, trace_id: str | None = None) -> list[str]:
        payload = _without_none({"trace_id": trace_id})
        return self._call("POST", "media_checks/release", payload)["released"]

    def wait_media_checks(self, timeout: float = 10.0, release: bool = False) -> list[dict]:
        """Block until every media check has been decided and pushed; returns them all,
        each with its event and its push record."""
        payload = {"timeout": timeout, "release": release}
        return self._call("POST", "media_checks/wait", payload, timeout=timeout + self.timeout)[
            "checks"
        ]

    # ----- message push -----------------------------------------------------------------------

    def configure_push(
        self,
        url: str,
        token: str,
        encoding_aes_key: str | None = None,
        mode: str | None = None,
        format: str | None = None,
        *,
        appid: str | None = None,
        retries: int | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """mode: plaintext (default) | compatible | secure; format: xml (default) | json."""
        payload = _without_none(
            {
                "appid": appid,
                "url": url,
                "token": token,
                "encoding_aes_key": encoding_aes_key,
                "mode": mode,
                "format": format,
                "retries": retries,
                "timeout": timeout,
            }
        )
        return self._call("POST", "push/config", payload)["push"]

    def push_config(self, appid: str | None = None) -> dict[str, Any] | None:
        params = {"appid": appid} if appid else None
        return self._call("GET", "push/config", params=params)["push"]

    def remove_push_config(self, appid: str | None = None) -> None:
        params = {"appid": appid} if appid else None
        self._call("DELETE", "push/config", params=params)

    def verify_push_url(self, appid: str | None = None) -> dict[str, Any]:
        """WeChat's GET handshake against the push URL: {"ok", "echostr", "status", "body",
        "error", "elapsed", "push"}."""
        return self._call("POST", "push/verify", _without_none({"appid": appid}), timeout=70)

    def user_event(
        self,
        event: str,
        *,
        person: str | None = None,
        openid: str | None = None,
        appid: str | None = None,
        revoke_info: str | list[int] | None = None,
        create_time: int | None = None,
    ) -> dict[str, Any]:
        """Push user_authorization_revoke (needs revoke_info), user_authorization_cancellation
        or user_info_modified now; returns the delivery's log record."""
        payload = _without_none(
            {
                "event": event,
                "person": person,
                "openid": openid,
                "appid": appid,
                "revoke_info": revoke_info,
                "create_time": create_time,
            }
        )
        return self._call("POST", "push/user_event", payload, timeout=700)

    def pushes(
        self, appid: str | None = None, event: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        params = _without_none({"appid": appid, "event": event, "kind": kind})
        return self._call("GET", "pushes", params=params or None)["pushes"]

    def clear_pushes(self) -> None:
        self._call("DELETE", "pushes")

    def replay_push(self, push_id: int, attempt: int = 0) -> dict[str, Any]:
        """Re-send a logged request byte for byte (same timestamp, nonce and signature)."""
        return self._call("POST", f"pushes/{push_id}/replay", {"attempt": attempt}, timeout=70)

    def redeliver_push(self, push_id: int) -> dict[str, Any]:
        """Deliver a logged event again, freshly signed, as WeChat's duplicate would be."""
        return self._call("POST", f"pushes/{push_id}/redeliver", timeout=700)

    def user(self, openid: str, appid: str | None = None) -> dict[str, Any] | None:
        """{"openid", "unionid", "session_key", "blocked"}, or None for an unknown user."""
        params = {"appid": appid} if appid else None
        try:
            return self._call("GET", f"users/{quote(openid, safe='')}", params=params)
        except EmulatorControlError as exc:
            if exc.status == 404:
                return None
            raise

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "reset")


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
