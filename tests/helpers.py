"""Constants and small helpers the test modules share."""

from __future__ import annotations

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPID = "wx0123456789abcdef"
SECRET = "test-secret-5c0f7a9e1b2d4c6f"
SECRET_KEY = "test-secret-key-for-session-keys"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(token: str, name: str = "sid") -> dict[str, str]:
    return {"Cookie": f"{name}={token}"}
