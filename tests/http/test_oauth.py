"""POST /oauth/login and /oauth/logout through the Flask app, with the
emulator over HTTP and a real Redis and database behind it."""

from __future__ import annotations

import hashlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app import create_app
from blueprints import GRAPH
from blueprints.extensions import db
from dev.stack import free_port
from dev.waiting import wait_until
from services.stores.models import Account, Identity
from services.stores.redis import Keys
from services.wechat import hmac_sha256_hex
from support.apps import TOKEN_PATTERN, base_config, bearer, cookie, identity_of, unknown_token
from support.constants import APPID
from support.counting import cost


def login_with(client, code: str, **extra):
    return client.post("/oauth/login", json={"code": code, **extra})


def user_rows(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Account))


def session_keys(app, openid: str) -> list[str]:
    identity = identity_of(app, openid)
    return [k.session_key for k in app.extensions[GRAPH].login.session_keys.recent(identity.id)]


# -- success ------------------------------------------------------------------


def test_login_returns_a_token_and_sets_the_same_cookie(client, wechat):
    response = login_with(client, wechat.login()["code"])
    assert response.status_code == 200
    body = response.get_json()
    assert body["code"] == 0
    token = body["data"]["token"]
    assert re.fullmatch(TOKEN_PATTERN, token)
    assert body["data"]["expiresIn"] == 7 * 24 * 3600
    (set_cookie,) = response.headers.getlist("Set-Cookie")
    assert set_cookie.startswith(f"sid={token};")
    attributes = {part.strip().split("=")[0] for part in set_cookie.split(";")[1:]}
    assert {"HttpOnly", "Path", "SameSite", "Max-Age", "Expires"} <= attributes
    assert "Secure" not in attributes
    assert "Max-Age=604800" in set_cookie and "SameSite=Lax" in set_cookie
    assert "Path=/" in set_cookie
    # Retry-After belongs on a 429 or 503 only; no rate-limit bookkeeping leaks out.
    names = [name.lower() for name, _ in response.headers.items()]
    assert not [name for name in names if name.startswith(("retry-after", "x-ratelimit"))]


@pytest.mark.parametrize("config_overrides", [{"SESSION_COOKIE_SECURE": True}])
def test_secure_cookie_when_configured(client, wechat):
    response = login_with(client, wechat.login()["code"])
    assert "Secure" in response.headers["Set-Cookie"]


@pytest.mark.parametrize(
    ("kwargs", "content_type"),
    [
        ({"data": {"code": "{code}"}}, "application/x-www-form-urlencoded"),
        ({"data": {"code": "{code}", "type": "wxapp"}}, "multipart/form-data"),
        ({"data": '{{"code": "{code}"}}'}, "text/plain"),
        ({"data": '{{"code": "{code}", "type": "wxapp"}}'}, "application/json"),
    ],
)
def test_login_accepts_json_and_form_bodies(client, wechat, kwargs, content_type):
    code = wechat.login()["code"]
    data = kwargs["data"]
    data = (
        data.format(code=code)
        if isinstance(data, str)
        else {k: v.format(code=code) for k, v in data.items()}
    )
    response = client.post("/oauth/login", data=data, content_type=content_type)
    assert response.status_code == 200, response.get_json()


def test_login_stores_the_user_and_the_newest_session_key(app, client, wechat):
    wechat.configure(rotate="always")
    first = wechat.login(unionid="oUnion0000000000000000000001")
    login_with(client, first["code"])
    second = wechat.login(openid=first["openid"])
    assert second["session_key"] != first["session_key"]
    login_with(client, second["code"])
    assert user_rows(app) == 1
    assert session_keys(app, first["openid"])[0] == second["session_key"]
    with app.app_context():
        assert db.session.scalar(select(Account.unionid)) == "oUnion0000000000000000000001"
        assert db.session.scalar(select(Identity.unionid)) == "oUnion0000000000000000000001"


