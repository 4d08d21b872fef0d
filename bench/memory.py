"""Memory: gunicorn workers' RSS, and Redis bytes per session and per user.
`.venv/bin/python -m bench.memory`

1. Workers: RSS and USS (memory only that process holds) of the master and
   each worker right after boot, after one request, and after every 20k
   GET /user/info (wrk, 32 connections) up to --requests (100k).
2. Redis, per key kind: one fresh user logs in and binds a profile; every
   key the service then holds for that user is listed with its type, TTL and
   `MEMORY USAGE` (SAMPLES 0: exact). Then --users more users log in (and
   as many bind) and the growth of INFO used_memory per user shows what the
   per-key numbers leave out (the keyspace's own dict entries, expiry table).

Writes instance/bench/memory-<time>.json (or --json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import redis
import requests

import config
from bench.harness import Stack, machine, start_stack, worker_pids
from bench.loadgen import Load, pick
from bench.run import git_commit


def process_memory(pid: int) -> dict[str, float]:
    info = psutil.Process(pid).memory_full_info()
    return {"rss_mib": round(info.rss / 2**20, 1), "uss_mib": round(info.uss / 2**20, 1)}


def snapshot(master: int, workers: list[int]) -> dict[str, Any]:
    return {
        "master": process_memory(master),
        "workers": [process_memory(pid) for pid in workers],
    }


def kind_of(key: str, prefix: str) -> str:
    """wx:session:<token> -> session:<token>; wx:user:12:sessions -> user:<id>:sessions."""
    rest = key.removeprefix(prefix)
    parts = rest.split(":")
    if parts[0] == "session":
        return "session:<token>"
    if parts[0] == "user" and len(parts) == 3:
        return f"user:<id>:{parts[2]}"
    if parts[0] == "code":
        return "code:<sha256>"
    if rest.startswith("limits"):
        # limits' keys: ...LIMITER/<scope>/<key>/<amount>/<multiples>/<granularity>
        scope = rest.split("LIMITER/", 1)[-1].split("/")[0] if "LIMITER/" in rest else rest
        return f"limits:…{scope}…"
    return rest


def redis_keys(client: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    rows = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        rows.append(
            {
                "key_kind": kind_of(key, prefix),
                "type": client.type(key),
                "ttl_s": client.ttl(key),
                "bytes": client.memory_usage(key, samples=0),
                "length": _length(client, key),
            }
        )
    return sorted(rows, key=lambda r: r["key_kind"])


def _length(client: redis.Redis, key: str) -> int:
    kind = client.type(key)
    return {
        "hash": client.hlen,
        "zset": client.zcard,
        "list": client.llen,
        "set": client.scard,
        "string": client.strlen,
    }.get(kind, lambda _k: 0)(key)


def login_and_bind(stack: Stack, url: str, nick: str) -> str:
    token, openid = stack.login(url)
    sealed = stack.emulator.state.open_data(
        openid,
        data={"nickName": nick, "gender": 1, "city": "Shenzhen", "province": "Guangdong",
              "country": "China", "language": "zh_CN",
              "avatarUrl": "https://thirdwx.qlogo.cn/mmopen/vi_32/" + "Q" * 120 + "/132"},
    )  # fmt: skip
    response = requests.post(
        f"{url}/user/bindinfo",
        json={"encryptedData": sealed["encryptedData"], "iv": sealed["iv"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="GET /user/info in all")
    parser.add_argument("--step", type=int, default=20_000, help="snapshot every this many")
    parser.add_argument("--users", type=int, default=1000, help="for used_memory per user")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    generator = pick(args.loadgen)
    started = datetime.datetime.now(datetime.UTC)
    out = args.json or config.ROOT / "instance" / "bench" / f"memory-{started:%Y%m%dT%H%M%SZ}.json"
    document: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(),
        "load_generator": generator.describe(),
    }
    with tempfile.TemporaryDirectory(prefix="wx-memory-") as tmp:
        stack = start_stack(Path(tmp))
        try:
            service = stack.start("service")
            master, workers = service.process.pid, worker_pids(service)
            time.sleep(1.0)
            steps = [{"requests": 0, "when": "after boot", **snapshot(master, workers)}]
            token, _ = stack.login(service.url)
            for _ in range(len(workers) * 4):
                requests.get(f"{service.url}/user/info", cookies={"sid": token}, timeout=10)
            steps.append({"requests": "a few", "when": "after a login and a few requests",
                          **snapshot(master, workers)})  # fmt: skip
            load = Load("GET", "/user/info", cookie=f"sid={token}")
            done = 0
            next_snapshot = args.step
            while done < args.requests:
                # Short runs, so the count lands near each step.
                result = generator.run(service.url, load, connections=32, threads=2, seconds=5)
                done += result.requests
                if done >= next_snapshot or done >= args.requests:
                    steps.append({"requests": done, **snapshot(master, workers)})
                    next_snapshot = (done // args.step + 1) * args.step
            if worker_pids(service) != workers:
                document["warning"] = "a worker was replaced during the run"
            document["workers"] = steps
            print("gunicorn (2 workers x 4 threads): RSS / USS in MiB")
            for step in steps:
                w = "  ".join(f"{x['rss_mib']:.1f}/{x['uss_mib']:.1f}" for x in step["workers"])
                m = step["master"]
                print(
                    f"  {step['requests']!s:>7} requests  "
                    f"master {m['rss_mib']:.1f}/{m['uss_mib']:.1f}  workers {w}"
                )

            prefix = config.load(stack.env)["REDIS_KEY_PREFIX"]
            client = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
            client.flushdb()  # this stack's own Redis: start the census from nothing
            login_and_bind(stack, service.url, "小明🐱")
            keys = redis_keys(client, prefix)
            document["keys_after_one_login_and_bind"] = keys
            print()
            print("Redis keys after one login and one bind (MEMORY USAGE, SAMPLES 0)")
            for row in keys:
                print(
                    f"  {row['key_kind']:<28} {row['type']:<7} len {row['length']:>4}  "
                    f"ttl {row['ttl_s']:>7} s  {row['bytes']:>5} B"
                )
            session = sum(r["bytes"] for r in keys if r["key_kind"] == "session:<token>")
            user = sum(r["bytes"] for r in keys if r["key_kind"].startswith("user:"))
            transient = sum(
                r["bytes"] for r in keys if not r["key_kind"].startswith(("user:", "session:"))
            )
            print(
                f"  per live session {session} B; per user (index, pointer, profile, keys) "
                f"{user} B; short-lived (code ledger, rate limits) {transient} B"
            )

            before = int(client.info("memory")["used_memory"])
            for i in range(args.users):
                login_and_bind(stack, service.url, f"用户{i}")
            after = int(client.info("memory")["used_memory"])
            per_user = (after - before) / args.users
            document["used_memory_per_login_and_bind"] = round(per_user)
            document["per_key"] = {"session": session, "user": user, "transient": transient}
            print(
                f"  INFO used_memory grew {(after - before) / 1024:.0f} KiB for {args.users} "
                f"users (login + bind each): {per_user:.0f} B per user, everything included"
            )
            document["redis_version"] = client.info("server")["redis_version"]
        finally:
            stack.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"results  {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
