"""Fixtures of the HTTP tier."""

from __future__ import annotations

import pytest


@pytest.fixture
def user(client, wechat):
    """A logged-in user: (openid, token)."""
    issued = wechat.login()
    response = client.post("/oauth/login", json={"code": issued["code"]})
    return issued["openid"], response.get_json()["data"]["token"]
