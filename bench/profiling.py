"""Where /user/info's time goes (or, with --target login, POST /oauth/login's).
`.venv/bin/python -m bench.profiling [--target login]`

Starts the service and the floors with the service's gunicorn settings, then:

1. CPU per request: wrk drives GET /user/info, the session floor's GET
   /floor/session and the framework floor (with --target login: POST
   /oauth/login and the login floor's POST /floor/login, each request with a
   fresh code of a new user) for --seconds each, interleaved,
   --repeat times (the median is kept), and the
   workers' CPU time (user+system, from /proc through psutil) is divided by
   the requests served. The difference between the service and the session
   floor is what the service adds on top of the unavoidable Redis read (or
   WeChat exchange and SQL upsert).
2. A profile: py-spy samples every worker (only samples holding the GIL:
   Python work, not waiting) while wrk drives the service's route again. Each sample
   is attributed to the first matching rule below (in priority order, looked
   for anywhere in the stack), so each category is "time spent in or under
   this part". With the CPU per request from step 1, each share becomes
   microseconds per request: what removing that part could save.

Prints the categories and the top functions by self time, and writes the
raw py-spy stacks and a JSON summary next to the other results
(instance/bench/, or --out).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import config
from bench.harness import FLOORS_APP, cpu_seconds, machine, start_stack, worker_pids
from bench.loadgen import Load, pick
from bench.run import git_commit

# (category, substrings of "function (file)" frames; the first rule with a
# match anywhere in a sample's stack takes the sample)
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Redis round trip (redis-py: build, send, wait, parse)", ("/redis/",)),
    # Login only (--target login).
    ("SQL (SQLAlchemy and the driver)", ("/sqlalchemy/", "/sqlite3/", "/psycopg/", "/pymysql/")),
    ("WeChat's HTTP call (requests, urllib3)", ("/requests/", "/urllib3/")),
    (
        "the view's ok(): jsonify, JSON encoding, Response",
        ("/blueprints/__init__.py", "/flask/json/"),
    ),
    ("Flask-Limiter hooks (route not limited)", ("/flask_limiter/", "/limits/")),
    ("gunicorn access log", ("gunicorn/glogging.py",)),
    ("other logging", ("/logging/__init__.py", "infra/logs.py")),
    ("session interface (open/save_session, Vary)", ("blueprints/session.py", "/flask_session/")),
    ("SessionStore.load besides Redis (token check, JSON decode)", ("stores/sessions.py",)),
    ("no_store after_request", ("no_store (",)),
    ("load_user hook, login_required", ("blueprints/auth.py",)),
    ("werkzeug request/response objects (environ, headers, cookies)", ("/werkzeug/",)),
    ("Flask dispatch and contexts", ("/flask/",)),
    ("gunicorn HTTP parse, response write, workers", ("/gunicorn/",)),
)
OTHER = "other (stdlib: threading, selectors, socket, ...)"


# Fresh login codes per run: enough that none is sent twice (a replay is cheap).
LOGINS_PER_SECOND = 1500


def cpu_per_request(
    generator: Any, url: str, pids: list[int], load: Callable[[float], Load], seconds: float
) -> dict:
    generator.run(url, load(2), connections=8, threads=2, seconds=2)  # warm-up
    before = cpu_seconds(pids)
    result = generator.run(url, load(seconds), connections=32, threads=2, seconds=seconds)
    used = cpu_seconds(pids) - before
    return {
        "requests": result.requests,
        "rps": round(result.rps),
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "worker_cpu_s": round(used, 2),
        "cpu_us_per_request": round(used / result.requests * 1e6, 1),
    }


def categorize(raw: str) -> tuple[collections.Counter, collections.Counter, int]:
    """py-spy raw output: 'frame;frame;...;leaf count' per line."""
    categories: collections.Counter = collections.Counter()
    self_time: collections.Counter = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        self_time[_short(frames[-1])] += count
        for name, needles in RULES:
            if any(needle in frame for frame in frames for needle in needles):
                categories[name] += count
                break
        else:
            categories[OTHER] += count
    return categories, self_time, total


def _short(frame: str) -> str:
    """'func (/long/path/site-packages/pkg/mod.py)' -> 'func (pkg/mod.py)'."""
    name, _, path = frame.partition(" (")
    path = path.rstrip(")")
    for marker in ("site-packages/", "python3.11/", str(config.ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("info", "login"), default="info")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved CPU runs")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--out", type=Path, help="directory (default instance/bench)")
    args = parser.parse_args(argv)

    generator = pick(args.loadgen)
    started = datetime.datetime.now(datetime.UTC)
    out_dir = args.out or config.ROOT / "instance" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"profile-{started:%Y%m%dT%H%M%SZ}"
    document: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(),
        "load_generator": generator.describe(),
    }
    with tempfile.TemporaryDirectory(prefix="wx-profile-") as tmp:
        stack = start_stack(Path(tmp))
        try:
            service = stack.start("service")
            floors = stack.start("floors", app=FLOORS_APP)
            token, _ = stack.login(service.url)
            cookie = f"sid={token}"

            def constant(method: str, path: str) -> Callable[[float], Load]:
                return lambda _seconds: Load(method, path, cookie=cookie)

            def logins(path: str) -> Callable[[float], Load]:
                def load(seconds: float) -> Load:
                    codes = stack.codes(int(seconds * LOGINS_PER_SECOND))
                    return Load("POST", path, feed=[("", json.dumps({"code": c})) for c in codes])

                return load

            if args.target == "login":
                main = "login"
                targets = {
                    "login": (service.url, worker_pids(service), logins("/oauth/login")),
                    "login floor": (floors.url, worker_pids(floors), logins("/floor/login")),
                }
            else:
                main = "info"
                targets = {
                    "info": (service.url, worker_pids(service), constant("GET", "/user/info")),
                    "session floor": (
                        floors.url, worker_pids(floors), constant("GET", "/floor/session")
                    ),
                    "framework floor": (
                        floors.url, worker_pids(floors), constant("GET", "/floor/framework")
                    ),
                }  # fmt: skip
            runs: dict[str, list[dict]] = {name: [] for name in targets}
            for _ in range(args.repeat):  # interleaved
                for name, (url, pids, load) in targets.items():
                    runs[name].append(cpu_per_request(generator, url, pids, load, args.seconds))
            cpu = {}
            for name, results in runs.items():
                us = sorted(r["cpu_us_per_request"] for r in results)
                cpu[name] = {
                    **results[-1],
                    "cpu_us_per_request": statistics.median(us),
                    "cpu_us_runs": us,
                    "rps_runs": [r["rps"] for r in results],
                }
            document["cpu_per_request"] = cpu
            print(
                "CPU per request (workers' user+system time ÷ requests; "
                f"-t2 -c32 {args.seconds:g} s)"
            )
            for name, c in cpu.items():
                print(
                    f"  {name:<16} {c['cpu_us_per_request']:>7.1f} µs  (runs {c['cpu_us_runs']} µs "
                    f"at {c['rps_runs']} req/s)"
                )

            # py-spy on every worker while wrk drives the service's route.
            spies = []
            for pid in worker_pids(service):
                target = Path(tmp, f"pyspy-{pid}.txt")
                command = [
                    str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
                    "--duration", f"{int(args.seconds)}", "--rate", str(args.rate),
                    "--format", "raw", "--gil", "--function",
                    "--full-filenames", "--output", str(target),
                ]  # fmt: skip
                spies.append(
                    (
                        target,
                        subprocess.Popen(
                            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                        ),
                    )
                )
            time.sleep(0.5)
            profiled = generator.run(
                service.url,
                targets[main][2](args.seconds),
                connections=32,
                threads=2,
                seconds=args.seconds,
            )
            raw = ""
            for target, spy in spies:
                _, err = spy.communicate(timeout=args.seconds + 60)
                if spy.returncode != 0 or not target.exists():
                    raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')}")
                raw += target.read_text()
        finally:
            stack.stop()

    (out_dir / f"{stem}.pyspy.txt").write_text(raw)
    categories, self_time, total = categorize(raw)
    per_request = cpu[main]["cpu_us_per_request"]
    document["profiled_run"] = {"rps": round(profiled.rps), "p50_ms": profiled.p50_ms}
    document["samples"] = total
    document["categories"] = [
        {
            "category": name,
            "share": round(n / total, 4),
            "us_per_request": round(n / total * per_request, 1),
        }
        for name, n in categories.most_common()
    ]
    document["top_self"] = [
        {"function": name, "share": round(n / total, 4)} for name, n in self_time.most_common(25)
    ]
    print()
    print(
        f"py-spy: {total} GIL-holding samples from the workers during {main} "
        f"({round(profiled.rps)} req/s while sampled); µs = share × {per_request} µs CPU/request"
    )
    for row in document["categories"]:
        print(f"  {row['share'] * 100:5.1f} %  {row['us_per_request']:6.1f} µs  {row['category']}")
    print()
    print("top functions by self time")
    for row in document["top_self"][:20]:
        print(f"  {row['share'] * 100:5.1f} %  {row['function']}")
    (out_dir / f"{stem}.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"results  {out_dir / stem}.json, raw stacks {out_dir / stem}.pyspy.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
