"""Counting what a request costs, on the real servers.

Redis: MONITOR on the server lists every command it executed, including
those run inside Lua scripts; round trips are counted by wrapping the real
client connection's socket write. SQL: SQLAlchemy's before_cursor_execute
event sees every statement sent to the database.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import Engine, event

# Sent by redis-py when a pooled connection is (re)established.
HANDSHAKE = {"HELLO", "CLIENT", "AUTH", "SELECT", "PING"}


@dataclass
class Cost:
    redis_commands: list[str] = field(default_factory=list)
    round_trips: int = 0
    sql: list[str] = field(default_factory=list)

    @property
    def command_names(self) -> list[str]:
        return [command.split(" ", 1)[0].upper() for command in self.redis_commands]


@contextmanager
def monitor(url: str) -> Iterator[list[str]]:
    """Commands the Redis server executed while the block ran."""
    marker = f"monitor-stop-{uuid.uuid4().hex}"
    seen: list[str] = []
    ready = threading.Event()
    listener = redis.Redis.from_url(url, decode_responses=True)

    def listen() -> None:
        with listener.monitor() as stream:
            ready.set()
            for entry in stream.listen():
                if entry["command"] == f"ECHO {marker}":
                    return
                seen.append(entry["command"])

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(5)
    sender = redis.Redis.from_url(url, decode_responses=True)
    sender.ping()  # the MONITOR stream is live once this has been seen
    try:
        yield seen
    finally:
        sender.echo(marker)
        thread.join(5)
        sender.close()
        listener.close()
        # Drop what the monitor's own helper connections sent.
        while seen and seen[0].split(" ", 1)[0].upper() in HANDSHAKE:
            seen.pop(0)


@contextmanager
def round_trips(client: redis.Redis) -> Iterator[list[int]]:
    """How many times a client wrote to Redis (a pipeline is one write).
    Counts every connection of the client's class, so run nothing else meanwhile."""
    with writes(client.connection_pool.connection_class) as counter:
        yield counter


@contextmanager
def writes(cls: type) -> Iterator[list[int]]:
    """Writes to Redis through connections of `cls` or its subclasses while
    the block runs (a pipeline is one write: one round trip)."""
    counter = [0]
    own = "send_packed_command" in vars(cls)
    original = cls.send_packed_command

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return original(self, *args, **kwargs)

    cls.send_packed_command = counting  # type: ignore[attr-defined]
    try:
        yield counter
    finally:
        if own:
            cls.send_packed_command = original  # type: ignore[attr-defined]
        else:  # inherited again, so that patching a base class later still works
            del cls.send_packed_command


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def cost(url: str, client: redis.Redis, engine: Engine) -> Iterator[Cost]:
    result = Cost()
    with monitor(url) as commands, round_trips(client) as trips, statements(engine) as sql:
        yield result
    result.redis_commands = [c for c in commands if c.split(" ", 1)[0].upper() != "PING"]
    result.round_trips = trips[0]
    result.sql = sql
