"""Whether the service can do its job, logins included: for load balancers
and platforms (/readyz). Redis must accept a write (a full Redis with
maxmemory-policy noeviction, or a replica after a failover, answers PING but
refuses every login), and the database must accept one (a read-only standby
answers SELECT 1)."""

from __future__ import annotations

import os

import redis
from redis.exceptions import RedisClusterException
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from services.stores.redis import watch

# A write that changes nothing: refused by a read-only database all the same.
DATABASE_PROBE = text("UPDATE deletions SET reason = reason WHERE id < 0")


class Readiness:
    def __init__(self, client: redis.Redis, engine: Engine, prefix: str) -> None:
        self.redis = client
        self.engine = engine
        self.probe_key = f"{prefix}readiness:{os.getpid()}"

    def parts(self) -> dict[str, bool]:
        return {"redis": self._redis(), "database": self._database()}

    def _redis(self) -> bool:
        outage = watch(self.redis)
        try:
            self.redis.set(self.probe_key, "1", px=10_000)
        except (redis.RedisError, RedisClusterException):
            return False
        outage.answered()  # a probe that got through ends an outage early
        return True

    def _database(self) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(DATABASE_PROBE)
        except SQLAlchemyError:
            return False
        return True
