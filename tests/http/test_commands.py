"""`flask sessions revoke`: an operator ends every session of a user."""

from __future__ import annotations

from support.apps import bearer


def test_revoke_ends_every_session_of_the_user(app, client, wechat):
    openid = wechat.login()["openid"]
    token = client.post(
        "/oauth/login", json={"code": wechat.login(openid=openid)["code"]}
    ).get_json()["data"]["token"]
    other = client.post("/oauth/login", json={"code": wechat.login()["code"]})
    result = app.test_cli_runner().invoke(args=["sessions", "revoke", openid])
    assert result.exit_code == 0, result.output
    assert "ended 1 session(s)" in result.output
    assert openid not in result.output
    assert client.get("/user/info", headers=bearer(token)).status_code == 401
    other_token = other.get_json()["data"]["token"]
    assert client.get("/user/info", headers=bearer(other_token)).status_code == 200


def test_revoke_reads_the_openid_from_stdin(app, client, wechat):
    openid = wechat.login()["openid"]
    client.post("/oauth/login", json={"code": wechat.login(openid=openid)["code"]})
    result = app.test_cli_runner().invoke(args=["sessions", "revoke", "-"], input=openid + "\n")
    assert result.exit_code == 0 and "ended 1" in result.output


def test_revoke_of_an_unknown_user_fails_clearly(app, wechat):
    result = app.test_cli_runner().invoke(args=["sessions", "revoke", "oNobody"])
    assert result.exit_code != 0
    assert "no user has that openid" in result.output
