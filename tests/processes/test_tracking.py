"""Client-side caching of the session read (bench/tracking.py), held to the
service's guarantees (issue 14, part 3; README "Client-side caching (CLIENT
TRACKING)"): two gunicorn instances of two workers each on one redis-server
started here. A is the service; B serves the session read with TrackingCache
in front (GET /floor/tracked). While other processes hammer B's cached read
for many sessions, a session ended on A or directly in Redis must be a 401
on B's very next request, on the very connection (so the very worker) whose
cache had just answered it; a profile pushed on A shows on B's next request;
a renewal and an expiry stay right; losing the invalidation connection
drops the cache.

Needs the machine's redis-server (Redis 6+ for CLIENT TRACKING); skipped
with a message without it. Never touches the machine's Redis on 6379."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bench.tracking import TRACKING_APP, hammer
from dev.topologies import SingleRedis
from dev.waiting import wait_until
from services.stores.redis import Keys
from support.apps import bearer
from support.servers import UNLIMITED_LOGINS, Server, launched

pytestmark = [
    pytest.mark.gunicorn,
    pytest.mark.sqlite_only,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs the machine's redis-server"),
]

KEYS = Keys("wx:")
UNLIMITED = {
    **UNLIMITED_LOGINS,
    "WECHAT_CALL_RATE_LIMIT": "1000000/minute",
    # A is only the writer here: on a shared 2-core machine under this load a
    # worker is sometimes not scheduled for half a second, and the default
    # REDIS_TIMEOUT (0.5 s) then ends a login with a 503 the test cannot use.
    "REDIS_TIMEOUT": "3",
}
# B renews a session with less than 1 s left (SessionStore.load's rule with
# these settings); A's sessions live 7 days, so B's reads never renew them
# unless a test shortens one.
B_SETTINGS = {"SESSION_TTL": "3600", "SESSION_RENEW_INTERVAL": "3599"}
# Trials per run, kept to about twenty seconds in the suite;
# TRACKING_TRIALS_SCALE=6 gives the counts the README's runs used.
SCALE = float(os.environ.get("TRACKING_TRIALS_SCALE", "1"))
DIRECT_TRIALS = int(500 * SCALE)  # sessions ended directly in Redis, as a logout's script does
TRIAL_THREADS = 4
LOGOUT_TRIALS = int(35 * SCALE)  # sessions logged out through A's POST /oauth/logout
PROFILE_TRIALS = int(17 * SCALE)
DELETION_TRIALS = int(5 * SCALE)
LOAD_PROCESSES = 2  # each with 4 keep-alive connections


@pytest.fixture(scope="module")
def tracking_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with SingleRedis(tmp_path_factory.mktemp("tracking-redis")) as node:
        version = redis.Redis.from_url(node.url()).info("server")["redis_version"]
        if int(version.split(".")[0]) < 6:
            pytest.skip(f"CLIENT TRACKING needs Redis 6+, the machine has {version}")
        yield node.url()


@pytest.fixture(scope="module")
def a(tmp_path_factory, tracking_redis, database_url, emulator_server, handed_out) -> Iterator:
    with launched(
        tmp_path_factory, tracking_redis, database_url, emulator_server.url, handed_out, **UNLIMITED
    ) as server:
        yield server


@pytest.fixture(scope="module")
def b(tmp_path_factory, tracking_redis, database_url, emulator_server, handed_out) -> Iterator:
    with launched(
        tmp_path_factory,
        tracking_redis,
        database_url,
        emulator_server.url,
        handed_out,
        logins=False,
        args=[TRACKING_APP],
        **B_SETTINGS,
    ) as server:
        yield server
    assert "GET /floor/tracked" in server.log_text()


@pytest.fixture
def store(tracking_redis: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(tracking_redis, decode_responses=True)
    yield client
    client.close()


class Reader:
    """One keep-alive connection to B: every request lands on one worker."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def get(self, token: str) -> tuple[int, str, dict[str, Any]]:
        self.conn.request("GET", "/floor/tracked", headers={"Cookie": f"sid={token}"})
        response = self.conn.getresponse()
        raw = response.read()
        # Not JSON: the floor's 500 when Redis did not answer within REDIS_TIMEOUT
        # (the service answers 503 there); never a cached answer.
        body = json.loads(raw) if response.headers.get("Content-Type") == "application/json" else {}
        return response.status, response.headers.get("X-Cache", ""), body

    def warm(self, token: str) -> bool:
        """Until this worker answers the session from its cache."""
        for _ in range(5):
            status, cache, _ = self.get(token)
            assert status in (200, 500)
            if status == 200 and cache == "hit":
                return True
        return False

    def close(self) -> None:
        self.conn.close()


