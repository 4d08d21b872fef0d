"""Message push to the service (reference §11, §15): configuration, the GET handshake,
signatures and encryption in every mode and format, retries, the delivery log, replays,
redeliveries and the platform's user events. The service's side is a real HTTP server."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from dev.stack import free_port
from support.emulator import (
    APPID,
    OTHER_APPID,
    OTHER_SECRET,
    PushReceiver,
    Received,
    Reply,
    app_of,
    event_envelope,
    receiver_decrypt,
    refused,
    sha1_signature,
    xml_to_dict,
)
from wechat_emulator import EmulatorControl, EmulatorServer
from wechat_emulator.crypto import new_encoding_aes_key

KEY = new_encoding_aes_key()


def configure(ctl: EmulatorControl, receiver: PushReceiver, **kw: Any) -> dict[str, Any]:
    return ctl.configure_push(receiver.push_url, receiver.token, **kw)


def as_xml_values(message: dict[str, Any]) -> dict[str, Any]:
    """What the XML form of a message reads back as: every leaf a string."""
    return {k: as_xml_values(v) if isinstance(v, dict) else str(v) for k, v in message.items()}


def open_message(received: Received, token: str, key: str | None, fmt: str) -> dict[str, Any]:
    """Check a delivery as a careful service would, and return the message it carries."""
    query = received.query
    assert query["signature"] == sha1_signature(token, query["timestamp"], query["nonce"])
    body = received.parsed(fmt)
    if "encrypt_type" not in query:
        return body
    assert query["encrypt_type"] == "aes"
    signature = sha1_signature(token, query["timestamp"], query["nonce"], body["Encrypt"])
    assert query["msg_signature"] == signature
    assert key is not None
    plain, appid = receiver_decrypt(body["Encrypt"], key)
    assert appid == APPID
    return json.loads(plain) if fmt == "json" else xml_to_dict(plain)


# ----- configuration --------------------------------------------------------------------------


def test_push_config_round_trip(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    assert ctl.push_config() is None
    config = configure(ctl, receiver)
    assert config == {
        "url": receiver.push_url,
        "token": receiver.token,
        "encoding_aes_key": None,
        "mode": "plaintext",  # WeChat's defaults: plaintext, XML
        "format": "xml",
        "retries": 3,
        "timeout": 5.0,
    }
    assert ctl.push_config() == config
    secure = configure(
        ctl, receiver, encoding_aes_key=KEY, mode="secure", format="json", retries=0, timeout=1
    )
    assert (secure["mode"], secure["format"], secure["retries"], secure["timeout"]) == (
        "secure",
        "json",
        0,
        1.0,
    )
    assert app_of(ctl)["push"] == secure
    ctl.remove_push_config()
    assert ctl.push_config() is None
    configure(ctl, receiver)
    ctl.reset()
    assert ctl.push_config() is None


@pytest.mark.parametrize(
    "fields",
    [
        {"mode": "secure"},
        {"mode": "compatible"},
        {"encoding_aes_key": "tooshort"},
        {"token": "x"},
        {"url": "mailto:x"},
        {"format": "csv"},
        {"retries": "3"},
        {"timeout": -1},
        {"colour": "red"},
        {"appid": "wxnotregistered00"},
    ],
)
def test_bad_push_config_rejected(ctl: EmulatorControl, fields: dict[str, Any]) -> None:
    payload = {"url": "http://127.0.0.1:9/push", "token": "Token123", **fields}
    assert refused(lambda: ctl._call("POST", "push/config", payload)) == 400


def test_pushing_needs_a_config(ctl: EmulatorControl) -> None:
    for call in (
        ctl.verify_push_url,
        lambda: ctl.user_event("user_info_modified", person="alice"),
    ):
        assert refused(call) == 409


# ----- the GET handshake ----------------------------------------------------------------------


def test_verify_handshake(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    configure(ctl, receiver)
    result = ctl.verify_push_url()
    assert result["ok"] is True
    assert re.fullmatch(r"[1-9][0-9]{18}", result["echostr"])
    assert (result["status"], result["body"], result["error"]) == (200, result["echostr"], None)
    (received,) = receiver.received
    assert received.method == "GET"
    assert list(received.query) == ["signature", "echostr", "timestamp", "nonce"]
    assert received.query["echostr"] == result["echostr"]
    assert received.body == b""
    log = result["push"]
    assert (log["kind"], log["status"], log["event"]) == ("verify", "accepted", None)
    assert ctl.pushes(kind="verify") == [log]


def test_verify_handshake_failures(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    ctl.configure_push(receiver.push_url, "WrongToken")
    result = ctl.verify_push_url()
    assert (result["ok"], result["status"], result["body"]) == (False, 403, "bad signature")
    assert result["push"]["status"] == "failed"

    configure(ctl, receiver)
    receiver.reply_with(Reply(200, b"not-the-echostr"))
    assert ctl.verify_push_url()["ok"] is False
    assert ctl.verify_push_url()["ok"] is True

    ctl.configure_push(f"http://127.0.0.1:{free_port()}/push", "Token123")
    result = ctl.verify_push_url()
    assert result["ok"] is False and result["status"] is None
    assert "Connection" in result["error"]


# ----- delivery in every mode and format ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("mode", ["plaintext", "compatible", "secure"])
def test_delivery_modes_and_formats(
    ctl: EmulatorControl, receiver: PushReceiver, mode: str, fmt: str
) -> None:
    key = None if mode == "plaintext" else KEY
    configure(ctl, receiver, encoding_aes_key=key, mode=mode, format=fmt)
    record = ctl.user_event("user_authorization_revoke", person="alice", revoke_info="6")
    event = record["event"]
    (received,) = receiver.pushes()
    assert received.method == "POST"
    assert received.headers["Content-Type"] == ("application/json" if fmt == "json" else "text/xml")
    expected_query = ["signature", "timestamp", "nonce"]
    if mode != "plaintext":
        expected_query += ["openid", "encrypt_type", "msg_signature"]
        assert received.query["openid"] == event["FromUserName"]
    assert list(received.query) == expected_query

    message = open_message(received, receiver.token, key, fmt)
    assert message == (event if fmt == "json" else as_xml_values(event))
    body = received.parsed(fmt)
    if mode == "secure":
        assert list(body) == ["ToUserName", "Encrypt"]
        assert body["ToUserName"] == event["ToUserName"]
    elif mode == "compatible":
        assert list(body) == [*event, "Encrypt"]
        assert {k: v for k, v in body.items() if k != "Encrypt"} == message
    else:
        assert "Encrypt" not in body
    if fmt == "xml":
        assert received.body.startswith(b"<xml><ToUserName><![CDATA[gh_")
    # The log holds exactly what was sent and what came back.
    (attempt,) = record["attempts"]
    assert attempt["body"] == received.body.decode()
    assert attempt["query"] == received.query
    assert attempt["headers"]["Content-Type"] == received.headers["Content-Type"]
    assert attempt["response"]["status"] == 200 and attempt["response"]["body"] == "success"
    assert attempt["accepted"] is True
    assert (record["mode"], record["format"], record["status"]) == (mode, fmt, "accepted")


def test_secure_mode_body_is_ciphertext_only(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    configure(ctl, receiver, encoding_aes_key=KEY, mode="secure", format="json")
    openid = ctl.login(person="bob")["openid"]
    ctl.user_event("user_authorization_cancellation", person="bob")
    (received,) = receiver.pushes()
    assert openid.encode() not in received.body
    assert b"user_authorization_cancellation" not in received.body
    # The doc: do not verify secure pushes with `signature`; msg_signature covers Encrypt.
    encrypt = received.parsed("json")["Encrypt"]
    assert received.query["msg_signature"] != received.query["signature"]
    assert received.query["msg_signature"] == sha1_signature(
        receiver.token, received.query["timestamp"], received.query["nonce"], encrypt
    )


# ----- user events ----------------------------------------------------------------------------


def test_user_events(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    configure(ctl, receiver, format="json")
    login = ctl.login(person="carol")
    revoke = ctl.user_event("user_authorization_revoke", person="carol", revoke_info=[6, 8])
    event = revoke["event"]
    assert event == {
        **event_envelope(ctl, event, "user_authorization_revoke"),
        "OpenID": login["openid"],
        "AppID": APPID,
        "RevokeInfo": "6,8",
    }
    assert event["FromUserName"] != login["openid"]  # the platform push service
    cancel = ctl.user_event(
        "user_authorization_cancellation", openid=login["openid"], create_time=1700000000
    )
    assert cancel["event"]["CreateTime"] == 1700000000
    assert "RevokeInfo" not in cancel["event"]
    modified = ctl.user_event("user_info_modified", person="carol")
    assert modified["event"]["Event"] == "user_info_modified"
    single = ctl.user_event("user_authorization_revoke", person="carol", revoke_info="8")
    assert single["event"]["RevokeInfo"] == "8"
    assert [r.parsed("json")["Event"] for r in receiver.pushes()] == [
        "user_authorization_revoke",
        "user_authorization_cancellation",
        "user_info_modified",
        "user_authorization_revoke",
    ]


@pytest.mark.parametrize(
    "payload",
    [
        {"event": "user_authorization_revoke", "person": "x"},  # no revoke_info
        {"event": "user_info_modified", "person": "x", "revoke_info": "6"},
        {"event": "user_authorization_revoke", "person": "x", "revoke_info": [9]},
        {"event": "user_authorization_revoke", "person": "x", "revoke_info": []},
        {"event": "user_authorization_revoke", "person": "x", "revoke_info": {"a": 1}},
        {"event": "subscribe", "person": "x"},
        {"event": "user_info_modified"},  # nobody
        {"event": "user_info_modified", "person": "x", "openid": "oNotTheirs"},
        {"event": "user_info_modified", "person": "x", "create_time": "now"},
    ],
)
def test_bad_user_events_rejected(
    ctl: EmulatorControl, receiver: PushReceiver, payload: dict[str, Any]
) -> None:
    configure(ctl, receiver)
    assert refused(lambda: ctl._call("POST", "push/user_event", payload)) == 400
    assert receiver.pushes() == []


def test_events_for_each_app(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    ctl.add_app(OTHER_APPID, OTHER_SECRET, username="gh_0123456789ab")
    other = PushReceiver("OtherToken")
    try:
        configure(ctl, receiver, format="json")
        ctl.configure_push(other.push_url, other.token, appid=OTHER_APPID, format="json")
        ctl.user_event("user_info_modified", person="dan")
        ctl.user_event("user_info_modified", person="dan", appid=OTHER_APPID)
        mine = receiver.pushes()[0].parsed("json")
        theirs = other.pushes()[0].parsed("json")
        assert theirs["ToUserName"] == "gh_0123456789ab"
        assert (mine["AppID"], theirs["AppID"]) == (APPID, OTHER_APPID)
        assert mine["OpenID"] != theirs["OpenID"]  # one person, one openid per app
        assert [p["appid"] for p in ctl.pushes(appid=OTHER_APPID)] == [OTHER_APPID]
    finally:
        other.stop()


# ----- retries ----------------------------------------------------------------------------------


def test_retries_until_success(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    configure(ctl, receiver, encoding_aes_key=KEY, mode="secure", format="json")
    receiver.reply_with(Reply(200, b"error"), Reply(500, b"oops"))
    record = ctl.user_event("user_info_modified", person="erin")
    assert record["status"] == "accepted"
    assert [a["response"]["status"] for a in record["attempts"]] == [200, 500, 200]
    assert [a["accepted"] for a in record["attempts"]] == [False, False, True]
    pushes = receiver.pushes()
    assert len(pushes) == 3
    # Each retry is freshly signed around the same message (same CreateTime).
    assert len({p.query["nonce"] for p in pushes}) == 3
    messages = [open_message(p, receiver.token, KEY, "json") for p in pushes]
    assert messages == [record["event"]] * 3


def test_retries_give_up_after_three(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    configure(ctl, receiver)
    receiver.reply_with(*[Reply(200, b"fail")] * 10)
    record = ctl.user_event("user_info_modified", person="erin")
    assert record["status"] == "failed"
    assert len(record["attempts"]) == 4  # the first try and three retries
    assert len(receiver.pushes()) == 4


def test_retries_can_be_switched_off(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    configure(ctl, receiver, retries=0)
    receiver.reply_with(Reply(503, b""))
    record = ctl.user_event("user_info_modified", person="erin")
    assert record["status"] == "failed"
    assert len(record["attempts"]) == 1


@pytest.mark.parametrize("body", [b"", b"success", b"success\n", b"  "])
def test_empty_or_success_reply_is_accepted(
    ctl: EmulatorControl, receiver: PushReceiver, body: bytes
) -> None:
    configure(ctl, receiver)
    receiver.reply_with(Reply(200, body))
    assert len(ctl.user_event("user_info_modified", person="x")["attempts"]) == 1


def test_retry_after_timeout(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    configure(ctl, receiver, timeout=0.2)
    receiver.reply_with(Reply(200, b"success", delay=0.6))
    record = ctl.user_event("user_info_modified", person="x")
    first, second = record["attempts"]
    assert first["response"]["error"] == "timed out"
    assert first["response"]["status"] is None
    assert 0.15 < first["response"]["elapsed"] < 0.6
    assert second["accepted"] is True
    assert record["status"] == "accepted"


def test_unreachable_url_is_retried_and_logged(ctl: EmulatorControl) -> None:
    ctl.configure_push(f"http://127.0.0.1:{free_port()}/push", "Token123", retries=1)
    record = ctl.user_event("user_info_modified", person="x")
    assert record["status"] == "failed"
    assert len(record["attempts"]) == 2
    assert all(a["response"]["error"] for a in record["attempts"])


# ----- replay and redelivery --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plaintext", "secure"])
def test_replay_is_byte_for_byte(ctl: EmulatorControl, receiver: PushReceiver, mode: str) -> None:
    configure(ctl, receiver, encoding_aes_key=KEY, mode=mode, format="xml")
    original = ctl.user_event("user_authorization_revoke", person="fay", revoke_info="8")
    replayed = ctl.replay_push(original["id"])
    assert replayed["replay_of"] == original["id"]
    assert replayed["event"] == original["event"]
    first, second = receiver.pushes()
    assert second.query == first.query  # same timestamp, nonce and signatures
    assert second.body == first.body
    assert {k: v for k, v in second.headers.items()} == {k: v for k, v in first.headers.items()}
    assert replayed["attempts"][0]["url"] == original["attempts"][0]["url"]
    assert len(replayed["attempts"]) == 1


def test_replay_of_a_chosen_attempt(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    configure(ctl, receiver)
    receiver.reply_with(Reply(200, b"no"))
    original = ctl.user_event("user_info_modified", person="fay")
    assert len(original["attempts"]) == 2
    ctl.replay_push(original["id"], attempt=-1)
    pushes = receiver.pushes()
    assert pushes[2].query == pushes[1].query != pushes[0].query
    # A rejected replay is not retried: it is not WeChat sending.
    receiver.reply_with(Reply(403, b"replay"))
    rejected = ctl.replay_push(original["id"])
    assert rejected["status"] == "failed"
    assert len(rejected["attempts"]) == 1
    assert rejected["attempts"][0]["response"] == {
        "status": 403,
        "body": "replay",
        "error": None,
        "elapsed": rejected["attempts"][0]["response"]["elapsed"],
    }
    for bad in (99, -3):
        assert refused(ctl.replay_push, original["id"], attempt=bad) == 404
    assert refused(lambda: ctl.replay_push(1000)) == 404


def test_replay_of_the_handshake(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    configure(ctl, receiver)
    verify = ctl.verify_push_url()["push"]
    again = ctl.replay_push(verify["id"])
    assert again["kind"] == "verify" and again["status"] == "accepted"
    first, second = receiver.received
    assert (first.method, second.method) == ("GET", "GET")
    assert first.query == second.query


def test_redeliver_is_a_fresh_duplicate(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    configure(ctl, receiver, encoding_aes_key=KEY, mode="secure", format="json")
    original = ctl.user_event("user_authorization_revoke", person="gus", revoke_info="6")
    duplicate = ctl.redeliver_push(original["id"])
    assert duplicate["redelivery_of"] == original["id"]
    assert duplicate["event"] == original["event"]  # same CreateTime: dedupe on it
    first, second = receiver.pushes()
    assert first.query["nonce"] != second.query["nonce"]
    assert first.parsed("json")["Encrypt"] != second.parsed("json")["Encrypt"]
    assert open_message(first, receiver.token, KEY, "json") == open_message(
        second, receiver.token, KEY, "json"
    )
    verify = ctl.verify_push_url()["push"]
    assert refused(lambda: ctl.redeliver_push(verify["id"])) == 409


# ----- the delivery log -------------------------------------------------------------------------


def test_push_log_filters_and_clear(ctl: EmulatorControl, receiver: PushReceiver) -> None:
    configure(ctl, receiver)
    ctl.verify_push_url()
    ctl.user_event("user_info_modified", person="h")
    ctl.user_event("user_authorization_cancellation", person="h")
    assert [p["id"] for p in ctl.pushes()] == [1, 2, 3]
    assert [p["id"] for p in ctl.pushes(kind="event")] == [2, 3]
    assert [p["id"] for p in ctl.pushes(event="user_info_modified")] == [2]
    assert ctl.pushes(appid=OTHER_APPID) == []
    record = ctl.pushes()[1]
    attempt = record["attempts"][0]
    assert set(attempt) == {
        "method",
        "url",
        "query",
        "headers",
        "body",
        "sent_at",
        "response",
        "accepted",
    }
    assert attempt["url"].startswith(receiver.push_url + "?signature=")
    assert set(attempt["response"]) == {"status", "body", "error", "elapsed"}
    ctl.clear_pushes()
    assert ctl.pushes() == []
    # Ids are never reused, so a delivery in flight while the log is cleared stays apart.
    assert ctl.user_event("user_info_modified", person="h")["id"] == 4


def test_push_control_routes(ctl: EmulatorControl, server: EmulatorServer) -> None:
    base = server.url + "/__emulator__/"
    assert requests.post(base + "pushes/abc/replay", timeout=5).status_code == 404
    assert requests.post(base + "pushes/1/resend", timeout=5).status_code == 404
    assert requests.get(base + "pushes/1/replay", timeout=5).status_code == 405
    assert requests.post(base + "pushes/1/replay", timeout=5).status_code == 404  # no push 1
