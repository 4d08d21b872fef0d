"""The database goes away and comes back under a running app: requests that
need it get 503 database_unavailable, the rest keep working, and once it is
back everything works again without a restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app import create_app
from support.apps import base_config, bearer, migrate_database
from support.mariadb import ThrowawayMariaDB

pytestmark = pytest.mark.skipif(
    not ThrowawayMariaDB.available(), reason="mariadb-install-db and mariadbd are not installed"
)


@pytest.fixture
def mariadb(tmp_path) -> Iterator[ThrowawayMariaDB]:
    server = ThrowawayMariaDB(tmp_path)
    server.install()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def outage_app(mariadb, redis_url, redis_client, emulator_server, watch):
    migrate_database(mariadb.url, redis_url)
    app = create_app(base_config(mariadb.url, redis_url, emulator_server.url))
    app.extensions["test_watch"] = watch
    return app


def test_the_database_stops_and_starts_again(outage_app, mariadb, wechat):
    client = outage_app.test_client(use_cookies=False)
    issued = wechat.login()
    token = client.post("/oauth/login", json={"code": issued["code"]}).get_json()["data"]["token"]

    def bind(nickname: str):
        sealed = wechat.encrypt(issued["openid"], data={"nickName": nickname})
        return client.post(
            "/user/bindinfo",
            headers=bearer(token),
            json={"encryptedData": sealed["encryptedData"], "iv": sealed["iv"]},
        )

    assert bind("before").status_code == 200

    mariadb.stop()
    response = bind("during")
    assert (response.status_code, response.get_json()["error"]) == (503, "database_unavailable")
    code = wechat.login()["code"]
    response = client.post("/oauth/login", json={"code": code})
    assert (response.status_code, response.get_json()["error"]) == (503, "database_unavailable")
    info = client.get("/user/info", headers=bearer(token))  # Redis alone answers this
    assert info.status_code == 200 and info.get_json()["data"]["nickName"] == "before"

    mariadb.start()
    assert bind("after").status_code == 200
    retried = client.post("/oauth/login", json={"code": code})  # the same code, again
    assert retried.status_code == 200
    assert len(wechat.calls("jscode2session")) == 2  # that code reached WeChat once
    shown = client.get("/user/info", headers=bearer(token)).get_json()["data"]
    assert shown["nickName"] == "after"
