"""What the stores ask of a Redis client, checked against any topology: the
commands, pipelines and scripts services/stores use, and the `limits`
storage behind the rate limits."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from limits import parse
from limits.storage import Storage
from limits.strategies import MovingWindowRateLimiter

from infra.redis import ERRORS, Client, LimitsStorage, Timeouts, one_slot
from services.errors import RateLimited
from services.stores.rate_limits import RateLimit
from services.stores.redis import load_script

# Short enough that a test waiting on a failure stays quick; the service picks its own.
FAST = Timeouts(socket=0.5, connect=0.5, retries=1)

# A script over two keys: on Cluster both must be in one slot.
MOVE_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
redis.call('SET', KEYS[2], value, 'PX', ARGV[1])
redis.call('DEL', KEYS[1])
return 1
"""


def tagged(name: str) -> str:
    """A fresh key prefix with its own hash tag: every key under it shares a slot."""
    return f"{{{name}:{uuid.uuid4().hex[:8]}}}"


def exercise(client: Client, prefix: str) -> None:
    """Every kind of call the stores make, under keys sharing `prefix`'s hash tag."""
    key, hash_key, zset_key, other = (f"{prefix}:{n}" for n in ("s", "h", "z", "o"))
    one_slot(key, hash_key, zset_key, other)
    # SET NX PX (login codes, the access token lock) with decode_responses.
    assert client.set(key, "1", nx=True, px=60_000)
    assert not client.set(key, "2", nx=True, px=60_000)
    assert client.get(key) == "1"
    # Hashes (sessions) and a non-transactional pipeline (/user/info's one round trip).
    client.hset(hash_key, mapping={"uid": "7", "pv": "1", "profile": "{}"})
    client.expire(hash_key, 60)
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(hash_key)
    pipe.pttl(hash_key)
    profile, ttl = pipe.execute()
    assert profile == {"uid": "7", "pv": "1", "profile": "{}"} and 0 < ttl <= 60_000
    # Sorted sets in a MULTI/EXEC pipeline (the session_key ring).
    pipe = client.pipeline(transaction=True)
    pipe.zadd(zset_key, {"a": 1, "b": 2, "c": 3})
    pipe.zremrangebyrank(zset_key, 0, -3)
    pipe.expire(zset_key, 60)
    pipe.execute()
    assert client.zrevrange(zset_key, 0, -1, withscores=True) == [("c", 3.0), ("b", 2.0)]
    # register_script: one of the service's own scripts, and one over two keys.
    revoke = load_script(client, "revoke_session")  # type: ignore[arg-type]
    assert revoke(keys=[hash_key, zset_key, key], args=["c"]) == 1
    assert client.zrange(zset_key, 0, -1) == ["b"]
    move = client.register_script(MOVE_SCRIPT)
    client.set(other, "x")
    assert move(keys=[other, key], args=[60_000]) == 1
    assert client.get(key) == "x" and client.get(other) is None


def limits_hit(storage: Storage) -> None:
    """A moving-window limit of 2 per minute lets two hits through, then not."""
    limiter = MovingWindowRateLimiter(storage)
    item = parse("2/minute")
    who = uuid.uuid4().hex
    assert limiter.hit(item, "topology", who)
    assert limiter.hit(item, "topology", who)
    assert not limiter.hit(item, "topology", who)
    assert limiter.get_window_stats(item, "topology", who).remaining == 0


def service_limit_counts(storage: LimitsStorage) -> None:
    """The service's own rate limit over this storage, built as create_app()
    builds it: two hits a minute pass, the third is refused until the window
    moves on."""
    limit = RateLimit(storage.create(), "2/minute", scope="topology", message="slow down")
    who = uuid.uuid4().hex
    limit.hit(who)
    limit.hit(who)
    with pytest.raises(RateLimited) as refused:
        limit.hit(who)
    assert 0 < refused.value.retry_after <= 60


def blocked(call: Callable[[], Any]) -> tuple[float, Exception]:
    """How long `call` took to fail, and with what; it must fail with one of ERRORS."""
    started = time.monotonic()
    try:
        call()
    except ERRORS as exc:
        return time.monotonic() - started, exc
    raise AssertionError("the call succeeded although Redis should be unreachable")
