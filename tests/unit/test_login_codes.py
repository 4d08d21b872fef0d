"""LoginCodeLedger: the states of a login code in a real Redis."""

from __future__ import annotations

import pytest

from infra.redis import connect
from services.crypto.sealing import Sealer
from services.stores.login_codes import LoginCodeLedger
from services.stores.redis import Keys
from services.wechat import Code2Session

RESULT = Code2Session(openid="oUser", session_key="HyVFkGl5F5OQWJZZaNzBBg==", unionid=None)


def ledger(redis_url: str, *, secret_key: str = "k", appid: str = "wxa") -> LoginCodeLedger:
    return LoginCodeLedger(
        connect(redis_url),
        keys=Keys("t:"),
        sealer=Sealer(secret_key, "codes"),
        appid=appid,
        replay_ttl=300,
        pending_ttl=5,
    )


@pytest.fixture
def codes(redis_url, redis_client) -> LoginCodeLedger:
    return ledger(redis_url)


def test_only_one_attempt_owns_a_code(codes):
    first = codes.claim("code-1")
    assert first is not None and first.kind == "pending"
    assert codes.claim("code-1") is None
    assert codes.read("code-1").raw == first.raw
    assert codes.claim("code-2") is not None


def test_the_code_itself_is_not_stored(codes, redis_client):
    codes.claim("code-in-plain-sight")
    assert not any("code-in-plain-sight" in key for key in redis_client.keys("*"))


def test_an_owner_dying_frees_the_code(codes, redis_client):
    codes.claim("code-1")
    (key,) = redis_client.keys("t:code:*")
    assert 0 < redis_client.pttl(key) <= 5000


def test_release_only_frees_ones_own_claim(codes):
    mine = codes.claim("code-1")
    codes.record_session("code-1", "S" * 43)
    codes.release("code-1", mine)  # too late: the code has a session now
    assert codes.read("code-1").kind == "session"


def test_an_exchange_is_sealed_and_can_be_taken_over_once(codes, redis_client):
    codes.claim("code-1")
    codes.record_exchange("code-1", RESULT)
    assert RESULT.session_key not in str(redis_client.mget(redis_client.keys("*")))
    state = codes.read("code-1")
    assert state.kind == "exchanged"
    assert codes.take_over("code-1", state) is not None
    assert codes.take_over("code-1", state) is None  # someone else got there first
    assert codes.open_exchange(state) == RESULT


def test_an_exchange_sealed_under_another_secret_cannot_be_opened(codes, redis_url):
    codes.record_exchange("code-1", RESULT)
    other = ledger(redis_url, secret_key="rotated")
    assert other.open_exchange(other.read("code-1")) is None


@pytest.mark.parametrize(
    ("record", "kind"), [("record_session", "session"), ("record_rejection", "error")]
)
def test_final_states_last_for_the_replay_window(codes, redis_client, record, kind):
    getattr(codes, record)("code-1", "value")
    assert codes.read("code-1").kind == kind
    (key,) = redis_client.keys("t:code:*")
    assert 290 < redis_client.ttl(key) <= 300


def test_codes_of_different_apps_do_not_collide(codes, redis_url):
    other_app = ledger(redis_url, appid="wxb")
    assert codes.claim("same-code") is not None
    assert other_app.claim("same-code") is not None
