"""/healthz and /readyz."""

from __future__ import annotations

import pytest


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