@pytest.mark.parametrize("config_overrides", [{"LOGIN_DEDUP_WINDOW": 0}])
def test_every_login_issues_a_fresh_id(client, wechat):
    openid = wechat.login()["openid"]
    tokens = [
        login_with(client, wechat.login(openid=openid)["code"]).get_json()["data"]["token"]
        for _ in range(3)
    ]
    assert len(set(tokens)) == 3
    for token in tokens:
        assert client.get("/user/info", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("present", [cookie, bearer])
def test_a_presented_id_is_never_adopted(client, wechat, present):
    planted = "P" * 43  # an attacker's choice of session id
    response = client.post(
        "/oauth/login", json={"code": wechat.login()["code"]}, headers=present(planted)
    )
    assert response.get_json()["data"]["token"] != planted
    assert client.get("/user/info", headers=bearer(planted)).status_code == 401


def test_system_busy_once_still_logs_in(client, wechat):
    wechat.fault("jscode2session", errcode=-1)
    response = login_with(client, wechat.login()["code"])
    assert response.status_code == 200
    assert len(wechat.calls("jscode2session")) == 2


# -- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ({}, "invalid_field"),
        ({"code": ""}, "invalid_field"),
        ({"code": "   "}, "invalid_field"),
        ({"code": None}, "invalid_field"),
        ({"code": 12345}, "invalid_field"),
        ({"code": ["a"]}, "invalid_field"),
        ({"code": {"a": 1}}, "invalid_field"),
        ({"code": True}, "invalid_field"),
        ({"code": "abc\ndef"}, "invalid_field"),
        ({"code": "码"}, "invalid_field"),
        ({"code": "x" * 129}, "invalid_field"),
        ({"code": "abc", "type": "web"}, "unsupported_login_type"),
        ({"code": "abc", "type": 1}, "invalid_field"),
    ],
)
def test_bad_fields_are_400_and_never_reach_wechat(client, wechat, body, slug):
    response = client.post("/oauth/login", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == slug
    assert response.get_json()["code"] != 0
    assert wechat.calls("jscode2session") == []


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'"code"', b"42", b"null", b"{", b"\xff\xfe\xfa", b"[" * 50_000],
)
def test_malformed_bodies_are_invalid_body(client, wechat, raw):
    response = client.post("/oauth/login", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_body"
    assert wechat.calls("jscode2session") == []


def test_an_oversized_body_is_413(client):
    response = client.post(
        "/oauth/login", data=b'{"code": "' + b"a" * 70_000 + b'"}', content_type="application/json"
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"
    assert "Retry-After" not in response.headers


# -- WeChat says no, or is not there --------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "slug"),
    [
        ({"errcode": 40029}, 400, "code_invalid"),
        ({"errcode": 40163}, 400, "code_used"),
        ({"errcode": 40226}, 403, "code_blocked"),
        ({"errcode": 45011}, 429, "wechat_rate_limited"),
        ({"errcode": -1, "times": 2}, 503, "wechat_busy"),
        ({"delay": 3.0}, 504, "wechat_timeout"),
        ({"drop": True}, 502, "wechat_unreachable"),
        ({"errcode": 40013}, 502, "wechat_misconfigured"),
        ({"errcode": 40125}, 502, "wechat_misconfigured"),
        ({"errcode": 12345}, 502, "wechat_error"),
        ({"body": "<html>bad gateway</html>"}, 502, "wechat_error"),
    ],
)
def test_wechat_failures_map_to_status_and_slug(app, client, wechat, fault, status, slug):
    wechat.fault("jscode2session", **fault)
    response = login_with(client, wechat.login()["code"])
    assert response.status_code == status
    assert response.get_json()["error"] == slug
    assert "Set-Cookie" not in response.headers  # a failed exchange is not a login
    assert user_rows(app) == 0


def test_rate_limit_carries_retry_after(client, wechat):
    wechat.fault("jscode2session", errcode=45011)
    response = login_with(client, wechat.login()["code"])
    assert response.headers["Retry-After"] == "60"


@pytest.mark.parametrize("code_kind", ["unknown", "expired", "blocked"])
def test_codes_wechat_rejects(client, wechat, code_kind):
    if code_kind == "unknown":
        code, slug, status = "0" * 32, "code_invalid", 400
    elif code_kind == "expired":
        code, slug, status = wechat.login()["code"], "code_invalid", 400
        wechat.advance(301)
    else:
        code, slug, status = wechat.login(blocked=True)["code"], "code_blocked", 403
    response = login_with(client, code)
    assert (response.status_code, response.get_json()["error"]) == (status, slug)


@pytest.mark.parametrize(
    "config_overrides", [{"WECHAT_API_BASE": f"http://127.0.0.1:{free_port()}"}]
)
def test_wechat_refusing_connections_is_502(client):
    response = login_with(client, "a" * 32)
    assert response.status_code == 502
    assert response.get_json()["error"] == "wechat_unreachable"


@pytest.mark.parametrize("config_overrides", [{"WECHAT_SECRET": "not-the-right-secret"}])
def test_wrong_secret_is_502_and_logged_without_the_secret(client, wechat, caplog):
    response = login_with(client, wechat.login()["code"])
    assert response.status_code == 502
    assert response.get_json()["error"] == "wechat_misconfigured"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("WECHAT_SECRET" in line for line in errors)
    assert not any("not-the-right-secret" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": "redis://127.0.0.1:1/0"}])
def test_unreachable_redis_is_503(client, wechat):
    response = login_with(client, wechat.login()["code"])
    assert response.status_code == 503
    assert response.get_json()["error"] == "session_store_unavailable"


# -- logout -------------------------------------------------------------------


@pytest.mark.parametrize("present", [cookie, bearer])
def test_logout_ends_the_session_and_clears_the_cookie(client, login, present):
    token = login()
    other = login()
    response = client.post("/oauth/logout", headers=present(token))
    assert response.status_code == 200
    assert response.get_json()["data"] == {"ended": 1}
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith("sid=;") and "Max-Age=0" in set_cookie
    for replay in (cookie, bearer):
        assert client.get("/user/info", headers=replay(token)).status_code == 401
    assert client.get("/user/info", headers=bearer(other)).status_code == 200


def test_logout_without_a_session_is_harmless(client):
    response = client.post("/oauth/logout")
    assert response.status_code == 200
    assert response.get_json()["data"] == {"ended": 0}


@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": "redis://127.0.0.1:1/0"}])
def test_logout_with_redis_down_does_not_pretend(client):
    response = client.post("/oauth/logout", headers=bearer(unknown_token(client.application)))
    assert response.status_code == 503
    assert response.get_json()["error"] == "session_store_unavailable"


# -- /oauth/check ---------------------------------------------------------------


def test_check_reports_a_live_session_and_a_valid_session_key(client, wechat):
    issued = wechat.login()
    token = login_with(client, issued["code"]).get_json()["data"]["token"]
    response = client.get("/oauth/check", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["data"] == {"session": True, "sessionKeyValid": True}
    (call,) = wechat.calls("checksession")
    assert call["query"]["openid"] == issued["openid"]
    assert call["query"]["sig_method"] == "hmac_sha256"
    assert call["query"]["signature"] == hmac_sha256_hex(issued["session_key"])
    assert call["query"]["access_token"]


def test_check_sees_a_session_key_wechat_replaced(client, wechat):
    wechat.configure(rotate="always")
    issued = wechat.login()
    token = login_with(client, issued["code"]).get_json()["data"]["token"]
    wechat.login(openid=issued["openid"])  # a wx.login whose code never reached us
    response = client.get("/oauth/check", headers=bearer(token))
    assert response.get_json()["data"] == {"session": True, "sessionKeyValid": False}


def test_check_without_a_session_is_401(client):
    response = client.get("/oauth/check")
    assert (response.status_code, response.get_json()["error"]) == (401, "unauthorized")


@pytest.mark.parametrize(
    ("fault", "status"),
    [({"errcode": 40001}, 200), ({"errcode": 45011}, 429), ({"errcode": 87008}, 502)],
)
def test_check_when_wechat_fails(client, wechat, login, fault, status):
    token = login()
    wechat.fault("checksession", **fault)
    assert client.get("/oauth/check", headers=bearer(token)).status_code == status


# -- retries of one code, and parallel logins of one user -------------------------


def token_of(response) -> str:
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["token"]


def test_the_same_code_again_is_the_same_session(client, wechat):
    code = wechat.login()["code"]
    first = token_of(login_with(client, code))
    again = login_with(client, code)
    assert token_of(again) == first
    assert again.headers["Set-Cookie"].startswith(f"sid={first};")
    assert len(wechat.calls("jscode2session")) == 1


def test_the_same_code_at_once_from_many_threads(app, wechat):
    code = wechat.login()["code"]
    wechat.fault("jscode2session", delay=0.3)  # keep the first exchange in flight

    def attempt(_: int) -> str:
        return token_of(app.test_client().post("/oauth/login", json={"code": code}))

    with ThreadPoolExecutor(max_workers=10) as pool:
        tokens = set(pool.map(attempt, range(10)))
    assert len(tokens) == 1
    assert len(wechat.calls("jscode2session")) == 1


def test_a_code_wechat_rejected_is_rejected_again_without_asking(client, wechat):
    code = wechat.login()["code"]
    wechat.fault("jscode2session", errcode=40029)
    for _ in range(2):
        response = login_with(client, code)
        assert (response.status_code, response.get_json()["error"]) == (400, "code_invalid")
    assert len(wechat.calls("jscode2session")) == 1


def test_a_transient_failure_leaves_the_code_usable(client, wechat):
    code = wechat.login()["code"]
    wechat.fault("jscode2session", drop=True)
    assert login_with(client, code).status_code == 502
    assert login_with(client, code).status_code == 200
    assert len(wechat.calls("jscode2session")) == 2


def test_a_replay_after_logout_is_code_used(client, wechat):
    code = wechat.login()["code"]
    token = token_of(login_with(client, code))
    client.post("/oauth/logout", headers=bearer(token))
    response = login_with(client, code)
    assert (response.status_code, response.get_json()["error"]) == (400, "code_used")


@pytest.mark.parametrize("config_overrides", [{"LOGIN_RATE_LIMIT_OPENID": "1/minute"}])
def test_a_login_that_failed_after_the_exchange_finishes_on_retry(client, wechat, redis_client):
    """WeChat said yes, then the login could not finish (here: the per-user
    limit). The same code, posted again later, finishes without WeChat."""
    openid = wechat.login()["openid"]
    token_of(login_with(client, wechat.login(openid=openid)["code"]))
    code = wechat.login(openid=openid)["code"]
    refused = login_with(client, code)
    assert (refused.status_code, refused.get_json()["error"]) == (429, "rate_limited")
    assert int(refused.headers["Retry-After"]) > 0
    # The minute has passed: the per-user count lives with the identity's keys.
    for key in redis_client.keys("wx:{*}:identity:*:logins"):
        redis_client.delete(key)
    assert login_with(client, code).status_code == 200
    assert len(wechat.calls("jscode2session")) == 2


def test_a_login_that_failed_on_the_database_finishes_when_it_is_back(
    app, client, wechat, redis_url, emulator_server
):
    down = create_app(
        {**base_config("postgresql://nobody@127.0.0.1:1/none", redis_url, emulator_server.url)}
    )
    code = wechat.login()["code"]
    response = down.test_client().post("/oauth/login", json={"code": code})
    assert (response.status_code, response.get_json()["error"]) == (503, "database_unavailable")
    assert login_with(client, code).status_code == 200  # the same deployment, database back
    assert len(wechat.calls("jscode2session")) == 1


def test_parallel_logins_of_one_user_share_one_session(app, wechat):
    openid = wechat.login()["openid"]
    codes = [wechat.login(openid=openid)["code"] for _ in range(20)]

    def attempt(code: str) -> str:
        return token_of(app.test_client().post("/oauth/login", json={"code": code}))

    with ThreadPoolExecutor(max_workers=20) as pool:
        tokens = set(pool.map(attempt, codes))
    assert len(tokens) == 1
    assert user_rows(app) == 1


@pytest.mark.parametrize("config_overrides", [{"LOGIN_DEDUP_WINDOW": 1}])
def test_outside_the_window_a_login_gets_a_fresh_session(client, wechat, redis_client):
    openid = wechat.login()["openid"]
    first = token_of(login_with(client, wechat.login(openid=openid)["code"]))
    wait_until(lambda: not redis_client.keys("wx:*:identity:*:login"), what="the window to close")
    second = token_of(login_with(client, wechat.login(openid=openid)["code"]))
    assert second != first
    assert client.get("/user/info", headers=bearer(first)).status_code == 200


def test_a_shared_login_still_records_the_newest_session_key(app, client, wechat):
    wechat.configure(rotate="always")
    openid = wechat.login()["openid"]
    first = token_of(login_with(client, wechat.login(openid=openid)["code"]))
    newest = wechat.login(openid=openid)
    assert token_of(login_with(client, newest["code"])) == first
    assert session_keys(app, openid)[0] == newest["session_key"]


# -- rate limits -------------------------------------------------------------------


@pytest.mark.parametrize("config_overrides", [{"LOGIN_RATE_LIMIT": "3/minute"}])
def test_logins_per_client_ip_are_limited(client, wechat):
    statuses = [login_with(client, wechat.login()["code"]).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = login_with(client, wechat.login()["code"])
    assert (response.status_code, response.get_json()["error"]) == (429, "rate_limited")
    assert 0 < int(response.headers["Retry-After"]) <= 61  # the window's end, rounded up
    # Without trusted proxies a forged X-Forwarded-For changes nothing.
    forged = client.post(
        "/oauth/login", json={"code": "x"}, headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert forged.status_code == 429


@pytest.mark.parametrize(
    "config_overrides", [{"LOGIN_RATE_LIMIT": "2/minute", "TRUSTED_PROXIES": 1}]
)
def test_behind_a_trusted_proxy_the_forwarded_ip_counts(client, wechat):
    def from_ip(ip: str) -> int:
        return client.post(
            "/oauth/login",
            json={"code": wechat.login()["code"]},
            headers={"X-Forwarded-For": ip},
        ).status_code

    assert [from_ip("203.0.113.1") for _ in range(3)] == [200, 200, 429]
    assert from_ip("203.0.113.2") == 200


@pytest.mark.parametrize("config_overrides", [{"LOGIN_RATE_LIMIT_OPENID": "2/minute"}])
def test_logins_per_user_are_limited(client, wechat):
    openid = wechat.login()["openid"]
    statuses = [
        login_with(client, wechat.login(openid=openid)["code"]).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert login_with(client, wechat.login()["code"]).status_code == 200  # someone else


@pytest.mark.parametrize("config_overrides", [{"LOGIN_RATE_LIMIT_OPENID": "2/minute;3/hour"}])
def test_every_window_of_the_per_user_limit_counts(client, wechat, redis_client):
    """The per-user limit is counted by the session script: each window
    holds, a refused login is not counted, keeps no session_key and makes no
    session, and Retry-After is the wait until the window lets one through."""
    openid = wechat.login()["openid"]
    statuses = [
        login_with(client, wechat.login(openid=openid)["code"]).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    refused = login_with(client, wechat.login(openid=openid)["code"])
    assert 55 <= int(refused.headers["Retry-After"]) <= 61  # the minute's window
    (key,) = redis_client.keys("wx:{*}:identity:*:logins")
    assert redis_client.llen(key) == 2  # refusals are not counted
    ring = key.replace(":logins", ":session_keys")
    assert redis_client.zcard(ring) == 1  # the same session_key twice: one entry
    sessions = redis_client.zcard(key.replace(":logins", ":sessions"))
    assert sessions == 1  # the two logins shared one session (de-duplication)
    # Two minutes later the minute's window lets logins through, the hour's
    # one more: the third login of the hour is the last.
    for index in (0, 1):
        redis_client.lset(key, index, repr(time.time() - 120))
    statuses = [
        login_with(client, wechat.login(openid=openid)["code"]).status_code for _ in range(2)
    ]
    assert statuses == [200, 429]


def test_a_returning_users_login_costs_four_round_trips_and_one_statement(
    app, client, wechat, redis_url
):
    """Per-client limit, claiming the code, the session script (with the
    per-user limit and the session_key), recording the code's answer; one
    SELECT of the identity with its account. And WeChat once."""
    openid = wechat.login()["openid"]
    login_with(client, wechat.login(openid=openid)["code"])  # scripts loaded, user known
    with app.app_context():
        engine = db.engine
    calls = len(wechat.calls("jscode2session"))
    with cost(redis_url, app.extensions[GRAPH].sessions.redis, engine) as spent:
        response = login_with(client, wechat.login(openid=openid)["code"])
    assert response.status_code == 200
    assert spent.round_trips == 4
    assert [c.split(" ", 1)[0] for c in spent.sql] == ["SELECT"]
    assert len(wechat.calls("jscode2session")) == calls + 1


# -- logout everywhere -----------------------------------------------------------


@pytest.mark.parametrize("config_overrides", [{"LOGIN_DEDUP_WINDOW": 0}])
@pytest.mark.parametrize("body", [{"all": True}, {"all": "true"}])
def test_logout_all_ends_every_session_of_the_user(client, wechat, body):
    openid = wechat.login()["openid"]
    mine = [token_of(login_with(client, wechat.login(openid=openid)["code"])) for _ in range(3)]
    theirs = token_of(login_with(client, wechat.login()["code"]))
    response = client.post("/oauth/logout", json=body, headers=bearer(mine[0]))
    assert response.get_json()["data"] == {"ended": 3}
    assert all(client.get("/user/info", headers=bearer(t)).status_code == 401 for t in mine)
    assert client.get("/user/info", headers=bearer(theirs)).status_code == 200


def test_logout_all_must_be_a_flag(client, login):
    response = client.post("/oauth/logout", json={"all": "maybe"}, headers=bearer(login()))
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_field")


@pytest.mark.parametrize("garbage", ["not json", "[]", '{"session": 7}', '{"later": "x"}'])
def test_an_unreadable_ledger_entry_is_taken_over_and_wechat_decides(
    client, wechat, redis_client, garbage
):
    """Whatever sits in Redis for a code, the login asks WeChat once and answers."""
    code = wechat.login()["code"]
    key = Keys("wx:").login_code(hashlib.sha256(f"{APPID}:{code}".encode()).hexdigest())
    redis_client.set(key, garbage, ex=60)
    response = login_with(client, code)
    assert response.status_code == 200, response.get_json()
    assert len(wechat.calls("jscode2session")) == 1
    assert json.loads(redis_client.get(key)) == {"session": token_of(response)}


# -- what one user can make the service ask WeChat ----------------------------------


def test_checks_reuse_wechats_answer_for_a_while(client, login, wechat):
    token = login()
    for _ in range(50):
        assert client.get("/oauth/check", headers=bearer(token)).status_code == 200
    assert len(wechat.calls("checksession")) == 1


@pytest.mark.parametrize("config_overrides", [{"CHECK_SESSION_CACHE": 0}])
def test_one_user_cannot_make_the_service_call_wechat_without_limit(client, login, wechat):
    token = login()
    statuses = [client.get("/oauth/check", headers=bearer(token)).status_code for _ in range(30)]
    assert statuses == [200] * 20 + [429] * 10
    assert len(wechat.calls("checksession")) == 20
    response = client.get("/oauth/check", headers=bearer(token))
    assert response.get_json()["error"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0
    # Another user is not affected.
    assert client.get("/oauth/check", headers=bearer(login())).status_code == 200


def test_bogus_phone_codes_reach_wechat_a_bounded_number_of_times(client, login, wechat):
    token = login()
    for n in range(30):
        client.post("/user/bindphone", json={"code": f"bogus{n}"}, headers=bearer(token))
    assert len(wechat.calls("getuserphonenumber")) == 20
