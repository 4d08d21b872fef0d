"""Server-assisted client-side caching of the session read (issue 14, part 3):
an experiment, not part of the service. README "Client-side caching (CLIENT
TRACKING)" has the numbers and the decision.

    .venv/bin/python -m bench.tracking

measures, side by side in interleaved rounds on one gunicorn with the
service's settings (and the service itself for /user/info):

  framework floor  GET /floor/framework    a bare Flask view, constant JSON
  session floor    GET /floor/session      + one pipelined HGETALL+PTTL
  tracked          GET /floor/tracked      the session floor with TrackingCache in front
  info             GET /user/info          the service, as it is

TrackingCache keeps session hashes in a per-process dict and lets Redis tell
it when one changes (CLIENT TRACKING, Redis 6+, RESP2):

- One dedicated connection per worker process asks for invalidations of every
  key under the sessions' prefix (`CLIENT TRACKING ON REDIRECT <its own id>
  BCAST PREFIX wx:{`) and then subscribes to `__redis__:invalidate`. In BCAST
  mode Redis reports every write to a matching key, whoever read or wrote it,
  so the data connections (a normal pool) need no tracking of their own: no
  per-connection redirect to keep right, no server-side table of who read what.
  Every write under the prefix (logins, renewals, profile pushes, logouts,
  expiries, evictions) costs one message per worker.
- A reader (a thread; a greenlet under gunicorn's gevent worker) waits for
  that connection to become readable and drops the named keys; FLUSHALL and
  FLUSHDB (a null message) drop everything. It PINGs when the connection has
  been quiet for `health_interval`; no answer within another interval, an
  error, or an EOF (CLIENT KILL, a Redis restart) counts as lost: everything
  cached is dropped at once, nothing is served from the cache and nothing is
  stored in it until the connection is back (tracking re-enabled and the
  subscription confirmed), and then everything is dropped once more.
- Before answering from the cache, a request drains whatever invalidation
  bytes have already arrived, without blocking (one non-blocking recv): a
  message already in the socket buffer is never missed. A partly arrived
  message is read to its end (its bytes are on the way).
- A miss puts a placeholder under the key before asking Redis; the answer is
  stored only if the placeholder is still there, so an invalidation processed
  while the read was in flight (a write after the read) is never papered over
  by the older answer.
- An entry never outlives the key's own expiry: its deadline is the local
  clock *before* the read plus the PTTL Redis answered (early, never late),
  because an expired key's invalidation comes only when Redis gets round to
  deleting it.
- The renewal rule of SessionStore.load holds: a cached entry whose remaining
  time is below the renewal threshold is a miss, read and renewed (with the
  service's own renew_session script), and the renewal's write invalidates it
  everywhere.

What it cannot promise: that an invalidation reaches a worker before a client
that saw the write acknowledged reaches that worker. Redis queues the message
in the same event-loop pass as the writer's reply (README), so on loopback the
bytes are practically always there first, but across a network a retransmitted
segment (200 ms and more) or a stalled subscriber lets a stale answer through.

Only a single node: on Cluster every primary would need its own invalidation
connection (and a failover means a flush); on Sentinel a failover does.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import math
import os
import select
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from flask import Flask, jsonify, request

import config
from bench.floors import create_floors
from infra.redis import connect, parse
from services.stores.redis import Keys, load_script

INVALIDATE = "__redis__:invalidate"


@dataclass
class _Entry:
    data: dict[str, str]
    deadline: float  # time.monotonic() when the key expires at the latest


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    stored: int = 0
    invalidated: int = 0  # keys named in invalidation messages (cached or not)
    flushes: int = 0  # everything dropped: a null message, a lost connection
    connects: int = 0
    lost: dict[str, int] = field(default_factory=dict)  # why the connection was lost


class TrackingCache:
    """Session hashes by key, kept true by Redis' invalidation messages."""

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        max_entries: int = 100_000,
        health_interval: float = 1.0,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if parse(url).kind != "single":
            raise ValueError("TrackingCache supports a single Redis node only")
        self.url = url
        self.prefix = prefix
        self.max_entries = max_entries
        self.health_interval = health_interval
        self.timeout = timeout
        self.clock = clock
        self.stats = Stats()
        self._entries: dict[str, _Entry | object] = {}
        self._lock = threading.Lock()
        self._conn: Any = None  # redis.Connection in RESP2, subscribed
        self._healthy = False
        self._last_heard = 0.0
        self._ping_sent: float | None = None
        self._stopped = threading.Event()
        self._pid = 0

    # -- the read path ---------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the reader in this process (after gunicorn's fork)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="tracking", daemon=True).start()

    def lookup(self, key: str, renew_below_ms: float) -> dict[str, str] | None:
        """The cached hash, if it is known to be current and has more than
        `renew_below_ms` to live; None means: ask Redis."""
        if not self._healthy:
            return None
        with self._lock:
            self._drain()
        entry = self._entries.get(key)
        if not self._healthy or not isinstance(entry, _Entry):
            self.stats.misses += 1
            return None
        if (entry.deadline - self.clock()) * 1000 <= renew_below_ms:
            self._entries.pop(key, None)
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return entry.data

    def reserve(self, key: str) -> object | None:
        """Before reading `key` from Redis: a placeholder that an invalidation
        of the key (or a flush) removes."""
        # Under the lock like every invalidation: with real threads (gthread)
        # a check and the write after it must not straddle one.
        with self._lock:
            if not self._healthy:
                return None
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)), None)  # the oldest
            marker = object()
            self._entries[key] = marker
            return marker

    def store(self, key: str, marker: object | None, data: dict[str, str], deadline: float) -> None:
        """Keep what Redis answered, unless the key changed since reserve()."""
        if marker is None:
            return
        with self._lock:
            if self._entries.get(key) is not marker:
                return
            if data:
                self._entries[key] = _Entry(data, deadline)
                self.stats.stored += 1
            else:
                del self._entries[key]

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        return {
            "healthy": self._healthy,
            "entries": len(self._entries),
            "hits": s.hits,
            "misses": s.misses,
            "stored": s.stored,
            "invalidated": s.invalidated,
            "flushes": s.flushes,
            "connects": s.connects,
            "lost": dict(s.lost),
        }

    def stop(self) -> None:
        self._stopped.set()

    # -- the invalidation connection ---------------------------------------------

    def _connect(self) -> None:
        pool = redis.ConnectionPool.from_url(
            self.url,
            protocol=2,
            decode_responses=True,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
        )
        conn = pool.make_connection()
        conn.connect()
        conn.send_command("CLIENT", "ID")
        own_id = conn.read_response()
        # Redirected to itself: in RESP2 a redirect target that is subscribed
        # to __redis__:invalidate gets the messages as Pub/Sub messages.
        conn.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", "PREFIX", self.prefix
        )
        if conn.read_response() != "OK":
            raise redis.ConnectionError("CLIENT TRACKING refused")
        conn.send_command("SUBSCRIBE", INVALIDATE)
        reply = conn.read_response()
        if not (isinstance(reply, list) and reply[0] == "subscribe"):
            raise redis.ConnectionError(f"unexpected SUBSCRIBE reply {reply!r}")
        with self._lock:
            self._conn = conn
            self._flush()  # whatever was cached before tracking was on again
            self._last_heard = self.clock()
            self._ping_sent = None
            self._healthy = True
        self.stats.connects += 1

    def _lose(self, why: str) -> None:
        """Under the lock: the connection is gone or silent; forget everything."""
        self._healthy = False
        self._flush()
        self.stats.lost[why] = self.stats.lost.get(why, 0) + 1
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None

    def _flush(self) -> None:
        self._entries.clear()
        self.stats.flushes += 1

    def _drain(self) -> None:
        """Under the lock: every message already received, without waiting for more."""
        conn = self._conn
        if conn is None:
            return
        try:
            while conn.can_read(timeout=0):
                self._handle(conn.read_response())
        except (redis.RedisError, OSError) as exc:
            self._lose(type(exc).__name__)

    def _handle(self, message: Any) -> None:
        self._last_heard = self.clock()
        kind = message[0] if isinstance(message, list) else None
        if kind == "message" and message[1] == INVALIDATE:
            keys = message[2]
            if keys is None:  # FLUSHALL / FLUSHDB
                self._flush()
                return
            for key in keys:
                self._entries.pop(key, None)
            self.stats.invalidated += len(keys)
        elif kind == "pong":
            self._ping_sent = None

    def _run(self) -> None:
        backoff = 0.05
        while not self._stopped.is_set():
            if self._conn is None:
                try:
                    self._connect()
                    backoff = 0.05
                except (redis.RedisError, OSError) as exc:
                    with self._lock:
                        self._lose(type(exc).__name__)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)
                continue
            conn = self._conn
            # A socket closed under us raises here; _drain tells what happened.
            with contextlib.suppress(OSError, ValueError, TypeError):
                select.select([conn._sock], [], [], self.health_interval)
            with self._lock:
                self._drain()
                if self._conn is None:
                    continue
                quiet = self.clock() - self._last_heard
                if (
                    self._ping_sent is not None
                    and self.clock() - self._ping_sent > self.health_interval
                ):
                    self._lose("no PONG")
                elif self._ping_sent is None and quiet >= self.health_interval:
                    try:
                        self._conn.send_command("PING")
                        self._ping_sent = self.clock()
                    except (redis.RedisError, OSError) as exc:
                        self._lose(type(exc).__name__)


