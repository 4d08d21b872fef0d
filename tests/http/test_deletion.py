"""DELETE /user and `flask users delete`: the account's personal data goes,
every session ends at once, the openid is free for a fresh account."""

from __future__ import annotations

from sqlalchemy import func, select

from blueprints import GRAPH
from blueprints.extensions import db
from services.stores.models import Account, Deletion, Identity
from services.stores.redis import identity_tag
from support.apps import bearer, cookie, identity_of

PROFILE = {"nickName": "小明🐱", "gender": 1, "city": "Guangzhou"}


def bind_everything(client, wechat, openid, token):
    sealed = wechat.encrypt(openid, data=PROFILE)
    body = {"encryptedData": sealed["encryptedData"], "iv": sealed["iv"]}
    assert client.post("/user/bindinfo", json=body, headers=bearer(token)).status_code == 200
    code = wechat.phone_code(openid)["code"]
    assert (
        client.post("/user/bindphone", json={"code": code}, headers=bearer(token)).status_code
        == 200
    )


def rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_deleting_erases_the_account_and_ends_every_session(app, client, wechat, redis_client):
    issued = wechat.login(unionid="oUnion000000000000000000000")
    openid = issued["openid"]
    token = client.post("/oauth/login", json={"code": issued["code"]}).get_json()["data"]["token"]
    other = wechat.login(openid=openid)["code"]  # a second device, outside any window
    bind_everything(client, wechat, openid, token)
    identity = identity_of(app, openid)
    account_id = identity.account_id
    mine = f"wx:{{{identity_tag(identity.id)}}}:*"
    assert redis_client.keys(mine)

    response = client.delete("/user", headers=cookie(token))
    assert response.get_json() == {"code": 0, "data": {"deleted": True}}
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith("sid=;") and "Max-Age=0" in set_cookie

    assert client.get("/user/info", headers=bearer(token)).status_code == 401
    assert rows(app, Account) == rows(app, Identity) == 0
    with app.app_context():
        deletion = db.session.scalars(select(Deletion)).one()
    assert (deletion.account_id, deletion.reason) == (account_id, "user")
    # Nothing of the user is left in Redis but the short-lived deletion mark.
    assert redis_client.keys(mine) == [mine[:-1] + f"identity:{identity.id}:deleted"]

    # The openid is free: the next login is a fresh, empty account.
    fresh = client.post("/oauth/login", json={"code": other}).get_json()["data"]["token"]
    info = client.get("/user/info", headers=bearer(fresh)).get_json()["data"]
    assert set(info.values()) == {None}
    assert identity_of(app, openid).account_id != account_id


def test_deleting_twice_is_harmless(client, user):
    _, token = user
    assert client.delete("/user", headers=bearer(token)).status_code == 200
    response = client.delete("/user", headers=bearer(token))
    assert (response.status_code, response.get_json()["error"]) == (401, "unauthorized")


def test_deleting_needs_a_session(client):
    response = client.delete("/user")
    assert (response.status_code, response.get_json()["error"]) == (401, "unauthorized")


def test_other_users_are_untouched(app, client, wechat, user):
    _, token = user
    theirs = wechat.login()
    their_token = client.post("/oauth/login", json={"code": theirs["code"]}).get_json()["data"]
    client.delete("/user", headers=bearer(token))
    assert client.get("/user/info", headers=bearer(their_token["token"])).status_code == 200
    assert rows(app, Account) == 1


def test_the_operator_command_deletes_by_openid_idempotently(app, client, user):
    openid, token = user
    runner = app.test_cli_runner()
    done = runner.invoke(args=["users", "delete", "-"], input=openid + "\n")
    assert done.exit_code == 0 and "deleted" in done.output
    assert client.get("/user/info", headers=bearer(token)).status_code == 401
    again = runner.invoke(args=["users", "delete", openid])
    assert again.exit_code == 0 and "nothing to delete" in again.output
    with app.app_context():
        assert db.session.scalars(select(Deletion.reason)).all() == ["operator"]


def test_a_login_racing_the_deletion_ends_in_a_fresh_account(app, client, wechat, user):
    """A login that read the old row before it went is refused by the
    deletion mark, and the same code, posted again, logs in afresh."""
    openid, _ = user
    graph = app.extensions[GRAPH]
    old = identity_of(app, openid)
    graph.sessions.forget_identity(old.id)  # the deletion has begun...
    code = wechat.login(openid=openid)["code"]
    racing = client.post("/oauth/login", json={"code": code})
    assert (racing.status_code, racing.get_json()["error"]) == (409, "account_deleted")
    graph.accounts.delete(old.account_id, reason="user")  # ...and ends
    again = client.post("/oauth/login", json={"code": code})
    assert again.status_code == 200
    assert identity_of(app, openid).account_id != old.account_id
    assert len(wechat.calls("jscode2session")) == 2  # the user's first login, and this code once
