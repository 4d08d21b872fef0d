"""The errors blueprint, the one place errors become responses: every failure
leaves as `{"code": <non-zero>, "error": "<slug>", "message": "..."}` with its
HTTP status. Domain errors come from services/errors.py (the stores have
already turned Redis and database failures into domain errors); werkzeug's
HTTP errors are mapped to the same catalogue; anything else is a bug: a 500
with its traceback in the log and nothing in the answer.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app
from werkzeug.exceptions import HTTPException, InternalServerError

from services import errors

bp = Blueprint("errors", __name__)
log = logging.getLogger(__name__)

HTTP_ERRORS: dict[int, type[errors.ServiceError]] = {
    400: errors.BadRequest,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
}


def render(error: errors.ServiceError, headers: dict[str, str] | None = None) -> Response:
    # A message may quote the client's text, and a client's JSON can hold a
    # lone surrogate (a \ud800 escape) that UTF-8 cannot encode. Inside a JSON
    # string, backslashreplace writes it back as that very escape.
    text = current_app.json.dumps(error.to_dict()) + "\n"
    response = current_app.response_class(
        text.encode("utf-8", "backslashreplace"), mimetype="application/json"
    )
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
    headers = {name: value for name, value in error.get_headers() if name.lower() == "allow"}
    return render(kind(), headers)


@bp.app_errorhandler(Exception)
def unexpected(error: BaseException) -> Response:
    if isinstance(error, errors.ServiceError):  # raised outside a view, e.g. saving the session
        return render(error)
    log.error("unexpected %s", type(error).__name__, exc_info=error)
    return render(errors.ServiceError())
