"""PUT /user/profile through WeChat's content security (msgSecCheck v2 on the
emulator): what passes is stored and shown in every session at once; what
does not is refused with its own slug and nothing is stored."""

from __future__ import annotations

import pytest

from support.apps import bearer

NICK = "小明🐱𠀀"


@pytest.fixture
def sessions(client, wechat):
    """A user with two live sessions (two devices)."""
    openid = wechat.login()["openid"]
    tokens = []
    for _ in range(2):
        code = wechat.login(openid=openid)["code"]
        tokens.append(client.post("/oauth/login", json={"code": code}).get_json()["data"]["token"])
    return openid, tokens


def put(client, token, **kwargs):
    return client.put("/user/profile", headers=bearer(token), **kwargs)


def info(client, token) -> dict:
    return client.get("/user/info", headers=bearer(token)).get_json()["data"]


@pytest.mark.parametrize("config_overrides", [{"LOGIN_DEDUP_WINDOW": 0}])
def test_a_nickname_that_passes_is_stored_and_every_session_shows_it(client, wechat, sessions):
    openid, tokens = sessions
    response = put(client, tokens[0], json={"nickName": f"  {NICK} ", "gender": 1, "city": "杭州"})
    assert response.status_code == 200, response.get_json()
    profile = response.get_json()["data"]
    assert (profile["nickName"], profile["gender"], profile["city"]) == (NICK, 1, "杭州")
    assert all(info(client, token)["nickName"] == NICK for token in tokens)
    calls = wechat.calls("msg_sec_check")
    assert [call["body"]["content"] for call in calls] == [NICK, "杭州"]
    assert all(
        (c["body"]["openid"], c["body"]["scene"], c["body"]["version"]) == (openid, 1, 2)
        for c in calls
    )


def test_form_bodies_work_too(client, user):
    _, token = user
    response = put(client, token, data={"nickName": NICK, "gender": "2"})
    assert response.get_json()["data"]["gender"] == 2


def test_an_unchanged_text_is_not_checked_again(client, wechat, user):
    _, token = user
    put(client, token, json={"nickName": NICK})
    put(client, token, json={"nickName": NICK, "gender": 1})
    assert len(wechat.calls("msg_sec_check")) == 1


def test_an_empty_region_field_clears_it_without_asking_wechat(client, wechat, user):
    _, token = user
    put(client, token, json={"city": "杭州"})
    response = put(client, token, json={"city": ""})
    assert response.get_json()["data"]["city"] is None
    assert len(wechat.calls("msg_sec_check")) == 1


def test_a_risky_nickname_is_422_with_its_label_and_nothing_is_stored(client, wechat, user):
    _, token = user
    wechat.set_rules(text={"risky": ["赌博"], "label": 20006})
    response = put(client, token, json={"nickName": "来赌博吧", "gender": 1})
    body = response.get_json()
    assert (response.status_code, body["error"]) == (422, "content_risky")
    assert body["data"] == {"field": "nickName", "label": 20006}
    assert info(client, token)["nickName"] is None
    assert info(client, token)["gender"] is None  # nothing of that request was stored


@pytest.mark.parametrize(
    ("config_overrides", "status", "slug"),
    [
        ({}, 422, "content_needs_review"),
        ({"PROFILE_REVIEW_POLICY": "reject"}, 422, "content_needs_review"),
        ({"PROFILE_REVIEW_POLICY": "accept"}, 200, None),
    ],
)
def test_a_review_verdict_follows_the_policy(client, wechat, user, status, slug):
    _, token = user
    wechat.set_rules(text={"review": ["边缘"]})
    response = put(client, token, json={"nickName": "边缘人"})
    assert response.status_code == status
    if slug:
        assert response.get_json()["error"] == slug
        assert info(client, token)["nickName"] is None
    else:
        assert info(client, token)["nickName"] == "边缘人"


@pytest.mark.parametrize(
    ("fault", "status", "slug"),
    [
        ({"drop": True, "times": 2}, 502, "wechat_unreachable"),
        ({"errcode": -1, "times": 2}, 503, "wechat_busy"),
        ({"delay": 3}, 504, "wechat_timeout"),
        ({"errcode": 44991}, 429, "wechat_rate_limited"),
        ({"body": "<html>nginx</html>"}, 502, "wechat_error"),
        ({"body": '{"errcode": 0, "result": {"suggest": "maybe"}}'}, 502, "wechat_error"),
    ],
)
def test_when_wechat_fails_nothing_is_stored(client, wechat, user, fault, status, slug):
    _, token = user
    wechat.fault("msg_sec_check", **fault)
    response = put(client, token, json={"nickName": NICK})
    assert (response.status_code, response.get_json()["error"]) == (status, slug)
    assert info(client, token)["nickName"] is None


def test_a_user_who_has_not_visited_lately_is_asked_to_log_in(client, wechat, user):
    _, token = user
    wechat.advance(2 * 3600 + 60)  # WeChat's visit record lasts two hours
    response = put(client, token, json={"nickName": NICK})
    assert (response.status_code, response.get_json()["error"]) == (409, "wechat_visit_expired")
