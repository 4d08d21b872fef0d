"""Benchmarks: `make bench` (or .venv/bin/python -m dev.bench.run).

Starts its own stack in a temporary directory (the WeChat emulator, an
embedded Redis, SQLite, and gunicorn with gunicorn.conf.py), then drives it
from separate load-generator processes over keep-alive connections:

  info      GET /user/info for logged-in users (the hot path)
  login     POST /oauth/login with fresh codes (emulator round trip included)
  burst     50 logins of one user at once (the parallel-401 case)
  bindinfo  POST /user/bindinfo with encryptedData made by the emulator

Prints requests per second and latency percentiles. Numbers depend on the
machine; the README records one run and the machine it ran on.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from app import prepare_embedded
from dev.stack import Gunicorn, service_env, start_emulator, start_gunicorn
from wechat_emulator import EmulatorControl, EmulatorServer


def start_stack(workdir: Path, workers: int) -> tuple[EmulatorServer, Gunicorn]:
    emulator = start_emulator()
    env = service_env(
        {
            "INSTANCE_PATH": str(workdir),
            "WECHAT_API_BASE": emulator.url,
            "LOG_LEVEL": "WARNING",
            # The benchmark logs in far more often than a person would.
            "LOGIN_RATE_LIMIT": "1000000/minute",
            "LOGIN_RATE_LIMIT_OPENID": "1000000/minute",
        }
    )
    prepare_embedded(env)
    server = start_gunicorn(
        env, workdir / "gunicorn.log", workers=workers, args=["--access-logfile", "/dev/null"]
    )
    server.wait_ready()
    return emulator, server


def login(url: str, control: EmulatorControl, openid: str | None = None) -> str:
    code = control.login(openid=openid)["code"]
    return requests.post(f"{url}/oauth/login", json={"code": code}, timeout=10).json()["data"][
        "token"
    ]


def _info_worker(args: tuple[str, list[str], float]) -> list[float]:
    url, tokens, seconds = args
    session = requests.Session()
    latencies = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        response = session.get(
            f"{url}/user/info", headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        )
        latencies.append(time.perf_counter() - start)
        assert response.status_code == 200
        i += 1
    return latencies


def _post_worker(args: tuple[str, str, list[dict], list[str]]) -> list[float]:
    url, path, bodies, tokens = args
    session = requests.Session()
    latencies = []
    for body, token in zip(bodies, tokens, strict=True):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        start = time.perf_counter()
        response = session.post(f"{url}{path}", json=body, headers=headers)
        latencies.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return latencies


def report(name: str, latencies: list[float], elapsed: float) -> str:
    ms = sorted(x * 1000 for x in latencies)
    pct = statistics.quantiles(ms, n=100)
    return (
        f"{name:<9} {len(ms):>6} requests  {len(ms) / elapsed:>8.0f} req/s  "
        f"p50 {pct[49]:6.1f} ms  p95 {pct[94]:6.1f} ms  p99 {pct[98]:6.1f} ms"
    )


def bench_info(url: str, control: EmulatorControl, clients: int, seconds: float) -> str:
    tokens = [login(url, control) for _ in range(50)]
    with multiprocessing.Pool(clients) as pool:
        start = time.perf_counter()
        results = pool.map(_info_worker, [(url, tokens, seconds)] * clients)
        elapsed = time.perf_counter() - start
    return report("info", [x for r in results for x in r], elapsed)


def bench_posts(name: str, url: str, path: str, jobs: list[tuple[dict, str]], clients: int) -> str:
    chunks = [jobs[i::clients] for i in range(clients)]
    args = [(url, path, [b for b, _ in c], [t for _, t in c]) for c in chunks]
    with multiprocessing.Pool(clients) as pool:
        start = time.perf_counter()
        results = pool.map(_post_worker, args)
        elapsed = time.perf_counter() - start
    return report(name, [x for r in results for x in r], elapsed)


def bench_burst(url: str, control: EmulatorControl) -> str:
    openid = control.login()["openid"]
    codes = [control.login(openid=openid)["code"] for _ in range(50)]

    def one(code: str) -> str:
        return requests.post(f"{url}/oauth/login", json={"code": code}, timeout=30).json()["data"][
            "token"
        ]

    with ThreadPoolExecutor(max_workers=50) as pool:
        start = time.perf_counter()
        tokens = set(pool.map(one, codes))
        elapsed = time.perf_counter() - start
    return (
        f"burst     50 logins of one user at once: {len(tokens)} token(s), "
        f"all answered in {elapsed * 1000:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the service on this machine.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--clients", type=int, default=4, help="load-generator processes")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the info run")
    parser.add_argument("--requests", type=int, default=400, help="logins and binds per run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        emulator, server = start_stack(Path(tmp), args.workers)
        url = server.url
        control = EmulatorControl(emulator.url)
        try:
            print(
                f"gunicorn: {args.workers} workers x 4 threads; load: {args.clients} processes; "
                f"{os.cpu_count()} CPUs"
            )
            print(bench_info(url, control, args.clients, args.seconds))
            logins = [({"code": control.login()["code"]}, "") for _ in range(args.requests)]
            print(bench_posts("login", url, "/oauth/login", logins, args.clients))
            print(bench_burst(url, control))
            binds = []
            for _ in range(args.requests):
                issued = control.login()
                token = requests.post(
                    f"{url}/oauth/login", json={"code": issued["code"]}, timeout=10
                ).json()["data"]["token"]
                sealed = control.encrypt(issued["openid"], data={"nickName": "压测🐱", "gender": 1})
                binds.append(
                    ({"encryptedData": sealed["encryptedData"], "iv": sealed["iv"]}, token)
                )
            print(bench_posts("bindinfo", url, "/user/bindinfo", binds, args.clients))
        finally:
            server.stop()
            emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
