"""GET /metrics: off without METRICS_TOKEN, behind it otherwise; what the
service counts (requests by route, login outcomes, WeChat calls, access-token
refreshes, Redis and database errors, live sessions). In one process, so the
counters are this process's: each test compares before and after."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from support.apps import bearer
from support.constants import APPID
from support.metrics import METRICS_TOKEN, SCRAPE, samples, total, value

Scrape = Callable[[], dict]


@pytest.fixture
def config_overrides() -> dict:
    return {"METRICS_TOKEN": METRICS_TOKEN}


@pytest.fixture
def scrape(client) -> Scrape:
    def _scrape() -> dict:
        response = client.get("/metrics", headers=SCRAPE)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.content_type.startswith("text/plain")
        return samples(response.get_data(as_text=True))

    return _scrape


@pytest.mark.parametrize("config_overrides", [{}])
def test_without_a_token_configured_there_is_no_metrics_endpoint(client):
    for headers in ({}, SCRAPE):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 404
        assert response.get_json()["error"] == "not_found"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789", f"Basic {METRICS_TOKEN}", METRICS_TOKEN, "Bearer "],
)
def test_a_missing_or_wrong_token_is_a_401_challenge(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "metrics_unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "wx_" not in response.get_data(as_text=True)


def test_requests_are_counted_by_route_never_by_raw_path(client, scrape):
    before = scrape()
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/avatars/" + "ab" * 32 + ".jpg").status_code == 404
    assert client.get("/no/such/place").status_code == 404
    assert client.post("/healthz").status_code == 405
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("wx_http_requests_total", route="/healthz", method="GET", status="200") == 3
    assert delta("wx_http_requests_total", route="/avatars/<name>", method="GET", status="404") == 1
    # No URL rule matched these (a wrong method matches none either).
    assert delta("wx_http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert delta("wx_http_requests_total", route="<unmatched>", method="POST", status="405") == 1
    assert delta("wx_http_request_duration_seconds_count", route="/healthz", method="GET") == 3
    routes = {dict(labels).get("route") for (_, labels) in after}
    assert not any(route and ("ab" * 32 in route or "no/such" in route) for route in routes)


def test_login_outcomes(client, wechat, scrape):
    before = scrape()
    first = wechat.login()
    assert client.post("/oauth/login", json={"code": first["code"]}).status_code == 200
    # The same code again: a retry, answered from the ledger.
    assert client.post("/oauth/login", json={"code": first["code"]}).status_code == 200
    # Another code of the same user within the window: the same session.
    again = wechat.login(openid=first["openid"])
    assert client.post("/oauth/login", json={"code": again["code"]}).status_code == 200
    used = wechat.login()
    wechat.fault("jscode2session", errcode=40163)
    assert client.post("/oauth/login", json={"code": used["code"]}).status_code == 400
    assert client.post("/oauth/login", json={"code": "not-a-code"}).status_code == 400
    after = scrape()
    outcomes = {
        outcome: value(after, "wx_logins_total", outcome=outcome)
        - value(before, "wx_logins_total", outcome=outcome)
        for outcome in ("new", "replayed", "shared", "code_used", "code_invalid")
    }
    assert outcomes == {"new": 1, "replayed": 1, "shared": 1, "code_used": 1, "code_invalid": 1}


def test_wechat_calls_by_api_and_errcode(client, wechat, scrape, login):
    before = scrape()
    login()
    login()
    wechat.fault("jscode2session", errcode=40163)
    assert client.post("/oauth/login", json={"code": wechat.login()["code"]}).status_code == 400
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("wx_wechat_calls_total", api="jscode2session", errcode="0") == 2
    assert delta("wx_wechat_calls_total", api="jscode2session", errcode="40163") == 1
    assert delta("wx_wechat_call_duration_seconds_count", api="jscode2session") == 3
    # As many calls as the emulator received.
    assert len(wechat.calls("jscode2session")) == 3


def test_an_unreachable_wechat_is_counted_as_such(client, wechat, scrape):
    before = scrape()
    wechat.fault("jscode2session", drop=True)
    response = client.post("/oauth/login", json={"code": wechat.login()["code"]})
    assert response.status_code == 502
    after = scrape()
    labels = {"api": "jscode2session", "errcode": "unreachable"}
    failed = total(after, "wx_wechat_calls_total", **labels)
    assert failed - total(before, "wx_wechat_calls_total", **labels) == 1
    outcome = response.get_json()["error"]
    assert (
        value(after, "wx_logins_total", outcome=outcome)
        - value(before, "wx_logins_total", outcome=outcome)
        == 1
    )


def test_access_token_refreshes(client, wechat, scrape, user):
    openid, token = user
    before = scrape()
    for _ in range(2):
        code = wechat.phone_code(openid)["code"]
        response = client.post("/user/bindphone", json={"code": code}, headers=bearer(token))
        assert response.status_code == 200, response.get_json()
    after = scrape()
    refreshed = value(after, "wx_access_token_refreshes_total", appid=APPID)
    assert (
        refreshed - value(before, "wx_access_token_refreshes_total", appid=APPID)
        == len(wechat.calls("stable_token"))
        == 1
    )


def test_live_sessions_are_sampled_at_scrape_time(client, scrape, login, redis_client):
    assert value(scrape(), "wx_sessions_live") == 0
    tokens = [login() for _ in range(3)]
    assert value(scrape(), "wx_sessions_live") == 3
    assert client.post("/oauth/logout", headers=bearer(tokens[0])).status_code == 200
    assert value(scrape(), "wx_sessions_live") == 2


@pytest.mark.parametrize(
    "config_overrides", [{"METRICS_TOKEN": METRICS_TOKEN, "REDIS_URL": "redis://127.0.0.1:1/0"}]
)
def test_redis_errors_are_counted_and_the_scrape_still_answers(client, scrape):
    before = scrape()  # no Redis: no live-session sample, the rest is there
    assert value(before, "wx_sessions_live") == 0
    assert client.get("/user/info", headers=bearer("x" * 55)).status_code in (401, 503)
    assert client.post("/oauth/login", json={"code": "any"}).status_code == 503
    after = scrape()
    assert total(after, "wx_redis_errors_total") > total(before, "wx_redis_errors_total")
    assert not any(name == "wx_sessions_live" for (name, _) in after)


@pytest.mark.parametrize(
    "config_overrides",
    [
        {
            "METRICS_TOKEN": METRICS_TOKEN,
            "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        }
    ],
)
def test_database_errors_are_counted(client, wechat, scrape):
    before = scrape()
    response = client.post("/oauth/login", json={"code": wechat.login()["code"]})
    assert response.status_code == 503
    after = scrape()
    assert total(after, "wx_database_errors_total") > total(before, "wx_database_errors_total")
    assert (
        value(after, "wx_logins_total", outcome="database_unavailable")
        - value(before, "wx_logins_total", outcome="database_unavailable")
        == 1
    )
