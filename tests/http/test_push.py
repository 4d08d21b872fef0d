"""/wechat/push: pushes built the way WeChat builds them (the emulator's own
signing and encryption, not the service's), in every mode and format."""

from __future__ import annotations

import time
from typing import Any

import pytest

from blueprints import GRAPH
from support.apps import bearer, identity_of
from support.constants import APPID, PUSH_AES_KEY, PUSH_TOKEN
from wechat_emulator import crypto
from wechat_emulator.push import Outgoing, PushConfig, signed_post, verification_get

MODES = ["plaintext", "compatible", "secure"]
FORMATS = ["json", "xml"]


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"WECHAT_PUSH_AES_KEY": PUSH_AES_KEY}


def outgoing(
    message: dict[str, Any],
    *,
    mode: str = "plaintext",
    fmt: str = "json",
    token: str = PUSH_TOKEN,
    appid: str = APPID,
    timestamp: int | None = None,
    url: str = "http://localhost/wechat/push",
) -> Outgoing:
    config = PushConfig(url=url, token=token, encoding_aes_key=PUSH_AES_KEY, mode=mode, format=fmt)
    return signed_post(
        config, appid, "gh_test", message, "oPushService", timestamp or int(time.time())
    )


def send(client, request: Outgoing):
    path = request.url.removeprefix("http://localhost")
    return client.post(path, query_string=request.query, data=request.body, headers=request.headers)


def event(name: str, openid: str, **fields: Any) -> dict[str, Any]:
    return {
        "ToUserName": "gh_test",
        "FromUserName": "oPushService",
        "CreateTime": int(time.time()),
        "MsgType": "event",
        "Event": name,
        "OpenID": openid,
        "AppID": APPID,
        **fields,
    }


@pytest.fixture
def named(client, wechat, user):
    """A user with a nickname, a phone number and two sessions."""
    openid, token = user
    sealed = wechat.encrypt(openid, data={"nickName": "小明", "avatarUrl": "https://x/a.jpg"})
    body = {"encryptedData": sealed["encryptedData"], "iv": sealed["iv"]}
    client.post("/user/bindinfo", json=body, headers=bearer(token))
    code = wechat.phone_code(openid)["code"]
    client.post("/user/bindphone", json={"code": code}, headers=bearer(token))
    return openid, token


def profile(client, token) -> dict:
    return client.get("/user/info", headers=bearer(token)).get_json()["data"]


# -- the handshake -------------------------------------------------------------------


def test_the_console_check_gets_its_echostr_back(client):
    config = PushConfig(url="http://localhost/wechat/push", token=PUSH_TOKEN)
    request = verification_get(config, int(time.time()), "echo-4815162342")
    response = client.get("/wechat/push", query_string=request.query)
    assert (response.status_code, response.get_data(as_text=True)) == (200, "echo-4815162342")
    assert response.mimetype == "text/plain"


def test_a_handshake_with_another_token_is_refused(client):
    config = PushConfig(url="http://localhost/wechat/push", token="SomeoneElse1")
    request = verification_get(config, int(time.time()), "echo")
    response = client.get("/wechat/push", query_string=request.query)
    assert (response.status_code, response.get_json()["error"]) == (403, "push_signature_invalid")


# -- events in every mode and format ---------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_mode_and_format_is_read(client, named, mode, fmt):
    openid, token = named
    response = send(client, outgoing(event("user_info_modified", openid), mode=mode, fmt=fmt))
    assert (response.status_code, response.get_data(as_text=True)) == (200, "success")
    after = profile(client, token)
    assert (after["nickName"], after["avatarUrl"]) == (None, None)
    assert after["phoneNumber"] == "13800138000"


@pytest.mark.parametrize(
    ("revoke_info", "gone", "kept"),
    [
        ("8", ["phoneNumber", "purePhoneNumber", "countryCode"], ["nickName", "avatarUrl"]),
        ("6", ["nickName", "avatarUrl"], ["phoneNumber"]),
        ("19", ["nickName"], ["avatarUrl", "phoneNumber"]),
        ("20", ["avatarUrl"], ["nickName", "phoneNumber"]),
        ("6,8", ["nickName", "avatarUrl", "phoneNumber"], []),
        ("1", [], ["nickName", "avatarUrl", "phoneNumber"]),  # a licence plate: never stored
    ],
)
def test_a_revocation_erases_exactly_what_it_names(client, named, revoke_info, gone, kept):
    openid, token = named
    before = profile(client, token)
    message = event("user_authorization_revoke", openid, RevokeInfo=revoke_info)
    assert send(client, outgoing(message)).status_code == 200
    after = profile(client, token)
    assert all(after[name] is None for name in gone)
    assert all(after[name] == before[name] for name in kept)


def test_a_cancellation_deletes_the_account(app, client, named):
    openid, token = named
    assert (
        send(client, outgoing(event("user_authorization_cancellation", openid))).status_code == 200
    )
    assert client.get("/user/info", headers=bearer(token)).status_code == 401
    assert identity_of(app, openid) is None


def version_of(app, openid: str) -> int:
    accounts = app.extensions[GRAPH].login.accounts
    return accounts.get(identity_of(app, openid).account_id).profile_version