# -- the experiment app ----------------------------------------------------------------


def create_tracking_app(settings: dict[str, Any] | None = None) -> Flask:
    """bench.floors' app plus GET /floor/tracked: the session floor's read
    behind a TrackingCache, with SessionStore.load's renewal rule; and
    GET /floor/tracking (this worker's cache counters, no keys)."""
    settings = settings or config.load()
    app = create_floors(settings)
    client = connect(settings["REDIS_URL"])
    keys = Keys(settings["REDIS_KEY_PREFIX"])
    renew = load_script(client, "renew_session")
    cookie = settings["SESSION_COOKIE_NAME"]
    ttl = settings["SESSION_TTL"]
    renew_below_ms = (ttl - settings["SESSION_RENEW_INTERVAL"]) * 1000
    cache = TrackingCache(settings["REDIS_URL"], settings["REDIS_KEY_PREFIX"] + "{")
    app.extensions["tracking_cache"] = cache

    @app.get("/floor/tracked")
    def tracked() -> Any:
        cache.ensure_started()
        token = request.cookies.get(cookie, "")
        key = keys.session(token)
        data = cache.lookup(key, renew_below_ms)
        state = "hit"
        if data is None:
            state = "miss"
            marker = cache.reserve(key)
            sent = time.monotonic()
            pipe = client.pipeline(transaction=False)
            pipe.hgetall(key)
            pipe.pttl(key)
            data, pttl = pipe.execute()
            keep = data
            if data and 0 <= pttl < renew_below_ms:
                # As SessionStore.load: slide the expiry; the write invalidates
                # this entry in every worker, so nothing is kept from this read.
                renew(
                    keys=[key, keys.identity(int(data["iid"]), "sessions")],
                    args=[ttl, int(time.time()), token],
                )
                keep = {}
            deadline = sent + pttl / 1000 if pttl >= 0 else math.inf
            cache.store(key, marker, keep, deadline)
        if not data:
            response = jsonify({"code": 2001, "error": "unauthorized"})
            response.status_code = 401
        else:
            response = jsonify({"code": 0, "data": json.loads(data["profile"])})
        response.headers["X-Cache"] = state
        return response

    @app.get("/floor/tracking")
    def tracking_stats() -> Any:
        cache.ensure_started()
        return jsonify({"pid": os.getpid(), **cache.snapshot()})

    return app


