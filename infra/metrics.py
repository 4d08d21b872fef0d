"""Every Prometheus metric of the service, defined once, here.

Under gunicorn each worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode) and a scrape,
whichever worker answers it, adds up every worker's files; infra/multiproc.py
prepares that directory in gunicorn's master. Without the variable (the test
suite, a bare `flask run`) the metrics live in this process's default
registry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext

from infra.multiproc import MULTIPROC_VARIABLE
from services.telemetry import Telemetry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. Requests: /user/info is a few ms, a login waits on WeChat.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "wx_http_requests_total",
    "HTTP requests answered, by route (the URL rule, never the raw path), method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "wx_http_request_duration_seconds",
    "Time from the request reaching the app to its answer, by route and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
LOGINS = Counter(
    "wx_logins_total",
    "Logins: new, shared (de-duplicated), replayed (the same code again), or the error slug.",
    ["outcome"],
)
WECHAT_CALLS = Counter(
    "wx_wechat_calls_total",
    "HTTP exchanges with WeChat, by API and errcode (or timeout, unreachable, bad_reply).",
    ["api", "errcode"],
)
WECHAT_LATENCY = Histogram(
    "wx_wechat_call_duration_seconds",
    "Time of one HTTP exchange with WeChat, by API.",
    ["api"],
    buckets=LATENCY_BUCKETS,
)
TOKEN_REFRESHES = Counter(
    "wx_access_token_refreshes_total",
    "access_tokens fetched from WeChat (stable_token), by appid.",
    ["appid"],
)
REDIS_ERRORS = Counter(
    "wx_redis_errors_total",
    "Failed Redis calls: unreachable, error (an error reply), failing_fast (during an outage).",
    ["kind"],
)
DATABASE_ERRORS = Counter(
    "wx_database_errors_total",
    "Errors the database driver raised, by SQLAlchemy's exception class, or disconnect.",
    ["kind"],
)


class PrometheusTelemetry(Telemetry):
    def login(self, outcome: str) -> None:
        LOGINS.labels(outcome).inc()

    def wechat_call(self, api: str, errcode: str, seconds: float) -> None:
        WECHAT_CALLS.labels(api, errcode).inc()
        WECHAT_LATENCY.labels(api).observe(seconds)

    def token_refresh(self, appid: str) -> None:
        TOKEN_REFRESHES.labels(appid).inc()

    def redis_error(self, kind: str) -> None:
        REDIS_ERRORS.labels(kind).inc()


# Per-request path: the labelled children, looked up once per label set
# (labels() takes a lock and builds a key each time). Routes, methods and
# statuses are few, so this stays small.
_http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def http_request(route: str, method: str, status: int, seconds: float) -> None:
    children = _http_children.get((route, method, status))
    if children is None:
        children = (
            HTTP_REQUESTS.labels(route, method, str(status)),
            HTTP_LATENCY.labels(route, method),
        )
        _http_children[(route, method, status)] = children
    children[0].inc()
    children[1].observe(seconds)


def count_database_errors(engine: Engine) -> None:
    """Every error the driver raises on this engine, whoever runs the
    statement: an unreachable database (`disconnect`), lost conflicts, and
    constraint violations the stores expect (a unique-key race retried)."""

    @event.listens_for(engine, "handle_error")
    def counted(context: ExceptionContext) -> None:
        raised = context.sqlalchemy_exception or context.original_exception
        kind = "disconnect" if context.is_disconnect else type(raised).__name__
        DATABASE_ERRORS.labels(kind).inc()


class Sampled(Collector):
    """A gauge computed when scraped (so nothing is stored per worker)."""

    def __init__(self, name: str, documentation: str, sample: Callable[[], float | None]) -> None:
        self.name, self.documentation, self.sample = name, documentation, sample

    def collect(self) -> Iterable[GaugeMetricFamily]:
        value = self.sample()
        if value is not None:
            yield GaugeMetricFamily(self.name, self.documentation, value=value)


def exposition(sampled: Iterable[Collector] = ()) -> bytes:
    """The text a scrape gets: every worker's counts (or this process's),
    then the gauges sampled now."""
    if multiprocessing():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    extra = CollectorRegistry()
    for collector in sampled:
        extra.register(collector)
    return text + generate_latest(extra)


def multiprocessing() -> bool:
    return bool(os.environ.get(MULTIPROC_VARIABLE))
