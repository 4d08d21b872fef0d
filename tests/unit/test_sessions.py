"""SessionStore against a real Redis."""

from __future__ import annotations

import re

import pytest

from infra.redis import connect
from services.stores.redis import Keys
from services.stores.sessions import SessionStore, is_token
from support.counting import monitor

TTL = 3600
RENEW = 600
PROFILE = {"nickName": "小明🐱", "avatarUrl": None}


@pytest.fixture
def keys() -> Keys:
    return Keys("t:")


@pytest.fixture
def store(redis_url, redis_client, keys) -> SessionStore:
    return SessionStore(
        connect(redis_url), keys=keys, ttl=TTL, renew_interval=RENEW, max_per_user=3
    )


def age(redis_client, keys, token: str, seconds: int) -> None:
    """Make a session look `seconds` older by shortening its TTL."""
    redis_client.expire(keys.session(token), TTL - seconds)


def test_token_is_256_random_bits_in_url_safe_characters(store):
    tokens = {store.issue(1, PROFILE, 0).token for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 43 * 6 bits >= 256


def test_issued_session_holds_only_what_the_server_needs(store, redis_client, keys):
    issued = store.issue(7, PROFILE, 2)
    stored = redis_client.hgetall(keys.session(issued.token))
    assert set(stored) == {"uid", "pv", "profile", "iat"}
    assert stored["uid"] == "7"
    assert 0 < redis_client.ttl(keys.session(issued.token)) <= TTL
    assert issued.expires_in == TTL


def test_load_returns_the_record(store):
    issued = store.issue(7, PROFILE, 2)
    record = store.load(issued.token)
    assert (record.user_id, record.profile, record.profile_version) == (7, PROFILE, 2)


@pytest.mark.parametrize("token", ["", "short", "x" * 43 + "=", "a/b" * 15, "é" * 43])
def test_malformed_ids_are_rejected_without_asking_redis(store, redis_url, token):
    with monitor(redis_url) as commands:
        assert store.load(token) is None
    assert commands == []
    assert not is_token(token)


def test_unknown_id_is_anonymous(store):
    assert store.load("A" * 43) is None


def test_steady_state_load_is_two_commands_and_writes_nothing(store, redis_url):
    token = store.issue(7, PROFILE, 0).token
    store.load(token)
    with monitor(redis_url) as commands:
        store.load(token)
    assert [c.split()[0] for c in commands] == ["HGETALL", "PTTL"]


def test_expiry_slides_once_per_renew_interval(store, redis_client, redis_url, keys):
    token = store.issue(7, PROFILE, 0).token
    age(redis_client, keys, token, RENEW + 5)
    with monitor(redis_url) as commands:
        store.load(token)
    assert "EXPIRE" in {c.split()[0] for c in commands}
    assert redis_client.ttl(keys.session(token)) > TTL - 5
    # The index entry slid with it, so pruning expired entries keeps it.
    assert redis_client.zscore(keys.user_sessions(7), token) > 0
    with monitor(redis_url) as commands:
        store.load(token)
    assert len(commands) == 2


def test_revoke_ends_the_session(store, redis_client, keys):
    token = store.issue(7, PROFILE, 0).token
    assert store.revoke(token) is True
    assert store.load(token) is None
    assert store.revoke(token) is False
    assert store.live_tokens(7) == []
    assert redis_client.get(keys.user_login(7)) is None  # the next login is a fresh session


def test_reissue_hands_a_live_session_out_again(store, redis_client, keys):
    issued = store.issue(7, PROFILE, 0)
    redis_client.expire(keys.session(issued.token), 100)
    again = store.reissue(issued.token)
    assert (again.token, again.user_id, again.reused) == (issued.token, 7, True)
    assert 0 < again.expires_in <= 100
    store.revoke(issued.token)
    assert store.reissue(issued.token) is None


def test_revoke_user_ends_every_session(store):
    tokens = [store.issue(7, PROFILE, 0).token for _ in range(3)]
    other = store.issue(8, PROFILE, 0).token
    assert store.revoke_user(7) == 3
    assert all(store.load(token) is None for token in tokens)
    assert store.load(other) is not None
    assert store.live_tokens(7) == []


def test_index_is_bounded_and_the_oldest_sessions_end(store, redis_client, keys):
    tokens = [store.issue(7, PROFILE, 0).token for _ in range(5)]
    assert len(store.live_tokens(7)) == 3
    alive = [token for token in tokens if store.load(token) is not None]
    assert len(alive) == 3
    assert tokens[-1] in alive  # the newest is never the one evicted


def test_expired_sessions_leave_the_index(store, redis_client, keys):
    first = store.issue(7, PROFILE, 0).token
    redis_client.zadd(keys.user_sessions(7), {first: 1})  # expired long ago
    redis_client.delete(keys.session(first))
    store.issue(7, PROFILE, 0)
    assert first not in store.live_tokens(7)


def test_sync_profile_reaches_every_live_session(store):
    tokens = [store.issue(7, PROFILE, 0).token for _ in range(2)]
    newer = {"nickName": "新名字", "avatarUrl": "https://example.test/a.png"}
    assert store.sync_profile(7, newer, 1) == 2
    assert all(store.load(token).profile == newer for token in tokens)


def test_an_older_sync_never_overwrites_a_newer_one(store):
    token = store.issue(7, PROFILE, 0).token
    store.sync_profile(7, {"nickName": "v2"}, 2)
    assert store.sync_profile(7, {"nickName": "v1"}, 1) == 0
    assert store.load(token).profile == {"nickName": "v2"}


def test_a_login_that_read_an_older_row_gets_the_newer_profile(store):
    """A bind committed (version 3) after this login read the row (version 2)."""
    store.sync_profile(7, {"nickName": "bound"}, 3)
    issued = store.issue(7, {"nickName": None}, 2)
    record = store.load(issued.token)
    assert (record.profile, record.profile_version) == ({"nickName": "bound"}, 3)


def test_unreachable_redis_is_a_domain_error(keys):
    from services import errors

    dead = SessionStore(
        connect("redis://127.0.0.1:1/0"),
        keys=keys,
        ttl=TTL,
        renew_interval=RENEW,
        max_per_user=3,
    )
    with pytest.raises(errors.SessionStoreUnavailable):
        dead.load("A" * 43)
    with pytest.raises(errors.SessionStoreUnavailable):
        dead.issue(1, PROFILE, 0)
