"""Connecting to the SQL database: engine options per backend, and SQLite's
settings for several gunicorn workers sharing one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event


def engine_options(url: str, instance_path: str) -> dict[str, Any]:
    # A database error's text would otherwise quote the statement's parameters
    # (an openid, a unionid, a phone number) into the log.
    if url.startswith("sqlite"):
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        return {"connect_args": {"timeout": 10}, "hide_parameters": True}
    # pre_ping: a database restarted under us costs one reconnect, not a 500.
    options: dict[str, Any] = {
        "hide_parameters": True,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "pool_size": 5,
        "max_overflow": 10,
    }
    if url.startswith(("mysql", "mariadb")):
        # utf8 in MySQL is 3 bytes: emoji and other 4-byte characters need utf8mb4.
        options["connect_args"] = {"charset": "utf8mb4"}
    return options


def configure(engine: Engine) -> None:
    """Several gunicorn workers write one SQLite file: WAL lets readers go on
    while one writes, and busy_timeout makes writers wait instead of failing."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
