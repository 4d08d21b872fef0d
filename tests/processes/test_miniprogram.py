"""The command-line mini program: its cookie jar, and the whole flow against
the service under gunicorn."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from PIL import Image

from miniprogram import CookieJar, MiniProgram, Storage
from miniprogram.cookies import parse_set_cookie
from support.constants import PUSH_TOKEN, ROOT

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jar(tmp_path, clock) -> CookieJar:
    return CookieJar(Storage(tmp_path / "storage.json"), clock=clock)


def http_date(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC), usegmt=True)


def test_several_cookies_are_kept_and_replayed_in_one_header(jar):
    jar.store(["sid=abc; Path=/; HttpOnly", "theme=dark"])
    assert jar.header() == "sid=abc; theme=dark"


def test_values_with_equals_signs_survive(jar):
    jar.store(["sig=a=b==; Path=/"])
    assert jar.header() == "sig=a=b=="


def test_no_cookies_means_no_header(jar):
    assert jar.header() is None


@pytest.mark.parametrize(
    "deletion",
    ["sid=; Max-Age=0; Path=/", f"sid=; Expires={http_date(NOW - 10)}; Path=/"],
)
def test_the_server_can_delete_a_cookie(jar, deletion):
    jar.store(["sid=abc; Max-Age=600"])
    jar.store([deletion])
    assert jar.header() is None


@pytest.mark.parametrize(
    "header", ["sid=abc; Max-Age=60", f"sid=abc; Expires={http_date(NOW + 60)}"]
)
def test_expired_cookies_are_not_replayed(jar, clock, header):
    jar.store([header])
    assert jar.header() == "sid=abc"
    clock.now += 61
    assert jar.header() is None


def test_max_age_wins_over_expires():
    parsed = parse_set_cookie(f"sid=x; Expires={http_date(NOW - 5)}; Max-Age=100", NOW)
    assert parsed == ("sid", "x", NOW + 100)


def test_the_jar_lives_in_storage_like_wx_storage(tmp_path, clock):
    CookieJar(Storage(tmp_path / "s.json"), clock=clock).store(["sid=abc; Max-Age=60"])
    assert CookieJar(Storage(tmp_path / "s.json"), clock=clock).header() == "sid=abc"


def run_cli(service, emulator_server, storage, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "miniprogram",
            "--service",
            service.url,
            "--emulator",
            emulator_server.url,
            "--storage",
            str(storage),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.gunicorn
def test_the_cli_logs_in_keeps_the_cookie_and_prints_user_info(
    service, emulator_server, wechat, redis_client, tmp_path, watch
):
    storage = tmp_path / "storage.json"
    login = run_cli(service, emulator_server, storage, "login")
    assert login.returncode == 0, login.stderr
    stored = json.loads(storage.read_text())
    assert set(stored["cookies"]) == {"sid"}
    info = run_cli(service, emulator_server, storage, "info")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["nickName"] is None
    for output in (login, info):
        watch.add_text(output.stdout + output.stderr)


@pytest.mark.gunicorn
@pytest.mark.parametrize("use_bearer", [False, True])
def test_a_401_leads_to_one_relogin_and_one_retry(
    service, emulator_server, wechat, redis_client, tmp_path, use_bearer
):
    app = MiniProgram(
        service.url, emulator_server.url, Storage(tmp_path / "s.json"), use_bearer=use_bearer
    )
    app.login()
    app.logout()
    assert app.info()["nickName"] is None  # 401, re-login, retry
    assert app.logins == 2
    app.close()


@pytest.mark.gunicorn
def test_the_cli_binds_a_profile_and_a_phone(
    service, emulator_server, wechat, redis_client, tmp_path, watch
):
    storage = tmp_path / "storage.json"
    bound = run_cli(service, emulator_server, storage, "bindinfo", "--nick", "小明🐱𠀀")
    assert bound.returncode == 0, bound.stderr
    phone = run_cli(service, emulator_server, storage, "bindphone", "--phone", "13912345678")
    assert phone.returncode == 0, phone.stderr
    legacy = run_cli(
        service, emulator_server, storage, "bindphone", "--legacy", "--phone", "13580006666"
    )
    assert legacy.returncode == 0, legacy.stderr
    info = run_cli(service, emulator_server, storage, "info")
    shown = json.loads(info.stdout)
    assert shown["nickName"] == "小明🐱𠀀" and shown["phoneNumber"] == "13580006666"
    check = run_cli(service, emulator_server, storage, "check")
    assert json.loads(check.stdout) == {"session": True, "sessionKeyValid": True}
    for output in (bound, phone, legacy, info, check):
        watch.add_text(output.stdout + output.stderr)


@pytest.mark.gunicorn
def test_a_stale_session_key_leads_to_login_then_fresh_data(
    service, emulator_server, wechat, redis_client, tmp_path
):
    wechat.configure(rotate="always")
    app = MiniProgram(service.url, emulator_server.url, Storage(tmp_path / "s.json"))
    app.login()
    wechat.login(openid=app.device_user())  # WeChat rotated the key; we never heard of it
    assert app.bind_info({"nickName": "after a rotation"})["nickName"] == "after a rotation"
    assert app.logins == 2
    app.close()


@pytest.mark.gunicorn
def test_the_cli_fills_in_a_profile_uploads_an_avatar_and_deletes(
    service, emulator_server, wechat, redis_client, tmp_path, watch
):
    wechat.configure_push(url=f"{service.url}/wechat/push", token=PUSH_TOKEN)
    storage, picture = tmp_path / "storage.json", tmp_path / "me.png"
    Image.new("RGB", (200, 200), tuple(secrets.token_bytes(3))).save(picture)
    named = run_cli(
        service, emulator_server, storage, "profile", "--nick", "小明🐱", "--city", "杭州"
    )
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout)["nickName"] == "小明🐱"
    uploaded = run_cli(service, emulator_server, storage, "avatar", str(picture))
    assert uploaded.returncode == 0, uploaded.stderr
    pending = json.loads(uploaded.stdout)
    assert pending["avatarReview"] == "pending"
    wechat.wait_media_checks()
    info = json.loads(run_cli(service, emulator_server, storage, "info").stdout)
    assert info["avatarUrl"] == pending["pendingAvatarUrl"]
    deleted = run_cli(service, emulator_server, storage, "delete")
    assert json.loads(deleted.stdout) == {"deleted": True}
    assert "cookies" in json.loads(storage.read_text())  # emptied, not left behind
    assert json.loads(storage.read_text())["cookies"] == {}
    for output in (named, uploaded, deleted):
        watch.add_text(output.stdout + output.stderr)
