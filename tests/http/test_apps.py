"""Several apps, one account per person: two mini programs and an official
account under one WeChat Open Platform account (the emulator's person model:
an openid per app, one unionid per Open Platform)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from blueprints.extensions import db
from services.stores.models import Account, Identity
from support.apps import bearer
from support.constants import APPID, SECRET

LITE, LITE_SECRET = "wxlite0000000000a", "lite-secret-0000"
OA, OA_SECRET = "wxoa00000000000b", "oa-secret-00000"
LITE_PUSH_TOKEN = "litepushtoken1"
APPS = [
    {"appid": APPID, "secret": SECRET},
    {"appid": LITE, "secret": LITE_SECRET, "push_token": LITE_PUSH_TOKEN},
    {"appid": OA, "secret": OA_SECRET, "kind": "official_account", "cookie_samesite": "None"},
]


@pytest.fixture
def config_overrides() -> dict:
    return {"WECHAT_APPS": json.dumps(APPS), "WECHAT_APPID": "", "WECHAT_SECRET": ""}


@pytest.fixture
def corp(wechat):
    """All three apps bound to one Open Platform account."""
    wechat.add_app(APPID, SECRET, open_platform="corp")
    wechat.add_app(LITE, LITE_SECRET, open_platform="corp")
    wechat.add_app(OA, OA_SECRET, kind="official_account", open_platform="corp")
    return wechat


def in_app(appid: str | None, token: str | None = None) -> dict[str, str]:
    headers = {"X-WX-AppId": appid} if appid else {}
    return {**headers, **(bearer(token) if token else {})}


def log_in(client, wechat, person: str, appid: str) -> str:
    code = wechat.login(person=person, appid=appid)["code"]
    response = client.post("/oauth/login", json={"code": code}, headers=in_app(appid))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["token"]


def log_in_web(client, wechat, person: str, scope: str = "snsapi_base") -> str:
    code = wechat.oauth_code(scope, person=person, appid=OA)["code"]
    response = client.post("/oauth/login", json={"code": code, "type": "mp"}, headers=in_app(OA))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["token"]


def info(client, appid: str, token: str):
    return client.get("/user/info", headers=in_app(appid, token))


def rows(app) -> tuple[int, int]:
    with app.app_context():
        accounts = db.session.scalar(select(func.count()).select_from(Account))
        identities = db.session.scalar(select(func.count()).select_from(Identity))
    return accounts, identities


def test_one_person_through_two_mini_programs_and_an_official_account(app, client, corp):
    corp.set_profile("alice", appid=OA, nickname="爱丽丝", headimgurl="https://x/a.png", sex=2)
    main = log_in(client, corp, "alice", APPID)
    lite = log_in(client, corp, "alice", LITE)
    web = log_in_web(client, corp, "alice", scope="snsapi_userinfo")
    assert rows(app) == (1, 3)
    profiles = [
        info(client, appid, token).get_json()["data"]
        for appid, token in [(APPID, main), (LITE, lite), (OA, web)]
    ]
    assert profiles[0] == profiles[1] == profiles[2]
    assert (profiles[0]["nickName"], profiles[0]["gender"]) == ("爱丽丝", 2)
    assert len(corp.calls("oauth2_access_token")) == 1
    assert len(corp.calls("sns_userinfo")) == 1


def test_a_request_without_the_header_is_for_the_first_app(client, corp):
    token = log_in(client, corp, "bob", APPID)
    assert client.get("/user/info", headers=bearer(token)).status_code == 200


def test_a_session_answers_only_to_its_own_app(client, corp):
    token = log_in(client, corp, "carol", LITE)
    assert info(client, LITE, token).status_code == 200
    for other in (APPID, OA):
        response = info(client, other, token)
        assert (response.status_code, response.get_json()["error"]) == (401, "unauthorized")
    assert client.get("/user/info", headers=bearer(token)).status_code == 401  # the default app


@pytest.mark.parametrize("path", ["/oauth/login", "/user/info", "/wechat/push/wxnope0000000000x"])
def test_an_unknown_app_is_400(client, path):
    method = client.get if path == "/user/info" else client.post
    response = method(path, json={"code": "x"}, headers=in_app("wxnope0000000000x"))
    assert (response.status_code, response.get_json()["error"]) == (400, "unknown_app")


@pytest.mark.parametrize(("appid", "login_type"), [(APPID, "mp"), (LITE, "mp"), (OA, "wxapp")])
def test_the_login_type_must_match_the_app(client, corp, appid, login_type):
    response = client.post(
        "/oauth/login", json={"code": "whatever", "type": login_type}, headers=in_app(appid)
    )
    assert (response.status_code, response.get_json()["error"]) == (400, "unsupported_login_type")
    assert corp.calls("jscode2session") == corp.calls("oauth2_access_token") == []


def test_an_official_account_login_without_a_type_is_its_own_type(client, corp):
    code = corp.oauth_code("snsapi_base", person="dan", appid=OA)["code"]
    response = client.post("/oauth/login", json={"code": code}, headers=in_app(OA))
    assert response.status_code == 200


def test_a_web_login_with_snsapi_base_has_no_profile_and_no_unionid(app, client, corp):
    web = log_in_web(client, corp, "erin", scope="snsapi_base")
    assert info(client, OA, web).get_json()["data"]["nickName"] is None
    assert corp.calls("sns_userinfo") == []
    with app.app_context():
        assert db.session.scalar(select(Identity.unionid)) is None


def test_a_web_login_code_used_twice(client, corp):
    code = corp.oauth_code("snsapi_base", person="fay", appid=OA)["code"]
    body, headers = {"code": code, "type": "mp"}, in_app(OA)
    first = client.post("/oauth/login", json=body, headers=headers).get_json()["data"]["token"]
    again = client.post("/oauth/login", json=body, headers=headers)
    assert again.get_json()["data"]["token"] == first  # a retry: the same session
    assert len(corp.calls("oauth2_access_token")) == 1


def test_an_official_accounts_cookie_is_samesite_none_and_secure(client, corp):
    code = corp.oauth_code("snsapi_base", person="gus", appid=OA)["code"]
    response = client.post("/oauth/login", json={"code": code, "type": "mp"}, headers=in_app(OA))
    cookie = response.headers["Set-Cookie"]
    assert "SameSite=None" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    gone = client.post("/oauth/logout", headers=in_app(OA, response.get_json()["data"]["token"]))
    assert "SameSite=None" in gone.headers["Set-Cookie"] and "Secure" in gone.headers["Set-Cookie"]


@pytest.mark.parametrize(
    "config_overrides",
    [
        {
            "WECHAT_APPS": json.dumps(APPS),
            "WECHAT_APPID": "",
            "WECHAT_SECRET": "",
            "LOGIN_DEDUP_WINDOW": 0,
        }
    ],
)
def test_a_late_unionid_merges_two_accounts_and_every_session_sees_the_result(app, client, wechat):
    """The lite app is bound to the Open Platform only later: until then its
    login brings no unionid, so the person has two accounts; the first login
    after binding reveals the unionid and the two become one (the older)."""
    wechat.add_app(APPID, SECRET, open_platform="corp")
    wechat.add_app(LITE, LITE_SECRET)  # not bound yet
    main = log_in(client, wechat, "hana", APPID)
    main_openid = wechat.user(wechat.login(person="hana", appid=APPID)["openid"])["openid"]
    phone = wechat.phone_code(main_openid, appid=APPID)["code"]
    client.post("/user/bindphone", json={"code": phone}, headers=in_app(APPID, main))
    lite = log_in(client, wechat, "hana", LITE)
    client.put("/user/profile", json={"nickName": "花"}, headers=in_app(LITE, lite))
    assert rows(app) == (2, 2)

    wechat.add_app(LITE, LITE_SECRET, open_platform="corp")  # now bound
    log_in(client, wechat, "hana", LITE)

    assert rows(app) == (1, 2)
    for appid, token in [(APPID, main), (LITE, lite)]:  # sessions from before the merge
        shown = info(client, appid, token).get_json()["data"]
        assert (shown["nickName"], shown["phoneNumber"]) == ("花", "13800138000")


def test_parallel_first_logins_of_one_person_through_two_apps(app, corp):
    codes = [(appid, corp.login(person="ivy", appid=appid)["code"]) for appid in [APPID, LITE] * 10]

    def attempt(item: tuple[str, str]) -> int:
        appid, code = item
        response = app.test_client().post(
            "/oauth/login", json={"code": code}, headers=in_app(appid)
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert set(pool.map(attempt, codes)) == {200}
    assert rows(app) == (1, 2)


def test_each_app_has_its_own_access_token_fetched_once(app, corp):
    people = [(appid, f"jack{n}") for n in range(20) for appid in (APPID, LITE)]
    tokens = {
        (appid, person): log_in(app.test_client(), corp, person, appid) for appid, person in people
    }

    def bind(item: tuple[str, str]) -> int:
        appid, person = item
        openid = corp.login(person=person, appid=appid)["openid"]
        code = corp.phone_code(openid, appid=appid)["code"]
        response = app.test_client().post(
            "/user/bindphone", json={"code": code}, headers=in_app(appid, tokens[item])
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        assert set(pool.map(bind, people)) == {200}
    fetched = sorted(call["body"]["appid"] for call in corp.calls("stable_token"))
    assert fetched == sorted([APPID, LITE])


def test_encrypted_data_must_name_the_sessions_own_app(client, corp):
    token = log_in(client, corp, "kim", LITE)
    openid = corp.login(person="kim", appid=LITE)["openid"]
    sealed = corp.encrypt(openid, data={"nickName": "金"}, appid=LITE, watermark={"appid": APPID})
    response = client.post(
        "/user/bindinfo",
        json={"encryptedData": sealed["encryptedData"], "iv": sealed["iv"]},
        headers=in_app(LITE, token),
    )
    assert (response.status_code, response.get_json()["error"]) == (400, "watermark_mismatch")


def test_logout_everywhere_ends_the_sessions_of_every_app(client, corp):
    main = log_in(client, corp, "lee", APPID)
    lite = log_in(client, corp, "lee", LITE)
    ended = client.post("/oauth/logout", json={"all": True}, headers=in_app(APPID, main))
    assert ended.get_json()["data"] == {"ended": 2}
    assert info(client, LITE, lite).status_code == 401


def test_an_official_account_only_user_cannot_pass_content_checks(client, corp):
    web = log_in_web(client, corp, "mo")
    response = client.put("/user/profile", json={"nickName": "Mo"}, headers=in_app(OA, web))
    assert (response.status_code, response.get_json()["error"]) == (
        409,
        "content_check_unavailable",
    )


def test_an_official_account_user_is_checked_through_a_mini_program(client, corp):
    """snsapi_userinfo brings the unionid, which links the web login to the
    person's mini program account."""
    log_in(client, corp, "ned", APPID)
    web = log_in_web(client, corp, "ned", scope="snsapi_userinfo")
    response = client.put("/user/profile", json={"nickName": "Ned"}, headers=in_app(OA, web))
    assert response.status_code == 200
    (check,) = corp.calls("msg_sec_check")
    assert check["body"]["openid"] == corp.login(person="ned", appid=APPID)["openid"]
