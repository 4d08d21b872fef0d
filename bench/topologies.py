"""The service on a Redis Cluster next to one redis-server:
`make bench-topologies` (or .venv/bin/python -m bench.topologies).

Starts, from the machine's redis-server (dev/topologies.py), one plain
redis-server and a Redis Cluster of --primaries primaries (3; --replicas
replicas each, 0 by default so both sides run the same number of Redis
processes per primary), then one stack (bench/harness.py: the WeChat
emulator, SQLite) and two gunicorns with the same settings
(`gunicorn -c gunicorn.conf.py`, same workers and threads, access log on),
one with REDIS_URL=redis://<single>, the other with
REDIS_URL=redis+cluster://<the primaries>. Then measures, in interleaved
rounds (the order reversed every other round):

  info    GET /user/info      a valid cookie of a session in that Redis
  login   POST /oauth/login   a fresh code (a new user) per request

and prints, per target and topology, the median over rounds of throughput,
p50, p99, the gunicorn workers' CPU per request and every Redis process's CPU
per request, with the cluster ÷ single ratios paired per round. Everything
runs on the same machine in the same run, so only the ratios travel.
The results go to instance/bench/topologies-<time>.json (or --json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil

import config
from bench.harness import (
    Stack,
    cpu_seconds,
    gunicorn_threads,
    load_arguments,
    machine,
    start_stack,
    worker_pids,
)
from bench.loadgen import Load, Result, pick
from bench.run import (
    FIRST_GUESS_RPS,
    git_commit,
    load_settings,
    print_machine_and_load,
    redis_version,
    round_tail,
    spread,
    summarize,
    write_results,
)
from dev.stack import Gunicorn
from dev.topologies import ClusterTopology, SingleRedis, Topology, missing_tools

TOPOLOGIES = ("single", "cluster")
TARGETS = (("info", "GET /user/info"), ("login", "POST /oauth/login"))


def redis_cpu(topology: Topology) -> float:
    """User + system CPU seconds of every redis-server process of a topology."""
    total = 0.0
    for node in topology.nodes:
        if node.process is not None:
            times = psutil.Process(node.process.pid).cpu_times()
            total += times.user + times.system
    return total


class Side:
    """One topology and the gunicorn serving the service on it."""

    def __init__(self, name: str, topology: Topology, server: Gunicorn, cookie: str) -> None:
        self.name = name
        self.topology = topology
        self.server = server
        self.cookie = cookie
        self.pids = worker_pids(server)
        self.best_rps: dict[str, float] = {}


def measure(
    stack: Stack, side: Side, target: str, seconds: float, args: argparse.Namespace, generator
) -> Result:
    if target == "info":
        load = Load("GET", "/user/info", cookie=side.cookie)
    else:
        # Enough fresh codes that none is sent twice: 1.5x the best rate so far.
        rate = max(side.best_rps.get(target, 0) * 1.5, FIRST_GUESS_RPS["login"])
        codes = stack.codes(int(seconds * rate))
        load = Load("POST", "/oauth/login", feed=[("", json.dumps({"code": c})) for c in codes])
    workers_before = cpu_seconds(side.pids)
    redis_before = redis_cpu(side.topology)
    result = generator.run(
        side.server.url,
        load,
        connections=args.connections,
        threads=args.threads,
        seconds=seconds,
    )
    count = max(result.requests, 1)
    result.cpu_us = (cpu_seconds(side.pids) - workers_before) / count * 1e6
    result.redis_cpu_us = (redis_cpu(side.topology) - redis_before) / count * 1e6
    side.best_rps[target] = max(side.best_rps.get(target, 0.0), result.rps)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_arguments(parser)
    parser.add_argument("--primaries", type=int, default=3, help="cluster primaries (3)")
    parser.add_argument("--replicas", type=int, default=0, help="replicas per primary (0)")
    args = parser.parse_args(argv)

    missing = missing_tools()
    if missing:
        raise SystemExit(f"needs {', '.join(missing)} on PATH (apt-get install redis-server)")
    generator = pick(args.loadgen)
    started = datetime.datetime.now(datetime.UTC)
    host = machine()
    out = args.json or (
        config.ROOT / "instance" / "bench" / f"topologies-{started:%Y%m%dT%H%M%SZ}.json"
    )

    rounds: dict[str, dict[str, list[Result]]] = {
        t: {s: [] for s in TOPOLOGIES} for t, _ in TARGETS
    }
    with tempfile.TemporaryDirectory(prefix="wx-topologies-") as tmp, ExitStack() as cleanup:
        root = Path(tmp)
        (root / "single").mkdir()
        (root / "cluster").mkdir()
        single = cleanup.enter_context(SingleRedis(root / "single"))
        cluster = cleanup.enter_context(
            ClusterTopology(root / "cluster", primaries=args.primaries, replicas=args.replicas)
        )
        urls = {"single": single.url(), "cluster": cluster.url()}
        (root / "stack").mkdir()
        stack = start_stack(root / "stack", redis_url=urls["single"])
        cleanup.callback(stack.stop)
        sides: dict[str, Side] = {}
        for name, topology in (("single", single), ("cluster", cluster)):
            server = stack.start(name, workers=args.workers, env={"REDIS_URL": urls[name]})
            token, _ = stack.login(server.url)
            sides[name] = Side(name, topology, server, f"sid={token}")
        settings = {
            **load_settings(generator, args),
            "gunicorn": f"{args.workers} workers x {gunicorn_threads(stack.env)} threads "
            "(gthread), the same for both",
            "log_level": config.load(stack.env)["LOG_LEVEL"],
            "redis_server": redis_version(urls["single"]),
            "single": "1 redis-server (save '', appendonly no)",
            "cluster": f"{args.primaries} primaries x {args.replicas} replicas "
            "(cluster-enabled, save '', appendonly no)",
            "redis_urls": {k: v.split("?")[0] for k, v in urls.items()},
            "database": "sqlite (shared by both gunicorns, used by login only)",
            "wechat": "emulator (in the benchmark process)",
        }
        print_header(started, host, settings, args)

        plan = [(t, s) for t, _ in TARGETS for s in TOPOLOGIES]
        for target, name in plan:  # warm-up, unrecorded
            measure(stack, sides[name], target, 2.0, args, generator)
        for r in range(args.rounds):
            # Reversed every other round, and the topologies swap places inside each target.
            order = plan if r % 2 == 0 else list(reversed(plan))
            for target, name in order:
                time.sleep(args.pause)
                result = measure(stack, sides[name], target, args.seconds, args, generator)
                result.loadavg = round(os.getloadavg()[0], 2)
                rounds[target][name].append(result)
                print(
                    f"  round {r + 1}  {target:<6} {name:<8} {result.rps:7.0f} req/s  "
                    f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
                    f"workers {result.cpu_us:5.0f} µs/req  "
                    f"redis {result.redis_cpu_us:4.0f} µs/req" + round_tail(result),
                    flush=True,
                )
        keyspace = {name: keys_per_node(side.topology) for name, side in sides.items()}

    report = build_report(rounds, args.rounds)
    report["keys_per_node"] = keyspace
    print_report(report)
    write_results(
        out,
        started,
        host,
        settings,
        rounds={
            t: {
                s: [{**x.as_dict(), "redis_cpu_us": x.redis_cpu_us} for x in rs]
                for s, rs in per.items()
            }
            for t, per in rounds.items()
        },
        **report,
    )
    return 0


def keys_per_node(topology: Topology) -> list[int]:
    """DBSIZE of every primary: how evenly the hash tags spread the keys."""
    sizes = []
    for node in topology.nodes:
        if node.info("replication").get("role") == "master":
            sizes.append(int(node.call("DBSIZE")))
    return sizes


def build_report(rounds: dict[str, dict[str, list[Result]]], count: int) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for target, per in rounds.items():
        targets[target] = {
            name: {
                "rps": summarize([x.rps for x in results]),
                "p50_ms": summarize([x.p50_ms for x in results]),
                "p99_ms": summarize([x.p99_ms for x in results]),
                "worker_cpu_us": summarize([x.cpu_us for x in results]),
                "redis_cpu_us": summarize([x.redis_cpu_us for x in results]),
                "errors": sum(x.failed for x in results),
                "exhausted": sum(x.exhausted for x in results),
                "loadavg": statistics.median([x.loadavg or 0.0 for x in results]),
            }
            for name, results in per.items()
        }
        single, cluster = per["single"], per["cluster"]
        # Paired per round: each cluster run against the single run next to it.
        ratios[target] = {
            field: summarize([getattr(cluster[i], attr) / getattr(single[i], attr)
                              for i in range(count)])
            for field, attr in (("rps", "rps"), ("p50_ms", "p50_ms"), ("p99_ms", "p99_ms"),
                                ("worker_cpu_us", "cpu_us"), ("redis_cpu_us", "redis_cpu_us"))
        }  # fmt: skip
    return {"targets": targets, "ratios": ratios}


def print_header(
    started: datetime.datetime, host: dict, settings: dict, args: argparse.Namespace
) -> None:
    print(
        f"wx-session-service on Redis topologies, {started:%Y-%m-%d %H:%M} UTC, "
        f"commit {git_commit()}"
    )
    print_machine_and_load(host, settings, args)
    print(f"server    gunicorn -c gunicorn.conf.py: {settings['gunicorn']}, access log on")
    print(
        f"redis     redis-server {settings['redis_server']}: single = {settings['single']}; "
        f"cluster = {settings['cluster']}"
    )
    print(
        f"rounds    {args.rounds} interleaved (order reversed every other round) after a "
        "2 s warm-up of each; medians [min–max] below"
    )


def print_report(report: dict[str, Any]) -> None:
    print()
    print(
        f"{'target':<8}{'redis':<9}{'req/s':>20}{'p50 ms':>22}{'p99 ms':>22}"
        f"{'workers µs/req':>16}{'redis µs/req':>14}{'errors':>8}"
    )
    for target, what in TARGETS:
        for name in TOPOLOGIES:
            t = report["targets"][target][name]
            print(
                f"{target:<8}{name:<9}{spread(t['rps'], lambda x: f'{x:.0f}'):>20}"
                f"{spread(t['p50_ms'], lambda x: f'{x:.1f}'):>22}"
                f"{spread(t['p99_ms'], lambda x: f'{x:.1f}'):>22}"
                f"{t['worker_cpu_us']['median']:>16.0f}{t['redis_cpu_us']['median']:>14.0f}"
                f"{t['errors']:>8}   {what}"
            )
    print()
    print("cluster ÷ single, paired per round: median [min–max]")
    print(f"{'target':<8}{'req/s':>20}{'p50':>20}{'p99':>20}{'workers CPU':>20}{'redis CPU':>20}")
    for target, _ in TARGETS:
        r = report["ratios"][target]
        cells = [
            spread(r[k], lambda x: f"{x:.2f}")
            for k in ("rps", "p50_ms", "p99_ms", "worker_cpu_us", "redis_cpu_us")
        ]
        print(f"{target:<8}" + "".join(f"{c:>20}" for c in cells))
    print()
    sizes = report["keys_per_node"]
    print(f"keys      single {sizes['single']}; cluster primaries {sizes['cluster']}")
    exhausted = sum(t[name]["exhausted"] for t in report["targets"].values() for name in TOPOLOGIES)
    if exhausted:
        print(f"warning   {exhausted} requests reused a feed line (too few prepared)")


if __name__ == "__main__":
    sys.exit(main())
