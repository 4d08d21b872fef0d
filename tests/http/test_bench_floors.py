"""The benchmark's reference apps (bench/floors.py) still run against the
service's current schema, Redis layout and WeChat client: `make bench`
compares the service with them."""

from __future__ import annotations

import config
from bench.floors import create_floors
from support.apps import base_config


def test_each_floor_answers(app, wechat, login, database_url, redis_url, emulator_server):
    settings = {**config.load({}), **base_config(database_url, redis_url, emulator_server.url)}
    floors = create_floors(settings).test_client(use_cookies=False)
    token = login()
    assert floors.get("/floor/framework").status_code == 200
    cookie = {"Cookie": f"{settings['SESSION_COOKIE_NAME']}={token}"}
    assert floors.get("/floor/session", headers=cookie).status_code == 200
    for _ in range(2):  # a first login, then the same identity again
        code = wechat.login(openid="o-floor")["code"]
        assert floors.post("/floor/login", json={"code": code}).status_code == 200
