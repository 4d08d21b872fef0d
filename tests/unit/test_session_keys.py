"""SessionKeyRing against a real Redis: newest first, bounded, sealed at rest."""

from __future__ import annotations

import pytest

from infra.redis import connect
from services.crypto.sealing import Sealer
from services.stores.redis import Keys
from services.stores.session_keys import SessionKeyRing

KEY_A = "HyVFkGl5F5OQWJZZaNzBBg=="
KEY_B = "o0q0otL8aEzpcZL/FT9WsQ=="
KEY_C = "5tF5KuDigyB6e4m7FigHvw=="
KEY_D = "LyJOfrPds9f/bp11QjEDcA=="


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def ring(redis_url: str, clock: Clock, secret_key: str = "k1") -> SessionKeyRing:
    return SessionKeyRing(
        connect(redis_url),
        keys=Keys("t:"),
        sealer=Sealer(secret_key, "session_key at rest"),
        history=3,
        ttl=60,
        clock=clock,
    )


@pytest.fixture
def keyring(redis_url, redis_client, clock) -> SessionKeyRing:
    return ring(redis_url, clock)


def test_newest_first_with_ages(keyring, clock):
    keyring.record(1, KEY_A)
    clock.now += 10
    keyring.record(1, KEY_B)
    recent = keyring.recent(1)
    assert [k.session_key for k in recent] == [KEY_B, KEY_A]
    assert [k.age for k in recent] == [0.0, 10.0]
    assert keyring.newest(1) == KEY_B


def test_bounded_to_the_history_size(keyring, clock):
    for key in (KEY_A, KEY_B, KEY_C, KEY_D):
        clock.now += 1
        keyring.record(1, key)
    assert [k.session_key for k in keyring.recent(1)] == [KEY_D, KEY_C, KEY_B]


def test_the_same_key_again_becomes_newest_without_a_duplicate(keyring, clock):
    keyring.record(1, KEY_A)
    clock.now += 1
    keyring.record(1, KEY_B)
    clock.now += 1
    keyring.record(1, KEY_A)
    assert [k.session_key for k in keyring.recent(1)] == [KEY_A, KEY_B]


def test_users_do_not_share_keys(keyring):
    keyring.record(1, KEY_A)
    keyring.record(2, KEY_B)
    assert keyring.newest(1) == KEY_A and keyring.newest(2) == KEY_B
    assert keyring.recent(3) == []


def test_sealed_at_rest_and_expiring(keyring, redis_client):
    keyring.record(1, KEY_A)
    key = Keys("t:").identity(1, "session_keys")
    dump = " ".join(redis_client.zrange(key, 0, -1))
    assert KEY_A not in dump and KEY_A.rstrip("=") not in dump
    assert 0 < redis_client.ttl(key) <= 60


def test_keys_sealed_under_another_secret_key_are_skipped(keyring, redis_url, clock):
    keyring.record(1, KEY_A)
    assert ring(redis_url, clock, secret_key="rotated").recent(1) == []
