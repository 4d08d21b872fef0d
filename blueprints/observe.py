"""What operators see of each request: its id, its metrics, its log lines;
and GET /metrics.

RequestIds (WSGI middleware, outermost) gives every request an id before
anything else runs, so that every log line of the request carries it (the
session is loaded before Flask's before_request hooks) and the timer starts
first; the answer carries it back as X-Request-ID, and gunicorn's access log
line prints it from there. It also counts the answer (route, method, final
status, latency) as its head is written. An incoming X-Request-ID is kept
only behind trusted proxies (TRUSTED_PROXIES), and only if it looks like an id.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from blueprints import graph
from infra import metrics
from infra.logs import REQUEST, RequestInfo
from services import errors

bp = Blueprint("observe", __name__)
log = logging.getLogger("wx.request")

HEADER = "X-Request-ID"
ENVIRON_HEADER = "HTTP_X_REQUEST_ID"
# Letters, digits and a few separators, up to 128: a UUID, a trace id, a
# proxy's own scheme; never anything that could break a log line.
VALID_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
STARTED = "wx.started"
# Routes of requests no URL rule matched (404s), one label for all of them.
UNMATCHED = "<unmatched>"


class RequestIds:
    def __init__(self, app: Callable[..., Iterable[bytes]], trust_incoming: bool) -> None:
        self.app = app
        self.trust_incoming = trust_incoming

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = environ[STARTED] = time.perf_counter()
        incoming = environ.get(ENVIRON_HEADER) if self.trust_incoming else None
        request_id = incoming if incoming and VALID_ID.fullmatch(incoming) else os.urandom(16).hex()
        # Downstream (Flask, gunicorn's access log) sees the id actually used.
        environ[ENVIRON_HEADER] = request_id
        info = RequestInfo(request_id, environ.get("REQUEST_METHOD", ""))
        reset = REQUEST.set(info)
        answered: list[Any] = []  # (route, status, seconds) once the head is ready

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.append((HEADER, request_id))
            # Counted here, while the request is still Flask's: the answer's
            # final status, after every after_request and error handler.
            answered[:] = (_route(environ, info), int(status[:3]), time.perf_counter() - started)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            REQUEST.reset(reset)
            if answered:
                route, status, seconds = answered
                method = environ.get("REQUEST_METHOD", "GET").upper()  # as werkzeug's
                metrics.http_request(route, method, status, seconds)


def _route(environ: dict[str, Any], info: RequestInfo) -> str:
    """The URL rule of the request, or UNMATCHED: route_known's, or (a request
    that failed before the before_request hooks ran) the rule werkzeug's
    request object matched, if any."""
    if info.route is not None:
        return info.route
    rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
    return rule.rule if rule is not None else UNMATCHED


def identified(account_id: int) -> None:
    """The request is an account's: its log lines say which (by our own id)."""
    info = REQUEST.get()
    if info is not None:
        info.account_id = account_id


def route_known() -> None:
    """before_request: log lines from here on name the route."""
    info = REQUEST.get()
    if info is not None and request.url_rule is not None:
        info.route = request.url_rule.rule


def logged(response: Response) -> Response:
    """after_request in JSON mode: the end-of-request line."""
    current = request._get_current_object()
    rule = current.url_rule
    route = rule.rule if rule is not None else UNMATCHED
    started = current.environ.get(STARTED)
    seconds = time.perf_counter() - started if started is not None else 0.0
    if not log.isEnabledFor(logging.INFO):
        return response
    info = REQUEST.get()
    # makeRecord + handle rather than log.info(): info() first walks the stack
    # to find its caller (findCaller), which under Flask's deep stack cost
    # more than formatting and writing the line; no format shows the caller.
    record = log.makeRecord(
        log.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %s",
        (current.method, route, response.status_code),
        None,
        extra={
            "request_id": info.request_id if info else None,
            "route": route,
            "method": current.method,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 3),
            "account_id": info.account_id if info else None,
        },
    )
    log.handle(record)
    return response


def init_app(app: Flask) -> None:
    trusted = app.config["TRUSTED_PROXIES"] > 0
    app.wsgi_app = RequestIds(app.wsgi_app, trust_incoming=trusted)  # type: ignore[method-assign]
    app.before_request(route_known)
    if app.config["LOG_FORMAT"] == "json":
        app.after_request(logged)
    app.register_blueprint(bp)


@bp.get("/metrics")
def scrape() -> Response:
    """Prometheus's scrape. Without METRICS_TOKEN it does not exist (404);
    with it, only a Bearer of that token gets the numbers (else 401)."""
    expected = current_app.config["METRICS_TOKEN"]
    if not expected:
        raise errors.NotFound()
    given = request.headers.get("Authorization", "")
    scheme, _, credential = given.partition(" ")
    if not (
        scheme.lower() == "bearer"
        and hmac.compare_digest(credential.strip().encode(), expected.encode())
    ):
        raise errors.MetricsUnauthorized()
    body = metrics.exposition([metrics.Sampled(LIVE_SESSIONS, LIVE_HELP, live_sessions)])
    return Response(body, content_type=metrics.CONTENT_TYPE)


LIVE_SESSIONS = "wx_sessions_live"
LIVE_HELP = (
    "Live sessions in Redis, sampled at scrape time: exact up to 1000 keys, "
    "beyond that estimated from 128 random keys (services/stores/sessions.py count_live)."
)


def live_sessions() -> float | None:
    try:
        return float(graph().sessions.count_live())
    except errors.ServiceError:
        return None  # Redis is down: no sample (wx_redis_errors_total says why)
