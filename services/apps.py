"""The apps one deployment serves (mini programs and official accounts), and
what is kept per app: its WeChat client (appid and secret), its access token
(one per appid, shared by every worker and instance), its login-code ledger,
its open-data cipher (the watermark must name it) and its message push
settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from services import errors
from services.crypto.opendata import OpenDataCipher
from services.stores.access_token import AccessTokenStore
from services.stores.login_codes import LoginCodeLedger
from services.wechat import WeChatClient

MINIPROGRAM = "miniprogram"
OFFICIAL_ACCOUNT = "official_account"
# The `type` a login body names for each kind of app ("wxapp" since the 2018 demo).
LOGIN_TYPES = {MINIPROGRAM: "wxapp", OFFICIAL_ACCOUNT: "mp"}


@dataclass(frozen=True)
class PushSettings:
    token: str = field(repr=False)
    aes_key: str = field(repr=False)


@dataclass(frozen=True)
class App:
    appid: str
    kind: str
    wechat: WeChatClient = field(repr=False)
    access_token: AccessTokenStore = field(repr=False)
    login_codes: LoginCodeLedger = field(repr=False)
    cipher: OpenDataCipher = field(repr=False)
    push: PushSettings
    cookie_samesite: str = "Lax"

    @property
    def is_miniprogram(self) -> bool:
        return self.kind == MINIPROGRAM

    @property
    def login_type(self) -> str:
        return LOGIN_TYPES[self.kind]


class Apps:
    """The apps by appid; the first is the default."""

    def __init__(self, apps: list[App]) -> None:
        self.all = tuple(apps)
        self.default = self.all[0]
        self._by_id = {app.appid: app for app in self.all}

    def get(self, appid: str | None) -> App:
        """The app a request names (X-WX-AppId), or the default for none."""
        if not appid:
            return self.default
        app = self._by_id.get(appid)
        if app is None:
            raise errors.UnknownApp()
        return app

    def find(self, appid: str) -> App | None:
        """The app, or None for one no longer configured."""
        return self._by_id.get(appid)

    def __iter__(self) -> Iterator[App]:
        return iter(self.all)
