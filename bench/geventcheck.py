"""Does gevent's monkey-patching make each driver the service uses
cooperative? An app served by gunicorn's gevent worker exactly as the service
would be (`gunicorn -c gunicorn.conf.py --worker-class gevent`: the master has
imported the service's modules before the worker patches), with one endpoint
per driver that blocks about one second in that driver:

    GET /check/redis      BLPOP on an empty list, 1 s timeout (redis-py)
    GET /check/requests   GET the emulator's /wxa/checksession, which the
                          runner delays by 1 s (requests/urllib3, plain HTTP)
    GET /check/https      the same over TLS, as to api.weixin.qq.com: a local
                          HTTPS server (self-signed, made with the openssl
                          CLI) that answers after 1 s; skipped without openssl
    GET /check/sqlite     BEGIN IMMEDIATE on a file another process holds
                          locked for ~1 s (stdlib sqlite3, busy timeout)
    GET /check/postgres   SELECT pg_sleep(1) (psycopg 3), when CHECK_POSTGRES_URL
    GET /check/mysql      SELECT SLEEP(1) (PyMySQL), when CHECK_MYSQL_URL
    GET /check/patched    what gevent patched, and psycopg's wait function

The runner (run_checks, used by bench/workers.py) sends 8 at once to one
worker and probes /healthz meanwhile: cooperative means ~1 s for all 8 and a
fast /healthz; blocking means ~8 s and /healthz stuck behind them. Every
answer must also be a 200: a driver that fails under gevent is reported so.

EARLY_PATCH (a directory with a sitecustomize.py) on PYTHONPATH makes every
process of the run patch at interpreter start, before gunicorn.conf.py's
on_starting imports the app (and with it ssl) in the master.
"""

from __future__ import annotations

import http.server
import os
import shutil
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from flask import Flask, jsonify
from sqlalchemy import create_engine, text

import config
from infra import database
from infra.redis import connect
from services.wechat.client import http_session

CONCURRENT = 8
EARLY_PATCH = Path(__file__).with_name("gevent_early")
NAMES = ("redis", "requests", "https", "sqlite", "postgres", "mysql")


def create_checks() -> Flask:
    settings = config.load()
    app = Flask(__name__, static_folder=None)
    redis = connect(settings["REDIS_URL"])
    wechat = http_session()
    api_base = settings["WECHAT_API_BASE"]
    lock_file = os.environ["CHECK_SQLITE_FILE"]
    engines = {}
    for name in ("postgres", "mysql"):
        url = os.environ.get(f"CHECK_{name.upper()}_URL")
        if url:
            url = config.database_url(url, Path(settings["INSTANCE_PATH"]))
            engines[name] = create_engine(url, **database.engine_options(url, "."))
    sleeps = {"postgres": "SELECT pg_sleep(1)", "mysql": "SELECT SLEEP(1)"}

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"ok": True})

    @app.get("/check/redis")
    def check_redis() -> Any:
        redis.blpop(["wx:bench:nothing"], timeout=1)
        return jsonify({"ok": True})

    @app.get("/check/requests")
    def check_requests() -> Any:
        wechat.get(f"{api_base}/wxa/checksession", timeout=10)
        return jsonify({"ok": True})

    @app.get("/check/https")
    def check_https() -> Any:
        url = os.environ.get("CHECK_HTTPS_URL")
        if not url:
            return jsonify({"skipped": True}), 404
        wechat.get(url, timeout=10, verify=os.environ["CHECK_HTTPS_CA"])
        return jsonify({"ok": True})

    @app.get("/check/sqlite")
    def check_sqlite() -> Any:
        connection = sqlite3.connect(lock_file, timeout=10, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("COMMIT")
        finally:
            connection.close()
        return jsonify({"ok": True})

    @app.get("/check/<name>")
    def check_database(name: str) -> Any:
        if name not in engines:
            return jsonify({"skipped": True}), 404
        with engines[name].connect() as connection:
            connection.execute(text(sleeps[name]))
        return jsonify({"ok": True})

    @app.get("/check/patched")
    def patched() -> Any:
        from gevent import monkey

        modules = ("socket", "select", "ssl", "threading", "time", "os", "subprocess")
        waiting = sys.modules.get("psycopg.waiting")
        return jsonify(
            {
                "patched": {m: monkey.is_module_patched(m) for m in modules},
                "psycopg_wait": getattr(getattr(waiting, "wait", None), "__name__", None),
            }
        )

    return app


def _hold_sqlite_lock(path: str, seconds: float, held: threading.Event) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    connection.execute("COMMIT")
    connection.close()


def run_checks(url: str, control: Any, sqlite_file: str) -> dict[str, Any]:
    """Against a running create_checks() under one gevent worker."""
    results: dict[str, Any] = {"patched": requests.get(f"{url}/check/patched", timeout=10).json()}
    for name in NAMES:
        if requests.get(f"{url}/healthz", timeout=10).status_code != 200:
            raise RuntimeError("checks app not answering")
        holder = None
        if name == "requests":
            control.fault("checksession", delay=1.0, times=CONCURRENT)
        if name == "sqlite":
            held = threading.Event()
            holder = threading.Thread(target=_hold_sqlite_lock, args=(sqlite_file, 1.0, held))
            holder.start()
            held.wait()
        probes: list[float] = []
        stop = threading.Event()

        def probe(probes: list[float] = probes, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                start = time.perf_counter()
                requests.get(f"{url}/healthz", timeout=30)
                probes.append(time.perf_counter() - start)
                time.sleep(0.1)

        def one(_: int, name: str = name) -> int:
            return requests.get(f"{url}/check/{name}", timeout=60).status_code

        prober = threading.Thread(target=probe)
        start = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENT) as pool:
            time.sleep(0.05)
            prober.start()
            statuses = list(pool.map(one, range(CONCURRENT)))
        wall = time.perf_counter() - start
        stop.set()
        prober.join()
        if holder:
            holder.join()
        if statuses[0] == 404:
            results[name] = {"skipped": "no URL given" if name != "https" else "no openssl"}
            continue
        works = set(statuses) == {200}
        results[name] = {
            "concurrent": CONCURRENT,
            "works": works,
            "statuses": sorted(set(statuses)),
            "wall_s": round(wall, 2),
            "healthz_max_ms": round(max(probes) * 1000) if probes else None,
            # the lock holder lets go after 1 s: all waiters then go at once either way,
            # so for sqlite the telling number is /healthz while they wait
            "cooperative": works
            and (
                (max(probes) if probes else wall) < 0.5
                if name == "sqlite"
                else wall < 2.5 and (max(probes) if probes else 0) < 0.5
            ),
        }
    return results


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        time.sleep(1.0)
        body = b'{"errcode":0}'
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_https(workdir: Path) -> tuple[str, str, http.server.ThreadingHTTPServer] | None:
    """A local HTTPS server answering every GET after 1 s: (url, CA file, server),
    or None without the openssl CLI."""
    if not shutil.which("openssl"):
        return None
    cert, key = workdir / "check-cert.pem", workdir / "check-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"https://127.0.0.1:{server.server_address[1]}/", str(cert), server
