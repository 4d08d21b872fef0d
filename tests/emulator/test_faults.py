"""Fault injection: errcodes, delays, dropped connections, raw bodies."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from support.emulator import (
    TOKEN_ERRMSG,
    WeChat,
    assert_error,
    errcode,
    refused,
)
from wechat_emulator import EmulatorControl, EmulatorServer

# ----- fault injection -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (-1, "system error"),
        (45011, "api minute-quota reach limit mustslower retry next minute"),
        (40226, "code blocked"),
        (40001, TOKEN_ERRMSG),
        (42001, "access_token expired"),
    ],
)
def test_fault_errcode_does_not_consume_code(
    ctl: EmulatorControl, wx: WeChat, code: int, message: str
) -> None:
    login = ctl.login()
    assert ctl.fault("jscode2session", errcode=code) == {"queued": 1}
    assert_error(wx.code2session(login["code"]), code, message)
    assert errcode(wx.code2session(login["code"])) == 0


def test_fault_custom_errmsg_is_verbatim(ctl: EmulatorControl, wx: WeChat) -> None:
    errmsg = "invalid code, hints: [ req_id: KfIawqLnRa-8oQBOA ]"
    ctl.fault("jscode2session", errcode=40029, errmsg=errmsg)
    assert wx.code2session(ctl.login()["code"]) == {"errcode": 40029, "errmsg": errmsg}


def test_fault_times_and_forever(ctl: EmulatorControl, wx: WeChat) -> None:
    ctl.fault("token", errcode=-1, times=2)
    assert [errcode(wx.token_reply()) for _ in range(3)] == [-1, -1, 0]
    ctl.fault("token", errcode=45011, times=0)
    assert [errcode(wx.token_reply()) for _ in range(4)] == [45011] * 4
    ctl.clear_faults()
    assert errcode(wx.token_reply()) == 0


def test_fault_wildcard_and_order(ctl: EmulatorControl, wx: WeChat) -> None:
    queued = ctl.faults(
        [
            {"endpoint": "*", "errcode": -1},
            {"endpoint": "token", "errcode": 45011},
            {"endpoint": "token", "errcode": 40164},
        ]
    )
    assert queued == {"queued": 3}
    # Endpoint-specific faults first, oldest first; then the wildcard.
    assert [errcode(wx.token_reply()) for _ in range(4)] == [45011, 40164, -1, 0]
    ctl.fault("*", errcode=-1)
    assert errcode(wx.stable_reply()) == -1
    assert errcode(wx.stable_reply()) == 0


def test_fault_delay(ctl: EmulatorControl, wx: WeChat) -> None:
    ctl.fault("token", delay=0.3)
    started = time.monotonic()
    reply = wx.token_reply()
    elapsed = time.monotonic() - started
    assert errcode(reply) == 0  # a delay alone lets the call go through
    assert 0.25 <= elapsed < 3
    ctl.fault("token", delay=0.3, errcode=-1)
    started = time.monotonic()
    assert errcode(wx.token_reply()) == -1
    assert time.monotonic() - started >= 0.25


def test_fault_drop(ctl: EmulatorControl, server: EmulatorServer, wx: WeChat) -> None:
    login = ctl.login()
    ctl.fault("jscode2session", drop=True)
    with pytest.raises(requests.ConnectionError):
        wx.code2session(login["code"])
    # The dropped call was logged without an errcode and did not use up the code.
    (call,) = ctl.calls("jscode2session")
    assert call["errcode"] is None
    assert errcode(wx.code2session(login["code"])) == 0


def test_fault_raw_body(ctl: EmulatorControl, wx: WeChat) -> None:
    body = "<html><body>502 Bad Gateway</body></html>"
    ctl.fault("token", body=body, content_type="text/html")
    response = wx.get("/cgi-bin/token")
    assert response.status_code == 200
    assert response.text == body
    assert response.headers["Content-Type"] == "text/html"
    with pytest.raises(ValueError):
        response.json()
    ctl.fault("token", body='{"errcode":-1}')
    response = wx.get("/cgi-bin/token")
    assert response.text == '{"errcode":-1}'
    assert response.headers["Content-Type"] == "text/plain"
    assert [c["errcode"] for c in ctl.calls("token")] == [None, -1]


@pytest.mark.parametrize(
    "fault",
    [
        {"endpoint": "nope", "errcode": -1},
        {"errcode": -1},
        {"endpoint": "token", "delay": -1},
        {"endpoint": "token", "times": -1},
        {"endpoint": "token", "times": "twice"},
        {"endpoint": "token", "errcode": "45011"},
        {"endpoint": "token", "drop": "yes"},
        {"endpoint": "token", "colour": "red"},
    ],
)
def test_bad_fault_rejected(ctl: EmulatorControl, fault: dict[str, Any]) -> None:
    assert refused(lambda: ctl.faults([fault])) == 400
