"""The bind endpoints past decryption: data sealed by the emulator under the
user's real session_key, whose plaintext is JSON of odd types and values (or
not JSON), with rawData and signature of every shape. Whatever it holds, the
answer is a bind or a documented 4xx, never a 5xx."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.constants import APPID
from support.fuzzing import (
    ENDPOINTS,
    PHONE_FIELDS,
    PROFILE_FIELDS,
    Body,
    Plan,
    examples,
    sealed_bodies,
)

pytestmark = [pytest.mark.gunicorn, pytest.mark.sqlite_only]

BINDS = {
    "/user/bindinfo": (PROFILE_FIELDS, True),  # rawData and signature too
    "/user/bindphone": (PHONE_FIELDS, False),
}


@pytest.mark.every_database
@pytest.mark.parametrize("path", sorted(BINDS))
def test_sealed_data_of_every_shape(fuzz, path: str) -> None:
    endpoint = next(e for e in ENDPOINTS if e.path == path)
    fields, signed = BINDS[path]

    @examples(250)
    @given(
        sealed_bodies(fields, APPID, int(time.time()), signed),
        st.sampled_from(["bearer", "cookie"]),
    )
    def run(body: Body, auth: str) -> None:
        fuzz.exchange(Plan("POST", path, auth=auth, body=body), endpoint)

    run()