TRACKING_APP = "bench.tracking:create_tracking_app()"


# -- load for the tests ------------------------------------------------------------------


def hammer(
    url: str, cookies: list[str], path: str, stop: Any, counts: Any, connections: int = 4
) -> None:
    """Keep-alive GETs of `path` with each cookie in turn on `connections`
    connections (threads) until `stop` is set; counts[0] += answers,
    counts[1] += answers other than 200/401. For multiprocessing (spawn)."""
    host, port = url.removeprefix("http://").split(":")

    def one(offset: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        done = bad = 0
        i = offset
        while not stop.is_set():
            try:
                conn.request("GET", path, headers={"Cookie": cookies[i % len(cookies)]})
                response = conn.getresponse()
                response.read()
                done += 1
                bad += response.status not in (200, 401)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                bad += 1
            i += 1
        with counts.get_lock():
            counts[0] += done
            counts[1] += bad

    threads = [threading.Thread(target=one, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# -- the benchmark ------------------------------------------------------------------------


TARGETS = (
    ("framework floor", "floors", "/floor/framework"),
    ("session floor", "floors", "/floor/session"),
    ("tracked", "floors", "/floor/tracked"),
    ("info", "service", "/user/info"),
)
RATIOS = (
    ("tracked ÷ session floor", "tracked", "session floor"),
    ("tracked ÷ framework floor", "tracked", "framework floor"),
    ("info ÷ session floor", "info", "session floor"),
    ("info ÷ framework floor", "info", "framework floor"),
)


def main(argv: list[str] | None = None) -> int:
    from bench.harness import cpu_seconds, load_arguments, machine, start_stack, worker_pids
    from bench.loadgen import Load, pick
    from bench.run import (
        git_commit,
        redis_version,
        spread,
        summarize,
        worker_model,
        write_results,
    )
    from dev.topologies import SingleRedis

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_arguments(parser)
    parser.add_argument(
        "--redis-url", help="an external Redis (default: the machine's redis-server, started here)"
    )
    args = parser.parse_args(argv)
    generator = pick(args.loadgen)
    started = datetime.datetime.now(datetime.UTC)
    host = machine()
    out = (
        args.json or config.ROOT / "instance" / "bench" / f"tracking-{started:%Y%m%dT%H%M%SZ}.json"
    )

    with tempfile.TemporaryDirectory(prefix="wx-tracking-") as tmp:
        node = None
        redis_url = args.redis_url
        if redis_url is None and shutil.which("redis-server"):
            (Path(tmp) / "redis").mkdir()
            node = SingleRedis(Path(tmp) / "redis")
            node.__enter__()
            redis_url = node.url()
        stack = start_stack(Path(tmp), redis_url=redis_url)
        try:
            service = stack.start("service", workers=args.workers)
            floors = stack.start("floors", app=TRACKING_APP, workers=args.workers)
            token, _ = stack.login(service.url)
            urls = {"service": service.url, "floors": floors.url}
            pids = {"service": worker_pids(service), "floors": worker_pids(floors)}
            version = redis_version(stack.env["REDIS_URL"])
            origin = "external" if args.redis_url else "redis-server" if node else "embedded"
            print(
                f"wx-session-service: client-side caching, {started:%Y-%m-%d %H:%M} UTC, "
                f"commit {git_commit()}"
            )
            print(
                f"machine   {host['cpus']} CPUs ({host['cpu_model']}); "
                f"load average {host['loadavg_at_start']}"
            )
            print(
                f"load      {generator.describe()}: -t{args.threads} -c{args.connections}, "
                f"{args.seconds:g} s per measurement, one session (the hot case)"
            )
            print(
                f"server    gunicorn -c gunicorn.conf.py: "
                f"{worker_model(stack.env, args.workers, 4)}; Redis {version} ({origin})"
            )

            def measure(name: str, seconds: float) -> Any:
                server, path = next((s, p) for n, s, p in TARGETS if n == name)
                before = cpu_seconds(pids[server])
                result = generator.run(
                    urls[server],
                    Load("GET", path, cookie=f"sid={token}"),
                    connections=args.connections,
                    threads=args.threads,
                    seconds=seconds,
                )
                result.cpu_us = (cpu_seconds(pids[server]) - before) / max(result.requests, 1) * 1e6
                return result

            for name, _, _ in TARGETS:
                measure(name, 2.0)
            rounds: dict[str, list[Any]] = {name: [] for name, _, _ in TARGETS}
            for r in range(args.rounds):
                order = [name for name, _, _ in TARGETS]
                for name in order if r % 2 == 0 else reversed(order):
                    time.sleep(args.pause)
                    result = measure(name, args.seconds)
                    result.loadavg = round(os.getloadavg()[0], 2)
                    rounds[name].append(result)
                    print(
                        f"  round {r + 1}  {name:<16} {result.rps:8.0f} req/s  "
                        f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:7.1f} ms  "
                        f"CPU {result.cpu_us:5.0f} µs/req"
                        + (f"  errors {result.errors}" if result.failed else "")
                        + f"  (load average {result.loadavg})",
                        flush=True,
                    )
            seen: dict[int, Any] = {}
            for _ in range(20):  # each worker's counters (fresh connections land anywhere)
                answer = json.loads(_get(floors.url + "/floor/tracking"))
                seen[answer["pid"]] = answer
            caches = list(seen.values())
        finally:
            stack.stop()
            if node is not None:
                node.__exit__(None, None, None)

    targets = {
        name: {
            "rps": summarize([x.rps for x in results]),
            "p50_ms": summarize([x.p50_ms for x in results]),
            "p99_ms": summarize([x.p99_ms for x in results]),
            "cpu_us_per_request": summarize([x.cpu_us for x in results]),
            "errors": sum(x.failed for x in results),
        }
        for name, results in rounds.items()
    }
    ratios = {}
    for label, a, b in RATIOS:
        ratios[label] = {
            **summarize([rounds[a][i].rps / rounds[b][i].rps for i in range(args.rounds)]),
            "from_cpu": summarize(
                [rounds[b][i].cpu_us / rounds[a][i].cpu_us for i in range(args.rounds)]
            ),
        }
    print()
    print(f"{'target':<17}{'req/s':>22}{'p50 ms':>22}{'p99 ms':>24}{'CPU µs/req':>14}{'errors':>8}")
    for name, _, path in TARGETS:
        t = targets[name]
        print(
            f"{name:<17}{spread(t['rps'], lambda x: f'{x:.0f}'):>22}"
            f"{spread(t['p50_ms'], lambda x: f'{x:.1f}'):>22}"
            f"{spread(t['p99_ms'], lambda x: f'{x:.1f}'):>24}"
            f"{t['cpu_us_per_request']['median']:>14.0f}{t['errors']:>8}   GET {path}"
        )
    print()
    print(
        "ratios (throughput, paired per round; median [min–max]); "
        "'CPU' is the inverse ratio of CPU µs/req"
    )
    for label, r in ratios.items():
        print(
            f"  {label:<28}{spread(r, lambda x: f'{x:.2f}'):>20}   "
            f"CPU {spread(r['from_cpu'], lambda x: f'{x:.2f}')}"
        )
    print(f"caches    {caches}")
    write_results(
        out,
        started,
        host,
        {"redis": version},
        rounds={name: [x.as_dict() for x in results] for name, results in rounds.items()},
        targets=targets,
        ratios=ratios,
        caches=caches,
    )
    return 0


def _get(url: str) -> str:
    import requests

    return requests.get(url, headers={"Connection": "close"}, timeout=10).text


if __name__ == "__main__":
    sys.exit(main())
