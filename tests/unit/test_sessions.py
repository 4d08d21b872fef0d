"""SessionStore against a real Redis."""

from __future__ import annotations

import pytest

from infra.redis import connect
from services import errors
from services.crypto.tokens import TokenMinter
from services.stores.redis import Keys, identity_tag
from services.stores.sessions import SessionStore
from support.counting import monitor

TTL = 3600
RENEW = 600
PROFILE = {"nickName": "小明🐱", "avatarUrl": None}
MINTER = TokenMinter("test-secret-key")


@pytest.fixture
def keys() -> Keys:
    return Keys("t:")


@pytest.fixture
def store(redis_url, redis_client, keys) -> SessionStore:
    return SessionStore(
        connect(redis_url),
        keys=keys,
        tokens=MINTER,
        ttl=TTL,
        renew_interval=RENEW,
        max_per_identity=3,
    )


def issue(store: SessionStore, identity_id: int = 7, account_id: int = 70, **kwargs):
    fields = {"appid": "wxa", "profile": PROFILE, "version": 0, **kwargs}
    return store.issue(identity_id=identity_id, account_id=account_id, **fields)


def age(redis_client, keys, token: str, seconds: int) -> None:
    """Make a session look `seconds` older by shortening its TTL."""
    redis_client.expire(keys.session(token), TTL - seconds)


def test_a_token_is_its_tag_256_random_bits_and_a_mac(store):
    tokens = {issue(store).token for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert len(token) == 55 and token[:4] == identity_tag(7)
        assert MINTER.valid(token)
        assert "=" not in token and "&" not in token


def test_issued_session_holds_only_what_the_server_needs(store, redis_client, keys):
    issued = issue(store, version=2)
    stored = redis_client.hgetall(keys.session(issued.token))
    assert set(stored) == {"uid", "iid", "app", "pv", "profile", "iat"}
    assert (stored["uid"], stored["iid"], stored["app"]) == ("70", "7", "wxa")
    assert 0 < redis_client.ttl(keys.session(issued.token)) <= TTL
    assert (issued.expires_in, issued.account_id) == (TTL, 70)


def test_an_identitys_keys_share_one_hash_tag(store, redis_client, keys):
    issue(store)
    tags = {key.split("}")[0] for key in redis_client.keys("t:*")}
    assert tags == {"t:{" + identity_tag(7)}


def test_load_returns_the_record(store):
    issued = issue(store, version=2)
    record = store.load(issued.token)
    assert (record.account_id, record.identity_id, record.appid) == (70, 7, "wxa")
    assert (record.profile, record.profile_version) == (PROFILE, 2)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "short",
        "x" * 43,
        "A" * 55,
        "abcd" + "x" * 51,  # the right shape, but not a MAC this service made
        "é" * 55,
        TokenMinter("another-secret").mint("abcd"),
    ],
)
def test_tokens_not_minted_here_are_refused_without_asking_redis(store, redis_url, token):
    with monitor(redis_url) as commands:
        assert store.load(token) is None
        assert store.reissue(token) is None
        assert store.revoke(token) is False
    assert commands == []


def test_unknown_token_is_anonymous(store):
    assert store.load(MINTER.mint(identity_tag(7))) is None


def test_steady_state_load_is_two_commands_and_writes_nothing(store, redis_url):
    token = issue(store).token
    store.load(token)
    with monitor(redis_url) as commands:
        store.load(token)
    assert [c.split()[0] for c in commands] == ["HGETALL", "PTTL"]


def test_expiry_slides_once_per_renew_interval(store, redis_client, redis_url, keys):
    token = issue(store).token
    age(redis_client, keys, token, RENEW + 5)
    with monitor(redis_url) as commands:
        store.load(token)
    assert "EXPIRE" in {c.split()[0] for c in commands}
    assert redis_client.ttl(keys.session(token)) > TTL - 5
    # The index entry slid with it, so pruning expired entries keeps it.
    assert redis_client.zscore(keys.identity(7, "sessions"), token) > 0
    with monitor(redis_url) as commands:
        store.load(token)
    assert len(commands) == 2


def test_revoke_ends_the_session(store, redis_client, keys):
    token = issue(store).token
    assert store.revoke(token) is True
    assert store.load(token) is None
    assert store.revoke(token) is False
    assert store.live_tokens(7) == []
    assert redis_client.get(keys.identity(7, "login")) is None  # the next login is fresh


