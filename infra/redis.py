"""Connecting to Redis."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def connect(url: str) -> redis.Redis:
    """A client that fails fast: one retry covers a pooled connection the
    server closed; after that the request gets a 503 instead of hanging."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
    )


def limits_storage_uri(redis_url: str) -> str:
    """The same Redis as a `limits` storage URI: it spells a unix socket redis+unix://."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url
