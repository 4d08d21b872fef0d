"""What the control API refuses: shared by the state and the deliveries."""

from __future__ import annotations


class ControlError(Exception):
    """A bad request to the control API (HTTP 400 unless told otherwise)."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.message = message
        self.status = status
        super().__init__(message)
