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
    ) -> Any:
        response = self._session.request(
            method,
            f"{self.base_url}/__emulator__/{path}",
            json=payload,
            params=params,
            timeout=self.timeout,
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
    ) -> dict[str, Any]:
        """Stand-in for wx.login: returns {"code", "openid", "unionid", "session_key"}."""
        payload = _without_none({"openid": openid, "unionid": unionid, "appid": appid})
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

    def add_app(self, appid: str, secret: str) -> dict[str, Any]:
        return self._call("POST", "apps", {"appid": appid, "secret": secret})

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
