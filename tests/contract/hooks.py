"""Schemathesis hooks (SCHEMATHESIS_HOOKS=contract.hooks), so that generated
requests reach the service's logic rather than bouncing off its door:

- every request carries a real session (GET /metrics: the METRICS_TOKEN),
  obtained the way a mini program gets one: the emulator's wx.login gives a
  code, POST /oauth/login makes it a token; Schemathesis fetches a new one
  whenever an answer is 401 (a generated logout or deletion ended it);
- a login generated as valid data gets a real, unused code: a made-up code is
  rightly `code_invalid`, and the stateful links (login -> info, binds,
  profile, logout, delete) need logins that succeed;
- a push generated as valid data is signed with the app's push token, so the
  body behind the signature is what gets explored (safe mode, which also
  needs the body's own signature, stays unsigned and answers 403).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import requests
import schemathesis
from schemathesis import GenerationMode

from wechat_emulator import EmulatorControl
from wechat_emulator.crypto import new_push_nonce, push_signature

SERVICE = os.environ["CONTRACT_SERVICE_URL"]
EMULATOR = os.environ["CONTRACT_EMULATOR_URL"]
COOKIE = os.environ["CONTRACT_COOKIE_NAME"]
PUSH_TOKEN = os.environ["CONTRACT_PUSH_TOKEN"]
METRICS_TOKEN = os.environ["CONTRACT_METRICS_TOKEN"]
TIMEOUT = 10


ISSUED = Path(os.environ["CONTRACT_ISSUED_FILE"])


def wx_login() -> str:
    """wx.login: a fresh user's code, from the emulator. Its secrets are noted
    for the test, which checks the service's log never shows them."""
    with EmulatorControl(EMULATOR) as wechat:
        issued = wechat.login()
    with ISSUED.open("a") as secrets:
        for name in ("openid", "unionid", "session_key"):
            if issued.get(name):
                secrets.write(issued[name] + "\n")
    return issued["code"]


@schemathesis.auth()
class WeChatSession:
    def __init__(self) -> None:
        self.http = requests.Session()

    def get(self, case: Any, context: Any) -> str:
        answer = self.http.post(
            f"{SERVICE}/oauth/login", json={"code": wx_login()}, timeout=TIMEOUT
        )
        answer.raise_for_status()
        return answer.json()["data"]["token"]

    def set(self, case: Any, token: str, context: Any) -> None:
        if case.operation.definition.raw.get("operationId") == "metrics":
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {METRICS_TOKEN}"}
        elif COOKIE not in (case.cookies or {}):  # a link's token (stateful phase) stays
            case.cookies = {**(case.cookies or {}), COOKIE: token}


def positive(case: Any) -> bool:
    """Valid as a whole: a negative case keeps its invalid part untouched."""
    meta = case.meta
    return (
        meta is not None
        and meta.generation.mode == GenerationMode.POSITIVE
        and all(part.mode == GenerationMode.POSITIVE for part in meta.components.values())
    )


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if not positive(case):
        return
    operation_id = case.operation.definition.raw.get("operationId", "")
    if operation_id == "login" and isinstance(case.body, dict):
        case.body = {**case.body, "code": wx_login()}
    elif operation_id.startswith("push") and (case.query or {}).get("encrypt_type") != "aes":
        timestamp, nonce = str(int(time.time())), new_push_nonce()
        case.query = {
            **(case.query or {}),
            "timestamp": timestamp,
            "nonce": nonce,
            "signature": push_signature(PUSH_TOKEN, timestamp, nonce),
        }