def test_a_duplicate_event_changes_nothing_twice(app, client, named):
    openid, _ = named
    message = event("user_authorization_revoke", openid, RevokeInfo="8")
    assert send(client, outgoing(message)).status_code == 200
    version = version_of(app, openid)
    again = send(client, outgoing(message))  # WeChat's retry: fresh nonce, same event
    assert (again.status_code, again.get_data(as_text=True)) == (200, "success")
    assert version_of(app, openid) == version


@pytest.mark.parametrize(
    "message",
    [
        {"MsgType": "event", "Event": "some_future_event"},
        {"MsgType": "text", "Content": "hello"},
        {"MsgType": "event", "Event": "user_info_modified", "OpenID": "oNobody", "AppID": APPID},
        {"MsgType": "event", "Event": "wxa_media_check", "trace_id": "nobody-waits-for-it"},
    ],
)
def test_what_concerns_nobody_is_answered_success(client, message):
    response = send(client, outgoing({"ToUserName": "gh_test", "CreateTime": 1, **message}))
    assert (response.status_code, response.get_data(as_text=True)) == (200, "success")


def test_an_event_for_another_app_changes_nothing(client, named):
    openid, token = named
    message = event("user_info_modified", openid, AppID="wxsomeoneelse0000")
    assert send(client, outgoing(message)).status_code == 200
    assert profile(client, token)["nickName"] == "小明"


# -- refused ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_forged_push_is_refused_and_changes_nothing(client, named, mode):
    openid, token = named
    request = outgoing(event("user_info_modified", openid), mode=mode, token="ForgedToken9")
    response = send(client, request)
    assert (response.status_code, response.get_json()["error"]) == (403, "push_signature_invalid")
    assert profile(client, token)["nickName"] == "小明"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda q: q.pop("signature"),
        lambda q: q.update(signature="0" * 40),
        lambda q: q.update(nonce=q["nonce"] + "1"),
        lambda q: q.pop("timestamp"),
        lambda q: q.update(timestamp="yesterday"),
    ],
)
def test_a_tampered_query_is_refused(client, named, tamper):
    openid, token = named
    request = outgoing(event("user_info_modified", openid))
    tamper(request.query)
    assert send(client, request).status_code == 403
    assert profile(client, token)["nickName"] == "小明"


def test_a_tampered_body_is_refused_in_secure_mode(client, named):
    openid, token = named
    request = outgoing(event("user_info_modified", openid), mode="secure")
    request.body = request.body.replace(b'"Encrypt":"', b'"Encrypt":"AAAA')
    assert send(client, request).status_code in (400, 403)
    assert profile(client, token)["nickName"] == "小明"


@pytest.mark.parametrize("seconds", [-3600, 3600])
def test_a_push_from_another_time_is_refused(client, named, seconds):
    openid, _ = named
    request = outgoing(event("user_info_modified", openid), timestamp=int(time.time()) + seconds)
    response = send(client, request)
    assert (response.status_code, response.get_json()["error"]) == (403, "push_expired")


@pytest.mark.parametrize("mode", MODES)
def test_a_replayed_push_is_refused(client, named, mode):
    openid, _ = named
    request = outgoing(event("user_authorization_revoke", openid, RevokeInfo="8"), mode=mode)
    assert send(client, request).status_code == 200
    replay = send(client, request)
    assert (replay.status_code, replay.get_json()["error"]) == (409, "push_replayed")


def test_a_push_encrypted_for_another_app_is_refused(client, named):
    openid, token = named
    request = outgoing(
        event("user_info_modified", openid), mode="secure", appid="wxotherapp00000000"
    )
    response = send(client, request)
    assert (response.status_code, response.get_json()["error"]) == (400, "push_malformed")
    assert profile(client, token)["nickName"] == "小明"


@pytest.mark.parametrize("config_overrides", [{"WECHAT_PUSH_AES_KEY": ""}])
def test_an_encrypted_push_without_a_key_is_refused(client, named):
    openid, _ = named
    response = send(client, outgoing(event("user_info_modified", openid), mode="secure"))
    assert (response.status_code, response.get_json()["error"]) == (400, "push_malformed")


@pytest.mark.parametrize("body", [b"", b"not a message", b"[1,2]", b"<xml><a>"])
def test_an_unreadable_body_with_a_good_signature_is_push_malformed(client, body):
    request = outgoing({"MsgType": "event"})
    request.body = body
    response = send(client, request)
    assert (response.status_code, response.get_json()["error"]) == (400, "push_malformed")


def test_the_signature_is_not_logged(client, named, caplog):
    openid, _ = named
    request = outgoing(event("user_info_modified", openid), mode="secure")
    send(client, request)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for value in (request.query["msg_signature"], request.query["nonce"], PUSH_AES_KEY):
        assert value not in logged


def test_the_emulators_vectors_and_ours_agree():
    """The service's signature matches the one the emulator (and WeChat's docs) compute."""
    from services.crypto.push import signature

    assert signature("AAAAA", "1714036504", "1514711492") == crypto.push_signature(
        "AAAAA", "1714036504", "1514711492"
    )
