"""The mini program's side of the protocol, in Python.

It behaves as the JavaScript client in client/ does: wx.login (here: the
emulator hands out a code), POST /oauth/login, keep Set-Cookie in storage,
replay it as a Cookie header (or send the token as a Bearer header), and on a
401 log in once more and retry the call once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from miniprogram.cookies import CookieJar
from miniprogram.storage import Storage
from wechat_emulator import EmulatorControl

TOKEN_KEY = "token"
# The emulator's stand-in for "which WeChat account is signed in on this
# phone"; a real mini program never sees it.
DEVICE_USER_KEY = "emulator.device_openid"


class ServiceError(Exception):
    """The service answered with its error shape {code, error, message}."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.code = body.get("code")
        self.error = body.get("error", "unknown")
        self.message = body.get("message", "")
        super().__init__(f"HTTP {status} {self.error}: {self.message}")


class MiniProgram:
    def __init__(
        self,
        service: str,
        emulator: str,
        storage: Storage,
        *,
        use_bearer: bool = False,
        appid: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.service = service.rstrip("/")
        self.storage = storage
        self.use_bearer = use_bearer
        self.appid = appid  # a mini program knows it: wx.getAccountInfoSync()
        self.timeout = timeout
        self.http = requests.Session()
        self.wx = EmulatorControl(emulator)
        self.cookies = CookieJar(storage)
        self.logins = 0

    def close(self) -> None:
        self.http.close()
        self.wx.close()

    # -- wx.* ---------------------------------------------------------------

    def wx_login(self) -> str:
        issued = self.wx.login(openid=self.storage.get(DEVICE_USER_KEY), appid=self.appid)
        self.storage.set(DEVICE_USER_KEY, issued["openid"])
        return issued["code"]

    # -- protocol -----------------------------------------------------------

    def login(self) -> dict[str, Any]:
        self.logins += 1
        data = self._send("POST", "/oauth/login", {"code": self.wx_login(), "type": "wxapp"})
        self.storage.set(TOKEN_KEY, data["token"])
        return data

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
    ) -> Any:
        """A call that needs the session: one shared re-login on 401, one retry."""
        try:
            return self._send(method, path, body, files)
        except ServiceError as exc:
            if exc.status != 401:
                raise
        self.login()
        return self._send(method, path, body, files)

    def logout(self, everywhere: bool = False) -> Any:
        try:
            return self._send("POST", "/oauth/logout", {"all": True} if everywhere else {})
        finally:
            self.storage.remove(TOKEN_KEY)
            self.cookies.clear()

    def info(self) -> dict[str, Any]:
        return self.request("GET", "/user/info")

    def check(self) -> dict[str, Any]:
        return self.request("GET", "/oauth/check")

    def set_profile(self, fields: dict[str, Any]) -> dict[str, Any]:
        """What a profile page sends after <input type="nickname">."""
        return self.request("PUT", "/user/profile", fields)

    def upload_avatar(self, image: Path) -> dict[str, Any]:
        """What wx.uploadFile sends with chooseAvatar's temporary file."""
        with image.open("rb") as file:
            return self.request("POST", "/user/avatar", files={"file": (image.name, file.read())})

    def delete(self) -> dict[str, Any]:
        """DELETE /user; the stored session goes with the account."""
        try:
            return self.request("DELETE", "/user")
        finally:
            self.storage.remove(TOKEN_KEY)
            self.cookies.clear()

    def bind_info(self, profile: dict[str, Any]) -> dict[str, Any]:
        """What a page does with wx.getUserProfile's result."""

        def sealed() -> dict[str, Any]:
            data = self.wx.encrypt(self.device_user(), data=profile, appid=self.appid)
            return {k: data[k] for k in ("encryptedData", "iv", "rawData", "signature")}

        return self._bind("/user/bindinfo", sealed)

    def bind_phone(self, phone: str = "13800138000", legacy: bool = False) -> dict[str, Any]:
        """What a page does with the getPhoneNumber button's e.detail."""
        if not legacy:
            code = self.wx.phone_code(
                self.device_user(), appid=self.appid, phoneNumber=phone, purePhoneNumber=phone
            )
            return self.request("POST", "/user/bindphone", {"code": code["code"]})

        def sealed() -> dict[str, Any]:
            data = self.wx.encrypt(
                self.device_user(),
                data={"phoneNumber": phone, "purePhoneNumber": phone, "countryCode": "86"},
                appid=self.appid,
            )
            return {"encryptedData": data["encryptedData"], "iv": data["iv"]}

        return self._bind("/user/bindphone", sealed)

    def _bind(self, path: str, sealed: Any) -> dict[str, Any]:
        """On 409 session_key_stale, as the service documents: log in first,
        then get fresh encrypted data, and try once more."""
        try:
            return self.request("POST", path, sealed())
        except ServiceError as exc:
            if exc.error != "session_key_stale":
                raise
        self.login()
        return self.request("POST", path, sealed())

    def device_user(self) -> str:
        if self.storage.get(DEVICE_USER_KEY) is None:
            self.login()
        return self.storage.get(DEVICE_USER_KEY)

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        files: dict[str, Any] | None = None,
    ) -> Any:
        response = self.http.request(
            method,
            self.service + path,
            json=None if files else body,
            files=files,
            headers=self._auth_headers(),
            timeout=self.timeout,
        )
        # Every Set-Cookie header on its own: Expires dates contain commas,
        # so a merged header cannot be split back reliably.
        self.cookies.store(response.raw.headers.getlist("Set-Cookie"))
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": "not_json", "message": response.text[:200]}
        if response.status_code >= 400 or not isinstance(payload, dict):
            raise ServiceError(response.status_code, payload if isinstance(payload, dict) else {})
        return payload.get("data")

    def _auth_headers(self) -> dict[str, str]:
        headers = {"X-WX-AppId": self.appid} if self.appid else {}
        if self.use_bearer:
            token = self.storage.get(TOKEN_KEY)
            return {**headers, "Authorization": f"Bearer {token}"} if token else headers
        cookie = self.cookies.header()
        return {**headers, "Cookie": cookie} if cookie else headers
