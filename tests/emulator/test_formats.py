"""The emulator speaks like WeChat: signatures, escaped slashes, text/plain, keep-alive."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from support.emulator import (
    APPID,
    DOC_RAW_DATA,
    DOC_RAW_SESSION_KEY,
    DOC_RAW_SIGNATURE,
    DOC_SESSION_KEY,
    SECRET,
    TIMEOUT,
    WeChat,
    errcode,
)
from wechat_emulator import EmulatorControl, EmulatorServer
from wechat_emulator.crypto import rawdata_signature, session_signature
from wechat_emulator.server import wechat_json

# ----- crypto helpers and serialization --------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"", "46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128"),
        (b'{"foo":"bar"}', "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"),
    ],
)
def test_session_signature_known_answers(message: bytes, expected: str) -> None:
    assert session_signature(DOC_SESSION_KEY, message) == expected


def test_rawdata_signature_known_answer() -> None:
    assert rawdata_signature(DOC_RAW_DATA, DOC_RAW_SESSION_KEY) == DOC_RAW_SIGNATURE


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"a": "x/y"}, '{"a":"x\\/y"}'),
        ({"url": "http://t.cn/R"}, '{"url":"http:\\/\\/t.cn\\/R"}'),
        ({"a": "back\\/slash"}, '{"a":"back\\\\\\/slash"}'),
        ({"nick": "微信/🐱"}, '{"nick":"微信\\/🐱"}'),
    ],
)
def test_wechat_json_escapes_slashes(payload: dict[str, str], expected: str) -> None:
    encoded = wechat_json(payload)
    assert encoded == expected.encode("utf-8")
    assert json.loads(encoded) == payload


# ----- response format -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sns/jscode2session"),
        ("GET", "/cgi-bin/token"),
        ("POST", "/cgi-bin/stable_token"),
        ("POST", "/wxa/business/getuserphonenumber"),
        ("GET", "/wxa/checksession"),
        ("GET", "/wxa/resetusersessionkey"),
    ],
)
def test_every_wechat_reply_is_text_plain(
    ctl: EmulatorControl, server: EmulatorServer, method: str, path: str
) -> None:
    response = requests.request(method, server.url + path, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain"
    assert errcode(response.json()) != 0
    ctl.configure(content_type="application/json")
    response = requests.request(method, server.url + path, timeout=TIMEOUT)
    assert response.headers["Content-Type"] == "application/json"


def test_slashes_escaped_on_the_wire(ctl: EmulatorControl, wx: WeChat) -> None:
    errmsg = "invalid appsecret, view more at http://t.cn/RAEkdVq"
    ctl.fault("token", errcode=40125, errmsg=errmsg)
    response = wx.get("/cgi-bin/token", grant_type="client_credential", appid=APPID, secret=SECRET)
    assert r"http:\/\/t.cn\/RAEkdVq" in response.text
    assert response.json() == {"errcode": 40125, "errmsg": errmsg}


def test_unknown_path_is_404(wx: WeChat) -> None:
    response = wx.get("/sns/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"errcode": -1, "errmsg": "not found"}


def test_keep_alive_reuses_one_connection(ctl: EmulatorControl, server: EmulatorServer) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    try:
        requests_made = [
            ("GET", "/cgi-bin/token", None),
            ("GET", "/nowhere", None),
            ("POST", "/cgi-bin/stable_token", b"{bad json"),
            ("POST", "/__emulator__/login", b"{}"),
            ("GET", "/__emulator__/calls", None),
        ]
        sock = None
        for method, path, body in requests_made:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            assert int(response.headers["Content-Length"]) == len(response.read())
            assert sock is None or conn.sock is sock
            sock = conn.sock
    finally:
        conn.close()


def test_handles_many_parallel_requests(ctl: EmulatorControl, server: EmulatorServer) -> None:
    ctl.fault("*", delay=0.3, times=0)

    def call(_: int) -> int:
        with requests.Session() as http:
            response = http.get(server.url + "/cgi-bin/token", timeout=TIMEOUT)
            return response.json()["errcode"]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=120) as pool:
        results = list(pool.map(call, range(120)))
    elapsed = time.monotonic() - started
    assert results == [41002] * 120
    assert elapsed < 6, elapsed  # 120 x 0.3 s would take 36 s if served one by one
