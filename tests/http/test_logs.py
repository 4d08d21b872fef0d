"""Request ids and structured logs: every answer carries X-Request-ID, every
log line of a request carries its id, and LOG_FORMAT=json writes one JSON
object per line that never holds an openid, unionid or session_key."""

from __future__ import annotations

import json
import logging
import re

import pytest

from support.apps import bearer

GENERATED = re.compile(r"[0-9a-f]{32}")


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is JSON, or this fails


def test_every_answer_has_a_request_id(client):
    seen = set()
    for method, path in [("GET", "/healthz"), ("GET", "/nowhere"), ("POST", "/oauth/login")]:
        response = client.open(path, method=method)
        request_id = response.headers["X-Request-ID"]
        assert GENERATED.fullmatch(request_id)
        seen.add(request_id)
    assert len(seen) == 3


def test_an_incoming_request_id_is_ignored_without_trusted_proxies(client):
    response = client.get("/healthz", headers={"X-Request-ID": "from-the-client-1234"})
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


@pytest.mark.parametrize("config_overrides", [{"TRUSTED_PROXIES": 1}])
@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("from-the-proxy-1234", True),
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("Root=1-67891233-abcdef012345678912345678", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ('quote"d', False),
        ("new\\nline", False),
        ("", False),
    ],
)
def test_behind_trusted_proxies_a_well_formed_request_id_is_kept(client, incoming, kept):
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    answered = response.headers["X-Request-ID"]
    assert (answered == incoming) is kept
    if not kept:
        assert GENERATED.fullmatch(answered)


@pytest.mark.parametrize("config_overrides", [{"LOG_FORMAT": "json"}])
def test_json_logs_one_object_per_line_with_the_request(client, wechat, capsys, watch):
    issued = wechat.login()
    capsys.readouterr()
    response = client.post("/oauth/login", json={"code": issued["code"]})
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    token = response.get_json()["data"]["token"]
    info = client.get("/user/info", headers=bearer(token))
    err = capsys.readouterr().err
    watch.add_text(err)  # the leak watch reads JSON lines too
    lines = json_lines(err)
    assert lines, "nothing was logged"
    for line in lines:
        assert {"time", "level", "logger", "message", "pid"} <= set(line)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    login_lines = [line for line in lines if line.get("request_id") == request_id]
    said = next(line for line in login_lines if line["logger"] == "services.usecases.login")
    assert said["route"] == "/oauth/login" and said["method"] == "POST"
    end = next(line for line in login_lines if line["logger"] == "wx.request")
    assert (end["route"], end["method"], end["status"]) == ("/oauth/login", "POST", 200)
    assert end["duration_ms"] > 0
    account_id = end["account_id"]
    assert isinstance(account_id, int)
    info_end = next(
        line
        for line in lines
        if line.get("request_id") == info.headers["X-Request-ID"] and line["logger"] == "wx.request"
    )
    assert (info_end["route"], info_end["status"], info_end["account_id"]) == (
        "/user/info",
        200,
        account_id,
    )
    assert issued["openid"] not in err


@pytest.mark.parametrize("config_overrides", [{"LOG_FORMAT": "json"}])
def test_json_logs_scrub_secrets_as_text_logs_do(client, wechat, capsys, watch):
    capsys.readouterr()
    wechat.fault("jscode2session", errcode=40125)  # logs "check the WECHAT_SECRET setting"
    response = client.post("/oauth/login", json={"code": wechat.login()["code"]})
    assert response.status_code == 502
    logging.getLogger("some.library").warning("GET /x?secret=abcdef&access_token=zzz")
    err = capsys.readouterr().err
    watch.add_text(err)
    messages = [line["message"] for line in json_lines(err)]
    assert any("WECHAT_SECRET" in message for message in messages)
    assert "GET /x?secret=[redacted]&access_token=[redacted]" in messages


def test_text_logs_stay_the_default_and_carry_the_request_id(client, wechat, capsys):
    capsys.readouterr()
    response = client.post("/oauth/login", json={"code": wechat.login()["code"]})
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "login: account" in line)
    assert line.endswith(f"request_id={response.headers['X-Request-ID']}")
    assert not line.startswith("{")
