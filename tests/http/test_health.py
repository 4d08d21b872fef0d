"""/healthz and /readyz."""

from __future__ import annotations

import pytest

from dev.topologies import SingleRedis


def test_healthz_needs_nothing(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"code": 0, "data": {"status": "ok"}}


def test_readyz_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["data"] == {"redis": True, "database": True}


@pytest.mark.parametrize(
    ("config_overrides", "failing"),
    [
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "redis"),
        ({"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}, "database"),
    ],
)
def test_readyz_names_what_does_not_answer(client, failing):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "not_ready" and failing in body["message"]
    assert body["data"][failing] is False


@pytest.fixture
def full_redis(tmp_path):
    """A private Redis that answers PING but refuses writes: maxmemory reached
    under noeviction, as a full managed Redis does."""
    with SingleRedis(tmp_path / "redis") as redis_server:
        yield redis_server


@pytest.fixture
def config_overrides(request) -> dict:
    if "full_redis" in request.fixturenames:
        return {"REDIS_URL": request.getfixturevalue("full_redis").url()}
    return {}


def test_readyz_is_not_ready_when_redis_refuses_writes(app, client, wechat, full_redis):
    assert client.get("/readyz").status_code == 200
    full_redis.node.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
    full_redis.node.call("CONFIG", "SET", "maxmemory", "1")
    assert full_redis.node.call("PING") is True  # it still answers
    response = client.get("/readyz")
    assert (response.status_code, response.get_json()["data"]) == (
        503,
        {"redis": False, "database": True},
    )
    # What readiness says is what a login gets:
    login = client.post("/oauth/login", json={"code": wechat.login()["code"]})
    assert (login.status_code, login.get_json()["error"]) == (503, "session_store_unavailable")
    full_redis.node.call("CONFIG", "SET", "maxmemory", "0")
    assert client.get("/readyz").status_code == 200
