"""CPU per request of the observability hooks (blueprints/observe.py):
request id, route, the request counter and latency histogram, and in JSON
mode the end-of-request line. `.venv/bin/python -m bench.hooks`

The same minimal Flask app (one view answering constant JSON, like
/healthz) is driven through werkzeug's test client with and without
observe.init_app(); the difference in process CPU time per request is what
the hooks cost. Each mode runs in its own process, because prometheus_client
chooses its storage (memory, or gunicorn's multiprocess files) at import:

    single      prometheus_client in memory (tests, one process)
    multiproc   the files gunicorn's workers write (PROMETHEUS_MULTIPROC_DIR)
    gevent      multiproc, in a process gevent has monkey-patched, as
                gunicorn's gevent workers are (the metrics' direct writes)
    json        multiproc, plus LOG_FORMAT=json's end-of-request line (to /dev/null)

Rounds alternate between the two apps; the fastest round of each is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MODES = ("single", "multiproc", "gevent", "json")


def measure(mode: str, requests: int, rounds: int) -> dict[str, float]:
    if mode == "gevent":  # first, as gunicorn.conf.py does
        from gevent import monkey

        monkey.patch_all()

    from flask import Flask, jsonify

    from blueprints import observe
    from infra import logs

    def make(hooked: bool) -> Flask:
        app = Flask(__name__)
        app.config.update(
            LOG_FORMAT="json" if mode == "json" else "text",
            METRICS_TOKEN="",
            TRUSTED_PROXIES=0,
        )
        app.add_url_rule("/healthz", "healthz", lambda: jsonify({"code": 0}))
        if hooked:
            observe.init_app(app)
        return app

    logs.configure("INFO", [], "json" if mode == "json" else "text")
    sink = open(os.devnull, "w")  # noqa: SIM115
    sys.stderr = sink  # StderrHandler writes wherever sys.stderr points
    clients = {hooked: make(hooked).test_client() for hooked in (False, True)}
    for client in clients.values():  # warm up: label children, imports
        for _ in range(200):
            client.get("/healthz")
    per_request: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for hooked, client in clients.items():
            started = time.process_time()
            for _ in range(requests):
                client.get("/healthz")
            per_request[hooked].append((time.process_time() - started) / requests)
    sys.stderr = sys.__stderr__
    # The least disturbed round of each (the machine is shared): CPU time only
    # grows with interference.
    bare = min(per_request[False])
    hooked_cost = min(per_request[True])
    return {
        "bare_us": bare * 1e6,
        "hooked_us": hooked_cost * 1e6,
        "added_us": (hooked_cost - bare) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.mode, args.requests, args.rounds)))
        return
    sizes = ["--requests", str(args.requests), "--rounds", str(args.rounds)]
    for mode in MODES:
        env = {**os.environ}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with tempfile.TemporaryDirectory(prefix="wx-bench-metrics-") as directory:
            if mode != "single":
                env["PROMETHEUS_MULTIPROC_DIR"] = directory
            out = subprocess.run(
                [sys.executable, "-m", "bench.hooks", "--mode", mode, *sizes],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        result = json.loads(out)
        print(
            f"{mode:10} without hooks {result['bare_us']:7.1f} us/request   "
            f"with {result['hooked_us']:7.1f}   added {result['added_us']:6.1f} us"
        )


if __name__ == "__main__":
    main()
