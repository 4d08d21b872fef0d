"""The errors blueprint: every failure leaves as
`{"code": <non-zero>, "error": "<slug>", "message": "..."}` with its HTTP status.
"""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from services import errors

bp = Blueprint("errors", __name__)
log = logging.getLogger(__name__)

HTTP_ERRORS: dict[int, type[errors.ServiceError]] = {
    400: errors.BadRequest,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
    429: errors.RateLimited,
}


def render(error: errors.ServiceError, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    response.headers.update(headers or {})
    response.headers.update(error.headers())
    return response


@bp.app_errorhandler(errors.ServiceError)
def service_error(error: errors.ServiceError) -> Response:
    return render(error)


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    if isinstance(error, InternalServerError):
        return unexpected(error.original_exception or error)
    kind = HTTP_ERRORS.get(error.code or 500, errors.BadRequest)
    # Keep what werkzeug and Flask-Limiter put there: Allow, Retry-After.
    headers = {
        name: value
        for name, value in error.get_headers()
        if name.lower() in {"allow", "retry-after"}
    }
    if error.code == 429:
        headers.setdefault("Retry-After", "60")
    return render(kind(), headers)


@bp.app_errorhandler(Exception)
def unexpected(error: BaseException) -> Response:
    if isinstance(error, redis.RedisError):
        log.error("Redis failed: %s", type(error).__name__)
        return render(errors.SessionStoreUnavailable())
    if isinstance(error, OperationalError):
        log.error("database failed: %s", type(error.orig).__name__)
        return render(errors.DatabaseUnavailable())
    log.error("unexpected %s", type(error).__name__, exc_info=error)
    return render(errors.ServiceError())
