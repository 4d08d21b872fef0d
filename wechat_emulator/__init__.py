"""Local emulator of the WeChat mini-program server APIs, for tests and development.

The emulator needs only the standard library and pycryptodome; EmulatorControl (which
uses requests) is imported lazily so `python -m wechat_emulator` does not need requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .server import EmulatorServer
from .state import DEFAULT_APPID, DEFAULT_SECRET

if TYPE_CHECKING:
    from .control import EmulatorControl, EmulatorControlError

__all__ = [
    "DEFAULT_APPID",
    "DEFAULT_SECRET",
    "EmulatorControl",
    "EmulatorControlError",
    "EmulatorServer",
]


def __getattr__(name: str) -> Any:
    if name in ("EmulatorControl", "EmulatorControlError"):
        from . import control

        return getattr(control, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