def on_a(server: Server, method: str, path: str, **kwargs: Any) -> Any:
    """A call to the service as its clients make it: a 503 (Redis slower than
    REDIS_TIMEOUT on this shared machine, then the worker's fail-fast second)
    is retried after its Retry-After, a few times."""
    for _ in range(10):
        response, _ = server.call(method, path, **kwargs)
        if response.status_code != 503:
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")))
    return response


def login(server: Server, wechat: Any) -> str:
    response = on_a(server, "POST", "/oauth/login", json={"code": wechat.login()["code"]})
    assert response.status_code == 200, (response.status_code, response.json().get("error"))
    return response.json()["data"]["token"]


def clone(store: redis.Redis, template: str) -> str:
    """A new session with the template's fields (and tag), as a login's script writes one."""
    token = template[:4] + secrets.token_urlsafe(32)
    data = store.hgetall(KEYS.session(template))
    pipe = store.pipeline()
    pipe.hset(KEYS.session(token), mapping=data)
    pipe.expire(KEYS.session(token), 7 * 24 * 3600)
    pipe.execute()
    return token


def worker_stats(url: str) -> dict[int, dict[str, Any]]:
    """Each of B's workers' cache counters (fresh connections land anywhere)."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(50):
        reader = Reader(url)
        reader.conn.request("GET", "/floor/tracking")
        answer = json.loads(reader.conn.getresponse().read())
        reader.close()
        seen[answer["pid"]] = answer
        if len(seen) == 2:
            break
    return seen


class Hammer:
    """LOAD_PROCESSES processes of keep-alive GETs of B's cached read."""

    def __init__(self, url: str, tokens: list[str]) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop = context.Event()
        self.counts = context.Array("q", [0, 0])
        cookies = [f"sid={t}" for t in tokens]
        self.processes = [
            context.Process(
                target=hammer,
                args=(url, cookies[i::2] + cookies, "/floor/tracked", self.stop, self.counts),
            )
            for i in range(LOAD_PROCESSES)
        ]

    def __enter__(self) -> Hammer:
        for process in self.processes:
            process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for process in self.processes:
            process.join(30)

    @property
    def answered(self) -> int:
        return self.counts[0]

    @property
    def bad(self) -> int:
        return self.counts[1]


@pytest.fixture
def hot(a: Server, b: Server, store: redis.Redis, wechat: Any) -> list[str]:
    """Sessions B keeps answering all along: 20 real logins and 200 copies."""
    real = [login(a, wechat) for _ in range(20)]
    return real + [clone(store, real[i % 20]) for i in range(200)]


