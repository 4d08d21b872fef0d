"""Several apps, one person (reference §13): openids per app, unionids per Open Platform,
official-account web OAuth (sns/oauth2/access_token, sns/userinfo) and its scopes."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests

from support.emulator import (
    APPID,
    RID,
    ContentChecks,
    WeChat,
    assert_error,
    errcode,
    refused,
)
from wechat_emulator import EmulatorControl

MP_A, MP_B, MP_C = "wxaaaaaaaaaaaaaaaa", "wxbbbbbbbbbbbbbbbb", "wxcccccccccccccccc"
OA, OA_UNBOUND = "wxoa00000000000000", "wxoa11111111111111"
SECRET_OF = {
    MP_A: "secret-a",
    MP_B: "secret-b",
    MP_C: "secret-c",
    OA: "secret-oa",
    OA_UNBOUND: "secret-oa-unbound",
}
OPENID = r"o[A-Za-z0-9_-]{27}"


@pytest.fixture
def apps(ctl: EmulatorControl) -> None:
    ctl.add_app(MP_A, SECRET_OF[MP_A], open_platform="open-1")
    ctl.add_app(MP_B, SECRET_OF[MP_B], kind="miniprogram", open_platform="open-1")
    ctl.add_app(MP_C, SECRET_OF[MP_C], open_platform="open-2")
    ctl.add_app(OA, SECRET_OF[OA], kind="official_account", open_platform="open-1")
    ctl.add_app(OA_UNBOUND, SECRET_OF[OA_UNBOUND], kind="official_account")


def session(wx: WeChat, appid: str, code: str) -> dict[str, Any]:
    return wx.code2session(code, appid=appid, secret=SECRET_OF.get(appid, "x"))


def oauth(cs: ContentChecks, appid: str, code: str | None, **kw: Any) -> dict[str, Any]:
    return cs.oauth_token(code, appid=appid, secret=SECRET_OF[appid], **kw)


# ----- apps --------------------------------------------------------------------------------------


def test_app_registration(ctl: EmulatorControl, apps: None) -> None:
    listed = {a["appid"]: a for a in ctl.apps()}
    assert set(listed) == {APPID, MP_A, MP_B, MP_C, OA, OA_UNBOUND}
    assert listed[APPID]["kind"] == "miniprogram"
    assert listed[APPID]["open_platform"] is None
    assert listed[OA] == {
        "appid": OA,
        "secret": SECRET_OF[OA],
        "kind": "official_account",
        "open_platform": "open-1",
        "username": listed[OA]["username"],
        "push": None,
    }
    assert re.fullmatch(r"gh_[0-9a-f]{12}", listed[OA]["username"])
    assert len({a["username"] for a in listed.values()}) == 6
    # Re-registering changes what is given and keeps the rest.
    again = ctl.add_app(OA, "new-secret", open_platform="open-2")
    assert (again["kind"], again["open_platform"], again["secret"]) == (
        "official_account",
        "open-2",
        "new-secret",
    )
    assert again["username"] == listed[OA]["username"]
    named = ctl.add_app("wxnamed0000000000", "s", username="gh_97417a04a28d")
    assert named["username"] == "gh_97417a04a28d"
    ctl.reset()
    assert [a["appid"] for a in ctl.apps()] == [APPID]


@pytest.mark.parametrize(
    "payload",
    [
        {"appid": "wx1", "secret": "s", "kind": "minigame"},
        {"appid": "wx1", "secret": "s", "open_platform": ""},
        {"appid": "wx1", "secret": "s", "open_platform": 5},
        {"appid": "", "secret": "s"},
    ],
)
def test_bad_apps_rejected(ctl: EmulatorControl, payload: dict[str, Any]) -> None:
    assert refused(lambda: ctl._call("POST", "apps", payload)) == 400


# ----- one person, many apps ---------------------------------------------------------------------


def test_person_has_an_openid_per_app_and_a_unionid_per_platform(
    ctl: EmulatorControl, wx: WeChat, apps: None
) -> None:
    logins = {appid: ctl.login(person="alice", appid=appid) for appid in (MP_A, MP_B, MP_C)}
    logins[APPID] = ctl.login(person="alice")
    openids = {appid: login["openid"] for appid, login in logins.items()}
    assert len(set(openids.values())) == 4
    assert all(re.fullmatch(OPENID, o) for o in openids.values())
    unionids = {appid: login["unionid"] for appid, login in logins.items()}
    assert unionids[MP_A] == unionids[MP_B]
    assert re.fullmatch(OPENID, unionids[MP_A])
    assert unionids[MP_C] not in (None, unionids[MP_A])
    assert unionids[APPID] is None  # not bound to an Open Platform

    for appid, login in logins.items():
        reply = (
            session(wx, appid, login["code"]) if appid != APPID else wx.code2session(login["code"])
        )
        expected = {"session_key": login["session_key"], "openid": openids[appid]}
        if unionids[appid]:
            expected["unionid"] = unionids[appid]
        assert reply == expected  # an unbound app never returns a unionid
        assert ctl.user(openids[appid], appid=appid)["unionid"] == unionids[appid]

    bob = ctl.login(person="bob", appid=MP_A)
    assert bob["openid"] != openids[MP_A] and bob["unionid"] != unionids[MP_A]
    # Stable: the same person is the same openid, today and after a reset.
    assert ctl.login(person="alice", appid=MP_A)["openid"] == openids[MP_A]
    ctl.reset()
    ctl.add_app(MP_A, SECRET_OF[MP_A], open_platform="open-1")
    again = ctl.login(person="alice", appid=MP_A)
    assert (again["openid"], again["unionid"]) == (openids[MP_A], unionids[MP_A])


def test_binding_decides_the_unionid(ctl: EmulatorControl, wx: WeChat, apps: None) -> None:
    login = ctl.login(person="alice", appid=MP_C)
    ctl.add_app(MP_C, SECRET_OF[MP_C], open_platform="open-1")  # rebound
    reply = session(wx, MP_C, login["code"])
    assert reply["unionid"] == ctl.login(person="alice", appid=MP_A)["unionid"]


def test_original_login_arguments_still_work(ctl: EmulatorControl, wx: WeChat, apps: None) -> None:
    unionid = "oUnion0123456789abcdefghijkl"
    login = ctl.login(openid="oOpenid0123456789abcdefghijk", unionid=unionid)
    assert wx.code2session(login["code"]) == {
        "session_key": login["session_key"],
        "openid": "oOpenid0123456789abcdefghijk",
        "unionid": unionid,
    }
    random_user = ctl.login()
    assert random_user["unionid"] is None
    assert "unionid" not in wx.code2session(random_user["code"])
    derived = ctl.login(person="alice")["openid"]
    assert ctl.login(person="alice", openid=derived)["openid"] == derived


@pytest.mark.parametrize(
    "payload",
    [
        {"person": "alice", "unionid": "oU"},
        {"person": "alice", "openid": "oSomeoneElse"},
        {"person": ""},
        {"person": 7},
        {"person": "alice", "appid": OA},  # wx.login is for mini programs
    ],
)
def test_bad_person_logins_rejected(
    ctl: EmulatorControl, apps: None, payload: dict[str, Any]
) -> None:
    assert refused(lambda: ctl._call("POST", "login", payload)) == 400


# ----- official-account web OAuth ---------------------------------------------------------------


def test_oauth_base_scope(ctl: EmulatorControl, cs: ContentChecks, apps: None) -> None:
    issued = ctl.oauth_code("snsapi_base", person="alice", appid=OA)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", issued["code"])
    response = cs.get(
        "/sns/oauth2/access_token",
        appid=OA,
        secret=SECRET_OF[OA],
        code=issued["code"],
        grant_type="authorization_code",
    )
    assert response.headers["Content-Type"] == "text/plain"
    reply = response.json()
    assert list(reply) == ["access_token", "expires_in", "refresh_token", "openid", "scope"]
    assert reply["expires_in"] == 7200
    assert reply["scope"] == "snsapi_base"
    assert reply["openid"] == issued["openid"]
    assert reply["access_token"] != reply["refresh_token"]
    # Silent base scope: no unionid even though the account is bound.
    assert "unionid" not in reply
    # The openid is alice's in this account, not in any mini program.
    assert reply["openid"] != ctl.login(person="alice", appid=MP_A)["openid"]
    assert_error(cs.userinfo(reply["access_token"], reply["openid"]), 48001, "api unauthorized")


def test_oauth_userinfo_scope(ctl: EmulatorControl, cs: ContentChecks, apps: None) -> None:
    unionid = ctl.login(person="alice", appid=MP_A)["unionid"]
    issued = ctl.oauth_code("snsapi_userinfo", person="alice", appid=OA)
    assert issued["unionid"] == unionid
    reply = oauth(cs, OA, issued["code"])
    assert list(reply) == [
        "access_token",
        "expires_in",
        "refresh_token",
        "openid",
        "scope",
        "unionid",
    ]
    assert (reply["scope"], reply["unionid"]) == ("snsapi_userinfo", unionid)

    response = cs.get(
        "/sns/userinfo", access_token=reply["access_token"], openid=reply["openid"], lang="zh_CN"
    )
    assert response.headers["Content-Type"] == "text/plain"
    assert "\\/" in response.text  # the avatar URL's slashes, escaped
    info = cs.userinfo(reply["access_token"], reply["openid"])
    assert list(info) == [
        "openid",
        "nickname",
        "sex",
        "province",
        "city",
        "country",
        "headimgurl",
        "privilege",
        "unionid",
    ]
    assert info["openid"] == reply["openid"]
    assert (info["sex"], info["province"], info["city"], info["country"]) == (0, "", "", "")
    assert info["headimgurl"].startswith("https://thirdwx.qlogo.cn/mmopen/vi_32/")
    assert info["privilege"] == []
    assert info["unionid"] == unionid

    ctl.set_profile(
        "alice", nickname="爱丽丝", sex=2, city="Shenzhen", headimgurl="https://example.com/a.png"
    )
    info = cs.userinfo(reply["access_token"], reply["openid"])
    assert (info["nickname"], info["sex"], info["city"]) == ("爱丽丝", 2, "Shenzhen")
    assert info["headimgurl"] == "https://example.com/a.png"


def test_oauth_unbound_account_has_no_unionid(
    ctl: EmulatorControl, cs: ContentChecks, apps: None
) -> None:
    issued = ctl.oauth_code("snsapi_userinfo", person="alice", appid=OA_UNBOUND)
    assert issued["unionid"] is None
    reply = oauth(cs, OA_UNBOUND, issued["code"])
    assert "unionid" not in reply
    assert "unionid" not in cs.userinfo(reply["access_token"], reply["openid"])


def test_oauth_by_openid_and_snapshot_users(
    ctl: EmulatorControl, cs: ContentChecks, apps: None
) -> None:
    issued = ctl.oauth_code("snsapi_userinfo", openid="oChosen0000000000000000000000", appid=OA)
    assert issued["openid"] == "oChosen0000000000000000000000"
    ctl.set_profile(appid=OA, openid=issued["openid"], nickname="chosen")
    reply = oauth(cs, OA, issued["code"])
    assert "is_snapshotuser" not in reply
    info = cs.userinfo(reply["access_token"], issued["openid"])
    assert info["nickname"] == "chosen"
    assert "unionid" not in info  # a person-less user has no unionid

    anonymous = ctl.oauth_code(appid=OA, snapshot=True)
    assert re.fullmatch(OPENID, anonymous["openid"])
    reply = oauth(cs, OA, anonymous["code"])
    assert reply["is_snapshotuser"] == 1
    assert list(reply)[-1] == "is_snapshotuser"


def test_oauth_codes_are_single_use_per_app_and_expire(
    ctl: EmulatorControl, cs: ContentChecks, apps: None
) -> None:
    code = ctl.oauth_code(person="alice", appid=OA)["code"]
    assert errcode(oauth(cs, OA, code)) == 0
    assert_error(oauth(cs, OA, code), 40163, "code been used")
    assert_error(oauth(cs, OA, "NoSuchCode0123456789abcdefghijk"), 40029, "invalid code")
    other = ctl.oauth_code(person="alice", appid=OA_UNBOUND)["code"]
    assert_error(oauth(cs, OA, other), 40029, "invalid code")
    assert errcode(oauth(cs, OA_UNBOUND, other)) == 0  # the failed try did not use it
    late = ctl.oauth_code(person="alice", appid=OA)["code"]
    ctl.advance(299)
    fresh = ctl.oauth_code(person="alice", appid=OA)["code"]
    ctl.advance(2)
    assert_error(oauth(cs, OA, late), 40029, "invalid code")
    assert errcode(oauth(cs, OA, fresh)) == 0


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"appid": None}, 41002, "appid missing"),
        ({"secret": None}, 41004, "appsecret missing"),
        ({"code": None}, 41008, "missing code"),
        ({"grant_type": "client_credential"}, 40002, "invalid grant_type"),
        ({"appid": "wx00000000000000aa"}, 40013, "invalid appid"),
        ({"secret": "wrong-secret"}, 40125, "invalid appsecret"),
        ({"appid": None, "secret": None, "code": None}, 41002, "appid missing"),
    ],
)
def test_oauth_token_parameter_errors(
    ctl: EmulatorControl,
    cs: ContentChecks,
    apps: None,
    overrides: dict[str, Any],
    code: int,
    message: str,
) -> None:
    issued = ctl.oauth_code(person="alice", appid=OA)["code"]
    params = {
        "appid": OA,
        "secret": SECRET_OF[OA],
        "code": issued,
        "grant_type": "authorization_code",
        **overrides,
    }
    params = {k: v for k, v in params.items() if v is not None}
    response = cs.get("/sns/oauth2/access_token", **params)
    assert_error(response.json(), code, message)
    assert errcode(oauth(cs, OA, issued)) == 0  # still unused


def test_userinfo_token_errors(ctl: EmulatorControl, cs: ContentChecks, apps: None) -> None:
    issued = ctl.oauth_code("snsapi_userinfo", person="alice", appid=OA)
    reply = oauth(cs, OA, issued["code"])
    token, openid = reply["access_token"], reply["openid"]
    assert_error(cs.userinfo(None, openid), 41001, "access_token missing")
    assert_error(
        cs.userinfo("no-such-token", openid),
        40001,
        "invalid credential, access_token is invalid or not latest",
    )
    # The API access token and the web-OAuth token are different things.
    assert errcode(cs.userinfo(cs.token(), openid)) == 40001
    login = ctl.login()
    assert (
        errcode(
            cs.msg_sec_check(
                token, {"content": "x", "version": 2, "scene": 1, "openid": login["openid"]}
            )
        )
        == 40001
    )
    assert_error(cs.userinfo(token, "oSomeoneElse000000000000000"), 40003, "invalid openid")
    assert_error(cs.userinfo(token, None), 40003, "invalid openid")
    assert errcode(cs.userinfo(token, openid)) == 0
    ctl.advance(7200)
    assert_error(cs.userinfo(token, openid), 42001, "access_token expired")


@pytest.mark.parametrize(
    "payload",
    [
        {"scope": "snsapi_login", "person": "a", "appid": OA},
        {"person": "a", "appid": OA},  # scope is required
        {"scope": "snsapi_base", "person": "a"},  # the default app is a mini program
        {"scope": "snsapi_base", "person": "a", "appid": "wxnotregistered00"},
        {"scope": "snsapi_base", "person": "a", "appid": OA, "snapshot": "yes"},
    ],
)
def test_bad_oauth_codes_rejected(
    ctl: EmulatorControl, apps: None, payload: dict[str, Any]
) -> None:
    assert refused(lambda: ctl._call("POST", "oauth/authorize", payload)) == 400


@pytest.mark.parametrize(
    "payload",
    [
        {"person": "a", "sex": 3},
        {"person": "a", "sex": True},
        {"person": "a", "nickname": 5},
        {"person": "a", "age": 30},
        {"nickname": "x"},  # nobody
        {"appid": OA, "openid": "oNobody", "nickname": "x"},  # unknown user
    ],
)
def test_bad_profiles_rejected(ctl: EmulatorControl, apps: None, payload: dict[str, Any]) -> None:
    assert refused(lambda: ctl._call("POST", "profile", payload)) == 400


@pytest.mark.parametrize("endpoint", ["oauth2_access_token", "sns_userinfo"])
def test_faults_cover_oauth_endpoints(
    ctl: EmulatorControl, cs: ContentChecks, apps: None, endpoint: str
) -> None:
    issued = ctl.oauth_code("snsapi_userinfo", person="alice", appid=OA)
    token = oauth(cs, OA, issued["code"]) if endpoint == "sns_userinfo" else None

    def call() -> dict[str, Any]:
        if token is None:
            return oauth(cs, OA, issued["code"])
        return cs.userinfo(token["access_token"], token["openid"])

    ctl.fault(endpoint, errcode=-1, delay=0.2)
    started = time.monotonic()
    reply = call()
    assert reply["errcode"] == -1 and re.search(RID, reply["errmsg"])
    assert time.monotonic() - started >= 0.2
    ctl.fault(endpoint, drop=True)
    with pytest.raises(requests.ConnectionError):
        call()
    assert errcode(call()) == 0  # the faults did not use the code up
    assert [c["errcode"] for c in ctl.calls(endpoint)] == [-1, None, 0]
