"""Whether the parts the service needs answer: for load balancers and platforms."""

from __future__ import annotations

import redis
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError


class Readiness:
    def __init__(self, client: redis.Redis, engine: Engine) -> None:
        self.redis = client
        self.engine = engine

    def parts(self) -> dict[str, bool]:
        return {"redis": self._redis(), "database": self._database()}

    def _redis(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def _database(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True
