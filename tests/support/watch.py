"""The leak watch: whatever the emulator handed out (openids, unionids,
session_keys) and the app secret must not appear in any response a test
received or any log line it produced. The same client checks every response
against the OpenAPI document (support/openapi.py)."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from support.constants import PUSH_AES_KEY, PUSH_TOKEN, SECRET
from support.openapi import RESPONSES
from wechat_emulator import EmulatorControl


class SecretWatch:
    """Secrets seen during a test, and every text the service produced."""

    def __init__(self) -> None:
        self.secrets: set[str] = {SECRET, PUSH_TOKEN, PUSH_AES_KEY}
        self.texts: list[str] = []

    def add_secret(self, *values: str | None) -> None:
        self.secrets.update(value for value in values if value)

    def add_text(self, text: str) -> None:
        self.texts.append(text)

    def leaks(self) -> list[str]:
        return sorted({secret for secret in self.secrets for text in self.texts if secret in text})


def response_text(response: Any) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    # Binary bodies (images) too: a secret in them would still show as text.
    return f"{headers}\n{response.get_data().decode('utf-8', 'replace')}"


class WatchedClient(FlaskClient):
    """A test client with no cookie jar (mini programs have none) that shows
    every response to the leak watch and checks it against the OpenAPI
    document."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        watch = self.application.extensions.get("test_watch")
        if watch is not None:
            watch.add_text(response_text(response))
        RESPONSES.check(self.application, response)
        return response


class WatchedControl(EmulatorControl):
    """The emulator's control API; what it hands out is added to the test's
    watch and to the session-wide set the gunicorn logs are checked against."""

    def __init__(self, base_url: str, watch: SecretWatch, handed_out: set[str]) -> None:
        super().__init__(base_url)
        self.watch = watch
        self.handed_out = handed_out

    def _saw(self, found: dict[str, Any]) -> None:
        secrets = (found["openid"], found.get("unionid"), found["session_key"])
        self.watch.add_secret(*secrets)
        self.handed_out.update(secret for secret in secrets if secret)

    def login(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        issued = super().login(*args, **kwargs)
        self._saw(issued)
        return issued

    def user(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        found = super().user(*args, **kwargs)
        if found:
            self._saw(found)
        return found
