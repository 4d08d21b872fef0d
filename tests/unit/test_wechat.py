"""WeChatClient against the emulator over real HTTP: every errcode we map,
the -1 retry, timeouts, dropped and refused connections, bad replies."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from dev.stack import free_port
from services import errors
from services.wechat import WeChatClient, hmac_sha256_hex, http_session
from support.constants import APPID, SECRET


def make_client(api_base: str, *, appid: str = APPID, secret: str = SECRET) -> WeChatClient:
    return WeChatClient(
        appid=appid,
        secret=secret,
        api_base=api_base,
        http=http_session(),
        timeout=(0.5, 0.5),
        retry_backoff=0.01,
    )


@pytest.fixture
def client(emulator_server, wechat) -> Iterator[WeChatClient]:
    client = make_client(emulator_server.url)
    yield client
    client.http.close()


def test_code2session_returns_the_users_identity(client, wechat):
    issued = wechat.login(unionid="oUnion0000000000000000000001")
    result = client.code2session(issued["code"])
    assert result.openid == issued["openid"]
    assert result.session_key == issued["session_key"]
    assert result.unionid == issued["unionid"]
    assert "session_key" not in repr(result) and issued["session_key"] not in repr(result)


def test_code2session_sends_what_wechat_expects(client, wechat):
    code = wechat.login()["code"]
    client.code2session(code)
    (call,) = wechat.calls("jscode2session")
    assert call["method"] == "GET"
    assert call["query"] == {
        "appid": APPID,
        "secret": SECRET,
        "js_code": code,
        "grant_type": "authorization_code",
    }
    assert "access_token" not in call["query"]


def test_success_with_errcode_zero_is_also_accepted(client, wechat):
    wechat.configure(success_errcode=True)
    issued = wechat.login()
    assert client.code2session(issued["code"]).openid == issued["openid"]


def test_a_used_code_is_code_used(client, wechat):
    code = wechat.login()["code"]
    client.code2session(code)
    with pytest.raises(errors.CodeUsed):
        client.code2session(code)


@pytest.mark.parametrize("code", ["not-a-real-code", "0" * 32])
def test_an_unknown_code_is_code_invalid(client, code):
    with pytest.raises(errors.CodeInvalid):
        client.code2session(code)


def test_an_expired_code_is_code_invalid(client, wechat):
    code = wechat.login()["code"]
    wechat.advance(301)
    with pytest.raises(errors.CodeInvalid):
        client.code2session(code)


def test_a_blocked_user_is_code_blocked(client, wechat):
    code = wechat.login(blocked=True)["code"]
    with pytest.raises(errors.CodeBlocked):
        client.code2session(code)


@pytest.mark.parametrize(
    ("errcode", "expected"),
    [
        (40029, errors.CodeInvalid),
        (40163, errors.CodeUsed),
        (40226, errors.CodeBlocked),
        (45011, errors.WeChatRateLimited),
        (40013, errors.WeChatMisconfigured),
        (40125, errors.WeChatMisconfigured),
        (61234, errors.WeChatError),
    ],
)
def test_errcodes_become_domain_errors(client, wechat, errcode, expected):
    wechat.fault("jscode2session", errcode=errcode)
    with pytest.raises(expected):
        client.code2session(wechat.login()["code"])


def test_rate_limit_tells_the_client_when_to_retry(client, wechat):
    wechat.fault("jscode2session", errcode=45011)
    with pytest.raises(errors.WeChatRateLimited) as caught:
        client.code2session(wechat.login()["code"])
    assert caught.value.headers() == {"Retry-After": "60"}


def test_system_busy_is_retried_once_then_succeeds(client, wechat):
    issued = wechat.login()
    wechat.fault("jscode2session", errcode=-1)
    assert client.code2session(issued["code"]).openid == issued["openid"]
    assert len(wechat.calls("jscode2session")) == 2


def test_system_busy_twice_is_wechat_busy(client, wechat):
    wechat.fault("jscode2session", errcode=-1, times=2)
    with pytest.raises(errors.WeChatBusy):
        client.code2session(wechat.login()["code"])
    assert len(wechat.calls("jscode2session")) == 2


def test_slow_wechat_is_a_timeout(client, wechat):
    wechat.fault("jscode2session", delay=1.5)
    with pytest.raises(errors.WeChatTimeout):
        client.code2session(wechat.login()["code"])


def test_dropped_connection_is_unreachable(client, wechat):
    wechat.fault("jscode2session", drop=True)
    with pytest.raises(errors.WeChatUnreachable):
        client.code2session(wechat.login()["code"])


def test_refused_connection_is_unreachable():
    client = make_client(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(errors.WeChatUnreachable):
        client.code2session("anything")


@pytest.mark.parametrize(
    "body", ["<html>502 Bad Gateway</html>", "[1, 2]", '{"errcode": "x"}', '{"openid": 5}']
)
def test_replies_we_cannot_read_are_wechat_error(client, wechat, body):
    wechat.fault("jscode2session", body=body)
    with pytest.raises(errors.WeChatError):
        client.code2session(wechat.login()["code"])


@pytest.mark.parametrize(
    ("appid", "secret", "setting"),
    [("wx00000000000000ff", SECRET, "WECHAT_APPID"), (APPID, "wrong-secret", "WECHAT_SECRET")],
)
def test_wrong_credentials_name_the_setting_without_printing_it(
    emulator_server, wechat, caplog, appid, secret, setting
):
    client = make_client(emulator_server.url, appid=appid, secret=secret)
    with caplog.at_level(logging.ERROR), pytest.raises(errors.WeChatMisconfigured):
        client.code2session(wechat.login()["code"])
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(setting in line for line in lines)
    assert not any(secret in line for line in lines)


def test_hmac_signature_uses_the_session_key_string_as_the_key():
    # WeChat's published example (reference §2): the key is the base64 text.
    key = "o0q0otL8aEzpcZL/FT9WsQ=="
    assert hmac_sha256_hex(key, b'{"foo":"bar"}') == (
        "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
    )
    assert hmac_sha256_hex(key) == (
        "46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128"
    )
