"""Worker models: which gunicorn worker keeps the service responsive when
WeChat is slow and when clients are slow? `.venv/bin/python -m bench.workers`

For each model (gthread as today, gthread with more threads, sync with more
workers, gevent), the service is started with gunicorn.conf.py plus the
model's command-line settings (dev.stack.start_gunicorn's args), on one
stack (emulator, Redis, SQLite), and measured:

  fast reads    /user/info under wrk (-t2 -c32, 10 s): throughput, p50, p99,
                alone and with 16 logins in flight that each wait 1-2 s on
                WeChat (emulator `delay` faults on jscode2session)
  slow clients  N sockets (8, 64) that send a request line and then one
                header byte per second, reconnecting when cut; meanwhile a
                fresh connection asks GET /healthz every 0.25 s (5 s timeout):
                how many answered, p50 and max latency, and how long the
                server let each slow socket live

plus a check that gevent's monkey-patching makes redis-py, requests (HTTP
and HTTPS), sqlite3, psycopg 3 and PyMySQL cooperative (bench/geventcheck.py; the
database checks run when --postgres-url / --mysql-url, or TEST_POSTGRES_URL /
TEST_MYSQL_URL, are set), and the slow-client test repeated with the
settings that could matter (--timeout, --keep-alive).

Results go to instance/bench/workers-<time>.json (or --json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import selectors
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

import config
from bench.geventcheck import EARLY_PATCH, NAMES, run_checks, start_https
from bench.harness import Stack, machine, start_stack
from bench.loadgen import Load, PyLoad, Wrk, pick
from bench.run import git_commit


@dataclass(frozen=True)
class Model:
    """A worker model, chosen as a deployment would: GUNICORN_WORKER_CLASS
    (gunicorn.conf.py patches with gevent before importing anything only
    when it names gevent), plus extra command-line settings."""

    name: str
    worker_class: str
    workers: int
    threads: int
    args: tuple[str, ...] = ()


MODELS = {
    "gevent-2": Model("gevent 2 (1000 conns, the default)", "gevent", 2, 1),
    "gthread-2x4": Model("gthread 2x4 (before)", "gthread", 2, 4),
    "gthread-2x16": Model("gthread 2x16", "gthread", 2, 16),
    "sync-5": Model("sync x5", "sync", 5, 1),
    "sync-9": Model("sync x9", "sync", 9, 1),
}
# The slow-client test again with the settings that bound a stalled read.
VARIANTS = {
    "gthread-2x4+timeout5": Model("gthread 2x4 --timeout 5", "gthread", 2, 4, ("--timeout", "5")),
    "sync-5+timeout5": Model("sync x5 --timeout 5", "sync", 5, 1, ("--timeout", "5")),
    "gevent-2+keepalive2": Model("gevent 2 --keep-alive 2", "gevent", 2, 1, ("--keep-alive", "2")),
}


# -- slow logins ------------------------------------------------------------


@dataclass
class SlowLogins:
    """`count` clients, each logging in again as soon as its last login
    answered; WeChat holds every jscode2session 1-2 s."""

    stack: Stack
    url: str
    count: int
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> SlowLogins:
        rng = random.Random(7)
        delays = [round(rng.uniform(1, 2), 2) for _ in range(self.count * 40)]
        self.stack.control.faults([{"endpoint": "jscode2session", "delay": d} for d in delays])
        for _ in range(self.count):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self.threads.append(thread)
        time.sleep(1.0)  # all in flight
        return self

    def _client(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            code = self.stack.emulator.state.login()["code"]
            start = time.perf_counter()
            try:
                status = session.post(f"{self.url}/oauth/login", json={"code": code}, timeout=60)
                key = status.status_code
            except requests.RequestException:
                key = 0
            self.latencies.append(time.perf_counter() - start)
            self.statuses[key] = self.statuses.get(key, 0) + 1

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(70)
        self.stack.emulator.state.clear_faults()

    def summary(self) -> dict[str, Any]:
        ms = sorted(x * 1000 for x in self.latencies)
        return {
            "completed": len(ms),
            "statuses": self.statuses,
            "p50_ms": round(statistics.median(ms)) if ms else None,
            "max_ms": round(ms[-1]) if ms else None,
        }


# -- slow clients -----------------------------------------------------------


def slow_clients(url: str, count: int, seconds: float) -> dict[str, Any]:
    """`count` slowloris sockets for `seconds`, and /healthz probes meanwhile."""
    host, port = url.removeprefix("http://").split(":")
    address = (host, int(port))
    selector = selectors.DefaultSelector()
    lifetimes: list[float] = []
    opened = [0]
    stop = threading.Event()

    def open_one() -> None:
        try:
            sock = socket.create_connection(address, timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, time.monotonic())
            opened[0] += 1
        except OSError:
            time.sleep(0.1)

    def drip() -> None:
        for _ in range(count):
            open_one()
        next_byte = time.monotonic() + 1
        while not stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                # readable: the server answered (an error) or closed: cut.
                lifetimes.append(time.monotonic() - key.data)
                selector.unregister(key.fileobj)
                key.fileobj.close()
                open_one()
            if time.monotonic() >= next_byte:
                next_byte += 1
                for key in list(selector.get_map().values()):
                    try:
                        key.fileobj.send(b"a")
                    except OSError:
                        lifetimes.append(time.monotonic() - key.data)
                        selector.unregister(key.fileobj)
                        key.fileobj.close()
                        open_one()
        for key in list(selector.get_map().values()):
            key.fileobj.close()

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    time.sleep(1.0)
    answered: list[float] = []
    failures: dict[str, int] = {}
    probes = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probes += 1
        start = time.perf_counter()
        try:
            # A fresh connection each time, as a new client (or a health check) opens.
            response = requests.get(f"{url}/healthz", timeout=5, headers={"Connection": "close"})
            if response.status_code == 200:
                answered.append(time.perf_counter() - start)
            else:
                failures[str(response.status_code)] = failures.get(str(response.status_code), 0) + 1
        except requests.Timeout:
            failures["timeout"] = failures.get("timeout", 0) + 1
        except requests.RequestException as exc:
            failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
        time.sleep(max(0.0, 0.25 - (time.perf_counter() - start)))
    stop.set()
    dripper.join(10)
    ms = sorted(x * 1000 for x in answered)
    return {
        "slow_sockets": count,
        "seconds": seconds,
        "probes": probes,
        "answered": len(ms),
        "failures": failures,
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "max_ms": round(ms[-1], 1) if ms else None,
        "slow_sockets_cut": len(lifetimes),
        "slow_socket_life_s": round(statistics.median(lifetimes), 1) if lifetimes else None,
        "slow_sockets_opened": opened[0],
    }


# -- the experiment ---------------------------------------------------------


def measure_model(
    stack: Stack,
    key: str,
    model: Model,
    generator: Wrk | PyLoad,
    args: argparse.Namespace,
    *,
    reads: bool = True,
) -> dict[str, Any]:
    server = stack.start(
        f"model-{key}",
        workers=model.workers,
        threads=model.threads,
        args=model.args,
        env={"GUNICORN_WORKER_CLASS": model.worker_class},
    )
    log = server.log_text()
    worker_line = next((x for x in log.splitlines() if "Using worker:" in x), "")
    out: dict[str, Any] = {
        "model": model.name,
        "workers": model.workers,
        "threads": model.threads,
        "args": list(model.args),
        "worker_class": worker_line.rsplit(":", 1)[-1].strip(),
    }
    try:
        if reads:
            token, _ = stack.login(server.url)
            load = Load("GET", "/user/info", cookie=f"sid={token}")
            run = {"connections": args.connections, "threads": 2, "seconds": args.seconds}
            generator.run(server.url, load, connections=8, threads=2, seconds=2)  # warm-up
            alone = generator.run(server.url, load, timeout=30, **run)
            with SlowLogins(stack, server.url, args.slow_logins) as slow:
                busy = generator.run(server.url, load, timeout=30, **run)
            out["info_alone"] = alone.as_dict()
            out["info_with_slow_logins"] = busy.as_dict()
            out["slow_logins"] = slow.summary()
            print_reads(model.name, alone, busy, out["slow_logins"])
        out["slow_clients"] = []
        for count in args.slow_clients:
            result = slow_clients(server.url, count, args.slow_seconds)
            out["slow_clients"].append(result)
            print_slow(model.name, result)
        text = server.log_text()
        out["monkey_patch_warnings"] = text.count("MonkeyPatchWarning")
        out["worker_timeouts"] = text.count("WORKER TIMEOUT")
    finally:
        stack.stop_server(server)
    return out


def print_reads(name: str, alone: Any, busy: Any, slow: dict[str, Any]) -> None:
    print(
        f"  {name:<24} info alone {alone.rps:7.0f} req/s p50 {alone.p50_ms:7.1f} p99 "
        f"{alone.p99_ms:7.1f} ms | with slow logins {busy.rps:7.0f} req/s p50 "
        f"{busy.p50_ms:7.1f} p99 {busy.p99_ms:7.1f} ms"
        f"{f' errors {busy.errors}' if busy.failed else ''} | slow logins done "
        f"{slow['completed']} (p50 {slow['p50_ms']} ms)",
        flush=True,
    )


def print_slow(name: str, r: dict[str, Any]) -> None:
    print(
        f"  {name:<24} {r['slow_sockets']:>3} slow sockets: /healthz answered "
        f"{r['answered']}/{r['probes']}, p50 {r['p50_ms']} ms, max {r['max_ms']} ms, "
        f"failures {r['failures'] or '-'}; slow sockets cut {r['slow_sockets_cut']} "
        f"(median life {r['slow_socket_life_s']} s)",
        flush=True,
    )


def gevent_check(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """The driver check under gunicorn's gevent worker as configured today
    (the worker patches after the master imported the app), then with every
    process patched at start (EARLY_PATCH)."""
    lock = str(stack.workdir / "gevent-check-lock.db")
    sqlite3.connect(lock).close()
    env = {"CHECK_SQLITE_FILE": lock}
    if args.postgres_url:
        env["CHECK_POSTGRES_URL"] = args.postgres_url
    if args.mysql_url:
        env["CHECK_MYSQL_URL"] = args.mysql_url
    https = start_https(stack.workdir)
    if https:
        env["CHECK_HTTPS_URL"], env["CHECK_HTTPS_CA"] = https[0], https[1]
    early = {
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(EARLY_PATCH), os.environ.get("PYTHONPATH")])
        )
    }
    out: dict[str, Any] = {}
    try:
        for key, extra in (("as_configured", {}), ("patched_at_start", early)):
            server = stack.start(
                f"gevent-check-{key}",
                app="bench.geventcheck:create_checks()",
                workers=1,
                threads=1,
                env={**env, **extra, "GUNICORN_WORKER_CLASS": "gevent"},
            )
            try:
                results = run_checks(server.url, stack.control, lock)
                results["monkey_patch_warnings"] = [
                    line for line in server.log_text().splitlines() if "MonkeyPatchWarning" in line
                ]
                results["errors_logged"] = sorted(
                    {line for line in server.log_text().splitlines() if line.endswith("Error")
                     or "Error: " in line}
                )[:5]  # fmt: skip
            finally:
                stack.stop_server(server)
            out[key] = results
            print_gevent_check(key, results)
    finally:
        if https:
            https[2].shutdown()
    return out


def print_gevent_check(key: str, results: dict[str, Any]) -> None:
    how = {
        "as_configured": "as configured (gunicorn.conf.py; the worker patches after the master "
        "imported the app)",
        "patched_at_start": "with every process patched at interpreter start",
    }[key]
    print(f"gevent check, {how}: 1 worker, 8 requests blocking ~1 s each in one driver")
    print(f"  patched: {results['patched']}")
    for name in NAMES:
        r = results[name]
        if "skipped" in r:
            print(f"  {name:<9} skipped ({r['skipped']})")
            continue
        if not r["works"]:
            verdict = f"FAILS: HTTP {r['statuses']}"
        else:
            verdict = "cooperative" if r["cooperative"] else "BLOCKS THE WORKER"
        print(
            f"  {name:<9} 8 in {r['wall_s']:.2f} s, "
            f"/healthz max {r['healthz_max_ms']} ms: {verdict}"
        )
    print(f"  MonkeyPatchWarnings in the log: {len(results['monkey_patch_warnings'])}")
    for line in results["errors_logged"]:
        print(f"  logged: {line[:160]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}"
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help="'' for none")
    parser.add_argument("--seconds", type=float, default=10.0, help="per /user/info run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--slow-logins", type=int, default=16)
    parser.add_argument("--slow-clients", default="8,64", help="socket counts")
    parser.add_argument("--slow-seconds", type=float, default=35.0, help="per slow-client run")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"))
    parser.add_argument("--mysql-url", default=os.environ.get("TEST_MYSQL_URL"))
    parser.add_argument("--skip-gevent-check", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.slow_clients = [int(x) for x in args.slow_clients.split(",") if x]

    generator = pick(args.loadgen)
    started = datetime.datetime.now(datetime.UTC)
    host = machine()
    out = args.json or config.ROOT / "instance" / "bench" / f"workers-{started:%Y%m%dT%H%M%SZ}.json"
    print(f"worker models, {started:%Y-%m-%d %H:%M} UTC, commit {git_commit()}")
    print(
        f"machine  {host['cpus']} CPUs ({host['cpu_model']}); load {generator.describe()} "
        f"-t2 -c{args.connections} {args.seconds:g} s; {args.slow_logins} slow logins "
        f"(WeChat 1-2 s); slow clients {args.slow_clients} x {args.slow_seconds:g} s"
    )
    document: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": host,
        "load_generator": generator.describe(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("json",)} | {"json": None},
        "models": {},
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="wx-workers-") as tmp:
        stack = start_stack(Path(tmp))
        try:
            if not args.skip_gevent_check:
                document["gevent_check"] = gevent_check(stack, args)
            for key in [k for k in args.models.split(",") if k]:
                document["models"][key] = measure_model(stack, key, MODELS[key], generator, args)
            for key in [k for k in args.variants.split(",") if k]:
                document["variants"][key] = measure_model(
                    stack, key, VARIANTS[key], generator, args, reads=False
                )
        finally:
            stack.stop()
    print_tables(document)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"results  {out}")
    return 0


def print_tables(document: dict[str, Any]) -> None:
    print()
    print("/user/info (req/s, p50 ms, p99 ms): alone | with slow logins in flight")
    for m in document["models"].values():
        if "info_alone" not in m:
            continue
        a, b, s = m["info_alone"], m["info_with_slow_logins"], m["slow_logins"]
        print(
            f"  {m['model']:<24} {a['rps']:>7.0f} {a['p50_ms']:>7.1f} {a['p99_ms']:>8.1f} | "
            f"{b['rps']:>7.0f} {b['p50_ms']:>7.1f} {b['p99_ms']:>8.1f}   "
            f"slow logins answered {s['completed']} (p50 {s['p50_ms']} ms) {s['statuses']}"
        )
    print()
    print("slow clients: /healthz answered/probes, p50 ms, max ms; slow sockets cut, median life")
    for m in [*document["models"].values(), *document["variants"].values()]:
        killed = f"  worker timeouts: {m['worker_timeouts']}" if m["worker_timeouts"] else ""
        for r in m.get("slow_clients", []):
            print(
                f"  {m['model']:<24} N={r['slow_sockets']:<3} {r['answered']:>3}/{r['probes']:<3} "
                f"{r['p50_ms']!s:>7} {r['max_ms']!s:>8}   cut {r['slow_sockets_cut']:>4}, "
                f"life {r['slow_socket_life_s']} s  {r['failures'] or ''}{killed}"
            )


if __name__ == "__main__":
    sys.exit(main())
