"""The deployed shape: gunicorn with gunicorn.conf.py and two workers. A
session made on one worker works on the other, as a cookie and as a bearer
token, and a logout on one worker is a 401 on every worker at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, func, select

from dev.stack import start_gunicorn
from services.stores.models import Account, Identity
from support.apps import bearer, cookie
from support.servers import Server, instance_env

pytestmark = pytest.mark.gunicorn


@pytest.fixture
def server(service: Server) -> Server:
    return service


@pytest.fixture
def logged_in(server, wechat, redis_client, watch) -> tuple[str, int]:
    response, pid = server.call("POST", "/oauth/login", json={"code": wechat.login()["code"]})
    watch.add_text(str(response.headers) + response.text)
    assert response.status_code == 200, response.text
    return response.json()["data"]["token"], pid


def on_another_worker(server: Server, path: str, pid: int, headers: dict, watch) -> int:
    """Repeat the request on fresh connections until another worker serves it."""
    for _ in range(100):
        response, served_by = server.get(path, headers=headers)
        watch.add_text(str(response.headers) + response.text)
        if served_by != pid:
            return response.status_code
    pytest.fail("every request landed on the same worker")


@pytest.mark.parametrize("present", [cookie, bearer])
def test_a_session_from_one_worker_works_on_the_other(server, logged_in, present, watch):
    token, login_pid = logged_in
    assert on_another_worker(server, "/user/info", login_pid, present(token), watch) == 200


def test_a_logout_is_a_401_on_every_worker(server, logged_in, watch):
    token, _ = logged_in
    response, logout_pid = server.call("POST", "/oauth/logout", headers=bearer(token))
    assert response.status_code == 200
    assert on_another_worker(server, "/user/info", logout_pid, bearer(token), watch) == 401
    for _ in range(10):
        assert server.get("/user/info", headers=cookie(token))[0].status_code == 401


def test_errors_are_json_under_gunicorn(server, watch):
    response, _ = server.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_logs_never_show_secrets(server, logged_in, wechat, watch):
    token, _ = logged_in
    server.get("/user/info", headers=bearer(token))
    wechat.fault("jscode2session", errcode=40125)
    server.call("POST", "/oauth/login", json={"code": wechat.login()["code"]})
    log = server.log_text()
    assert "WECHAT_SECRET" in log  # the misconfiguration was reported...
    watch.add_text(log)  # ...and the leak watch checks it holds no secret


def test_parallel_phone_binds_on_two_workers_fetch_one_token(server, wechat, watch):
    """A cold token cache, two workers, 40 binds at once: one stable_token call."""
    users = []
    for _ in range(40):
        issued = wechat.login()
        response, _ = server.call("POST", "/oauth/login", json={"code": issued["code"]})
        users.append(
            (response.json()["data"]["token"], wechat.phone_code(issued["openid"])["code"])
        )

    def bind(user: tuple[str, str]) -> tuple[int, int]:
        token, code = user
        response, pid = server.call(
            "POST", "/user/bindphone", json={"code": code}, headers=bearer(token)
        )
        watch.add_text(response.text)
        return response.status_code, pid

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(bind, users))
    assert [status for status, _ in results] == [200] * 40
    assert len({pid for _, pid in results}) == 2  # both workers took part
    assert len(wechat.calls("stable_token")) == 1
    assert len(wechat.calls("getuserphonenumber")) == 40


# -- two instances, two workers each, one Redis and one database -------------------


@pytest.fixture
def instances(service, second_service) -> list[Server]:
    return [service, second_service]


def user_rows(database_url: str, openid: str) -> tuple[int, int]:
    """(identities with this openid, accounts they belong to)."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        mine = select(Identity.account_id).where(Identity.openid == openid)
        identities = conn.scalar(select(func.count()).select_from(mine.subquery()))
        accounts = conn.scalar(select(func.count()).where(Account.id.in_(mine)))
    engine.dispose()
    return identities, accounts


def test_fifty_parallel_logins_across_instances_get_one_session(
    instances, wechat, redis_client, database_url, watch
):
    openid = wechat.login()["openid"]
    codes = [wechat.login(openid=openid)["code"] for _ in range(50)]

    def attempt(item: tuple[int, str]) -> str:
        index, code = item
        response, _ = instances[index % 2].call("POST", "/oauth/login", json={"code": code})
        watch.add_text(response.text)
        assert response.status_code == 200, response.text
        return response.json()["data"]["token"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        tokens = set(pool.map(attempt, enumerate(codes)))
    assert len(tokens) == 1
    assert user_rows(database_url, openid) == (1, 1)
    (token,) = tokens
    for server in instances:
        assert server.get("/user/info", headers=bearer(token))[0].status_code == 200


def test_one_code_three_times_across_instances_is_one_exchange(
    instances, wechat, redis_client, watch
):
    code = wechat.login()["code"]
    wechat.fault("jscode2session", delay=0.3)  # all three arrive while WeChat thinks

    def attempt(index: int) -> str:
        response, _ = instances[index % 2].call("POST", "/oauth/login", json={"code": code})
        watch.add_text(response.text)
        assert response.status_code == 200, response.text
        return response.json()["data"]["token"]

    with ThreadPoolExecutor(max_workers=3) as pool:
        tokens = set(pool.map(attempt, range(3)))
    assert len(tokens) == 1
    assert len(wechat.calls("jscode2session")) == 1


def test_logout_everywhere_on_one_instance_is_401_on_the_other(
    instances, wechat, redis_client, watch
):
    first, second = instances
    openid = wechat.login()["openid"]
    tokens = []
    for server in instances:
        response, _ = server.call(
            "POST", "/oauth/login", json={"code": wechat.login(openid=openid)["code"]}
        )
        tokens.append(response.json()["data"]["token"])
    response, _ = first.call("POST", "/oauth/logout", json={"all": True}, headers=bearer(tokens[0]))
    assert response.status_code == 200
    for token in tokens:
        for _ in range(4):  # whichever worker answers
            assert second.get("/user/info", headers=bearer(token))[0].status_code == 401


@pytest.mark.parametrize("missing", ["WECHAT_SECRET", "SECRET_KEY"])
def test_production_without_a_secret_refuses_to_start(redis_url, database_url, tmp_path, missing):
    env = instance_env(redis_url, database_url, "http://127.0.0.1:9")
    env.pop(missing)
    server = start_gunicorn(env, tmp_path / "gunicorn.log")
    assert server.process.wait(60) != 0
    output = server.log_text()
    assert "configuration error: WECHAT_APPID is set" in output
    assert missing in output and "Traceback" not in output
