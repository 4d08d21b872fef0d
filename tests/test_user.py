"""GET /user/info: the session from a Cookie or Bearer header becomes g.user."""

from __future__ import annotations

import pytest

from helpers import bearer, cookie
from services.redis_store import Keys

PROFILE_FIELDS = [
    "nickName",
    "avatarUrl",
    "gender",
    "city",
    "province",
    "country",
    "language",
    "phoneNumber",
    "purePhoneNumber",
    "countryCode",
]


@pytest.mark.parametrize("present", [cookie, bearer])
def test_info_for_a_new_user_is_all_null(client, login, present):
    response = client.get("/user/info", headers=present(login()))
    assert response.status_code == 200
    body = response.get_json()
    assert body["code"] == 0
    assert list(body["data"]) == PROFILE_FIELDS
    assert set(body["data"].values()) == {None}


@pytest.mark.parametrize(
    "header",
    [
        "a=1; sid={token}; b=2",
        "sid={token}",
        "sid={token};",
        "other=x=y&z; sid={token}",
    ],
)
def test_cookie_header_as_interceptors_replay_it(client, login, header):
    token = login()
    response = client.get("/user/info", headers={"Cookie": header.format(token=token)})
    assert response.status_code == 200


@pytest.mark.parametrize("config_overrides", [{"SESSION_COOKIE_NAME": "wxsid"}])
def test_cookie_name_is_configurable(client, wechat):
    response = client.post("/oauth/login", json={"code": wechat.login()["code"]})
    token = response.get_json()["data"]["token"]
    assert response.headers["Set-Cookie"].startswith(f"wxsid={token};")
    assert client.get("/user/info", headers=cookie(token, "wxsid")).status_code == 200
    assert client.get("/user/info", headers=cookie(token, "sid")).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + "A" * 43},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer " + "A" * 5000},
        {"Cookie": "sid="},
        {"Cookie": "sid=" + "Z" * 43},
        {"Cookie": "sid=../../etc/passwd"},
        {"Cookie": "session=" + "A" * 43},
    ],
)
def test_anonymous_or_unknown_is_401(client, headers):
    response = client.get("/user/info", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {
        "code": 2001,
        "error": "unauthorized",
        "message": response.get_json()["message"],
    }


def test_an_expired_session_is_anonymous(client, login, redis_client):
    token = login()
    redis_client.delete(Keys("wx:").session(token))
    assert client.get("/user/info", headers=bearer(token)).status_code == 401


def test_bearer_wins_over_a_stale_cookie(client, login):
    fresh = login()
    response = client.get("/user/info", headers={**cookie("S" * 43), **bearer(fresh)})
    assert response.status_code == 200


def test_answers_are_not_cacheable(client, login):
    response = client.get("/user/info", headers=bearer(login()))
    assert response.headers["Cache-Control"] == "no-store"
    assert {"Cookie", "Authorization"} <= set(response.vary)


@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": "redis://127.0.0.1:1/0"}])
def test_redis_down_is_503_not_a_reason_to_log_in_again(client):
    response = client.get("/user/info", headers=bearer("A" * 43))
    assert response.status_code == 503
    assert response.get_json()["error"] == "session_store_unavailable"
