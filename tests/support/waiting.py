"""Waiting on a condition instead of sleeping a guessed time: dev/waiting.py,
shared with the developer tools (dev/topologies.py)."""

from dev.waiting import wait_until

__all__ = ["wait_until"]