def test_reissue_hands_a_live_session_out_again(store, redis_client, keys):
    issued = issue(store)
    redis_client.expire(keys.session(issued.token), 100)
    again = store.reissue(issued.token)
    assert (again.token, again.account_id, again.reused) == (issued.token, 70, True)
    assert 0 < again.expires_in <= 100
    store.revoke(issued.token)
    assert store.reissue(issued.token) is None


def test_revoke_identity_ends_every_session_of_it(store):
    tokens = [issue(store).token for _ in range(3)]
    other = issue(store, identity_id=8).token
    assert store.revoke_identity(7) == 3
    assert all(store.load(token) is None for token in tokens)
    assert store.load(other) is not None
    assert store.live_tokens(7) == []


def test_index_is_bounded_and_the_oldest_sessions_end(store):
    tokens = [issue(store).token for _ in range(5)]
    assert len(store.live_tokens(7)) == 3
    alive = [token for token in tokens if store.load(token) is not None]
    assert len(alive) == 3
    assert tokens[-1] in alive  # the newest is never the one evicted


def test_expired_sessions_leave_the_index(store, redis_client, keys):
    first = issue(store).token
    redis_client.zadd(keys.identity(7, "sessions"), {first: 1})  # expired long ago
    redis_client.delete(keys.session(first))
    issue(store)
    assert first not in store.live_tokens(7)


def test_sync_profile_reaches_every_live_session(store):
    tokens = [issue(store).token for _ in range(2)]
    newer = {"nickName": "新名字", "avatarUrl": "https://example.test/a.png"}
    assert store.sync_profile(7, 70, newer, 1) == 2
    assert all(store.load(token).profile == newer for token in tokens)


def test_sync_profile_carries_the_account_that_is_left_after_a_merge(store):
    token = issue(store, account_id=71).token
    store.sync_profile(7, 70, {"nickName": "merged"}, 5)
    assert store.load(token).account_id == 70


def test_an_older_sync_never_overwrites_a_newer_one(store):
    token = issue(store).token
    store.sync_profile(7, 70, {"nickName": "v2"}, 2)
    assert store.sync_profile(7, 70, {"nickName": "v1"}, 1) == 0
    assert store.load(token).profile == {"nickName": "v2"}


def test_a_login_that_read_an_older_row_gets_the_newer_profile(store):
    """A bind committed (version 3) after this login read the row (version 2)."""
    store.sync_profile(7, 70, {"nickName": "bound"}, 3)
    issued = issue(store, profile={"nickName": None}, version=2)
    record = store.load(issued.token)
    assert (record.profile, record.profile_version) == ({"nickName": "bound"}, 3)


def test_a_forgotten_identity_gets_no_new_session(store, redis_client, keys):
    token = issue(store).token
    assert store.forget_identity(7) == 1
    assert store.load(token) is None
    assert redis_client.get(keys.identity(7, "profile")) is None
    with pytest.raises(errors.AccountDeleted):
        issue(store)
    assert issue(store, identity_id=8).token  # other identities are unaffected


def test_unreachable_redis_is_a_domain_error(keys):
    dead = SessionStore(
        connect("redis://127.0.0.1:1/0"),
        keys=keys,
        tokens=MINTER,
        ttl=TTL,
        renew_interval=RENEW,
        max_per_identity=3,
    )
    with pytest.raises(errors.SessionStoreUnavailable):
        dead.load(MINTER.mint("abcd"))
    with pytest.raises(errors.SessionStoreUnavailable):
        issue(dead)


def test_live_sessions_are_counted_exactly_while_redis_holds_few_keys(store, redis_client):
    redis_client.set("another:service:key", "1")
    tokens = [issue(store, identity_id=i, account_id=i).token for i in range(1, 13)]
    assert store.count_live() == 12
    store.revoke(tokens[0])
    assert store.count_live() == 11


def test_beyond_the_exact_limit_live_sessions_are_estimated_from_random_keys(store, redis_client):
    for i in range(1, 41):
        issue(store, identity_id=i, account_id=i)
    exact = store.count_live()
    assert exact == 40
    total = redis_client.dbsize()
    # Every sampled key is a session or not: the estimate is a multiple of
    # total/samples, never above the key count, and near the truth.
    estimate = store.count_live(exact_below=0, samples=4000)
    assert 0 < estimate <= total
    assert abs(estimate - exact) <= 0.25 * exact
