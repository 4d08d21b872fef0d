"""A command-line mini program: plays the client half of the login protocol
against a running service, with the emulator standing in for wx.login."""

from miniprogram.client import MiniProgram, ServiceError
from miniprogram.cookies import CookieJar
from miniprogram.storage import Storage

__all__ = ["CookieJar", "MiniProgram", "ServiceError", "Storage"]
