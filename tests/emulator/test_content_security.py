"""msgSecCheck v2 and mediaCheckAsync v2 (reference §9, §10): check order and errcodes,
verdict rules, the 2-hour visit rule, and the asynchronous verdict pushed to the service."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

import pytest
import requests

from dev.stack import free_port
from support.emulator import (
    APPID,
    OTHER_APPID,
    OTHER_SECRET,
    TIMEOUT,
    ContentChecks,
    PushReceiver,
    app_of,
    assert_error,
    errcode,
    event_envelope,
    receiver_decrypt,
    refused,
    sha1_signature,
    xml_to_dict,
)
from wechat_emulator import EmulatorControl, EmulatorControlError, EmulatorServer
from wechat_emulator.crypto import new_encoding_aes_key

TRACE_ID = r"[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}"
PNG = b"\x89PNG\r\n\x1a\n" + b"emulator test image" * 10


def text_body(openid: str, **overrides: Any) -> dict[str, Any]:
    """What wechatpy sends for v2: optional fields as JSON null."""
    return {
        "content": "hello world",
        "version": 2,
        "scene": 2,
        "openid": openid,
        "title": None,
        "nickname": None,
        "signature": None,
        **overrides,
    }


def media_body(openid: str, url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "media_url": url,
        "media_type": 2,
        "version": 2,
        "scene": 1,
        "openid": openid,
        **overrides,
    }


# ----- msgSecCheck --------------------------------------------------------------------------


def test_text_pass_shape(ctl: EmulatorControl, cs: ContentChecks) -> None:
    openid = ctl.login()["openid"]
    response = cs.post("/wxa/msg_sec_check", text_body(openid), access_token=cs.token())
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain"
    reply = response.json()
    assert list(reply) == ["errcode", "errmsg", "result", "detail", "trace_id"]
    assert reply["errcode"] == 0 and reply["errmsg"] == "ok"
    assert reply["result"] == {"suggest": "pass", "label": 100}
    assert reply["detail"] == [
        {"strategy": "content_model", "errcode": 0, "suggest": "pass", "label": 100, "prob": 90}
    ]
    assert re.fullmatch(TRACE_ID, reply["trace_id"])


def test_text_rules_risky_review_and_keywords(ctl: EmulatorControl, cs: ContentChecks) -> None:
    rules = ctl.set_rules(text={"risky": ["badword", "坏话"], "review": ["maybe"], "label": 20002})
    assert rules["text"] == {"risky": ["badword", "坏话"], "review": ["maybe"], "label": 20002}
    openid, token = ctl.login()["openid"], cs.token()

    risky = cs.msg_sec_check(token, text_body(openid, content="a BadWord here"))
    assert risky["errcode"] == 0  # a risky verdict is still errcode 0
    assert risky["result"] == {"suggest": "risky", "label": 20002}
    assert risky["detail"] == [
        {"strategy": "content_model", "errcode": 0, "suggest": "risky", "label": 20002, "prob": 90},
        {
            "strategy": "keyword",
            "errcode": 0,
            "suggest": "risky",
            "label": 20002,
            "level": 90,
            "keyword": "badword",
        },
    ]

    review = cs.msg_sec_check(token, text_body(openid, content="maybe so"))
    assert review["result"] == {"suggest": "review", "label": 20002}
    assert review["detail"][1]["keyword"] == "maybe"

    both = cs.msg_sec_check(token, text_body(openid, content="maybe 说坏话"))
    assert both["result"]["suggest"] == "risky"
    assert [(d["suggest"], d.get("keyword")) for d in both["detail"]] == [
        ("risky", None),
        ("risky", "坏话"),
        ("review", "maybe"),
    ]
    clean = cs.msg_sec_check(token, text_body(openid, content="fine"))
    assert clean["result"] == {"suggest": "pass", "label": 100}


def test_text_plain_without_charset_quirk(ctl: EmulatorControl, cs: ContentChecks) -> None:
    """Raw UTF-8 in a `text/plain` reply with no charset: requests falls back to
    ISO-8859-1, so a client must decode the bytes as UTF-8 itself."""
    ctl.set_rules(text={"risky": ["坏话"]})
    openid = ctl.login()["openid"]
    body = text_body(openid, content="说坏话")
    response = cs.post("/wxa/msg_sec_check", body, access_token=cs.token())
    assert response.headers["Content-Type"] == "text/plain"
    assert "坏话".encode() in response.content  # not \u escapes
    assert response.json()["detail"][1]["keyword"] != "坏话"
    assert json.loads(response.content)["detail"][1]["keyword"] == "坏话"


@pytest.mark.parametrize(
    ("overrides", "suggest"),
    [
        ({"nickname": "badword"}, "risky"),
        ({"title": "badword"}, "risky"),
        ({"signature": "badword", "scene": 1}, "risky"),
        # signature only counts in scene 1 (资料).
        ({"signature": "badword", "scene": 2}, "pass"),
        ({"version": "2", "scene": "3"}, "pass"),  # WxJava types them as strings
        ({"title": "t", "nickname": "n", "signature": "s"}, "pass"),
    ],
)
def test_text_fields_checked(
    ctl: EmulatorControl, cs: ContentChecks, overrides: dict[str, Any], suggest: str
) -> None:
    ctl.set_rules(text={"risky": ["badword"]})
    openid = ctl.login()["openid"]
    reply = cs.msg_sec_check(cs.token(), text_body(openid, **overrides))
    assert reply["result"]["suggest"] == suggest
    if suggest == "risky":
        assert reply["result"]["label"] == 21000  # the default label of a rule


def test_text_v1_when_version_is_absent(ctl: EmulatorControl, cs: ContentChecks) -> None:
    ctl.set_rules(text={"risky": ["badword"], "review": ["maybe"]})
    token = cs.token()
    # v1 has no openid, no scene, no verdict object: errcode 87014 flags risky content.
    assert cs.msg_sec_check(token, {"content": "fine"}) == {"errcode": 0, "errmsg": "ok"}
    assert cs.msg_sec_check(token, {"content": "maybe"}) == {"errcode": 0, "errmsg": "ok"}
    assert_error(cs.msg_sec_check(token, {"content": "badword"}), 87014, "risky content")


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("token_missing", 41001, "access_token missing"),
        ("token_unknown", 40001, "invalid credential, access_token is invalid or not latest"),
        ("token_expired", 42001, "access_token expired"),
        ("get", 43002, "require POST method"),
        ("empty_body", 44002, "empty post data"),
        ("not_json", 47001, "data format error"),
        ("json_array", 47001, "data format error"),
        ("content_missing", 47001, "data format error"),
        ("content_number", 47001, "data format error"),
        ("version_3", 47001, "data format error"),
        ("title_number", 47001, "data format error"),
        ("scene_0", 40129, "invalid scene"),
        ("scene_5", 40129, "invalid scene"),
        ("scene_missing", 40129, "invalid scene"),
        ("scene_bool", 40129, "invalid scene"),
        ("openid_missing", 40003, "invalid openid"),
        ("openid_unknown", 40003, "invalid openid"),
        ("openid_other_app", 43104, "appid and openid not match"),
        ("not_visited", 61010, "code is expired"),
        ("content_2501", 47001, "data format error"),
        # The order: token before method, scene before openid, openid before length.
        ("get_no_token", 41001, "access_token missing"),
        ("bad_scene_unknown_openid", 40129, "invalid scene"),
        ("unknown_openid_long_content", 40003, "invalid openid"),
    ],
)
def test_text_errors(
    ctl: EmulatorControl,
    cs: ContentChecks,
    other_app: str,
    case: str,
    code: int,
    message: str,
) -> None:
    openid = ctl.login()["openid"]
    token = cs.token()
    body: Any = text_body(openid)
    if case == "token_expired":
        ctl.advance(7200)
        token_used = token
    else:
        token_used = {"token_missing": None, "get_no_token": None}.get(case, token)
        if case == "token_unknown":
            token_used = "no-such-token"
    raw: bytes | None = None
    updates: dict[str, Any] = {
        "content_missing": {"content": None},
        "content_number": {"content": 5},
        "version_3": {"version": 3},
        "title_number": {"title": 1},
        "scene_0": {"scene": 0},
        "scene_5": {"scene": 5},
        "scene_missing": {"scene": None},
        "scene_bool": {"scene": True},
        "openid_missing": {"openid": None},
        "openid_unknown": {"openid": "oUnknown00000000000000000000"},
        "openid_other_app": {"openid": ctl.login(appid=other_app)["openid"]},
        "content_2501": {"content": "字" * 2501},
        "bad_scene_unknown_openid": {"scene": 9, "openid": "oUnknown00000000000000000000"},
        "unknown_openid_long_content": {
            "openid": "oUnknown00000000000000000000",
            "content": "x" * 3000,
        },
    }
    body.update(updates.get(case, {}))
    if case == "not_visited":
        ctl.advance(7201)
        token_used = cs.token()
    if case == "empty_body":
        raw = b""
    elif case == "not_json":
        raw = b"{content:"
    elif case == "json_array":
        raw = b"[]"
    if case in ("get", "get_no_token"):
        reply = cs.get("/wxa/msg_sec_check", access_token=token_used).json()
    elif raw is not None:
        reply = cs.post("/wxa/msg_sec_check", data=raw, access_token=token_used).json()
    else:
        reply = cs.msg_sec_check(token_used, body)
    assert_error(reply, code, message)


def test_text_length_limit_is_2500_characters(ctl: EmulatorControl, cs: ContentChecks) -> None:
    openid, token = ctl.login()["openid"], cs.token()
    assert errcode(cs.msg_sec_check(token, text_body(openid, content="字" * 2500))) == 0
    assert errcode(cs.msg_sec_check(token, text_body(openid, content="字" * 2501))) == 47001


def test_visit_window_is_two_hours(ctl: EmulatorControl, cs: ContentChecks) -> None:
    openid = ctl.login()["openid"]
    ctl.advance(7199)
    token = cs.token()
    assert errcode(cs.msg_sec_check(token, text_body(openid))) == 0  # within 2 hours
    ctl.advance(2)
    assert errcode(cs.msg_sec_check(token, text_body(openid))) == 61010
    ctl.login(openid=openid)  # a new visit
    assert errcode(cs.msg_sec_check(token, text_body(openid))) == 0


def test_person_visit_counts_per_app(ctl: EmulatorControl, cs: ContentChecks) -> None:
    ctl.add_app(OTHER_APPID, OTHER_SECRET)
    here = ctl.login(person="alice")["openid"]
    there = ctl.login(person="alice", appid=OTHER_APPID)["openid"]
    token = cs.token()
    assert errcode(cs.msg_sec_check(token, text_body(here))) == 0
    # alice's openid in the other app is not an openid of this app.
    assert errcode(cs.msg_sec_check(token, text_body(there))) == 43104


def test_text_calls_logged_and_slashes_escaped(ctl: EmulatorControl, cs: ContentChecks) -> None:
    ctl.set_rules(text={"risky": ["http://bad"]})
    openid, token = ctl.login()["openid"], cs.token()
    response = cs.post(
        "/wxa/msg_sec_check", text_body(openid, content="see http://bad/x"), access_token=token
    )
    assert '"keyword":"http:\\/\\/bad"' in response.text
    cs.msg_sec_check(token, text_body(openid, scene=7))
    calls = ctl.calls("msg_sec_check")
    assert [c["errcode"] for c in calls] == [0, 40129]
    assert calls[0]["method"] == "POST"
    assert calls[0]["body"]["content"] == "see http://bad/x"
    assert calls[0]["query"] == {"access_token": token}


@pytest.mark.parametrize(
    "rules",
    [
        {"text": {"risky": "badword"}},
        {"text": {"risky": [""]}},
        {"text": {"risky": [1]}},
        {"text": {"label": 100}},
        {"text": {"label": 99999}},
        {"text": {"label": "20002"}},
        {"text": {"words": []}},
        {"media": {"label": 10001}},  # not a media label
        {"media": "x"},
        {"other": {}},
    ],
)
def test_bad_rules_rejected(ctl: EmulatorControl, rules: dict[str, Any]) -> None:
    assert refused(lambda: ctl._call("POST", "rules", rules)) == 400


def test_rules_sections_replace_and_clear(ctl: EmulatorControl) -> None:
    ctl.set_rules(text={"risky": ["a"]}, media={"review": ["b"], "label": 20006})
    ctl.set_rules(text={"review": ["c"]})
    assert ctl.rules() == {
        "text": {"risky": [], "review": ["c"], "label": 21000},
        "media": {"risky": [], "review": ["b"], "label": 20006},
    }
    cleared = ctl.clear_rules()
    assert cleared["media"] == {"risky": [], "review": [], "label": 21000}
    ctl.set_rules(text={"risky": ["z"]})
    ctl.reset()
    assert ctl.rules()["text"]["risky"] == []


# ----- mediaCheckAsync: the synchronous answer -------------------------------------------------


def test_media_sync_shape(ctl: EmulatorControl, cs: ContentChecks) -> None:
    openid = ctl.login()["openid"]
    response = cs.post(
        "/wxa/media_check_async",
        media_body(openid, "http://127.0.0.1:9/x.png"),
        access_token=cs.token(),
    )
    assert response.headers["Content-Type"] == "text/plain"
    reply = response.json()
    assert list(reply) == ["errcode", "errmsg", "trace_id"]
    assert reply["errcode"] == 0 and reply["errmsg"] == "ok"
    assert re.fullmatch(TRACE_ID, reply["trace_id"])
    ctl.wait_media_checks()


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("token_missing", 41001, "access_token missing"),
        ("token_unknown", 40001, "invalid credential, access_token is invalid or not latest"),
        ("get", 43002, "require POST method"),
        ("empty_body", 44002, "empty post data"),
        ("not_json", 47001, "data format error"),
        ("url_missing", 47001, "data format error"),
        ("version_missing", 47001, "data format error"),
        ("version_1", 47001, "data format error"),
        ("media_type_3", 40004, "invalid media type"),
        ("media_type_missing", 40004, "invalid media type"),
        ("scene_0", 40129, "invalid scene"),
        ("openid_missing", 40003, "invalid openid"),
        ("openid_unknown", 40003, "invalid openid"),
        ("openid_other_app", 43104, "appid and openid not match"),
        ("not_visited", 61010, "code is expired"),
    ],
)
def test_media_errors(
    ctl: EmulatorControl, cs: ContentChecks, other_app: str, case: str, code: int, message: str
) -> None:
    openid = ctl.login()["openid"]
    body = media_body(openid, "http://127.0.0.1:9/x.png")
    body.update(
        {
            "url_missing": {"media_url": None},
            "version_missing": {"version": None},
            "version_1": {"version": 1},
            "media_type_3": {"media_type": 3},
            "media_type_missing": {"media_type": None},
            "scene_0": {"scene": 0},
            "openid_missing": {"openid": None},
            "openid_unknown": {"openid": "oUnknown00000000000000000000"},
            "openid_other_app": {"openid": ctl.login(appid=other_app)["openid"]},
        }.get(case, {})
    )
    if case == "not_visited":
        ctl.advance(7201)
    token = {"token_missing": None, "token_unknown": "nope"}.get(case, cs.token())
    if case == "get":
        reply = cs.get("/wxa/media_check_async", access_token=token).json()
    elif case in ("empty_body", "not_json"):
        data = b"" if case == "empty_body" else b"nope"
        reply = cs.post("/wxa/media_check_async", data=data, access_token=token).json()
    else:
        reply = cs.media_check(token, body)
    assert_error(reply, code, message)
    assert ctl.media_checks() == []  # nothing was queued


# ----- mediaCheckAsync: the verdict, pushed ----------------------------------------------------


def configure(ctl: EmulatorControl, receiver: PushReceiver, **kw: Any) -> None:
    ctl.configure_push(receiver.push_url, receiver.token, format=kw.pop("format", "json"), **kw)


def test_media_verdict_is_pushed(
    ctl: EmulatorControl, cs: ContentChecks, receiver: PushReceiver
) -> None:
    configure(ctl, receiver)
    url = receiver.add_media("cat.png", PNG)
    openid = ctl.login()["openid"]
    trace_id = cs.media_check(cs.token(), media_body(openid, url))["trace_id"]

    (check,) = ctl.wait_media_checks()
    assert check["trace_id"] == trace_id
    assert check["status"] == "done"
    assert check["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert check["size"] == len(PNG)
    app = app_of(ctl)
    event = check["event"]
    assert event == {
        **event_envelope(ctl, event, "wxa_media_check"),
        "appid": APPID,
        "trace_id": trace_id,
        "version": 2,
        "errcode": 0,
        "errmsg": "ok",
        "result": {"suggest": "pass", "label": 100},
        "detail": [
            {"strategy": "content_model", "errcode": 0, "suggest": "pass", "label": 100, "prob": 90}
        ],
    }
    assert re.fullmatch(r"gh_[0-9a-f]{12}", app["username"])
    assert re.fullmatch(r"o[A-Za-z0-9_-]{27}", event["FromUserName"])
    assert event["FromUserName"] != openid  # the platform push service, not the user
    assert abs(event["CreateTime"] - time.time()) < 60

    # WeChat really fetched the file, then really posted the event.
    fetches = [r for r in receiver.received if r.path == "/media/cat.png"]
    assert len(fetches) == 1 and fetches[0].method == "GET"
    (delivered,) = receiver.pushes()
    assert delivered.method == "POST"
    assert delivered.parsed("json") == event
    query = delivered.query
    assert query["signature"] == sha1_signature(receiver.token, query["timestamp"], query["nonce"])
    assert check["push"]["status"] == "accepted"
    assert check["push"]["trace_id"] == trace_id


@pytest.mark.parametrize(
    ("rules", "name", "suggest", "label"),
    [
        ({"risky": ["SHA"], "label": 20002}, "a.png", "risky", 20002),
        ({"review": ["SHA"], "label": 20006}, "a.png", "review", 20006),
        ({"risky": ["/nsfw/"]}, "nsfw/a.png", "risky", 21000),
        ({"review": ["a.png"], "risky": ["b.png"]}, "a.png", "review", 21000),
        ({"risky": ["0" * 64]}, "a.png", "pass", 100),
    ],
)
def test_media_rules(
    ctl: EmulatorControl,
    cs: ContentChecks,
    receiver: PushReceiver,
    rules: dict[str, Any],
    name: str,
    suggest: str,
    label: int,
) -> None:
    digest = hashlib.sha256(PNG).hexdigest()
    for key in ("risky", "review"):
        rules[key] = [digest if entry == "SHA" else entry for entry in rules.get(key, [])]
    ctl.set_rules(media=rules)
    configure(ctl, receiver)
    url = receiver.add_media(name, PNG)
    openid = ctl.login()["openid"]
    cs.media_check(cs.token(), media_body(openid, url))
    (check,) = ctl.wait_media_checks()
    assert check["event"]["result"] == {"suggest": suggest, "label": label}
    assert check["event"]["detail"][0]["suggest"] == suggest


@pytest.mark.parametrize("failure", ["404", "500", "refused", "too_large", "file"])
def test_media_download_failures(
    ctl: EmulatorControl, cs: ContentChecks, receiver: PushReceiver, failure: str
) -> None:
    configure(ctl, receiver)
    ctl.set_rules(media={"risky": ["gone"]})  # a URL rule cannot beat a failed download
    if failure == "refused":
        url = f"http://127.0.0.1:{free_port()}/gone.png"
    elif failure == "file":
        url = "file:///etc/hostname#gone"  # only http(s) is downloaded
    elif failure == "too_large":
        url = receiver.add_media("gone.png", b"\0" * (10 * 1024 * 1024 + 1))
    else:
        url = receiver.add_media("gone.png", b"nope", status=int(failure))
    openid = ctl.login()["openid"]
    cs.media_check(cs.token(), media_body(openid, url))
    (check,) = ctl.wait_media_checks()
    event = check["event"]
    assert (event["errcode"], event["errmsg"]) == (-1008, "download failed")
    assert event["detail"][0]["errcode"] == -1008
    assert check["download_error"]
    assert check["sha256"] is None
    assert receiver.pushes()[0].parsed("json")["errcode"] == -1008


def test_media_hold_and_release(
    ctl: EmulatorControl, cs: ContentChecks, receiver: PushReceiver
) -> None:
    configure(ctl, receiver)
    assert ctl.media_settings(hold=True) == {"settings": {"delay": 0.0, "hold": True}}
    url = receiver.add_media("a.png", PNG)
    openid, token = ctl.login()["openid"], cs.token()
    first = cs.media_check(token, media_body(openid, url))["trace_id"]
    second = cs.media_check(token, media_body(openid, url))["trace_id"]
    assert [c["status"] for c in ctl.media_checks()] == ["held", "held"]

    assert refused(lambda: ctl.wait_media_checks()) == 409
    assert receiver.pushes() == []  # nothing was fetched or sent while held
    assert not [r for r in receiver.received if r.path.startswith("/media/")]

    assert ctl.release_media_checks(first) == [first]
    with pytest.raises(EmulatorControlError):
        ctl.wait_media_checks()  # the second is still held
    statuses = {c["trace_id"]: c["status"] for c in ctl.media_checks()}
    assert statuses[second] == "held"
    checks = ctl.wait_media_checks(release=True)
    assert [c["trace_id"] for c in checks] == [first, second]
    assert all(c["status"] == "done" for c in checks)
    assert len(receiver.pushes()) == 2
    assert refused(lambda: ctl.release_media_checks(first)) == 409
    assert refused(lambda: ctl.release_media_checks("no-such-trace")) == 404


def test_media_delay(ctl: EmulatorControl, cs: ContentChecks, receiver: PushReceiver) -> None:
    configure(ctl, receiver)
    ctl.media_settings(delay=0.3)
    url = receiver.add_media("a.png", PNG)
    openid = ctl.login()["openid"]
    started = time.monotonic()
    cs.media_check(cs.token(), media_body(openid, url))
    assert ctl.media_checks()[0]["status"] in ("queued", "running")
    ctl.wait_media_checks()
    assert time.monotonic() - started >= 0.3
    ctl.media_settings(delay=0)
    cs.media_check(cs.token(), media_body(openid, url))
    assert len(ctl.wait_media_checks()) == 2


def test_media_wait_times_out(
    ctl: EmulatorControl, cs: ContentChecks, receiver: PushReceiver
) -> None:
    configure(ctl, receiver)
    ctl.media_settings(delay=5)
    openid = ctl.login()["openid"]
    cs.media_check(cs.token(), media_body(openid, receiver.add_media("a.png", PNG)))
    assert refused(lambda: ctl.wait_media_checks(timeout=0.2)) == 504
    ctl.reset()  # the pending check is dropped and its worker wakes up


def test_media_without_push_config(
    ctl: EmulatorControl, cs: ContentChecks, receiver: PushReceiver
) -> None:
    openid = ctl.login()["openid"]
    cs.media_check(cs.token(), media_body(openid, receiver.add_media("a.png", PNG)))
    (check,) = ctl.wait_media_checks()
    assert check["status"] == "done"
    assert check["push"] is None
    assert "no push configuration" in check["error"]
    assert check["event"]["result"] == {"suggest": "pass", "label": 100}


def test_reset_drops_held_checks(
    ctl: EmulatorControl, cs: ContentChecks, receiver: PushReceiver
) -> None:
    configure(ctl, receiver)
    ctl.media_settings(hold=True)
    openid = ctl.login()["openid"]
    cs.media_check(cs.token(), media_body(openid, receiver.add_media("a.png", PNG)))
    ctl.reset()
    assert ctl.media_checks() == []
    assert ctl.wait_media_checks() == []
    assert ctl.pushes() == []


def test_media_calls_logged(ctl: EmulatorControl, cs: ContentChecks) -> None:
    openid = ctl.login()["openid"]
    cs.media_check(cs.token(), media_body(openid, "http://127.0.0.1:9/x", media_type=5))
    (call,) = ctl.calls("media_check_async")
    assert call["errcode"] == 40004
    assert call["body"]["media_type"] == 5


# ----- faults on the new endpoints --------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["msg_sec_check", "media_check_async"])
def test_faults_cover_content_security(
    ctl: EmulatorControl, cs: ContentChecks, server: EmulatorServer, endpoint: str
) -> None:
    openid = ctl.login()["openid"]
    token = cs.token()

    def call() -> dict[str, Any]:
        if endpoint == "msg_sec_check":
            return cs.msg_sec_check(token, text_body(openid))
        return cs.media_check(token, media_body(openid, "http://127.0.0.1:9/x"))

    ctl.fault(endpoint, errcode=45009)
    assert_error(call(), 45009, "reach max api daily quota limit")
    ctl.fault(endpoint, delay=0.2, errcode=-1)
    started = time.monotonic()
    assert errcode(call()) == -1
    assert time.monotonic() - started >= 0.2
    ctl.fault(endpoint, drop=True)
    with pytest.raises(requests.ConnectionError):
        call()
    assert errcode(call()) == 0
    assert [c["errcode"] for c in ctl.calls(endpoint)] == [45009, -1, None, 0]
    assert len(ctl.media_checks()) == (1 if endpoint == "media_check_async" else 0)
    ctl.wait_media_checks()
    requests.get(server.url + "/__emulator__/calls", timeout=TIMEOUT)


def test_media_event_in_secure_xml(
    ctl: EmulatorControl, cs: ContentChecks, receiver: PushReceiver
) -> None:
    key = new_encoding_aes_key()
    configure(ctl, receiver, encoding_aes_key=key, mode="secure", format="xml")
    ctl.set_rules(media={"risky": ["bad.png"], "label": 20002})
    openid = ctl.login()["openid"]
    cs.media_check(cs.token(), media_body(openid, receiver.add_media("bad.png", PNG)))
    (check,) = ctl.wait_media_checks()
    (received,) = receiver.pushes()
    envelope = xml_to_dict(received.body)
    assert list(envelope) == ["ToUserName", "Encrypt"]
    plain, appid = receiver_decrypt(envelope["Encrypt"], key)
    assert appid == APPID
    assert plain.startswith(b"<xml><ToUserName><![CDATA[gh_")
    message = xml_to_dict(plain)
    assert message["Event"] == "wxa_media_check"
    assert message["trace_id"] == check["trace_id"]
    assert message["result"] == {"suggest": "risky", "label": "20002"}
    assert message["detail"] == {  # one <detail> element (a list when there are several)
        "strategy": "content_model",
        "errcode": "0",
        "suggest": "risky",
        "label": "20002",
        "prob": "90",
    }
    assert b"<detail><strategy><![CDATA[content_model]]></strategy>" in plain