def test_a_session_ended_in_redis_is_a_401_on_the_next_request_under_load(
    a: Server, b: Server, store: redis.Redis, hot: list[str], watch: Any
) -> None:
    templates = hot[:20]
    outcome: Counter[str] = Counter()
    lock = threading.Lock()

    def trials(n: int, offset: int) -> None:
        reader = Reader(b.url)
        mine: Counter[str] = Counter()
        for i in range(n):
            token = clone(store, templates[(offset + i) % len(templates)])
            mine["cached before the end"] += reader.warm(token)
            # What logout's script does to the hash; both forms a script may use.
            ended = store.unlink if i % 2 else store.delete
            assert ended(KEYS.session(token)) == 1  # acknowledged
            status, _, _ = reader.get(token)
            mine[{200: "stale", 401: "401"}.get(status, f"{status}")] += 1
        reader.close()
        with lock:
            outcome.update(mine)

    with Hammer(b.url, hot) as load:
        started = time.monotonic()
        threads = [
            threading.Thread(target=trials, args=(DIRECT_TRIALS // TRIAL_THREADS, k))
            for k in range(TRIAL_THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.monotonic() - started
    stats = worker_stats(b.url)
    print(
        f"\n{DIRECT_TRIALS} sessions ended in Redis under load: {dict(outcome)}; "
        f"the load: {load.answered} requests ({load.answered / took:.0f}/s), {load.bad} bad; "
        f"B's workers: {json.dumps(list(stats.values()))}"
    )
    # A trial counts when the worker had just answered from its cache; on this
    # shared machine Redis sometimes stalls past REDIS_TIMEOUT (a 500 here).
    assert outcome["cached before the end"] >= DIRECT_TRIALS * 0.99
    assert outcome["stale"] == 0
    assert outcome["401"] >= DIRECT_TRIALS * 0.99
    assert load.answered > DIRECT_TRIALS and load.bad == 0
    assert len(stats) == 2 and all(s["healthy"] for s in stats.values())


def test_a_logout_on_a_is_a_401_on_bs_next_request_under_load(
    a: Server, b: Server, hot: list[str], wechat: Any
) -> None:
    outcome: Counter[str] = Counter()
    with Hammer(b.url, hot) as load:
        readers = [Reader(b.url) for _ in range(4)]
        for i in range(LOGOUT_TRIALS):
            token = login(a, wechat)
            reader = readers[i % len(readers)]
            outcome["cached before the logout"] += reader.warm(token)
            response = on_a(a, "POST", "/oauth/logout", headers=bearer(token))
            assert response.status_code in (200, 401)  # 401: a retry after it had ended
            status, _, _ = reader.get(token)
            outcome["stale" if status == 200 else "401"] += 1
        for reader in readers:
            reader.close()
    print(f"\n{LOGOUT_TRIALS} logouts on A under load: {dict(outcome)}; load {load.answered}")
    assert outcome["cached before the logout"] == LOGOUT_TRIALS
    assert outcome["stale"] == 0 and load.bad == 0


def test_a_profile_change_and_a_deletion_on_a_show_on_bs_next_request(
    a: Server, b: Server, hot: list[str], wechat: Any
) -> None:
    outcome: Counter[str] = Counter()
    with Hammer(b.url, hot):
        reader = Reader(b.url)
        token = login(a, wechat)
        for i in range(PROFILE_TRIALS):
            assert reader.warm(token)
            name = f"改名{i}🐱"
            response = on_a(
                a, "PUT", "/user/profile", headers=bearer(token), json={"nickName": name}
            )
            assert response.status_code == 200, response.text
            status, _, body = reader.get(token)
            assert status == 200
            outcome["new" if body["data"]["nickName"] == name else "stale"] += 1
        for _ in range(DELETION_TRIALS):
            token = login(a, wechat)
            assert reader.warm(token)
            response = on_a(a, "DELETE", "/user", headers=bearer(token))
            assert response.status_code in (200, 401)  # 401: a retry after it was done
            status, _, _ = reader.get(token)
            outcome["stale after deletion" if status == 200 else "401 after deletion"] += 1
        reader.close()
    print(f"\nprofile pushes and deletions on A: {dict(outcome)}")
    assert outcome == {"new": PROFILE_TRIALS, "401 after deletion": DELETION_TRIALS}


def test_renewal_and_expiry_stay_right(
    a: Server, b: Server, store: redis.Redis, wechat: Any
) -> None:
    reader = Reader(b.url)
    token = login(a, wechat)
    key = KEYS.session(token)
    assert reader.warm(token)
    # Renewed by someone else (A's renewal script rewrites the expiry): B reads afresh.
    store.expire(key, 5 * 24 * 3600)
    assert reader.get(token)[:2] == (200, "miss")
    assert reader.get(token)[:2] == (200, "hit")
    # Less than B's renewal threshold left: B's next read renews it, cached or not.
    store.pexpire(key, 800)
    assert reader.get(token)[0] == 200
    assert store.pttl(key) > 3500 * 1000
    # A short life that is not renewed (above the threshold): once Redis has
    # let it expire, B answers 401; the entry never outlives the key.
    store.pexpire(key, 2500)
    assert reader.get(token)[0] == 200
    assert reader.warm(token)
    wait_until(lambda: store.exists(key) == 0, what="the session to expire", timeout=8)
    assert reader.get(token)[0] == 401
    reader.close()


def test_losing_the_invalidation_connection_drops_the_cache(
    a: Server, b: Server, store: redis.Redis, wechat: Any
) -> None:
    readers = [Reader(b.url) for _ in range(4)]
    tokens = [login(a, wechat) for _ in readers]
    for reader, token in zip(readers, tokens, strict=True):
        assert reader.warm(token)
    before = {pid: s["connects"] for pid, s in worker_stats(b.url).items()}
    killed = store.client_kill_filter(_type="pubsub")
    assert killed >= 2  # one invalidation connection per worker of B
    # Ended while B's workers have no invalidation connection: never served.
    store.delete(KEYS.session(tokens[0]))
    assert readers[0].get(tokens[0])[0] == 401
    for reader, token in zip(readers[1:], tokens[1:], strict=True):
        assert reader.get(token)[:2] == (200, "miss")  # the cache was dropped
    wait_until(
        lambda: all(
            s["healthy"] and s["connects"] > before.get(pid, 0)
            for pid, s in worker_stats(b.url).items()
        ),
        timeout=10,
        what="B's workers to track again",
    )
    for reader, token in zip(readers[1:], tokens[1:], strict=True):
        assert reader.warm(token)
        reader.close()


def test_a_flush_drops_every_cache(a: Server, b: Server, store: redis.Redis, wechat: Any) -> None:
    """FLUSHDB reaches the caches as one null invalidation, and every cache
    drops everything. Unlike a key's invalidation, Redis writes it *after*
    the FLUSHDB reply (test_the_order_redis_writes_in): B's very next
    request may still be answered from the cache (seen once under load), so
    only the answers after the flush has reached both workers are asserted.
    Last in this module: it empties the module's Redis."""
    readers = [Reader(b.url) for _ in range(4)]
    tokens = [login(a, wechat) for _ in readers]
    for reader, token in zip(readers, tokens, strict=True):
        assert reader.warm(token)
    before = {pid: s["flushes"] for pid, s in worker_stats(b.url).items()}
    store.flushdb()
    next_answers = [reader.get(token)[0] for reader, token in zip(readers, tokens, strict=True)]
    print(f"\nB's very next answers after FLUSHDB: {next_answers}")
    wait_until(
        lambda: all(s["flushes"] > before.get(pid, 0) for pid, s in worker_stats(b.url).items()),
        timeout=10,
        what="the flush to reach both workers",
    )
    for reader, token in zip(readers, tokens, strict=True):
        assert reader.get(token)[0] == 401
        reader.close()


ORDER_TRIALS = 2000


def _conn(url: str) -> Any:
    conn = redis.ConnectionPool.from_url(url, protocol=2, socket_timeout=5).make_connection()
    conn.connect()
    return conn


def _call(conn: Any, *args: Any) -> Any:
    conn.send_command(*args)
    return conn.read_response()


def ahead_of_the_reply(url: str, bcast: bool, write: tuple[str, ...]) -> int:
    """How often the invalidation is already readable on the subscriber's socket
    at the moment the writer has read its reply (same host, loopback)."""
    subscriber, reader, writer = _conn(url), _conn(url), _conn(url)
    own = _call(subscriber, "CLIENT", "ID")
    if bcast:
        _call(subscriber, "CLIENT", "TRACKING", "ON", "REDIRECT", own, "BCAST", "PREFIX", "wx:{")
    else:  # default mode: the reading connection is tracked, redirected to the subscriber
        _call(reader, "CLIENT", "TRACKING", "ON", "REDIRECT", own)
    _call(subscriber, "SUBSCRIBE", "__redis__:invalidate")
    ahead = 0
    for i in range(ORDER_TRIALS):
        key = f"wx:{{test}}:session:{i}"
        _call(writer, "HSET", key, "uid", "1")
        if bcast:
            subscriber.read_response()  # the HSET's own invalidation
        else:
            _call(reader, "HGETALL", key)  # now tracked for this connection
        _call(writer, *[key if part == "KEY" else part for part in write])
        ahead += subscriber.can_read(timeout=0)
        subscriber.read_response()  # wait for it, whenever it comes
    for conn in (subscriber, reader, writer):
        conn.disconnect()
    return ahead


@pytest.mark.parametrize(
    ("bcast", "write"),
    [
        (True, ("DEL", "KEY")),
        (True, ("UNLINK", "KEY")),
        (True, ("HSET", "KEY", "profile", "{}")),
        (True, ("EXPIRE", "KEY", "60")),
        (True, ("FLUSHDB",)),
        (False, ("DEL", "KEY")),
        (False, ("FLUSHDB",)),
    ],
    ids=[
        "bcast-del",
        "bcast-unlink",
        "bcast-hset",
        "bcast-expire",
        "bcast-flushdb",
        "default-del",
        "default-flushdb",
    ],
)
def test_the_order_redis_writes_in(
    tracking_redis: str, bcast: bool, write: tuple[str, ...]
) -> None:
    """Redis 7.0 queues a BCAST invalidation in beforeSleep, after the writer's
    reply, and writes the most recently queued client first: the invalidation
    reaches the subscriber's socket before the writer can read its reply.
    Default-mode invalidations and FLUSHDB's are queued during the command,
    before the reply, and so written after it. Measured, not assumed."""
    ahead = ahead_of_the_reply(tracking_redis, bcast, write)
    print(
        f"\n{'BCAST' if bcast else 'default'} {write[0]}: the invalidation was readable "
        f"before the writer's reply in {ahead} of {ORDER_TRIALS}"
    )
    if bcast and write[0] != "FLUSHDB":
        assert ahead == ORDER_TRIALS
