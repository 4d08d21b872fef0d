"""/user: info from the session (Cookie or Bearer header), and binding the
profile and phone number from WeChat's data."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from sqlalchemy import select

from blueprints import GRAPH
from blueprints.extensions import db
from services.stores.models import Account
from services.stores.redis import Keys
from services.usecases.profile import GREY_AVATAR
from support.apps import bearer, cookie, identity_of, unknown_token
from support.constants import SECRET
from support.counting import cost
from support.vectors import DEMO_APPID, DEMO_DATA, DEMO_IV, DEMO_OPENID, DEMO_SESSION_KEY

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
    "avatarReview",
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
    response = client.get("/user/info", headers=bearer(unknown_token(client.application)))
    assert response.status_code == 503
    assert response.get_json()["error"] == "session_store_unavailable"


# -- /user/bindinfo -------------------------------------------------------------

LONG_AVATAR = "https://thirdwx.qlogo.cn/mmopen/vi_132/" + "Q" * 600 + "/132"
PROFILE = {
    "nickName": "小明🐱𠀀 ẞ",
    "gender": 1,
    "language": "zh_CN",
    "city": "Guangzhou",
    "province": "Guangdong",
    "country": "CN",
    "avatarUrl": LONG_AVATAR,
}
ANONYMOUS = {
    "nickName": "微信用户",
    "gender": 0,
    "language": "",
    "city": "",
    "province": "",
    "country": "",
    "avatarUrl": GREY_AVATAR,
    "is_demote": True,
}


def bind(client, token, sealed, **extra):
    body = {"encryptedData": sealed["encryptedData"], "iv": sealed["iv"], **extra}
    return client.post("/user/bindinfo", json=body, headers=bearer(token))


def test_bindinfo_stores_the_profile_and_info_shows_it(client, wechat, user, app):
    openid, token = user
    response = bind(client, token, wechat.encrypt(openid, data=PROFILE))
    assert response.status_code == 200, response.get_json()
    shown = response.get_json()["data"]
    assert shown["nickName"] == "小明🐱𠀀 ẞ" and shown["avatarUrl"] == LONG_AVATAR
    assert shown["gender"] == 1 and shown["city"] == "Guangzhou"
    assert client.get("/user/info", headers=bearer(token)).get_json()["data"] == shown
    with app.app_context():
        stored = db.session.scalars(select(Account)).one()
        assert stored.nick_name == "小明🐱𠀀 ẞ" and stored.avatar_url == LONG_AVATAR


def test_bindinfo_reaches_every_session_of_the_user(client, wechat, user):
    openid, token = user
    other = client.post("/oauth/login", json={"code": wechat.login(openid=openid)["code"]})
    other_token = other.get_json()["data"]["token"]
    bind(client, token, wechat.encrypt(openid, data=PROFILE))
    shown = client.get("/user/info", headers=cookie(other_token)).get_json()["data"]
    assert shown["nickName"] == PROFILE["nickName"]


def test_bindinfo_keeps_the_unionid(client, wechat, user, app):
    openid, token = user
    data = {**PROFILE, "openId": openid, "unionId": "oUnionFromPayload00000000000"}
    assert bind(client, token, wechat.encrypt(openid, data=data)).status_code == 200
    with app.app_context():
        assert db.session.scalar(select(Account.unionid)) == "oUnionFromPayload00000000000"


def test_bindinfo_checks_rawdata_and_signature(client, wechat, user):
    openid, token = user
    sealed = wechat.encrypt(openid, data=PROFILE)
    good = bind(client, token, sealed, rawData=sealed["rawData"], signature=sealed["signature"])
    assert good.status_code == 200
    tampered = sealed["rawData"].replace("Guangzhou", "Shenzhen")
    bad = bind(client, token, sealed, rawData=tampered, signature=sealed["signature"])
    assert (bad.status_code, bad.get_json()["error"]) == (400, "signature_mismatch")


def test_bindinfo_from_a_form_encoder_that_mangled_plus_signs(client, wechat, user):
    openid, token = user
    sealed = wechat.encrypt(openid, data=PROFILE)
    # The hard case: a '+' at an end of the iv, which trimming would lose.
    while not (sealed["iv"].startswith("+") or sealed["iv"].rstrip("=").endswith("+")):
        sealed = wechat.encrypt(openid, data=PROFILE)
    # An encoder that escapes everything but '+': the form decoder reads it as ' '.
    body = "&".join(f"{k}={quote(sealed[k], safe='+')}" for k in ("encryptedData", "iv"))
    response = client.post(
        "/user/bindinfo",
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers=bearer(token),
    )
    assert response.status_code == 200, response.get_json()


def test_bindinfo_in_the_url_safe_alphabet(client, wechat, user):
    openid, token = user
    sealed = wechat.encrypt(openid, data=PROFILE)
    url_safe = {
        k: sealed[k].replace("+", "-").replace("/", "_").rstrip("=")
        for k in ("encryptedData", "iv")
    }
    assert bind(client, token, url_safe).status_code == 200


def test_data_from_before_a_second_login_still_binds(client, wechat, user):
    """The rotation race: the client called wx.login again (WeChat rotated the
    key) after WeChat encrypted the data under the first key."""
    wechat.configure(rotate="always")
    openid, token = user
    sealed = wechat.encrypt(openid, data=PROFILE)
    client.post("/oauth/login", json={"code": wechat.login(openid=openid)["code"]})
    assert wechat.user(openid)["session_key"] != sealed.get("session_key")
    response = bind(client, token, sealed)
    assert response.status_code == 200, response.get_json()


def test_data_under_a_key_long_gone_is_409_session_key_stale(client, wechat, user):
    wechat.configure(rotate="always")
    openid, token = user
    sealed = wechat.encrypt(openid, data=PROFILE)
    for _ in range(3):  # SESSION_KEY_HISTORY newer keys push it out
        client.post("/oauth/login", json={"code": wechat.login(openid=openid)["code"]})
    response = bind(client, token, sealed)
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "session_key_stale"
    assert "wx.login" in body["message"] and "encryptedData" in body["message"]


def test_data_under_a_key_never_seen_is_409(client, wechat, user):
    openid, token = user
    sealed = wechat.encrypt(openid, data=PROFILE, session_key="5tF5KuDigyB6e4m7FigHvw==")
    assert bind(client, token, sealed).status_code == 409


def test_an_anonymous_payload_never_replaces_a_real_profile(client, wechat, user):
    openid, token = user
    bind(client, token, wechat.encrypt(openid, data=PROFILE))
    response = bind(client, token, wechat.encrypt(openid, data=ANONYMOUS))
    assert response.status_code == 200
    assert response.get_json()["data"]["nickName"] == PROFILE["nickName"]
    assert response.get_json()["data"]["avatarUrl"] == LONG_AVATAR


def test_an_anonymous_payload_fills_an_empty_profile(client, wechat, user):
    openid, token = user
    response = bind(client, token, wechat.encrypt(openid, data=ANONYMOUS))
    assert response.get_json()["data"]["nickName"] == "微信用户"


def test_blank_fields_never_erase(client, wechat, user):
    """Since 2023 WeChat sends gender 0 and empty region fields."""
    openid, token = user
    bind(client, token, wechat.encrypt(openid, data=PROFILE))
    later = {**PROFILE, "nickName": "新名字", "gender": 0, "city": "", "province": ""}
    shown = bind(client, token, wechat.encrypt(openid, data=later)).get_json()["data"]
    assert shown["nickName"] == "新名字"
    assert (shown["gender"], shown["city"], shown["province"]) == (1, "Guangzhou", "Guangdong")


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ({"iv": "r7BXXKkLb8qrSNn05n0qiA=="}, "invalid_field"),
        ({"encryptedData": "AAAA"}, "invalid_field"),
        ({"encryptedData": 42, "iv": "r7BXXKkLb8qrSNn05n0qiA=="}, "invalid_field"),
        ({"encryptedData": ["a"], "iv": "r7BXXKkLb8qrSNn05n0qiA=="}, "invalid_field"),
        ({"encryptedData": "AAAA", "iv": None}, "invalid_field"),
        (
            {"encryptedData": "not base64 ***", "iv": "r7BXXKkLb8qrSNn05n0qiA=="},
            "malformed_encrypted_data",
        ),
        ({"encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "AAAA"}, "malformed_iv"),
        (
            {
                "encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==",
                "iv": "r7BXXKkLb8qrSNn05n0qiA==",
                "rawData": {"a": 1},
                "signature": "x",
            },
            "invalid_field",
        ),
    ],
)
def test_bindinfo_malformed_input(client, user, body, slug):
    _, token = user
    response = client.post("/user/bindinfo", json=body, headers=bearer(token))
    assert (response.status_code, response.get_json()["error"]) == (400, slug)


@pytest.mark.parametrize(
    ("sealing", "slug"),
    [
        ({"raw": "hello, not json"}, "payload_not_json"),
        ({"raw": "[1, 2]"}, "payload_not_json"),
        ({"data": PROFILE, "watermark": {"appid": "wx9999999999999999"}}, "watermark_mismatch"),
        ({"data": PROFILE, "add_watermark": False}, "watermark_mismatch"),
        ({"data": PROFILE, "watermark": {"timestamp": int(time.time()) - 3600}}, "payload_expired"),
        ({"data": {**PROFILE, "openId": "oSomeoneElse0000000000000000"}}, "payload_user_mismatch"),
        ({"data": {**PROFILE, "gender": "male"}}, "payload_invalid"),
        ({"data": {**PROFILE, "nickName": "x" * 256}}, "payload_invalid"),
    ],
)
def test_bindinfo_data_that_opens_but_is_invalid(client, wechat, user, app, sealing, slug):
    openid, token = user
    response = bind(client, token, wechat.encrypt(openid, **sealing))
    assert (response.status_code, response.get_json()["error"]) == (400, slug)
    with app.app_context():
        row = db.session.execute(select(Account.nick_name, Account.profile_version)).one()
    assert tuple(row) == (None, 0)  # the user exists, and nothing was stored


@pytest.mark.parametrize("path", ["/user/bindinfo", "/user/bindphone"])
def test_binding_needs_a_session(client, path):
    response = client.post(path, json={"code": "x", "encryptedData": "x", "iv": "x"})
    assert (response.status_code, response.get_json()["error"]) == (401, "unauthorized")


# -- /user/bindphone ------------------------------------------------------------


def bind_phone(client, token, **body):
    return client.post("/user/bindphone", json=body, headers=bearer(token))


def test_bindphone_with_a_code(client, wechat, user):
    openid, token = user
    code = wechat.phone_code(
        openid, phoneNumber="+1 4155550100", purePhoneNumber="4155550100", countryCode="1"
    )["code"]
    response = bind_phone(client, token, code=code)
    assert response.status_code == 200, response.get_json()
    shown = response.get_json()["data"]
    assert (shown["phoneNumber"], shown["purePhoneNumber"], shown["countryCode"]) == (
        "+1 4155550100",
        "4155550100",
        "1",
    )
    assert client.get("/user/info", headers=bearer(token)).get_json()["data"] == shown
    assert len(wechat.calls("stable_token")) == 1
    (phone_call,) = wechat.calls("getuserphonenumber")
    assert phone_call["body"] == {"code": code, "openid": openid}
    assert phone_call["query"]["access_token"]


def test_bindphone_with_legacy_encrypted_data(client, wechat, user):
    openid, token = user
    sealed = wechat.encrypt(
        openid,
        data={"phoneNumber": "13580006666", "purePhoneNumber": "13580006666", "countryCode": 86},
    )
    response = bind_phone(client, token, encryptedData=sealed["encryptedData"], iv=sealed["iv"])
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["countryCode"] == "86"
    assert wechat.calls("getuserphonenumber") == []


def test_bindphone_shares_one_token_between_calls(client, wechat, user):
    openid, token = user
    for _ in range(3):
        bind_phone(client, token, code=wechat.phone_code(openid)["code"])
    assert len(wechat.calls("stable_token")) == 1
    assert len(wechat.calls("getuserphonenumber")) == 3


@pytest.mark.parametrize(
    ("setup", "status", "slug"),
    [
        ("reused", 400, "phone_code_invalid"),
        ("unknown", 400, "phone_code_invalid"),
        ("expired", 400, "phone_code_invalid"),
        ("other_user", 400, "phone_code_invalid"),
        ("other_app", 400, "phone_code_appid_mismatch"),
    ],
)
def test_bindphone_codes_wechat_rejects(client, wechat, user, setup, status, slug):
    openid, token = user
    if setup == "reused":
        code = wechat.phone_code(openid)["code"]
        bind_phone(client, token, code=code)
    elif setup == "unknown":
        code = "f" * 64
    elif setup == "expired":
        code = wechat.phone_code(openid)["code"]
        wechat.advance(301)
    elif setup == "other_user":
        code = wechat.phone_code(wechat.login()["openid"])["code"]
    else:
        wechat.add_app("wx1111111111111111", "other-secret")
        code = wechat.phone_code(openid, appid="wx1111111111111111")["code"]
    response = bind_phone(client, token, code=code)
    assert (response.status_code, response.get_json()["error"]) == (status, slug)


@pytest.mark.parametrize(
    ("faults", "status", "slug", "phone_calls"),
    [
        ([{"endpoint": "getuserphonenumber", "errcode": 45011}], 429, "wechat_rate_limited", 1),
        ([{"endpoint": "getuserphonenumber", "errcode": -1}], 200, None, 2),
        ([{"endpoint": "getuserphonenumber", "errcode": -1, "times": 2}], 503, "wechat_busy", 2),
        ([{"endpoint": "getuserphonenumber", "errcode": 40001}], 200, None, 2),
        ([{"endpoint": "getuserphonenumber", "errcode": 42001}], 200, None, 2),
        (
            [{"endpoint": "getuserphonenumber", "errcode": 40001, "times": 2}],
            502,
            "wechat_token_rejected",
            2,
        ),
        ([{"endpoint": "getuserphonenumber", "delay": 3}], 504, "wechat_timeout", 1),
        ([{"endpoint": "stable_token", "errcode": 40125}], 502, "wechat_misconfigured", 0),
        ([{"endpoint": "stable_token", "errcode": 40164}], 502, "wechat_misconfigured", 0),
        ([{"endpoint": "stable_token", "drop": True}], 502, "wechat_unreachable", 0),
    ],
)
def test_bindphone_when_wechat_fails(client, wechat, user, faults, status, slug, phone_calls):
    openid, token = user
    code = wechat.phone_code(openid)["code"]
    wechat.faults(faults)
    response = bind_phone(client, token, code=code)
    assert response.status_code == status, response.get_json()
    if slug:
        assert response.get_json()["error"] == slug
    assert len(wechat.calls("getuserphonenumber")) == phone_calls


def test_bindphone_needs_a_code_or_data(client, user):
    _, token = user
    response = bind_phone(client, token)
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_field")


@pytest.mark.parametrize(
    "config_overrides", [{"WECHAT_APPID": DEMO_APPID, "WECHAT_WATERMARK_MAX_AGE": 0}]
)
def test_wechat_demo_vector_binds_end_to_end(app, client, wechat):
    """WeChat's published encryptedData, for the user and key it was made for."""
    wechat.add_app(DEMO_APPID, SECRET)
    issued = wechat.login(openid=DEMO_OPENID, appid=DEMO_APPID)
    token = client.post("/oauth/login", json={"code": issued["code"]}).get_json()["data"]["token"]
    identity = identity_of(app, DEMO_OPENID, appid=DEMO_APPID)
    app.extensions[GRAPH].profile.session_keys.record(identity.id, DEMO_SESSION_KEY)
    response = client.post(
        "/user/bindinfo", json={"encryptedData": DEMO_DATA, "iv": DEMO_IV}, headers=bearer(token)
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["nickName"] == "Band"
    with app.app_context():
        assert db.session.scalar(select(Account.unionid)) == "ocMvos6NjeKLIBqg5Mr9QjxrP1FA"


# -- what /user/info costs ----------------------------------------------------------


def info_cost(app, client, redis_url, token):
    sessions = app.extensions[GRAPH].sessions
    with app.app_context():
        engine = db.engine
    with cost(redis_url, sessions.redis, engine) as spent:
        response = client.get("/user/info", headers=bearer(token))
    assert response.status_code == 200
    return spent, response.get_json()["data"]


def test_info_costs_one_round_trip_two_commands_and_no_sql(app, client, wechat, user, redis_url):
    openid, token = user
    client.get("/user/info", headers=bearer(token))  # a warm connection, as in production
    spent, _ = info_cost(app, client, redis_url, token)
    assert spent.round_trips == 1
    assert spent.command_names == ["HGETALL", "PTTL"]  # reads only: nothing rewritten
    assert spent.sql == []

    bind(client, token, wechat.encrypt(openid, data=PROFILE))
    client.post(
        "/user/bindphone", json={"code": wechat.phone_code(openid)["code"]}, headers=bearer(token)
    )
    spent, shown = info_cost(app, client, redis_url, token)
    assert shown["nickName"] == PROFILE["nickName"] and shown["phoneNumber"] == "13800138000"
    assert (spent.round_trips, len(spent.redis_commands), spent.sql) == (1, 2, [])


def test_a_renewal_costs_one_more_round_trip_once_per_interval(
    app, client, wechat, user, redis_url, redis_client
):
    _, token = user
    key = Keys("wx:").session(token)
    older_than_the_interval = 7 * 24 * 3600 - 3601
    # Renew another session first: Redis loads the script once, then caches it.
    other = client.post("/oauth/login", json={"code": wechat.login()["code"]})
    other_token = other.get_json()["data"]["token"]
    redis_client.expire(Keys("wx:").session(other_token), older_than_the_interval)
    client.get("/user/info", headers=bearer(other_token))

    redis_client.expire(key, older_than_the_interval)
    spent, _ = info_cost(app, client, redis_url, token)
    assert spent.round_trips == 2 and "EVALSHA" in spent.command_names
    assert redis_client.ttl(key) > 7 * 24 * 3600 - 5
    spent, _ = info_cost(app, client, redis_url, token)
    assert spent.round_trips == 1


def test_every_key_lives_under_the_prefix(client, wechat, user, redis_client):
    openid, token = user
    bind(client, token, wechat.encrypt(openid, data=PROFILE))
    client.post(
        "/user/bindphone", json={"code": wechat.phone_code(openid)["code"]}, headers=bearer(token)
    )
    client.get("/oauth/check", headers=bearer(token))
    keys = redis_client.keys("*")
    assert keys and all(key.startswith("wx:") for key in keys), sorted(keys)
