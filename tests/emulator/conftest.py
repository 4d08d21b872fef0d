"""Fixtures of the emulator tier: one emulator per module, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.emulator import (
    APPID,
    OTHER_APPID,
    OTHER_SECRET,
    SECRET,
    ContentChecks,
    PushReceiver,
    WeChat,
)
from wechat_emulator import EmulatorControl, EmulatorServer


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    srv = EmulatorServer(host="127.0.0.1", port=0, apps={APPID: SECRET})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def ctl(server: EmulatorServer) -> Iterator[EmulatorControl]:
    control = EmulatorControl(server.url)
    control.reset()
    yield control
    control.close()


@pytest.fixture
def wx(server: EmulatorServer, ctl: EmulatorControl) -> Iterator[WeChat]:
    with WeChat(server.url) as client:
        yield client


@pytest.fixture
def other_app(ctl: EmulatorControl) -> str:
    ctl.add_app(OTHER_APPID, OTHER_SECRET)
    return OTHER_APPID


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    """A real HTTP peer for pushes and media downloads (the service's part)."""
    peer = PushReceiver()
    yield peer
    peer.stop()


@pytest.fixture
def cs(server: EmulatorServer, ctl: EmulatorControl) -> Iterator[ContentChecks]:
    with ContentChecks(server.url) as client:
        yield client
