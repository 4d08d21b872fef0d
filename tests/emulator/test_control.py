"""The control API (call log, config, clock, apps, users, reset) and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest
import requests

from dev.stack import free_port
from dev.waiting import wait_until
from support.emulator import (
    APPID,
    OTHER_APPID,
    OTHER_SECRET,
    REPO_ROOT,
    SECRET,
    TIMEOUT,
    WeChat,
    errcode,
    refused,
)
from wechat_emulator import EmulatorControl, EmulatorServer

# ----- call log, config, clock, apps, users, reset ---------------------------------------------


def test_call_log(ctl: EmulatorControl, wx: WeChat) -> None:
    login = ctl.login()
    ctl.fault("jscode2session", errcode=45011)
    wx.code2session(login["code"])
    wx.code2session(login["code"])
    wx.stable_reply()
    wx.post("/cgi-bin/stable_token", data=b"nope")
    wx.get("/not/an/endpoint")
    calls = ctl.calls()
    assert [(c["endpoint"], c["errcode"]) for c in calls] == [
        ("jscode2session", 45011),
        ("jscode2session", 0),
        ("stable_token", 0),
        ("stable_token", 47001),
    ]
    first = calls[0]
    assert first["method"] == "GET"
    assert first["path"] == "/sns/jscode2session"
    assert first["query"] == {
        "appid": APPID,
        "secret": SECRET,
        "js_code": login["code"],
        "grant_type": "authorization_code",
    }
    assert first["body"] is None
    assert abs(first["timestamp"] - time.time()) < 60
    assert calls[2]["method"] == "POST"
    assert calls[2]["body"] == {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
    }
    assert calls[3]["body"] is None
    assert [c["errcode"] for c in ctl.calls("stable_token")] == [0, 47001]
    assert ctl.calls("checksession") == []
    ctl.clear_calls()
    assert ctl.calls() == []


def test_config_validation(ctl: EmulatorControl) -> None:
    config = ctl.configure()
    assert config == {
        "rotate": "never",
        "rotate_min_interval": 300.0,
        "code_ttl": 300.0,
        "success_errcode": False,
        "content_type": "text/plain",
    }
    for bad in ({"rotate": "sometimes"}, {"code_ttl": 0}, {"success_errcode": 1}, {"x": 1}):
        assert refused(ctl.configure, **bad) == 400


def test_clock_only_moves_forward(ctl: EmulatorControl) -> None:
    now = ctl.advance(3600)["now"]
    assert abs(now - (time.time() + 3600)) < 5
    assert refused(lambda: ctl.advance(-1)) == 400


def test_unknown_user_and_bad_control_requests(
    ctl: EmulatorControl, server: EmulatorServer
) -> None:
    assert ctl.user("oUnknown000000000000000000000") is None
    base = server.url + "/__emulator__/"
    response = requests.post(base + "login", data=b"{not json", timeout=TIMEOUT)
    assert response.status_code == 400
    assert "error" in response.json()
    response = requests.post(base + "login", json={"appid": "wxnotregistered00"}, timeout=TIMEOUT)
    assert response.status_code == 400
    response = requests.post(base + "apps", json={"appid": "wx1"}, timeout=TIMEOUT)
    assert response.status_code == 400
    assert requests.get(base + "nothing", timeout=TIMEOUT).status_code == 404
    assert requests.get(base + "login", timeout=TIMEOUT).status_code == 405


def test_reset_clears_everything_but_initial_apps(
    ctl: EmulatorControl, wx: WeChat, other_app: str
) -> None:
    login = ctl.login(unionid="oUnion0123456789abcdefghijkl")
    phone = ctl.phone_code(login["openid"])["code"]
    token = wx.token()
    ctl.configure(rotate="always", content_type="application/json")
    ctl.advance(1000)
    ctl.fault("token", errcode=-1, times=0)
    assert ctl.reset() == {"reset": True}

    assert ctl.user(login["openid"]) is None
    assert ctl.calls() == []
    assert ctl.configure()["rotate"] == "never"
    assert abs(ctl.advance(0)["now"] - time.time()) < 5
    response = wx.get("/cgi-bin/token", grant_type="client_credential", appid=APPID, secret=SECRET)
    assert response.headers["Content-Type"] == "text/plain"
    assert errcode(response.json()) == 0  # fault queue is empty
    assert errcode(wx.code2session(login["code"])) == 40029
    assert errcode(wx.phone(wx.token(), {"code": phone})) == 40029
    assert wx.probe(token) == 40001
    assert errcode(wx.token_reply(appid=OTHER_APPID, secret=OTHER_SECRET)) == 40013


def test_server_start_stop_cycle() -> None:
    srv = EmulatorServer(apps={APPID: SECRET}).start()
    control = EmulatorControl(srv.url)
    assert control.login()["code"]
    srv.stop()
    srv.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        control.login()
    control.close()


# ----- CLI -----------------------------------------------------------------------------------


def test_cli_serves_and_stops() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMULATOR_", "WECHAT_"))}
    env["WECHAT_APPID"] = "wxcli0000000000000"
    process = subprocess.Popen(
        [sys.executable, "-m", "wechat_emulator", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def logged_in() -> dict[str, Any] | None:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            return EmulatorControl(url, timeout=2).login()
        except requests.ConnectionError:
            return None

    try:
        login = wait_until(logged_in, what="the CLI emulator to start")
        reply = requests.get(
            url + "/sns/jscode2session",
            params={
                "appid": "wxcli0000000000000",
                "secret": SECRET,
                "js_code": login["code"],
                "grant_type": "authorization_code",
            },
            timeout=TIMEOUT,
        ).json()
        assert reply["openid"] == login["openid"]
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert f"listening on {url}" in stdout
    assert "curl" in stdout
    assert stderr == ""  # per-request logging is off without --verbose
