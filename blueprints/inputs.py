"""Reading request bodies the way mini programs send them: JSON (wx.request's
default) or form-encoded (what the 2018 demos and many interceptors send)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import HTTPException

from services.errors import InvalidBody, InvalidField, PayloadTooLarge

FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}
# Room for a multipart body's boundaries, part headers and wx.uploadFile's formData.
MULTIPART_OVERHEAD = 64 * 1024

log = logging.getLogger(__name__)


def body_fields() -> dict[str, Any]:
    raw = body_bytes()
    if request.mimetype in FORM_TYPES:
        return request.form.to_dict()  # parsed from the bytes just read
    if not raw.strip():
        return {}
    # Parsed whatever the Content-Type says: clients send JSON as text/plain too.
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidBody() from None
    if not isinstance(body, dict):
        raise InvalidBody()
    return body


def body_bytes() -> bytes:
    """The whole body, however it is framed, or 413 when it is over
    MAX_CONTENT_LENGTH. A chunked body has no Content-Length to refuse up
    front, and werkzeug stops reading it at the limit without a word (what it
    read so far was then parsed as if it were the body): so it is read to one
    byte past the limit, and that byte decides.

    A body whose framing is broken (a chunk size that is not hex, a missing
    chunk terminator, a malformed trailer) fails while it is read, with
    whatever exception the WSGI server raises (gunicorn's are not OSErrors,
    which werkzeug would have turned into a 400): the client's request is
    invalid, the service is fine."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    request.max_content_length = limit + 1
    try:
        raw = request.get_data(cache=True)
    except HTTPException:
        raise
    except Exception as exc:
        log.info("unreadable request body: %s", type(exc).__name__)
        raise InvalidBody("The request body is malformed: its framing is broken.") from None
    if len(raw) > limit:
        raise PayloadTooLarge()
    return raw


def text_field(
    fields: dict[str, Any],
    name: str,
    *,
    required: bool = True,
    max_length: int = 256,
    pattern: re.Pattern[str] | None = None,
    strip: bool = True,
) -> str | None:
    value = fields.get(name)
    if value is None:
        if required:
            raise InvalidField(f"{name} is required.")
        return None
    if not isinstance(value, str):
        raise InvalidField(f"{name} must be a string.")
    # The limit is on what was sent (as the OpenAPI document's maxLength), trimmed or not.
    if len(value) > max_length:
        raise InvalidField(f"{name} is longer than {max_length} characters.")
    if strip:
        value = value.strip()
    if not value.strip():
        raise InvalidField(f"{name} must not be empty.")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidField(f"{name} has characters that cannot appear in it.")
    return value


def flag_field(fields: dict[str, Any], name: str) -> bool:
    value = fields.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "false", "0", ""}:
        return value.lower() in {"true", "1"}
    raise InvalidField(f"{name} must be true or false.")


def uploaded_file(name: str, limit: int) -> bytes:
    """The bytes of a file field of a multipart body (what wx.uploadFile
    sends), refused past `limit` bytes."""
    request.max_content_length = limit + MULTIPART_OVERHEAD  # instead of the 64 KB default
    if request.mimetype != "multipart/form-data":
        raise InvalidBody(f"Upload the file as multipart/form-data in the field {name!r}.")
    upload = request.files.get(name)
    if upload is None:
        raise InvalidField(f"{name} is required: the file, as wx.uploadFile sends it.")
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The file is larger than {limit} bytes.")
    return data
