"""The fuzz tier: Hypothesis against the service under gunicorn (two
workers, real Redis, the database, the WeChat emulator) over real HTTP.
What a request may be and what every answer must satisfy are in
support/fuzzing.py; the Hypothesis profiles too (`ci` by default,
`HYPOTHESIS_PROFILE=explore` for new examples).

Only what reaches the database depends on it: the tier is `sqlite_only`
except tests marked `every_database` (binding decrypted data), which keeps
its time flat however many backends CI has.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from support.fuzzing import FRESH_CODE, Fresh, Fuzz, Sealed, Signed
from support.servers import UNLIMITED_LOGINS, Server
from wechat_emulator import EmulatorControl, EmulatorServer

FUZZED: dict[str, int] = {}  # test id -> requests sent
OUTCOMES: Counter[str] = Counter()  # first answers, by status and slug


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FUZZED:
        terminalreporter.write_line(
            f"fuzz: {sum(FUZZED.values())} requests in {len(FUZZED)} tests; answers: "
            + ", ".join(f"{name} x{count}" for name, count in OUTCOMES.most_common())
        )


@pytest.fixture(scope="session")
def control(emulator_server: EmulatorServer) -> Iterator[EmulatorControl]:
    """The emulator's control API for the whole tier."""
    emulator = EmulatorControl(emulator_server.url)
    emulator.reset()
    yield emulator
    emulator.close()


@pytest.fixture(scope="session")
def fuzz_service(launch) -> Iterator[Server]:
    """The service under gunicorn with its real settings, except the per-IP
    login limit: thousands of fuzzed logins come from one address. Once it
    stops, its whole log is checked for secrets and tracebacks."""
    with launch(logins=False, tracebacks=False, **UNLIMITED_LOGINS) as server:
        yield server


@dataclass
class User:
    """A user logged in through the emulator and the service."""

    token: str = field(repr=False)
    openid: str = field(repr=False)
    unionid: str | None = field(repr=False)
    session_key: str = field(repr=False)


@pytest.fixture
def user(fuzz_service: Server, control: EmulatorControl, handed_out: set[str]) -> User:
    control.reset()  # no fault or clock another test left behind
    return log_in(fuzz_service, control, handed_out)


def log_in(service: Server, control: EmulatorControl, handed_out: set[str]) -> User:
    issued = control.login()
    handed_out.update(v for v in (issued["openid"], issued["unionid"], issued["session_key"]) if v)
    response = requests.post(
        f"{service.url}/oauth/login", json={"code": issued["code"]}, timeout=10
    )
    assert response.status_code == 200, response.text
    return User(
        response.json()["data"]["token"],
        issued["openid"],
        issued["unionid"],
        issued["session_key"],
    )


@pytest.fixture
def fuzz(
    request: pytest.FixtureRequest,
    fuzz_service: Server,
    control: EmulatorControl,
    user: User,
    handed_out: set[str],
    watch: Any,
) -> Iterator[Fuzz]:
    """Sends plans as `user`; a logout that ends the user's session is
    followed by a new login, so every example starts with a live session."""
    current = {"user": user}
    sealed: dict[tuple[str, str], dict[str, str]] = {}
    watch.add_secret(user.openid, user.unionid, user.session_key)

    def token() -> str:
        if harness.session_ended:  # a fuzzed logout ended it
            harness.session_ended = False
            current["user"] = log_in(fuzz_service, control, handed_out)
        return current["user"].token

    def fresh(value: Fresh) -> Any:
        me = current["user"]
        if value is FRESH_CODE:
            issued = control.login()
            handed_out.update(
                v for v in (issued["openid"], issued["unionid"], issued["session_key"]) if v
            )
            return issued["code"]
        if isinstance(value, Sealed):
            plaintext = value.plaintext.replace("$openid", me.openid)
            key = (me.session_key, plaintext)
            if key not in sealed:
                sealed.clear()
                sealed[key] = control.encrypt(None, raw=plaintext, session_key=me.session_key)
            return sealed[key][value.field]
        if isinstance(value, Signed):
            return hashlib.sha1(
                (value.raw_data + me.session_key).encode("utf-8", "surrogatepass")
            ).hexdigest()
        raise TypeError(value)

    # Answers are checked for every openid, unionid and session_key handed out so far.
    harness = Fuzz(fuzz_service.url, Path(fuzz_service.gunicorn.log), handed_out, fresh, token)
    yield harness
    FUZZED[request.node.nodeid] = harness.cases
    OUTCOMES.update(harness.outcomes)
