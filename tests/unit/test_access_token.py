"""AccessTokenStore against a real Redis and the emulator's stable_token."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests

from infra.redis import connect
from services import errors
from services.crypto.sealing import Sealer
from services.stores.access_token import AccessTokenStore
from services.stores.redis import Keys
from services.wechat import WeChatClient, WeChatErrcode, http_session
from support.constants import APPID, SECRET

KEYS = Keys("t:")
SEALER = Sealer("k", "access_token at rest")


@pytest.fixture
def wechat_client(emulator_server) -> Iterator[WeChatClient]:
    client = WeChatClient(
        appid=APPID,
        secret=SECRET,
        api_base=emulator_server.url,
        http=http_session(),
        timeout=(1, 2),
        retry_backoff=0.01,
    )
    yield client
    client.http.close()


def provider(redis_url: str, client: WeChatClient, **kwargs) -> AccessTokenStore:
    return AccessTokenStore(
        connect(redis_url),
        keys=KEYS,
        appid=APPID,
        sealer=SEALER,
        fetch=client.stable_token,
        **kwargs,
    )


@pytest.fixture
def store(redis_url, redis_client, wechat, wechat_client) -> AccessTokenStore:
    return provider(redis_url, wechat_client)


def fetches(wechat) -> int:
    return len(wechat.calls("stable_token"))


def test_one_fetch_then_the_cache(store, wechat, redis_client):
    first = store.current()
    assert store.current() == first
    assert fetches(wechat) == 1
    assert 7000 < redis_client.ttl(KEYS.access_token(APPID)) <= 7200
    (call,) = wechat.calls("stable_token")
    assert call["method"] == "POST"
    assert call["body"] == {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
        "force_refresh": False,
    }


def test_many_threads_on_a_cold_cache_fetch_once(store, wechat):
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(store.current())) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 25 and len(set(results)) == 1
    assert fetches(wechat) == 1


def test_refreshed_ahead_of_expiry(store, wechat, redis_client):
    store.current()
    redis_client.expire(KEYS.access_token(APPID), 200)  # inside the last five minutes
    store.current()
    assert fetches(wechat) == 2


def test_a_refresh_under_way_does_not_block_a_valid_token(store, wechat, redis_client):
    value = store.current()
    redis_client.expire(KEYS.access_token(APPID), 200)
    redis_client.set(KEYS.access_token_lock(APPID), "someone-else", px=5000)
    assert store.current() == value
    assert fetches(wechat) == 1


def test_a_crashed_refresher_does_not_stall_everyone(store, wechat, redis_client):
    redis_client.set(KEYS.access_token_lock(APPID), "crashed", px=300)
    assert store.current()
    assert fetches(wechat) == 1


def test_waiting_gives_up_with_a_clear_error(redis_url, redis_client, wechat, wechat_client):
    impatient = provider(redis_url, wechat_client, wait=0.3)
    redis_client.set(KEYS.access_token_lock(APPID), "stuck", px=10_000)
    with pytest.raises(errors.WeChatBusy):
        impatient.current()
    assert fetches(wechat) == 0


def test_invalidate_only_drops_the_token_that_was_used(store, redis_client):
    redis_client.set(KEYS.access_token(APPID), SEALER.seal("newer-token"), ex=7000)
    assert store.invalidate("older-token") is False
    assert store.current() == "newer-token"
    assert store.invalidate("newer-token") is True
    assert redis_client.get(KEYS.access_token(APPID)) is None


def test_the_token_is_sealed_at_rest(store, redis_client):
    value = store.current()
    stored = redis_client.get(KEYS.access_token(APPID))
    assert value not in stored and SEALER.open(stored) == value


def test_a_token_sealed_under_another_secret_key_is_fetched_afresh(store, wechat, redis_client):
    redis_client.set(KEYS.access_token(APPID), Sealer("old", "x").seal("stale"), ex=7000)
    assert store.current() != "stale"
    assert len(wechat.calls("stable_token")) == 1


def rejecting(times: int, errcode: int = 40001):
    seen: list[str] = []

    def use(token: str) -> str:
        seen.append(token)
        if len(seen) <= times:
            raise WeChatErrcode("getuserphonenumber", errcode)
        return "done"

    return use, seen


def test_a_rejected_token_is_refreshed_once_and_retried_once(store, wechat):
    use, seen = rejecting(times=1)
    assert store.call(use) == "done"
    assert len(seen) == 2
    assert fetches(wechat) == 2


@pytest.mark.parametrize("errcode", [40001, 42001])
def test_rejected_twice_is_an_error_not_a_loop(store, wechat, errcode):
    use, seen = rejecting(times=5, errcode=errcode)
    with pytest.raises(errors.WeChatTokenRejected):
        store.call(use)
    assert len(seen) == 2
    assert fetches(wechat) == 2


def test_other_errcodes_pass_through(store):
    use, _ = rejecting(times=1, errcode=87009)
    with pytest.raises(WeChatErrcode):
        store.call(use)


def test_a_token_forced_out_elsewhere_is_replaced(store, wechat, wechat_client, emulator_server):
    """Another system force-refreshed the stable token: ours now answers 40001."""
    user = wechat.login()
    old = store.current()
    requests.post(
        f"{emulator_server.url}/cgi-bin/stable_token",
        json={
            "grant_type": "client_credential",
            "appid": APPID,
            "secret": SECRET,
            "force_refresh": True,
        },
        timeout=5,
    )
    used: list[str] = []

    def check(token: str) -> bool:
        used.append(token)
        return wechat_client.check_session(token, user["openid"], user["session_key"])

    assert store.call(check) is True
    assert used[0] == old and used[1] != old
    ours = [c for c in wechat.calls("stable_token") if c["body"]["force_refresh"] is False]
    assert len(ours) == 2
