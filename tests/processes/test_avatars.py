"""The avatar flow end to end, as deployed: a mini program uploads what
chooseAvatar gave it; WeChat (the emulator) downloads the avatar from the
service's public URL, decides, and pushes its verdict to the push URL; the
verdict is applied. And deleting an account while two instances serve reads."""

from __future__ import annotations

import io
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from dev.waiting import wait_until
from support.apps import bearer
from support.constants import PUSH_TOKEN
from support.servers import Server

pytestmark = pytest.mark.gunicorn


def photo_with_gps() -> bytes:
    """What a phone camera hands over: a JPEG whose EXIF says where it was taken.
    Each one a different picture (the same picture is one shared file)."""
    image = Image.new("RGB", (1200, 900), tuple(secrets.token_bytes(3)))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[2] = (31.0, 14.0, 0.0)
    gps[4] = (121.0, 28.0, 0.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


@pytest.fixture
def pushing(service: Server, wechat) -> Server:
    """WeChat pushes to this instance's push URL, with the configured Token."""
    wechat.configure_push(url=f"{service.url}/wechat/push", token=PUSH_TOKEN, format="json")
    return service


@pytest.fixture
def member(pushing: Server, wechat, watch) -> str:
    response, _ = pushing.call("POST", "/oauth/login", json={"code": wechat.login()["code"]})
    watch.add_text(response.text)
    return response.json()["data"]["token"]


def upload(server: Server, token: str, data: bytes, watch) -> requests.Response:
    response, _ = server.call(
        "POST", "/user/avatar", files={"file": ("tmp.jpg", data)}, headers=bearer(token)
    )
    watch.add_text(response.text)
    return response


def info(server: Server, token: str) -> dict:
    return server.get("/user/info", headers=bearer(token))[0].json()["data"]


def test_an_approved_avatar_becomes_the_avatar_and_is_served_without_metadata(
    pushing, member, wechat, watch
):
    wechat.media_settings(hold=True)
    response = upload(pushing, member, photo_with_gps(), watch)
    assert response.status_code == 202, response.text
    pending = response.json()["data"]
    assert (pending["avatarReview"], pending["avatarUrl"]) == ("pending", None)
    url = pending["pendingAvatarUrl"]
    assert url.startswith(f"{pushing.url}/avatars/") and url.endswith(".jpg")
    assert info(pushing, member)["avatarReview"] == "pending"
    assert info(pushing, member)["avatarUrl"] is None  # never before WeChat approves

    (check,) = wechat.wait_media_checks(release=True)
    assert check["media_url"] == url
    assert check["push"]["status"] == "accepted"  # the service said "success"
    after = info(pushing, member)
    assert (after["avatarUrl"], after["avatarReview"]) == (url, None)

    served = requests.get(url, timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served.headers["ETag"].strip('"') in url
    assert "Set-Cookie" not in served.headers
    image = Image.open(io.BytesIO(served.content))
    assert image.format == "JPEG" and max(image.size) == 640
    assert not image.getexif() and b"PhoneMaker" not in served.content
    again = requests.get(url, headers={"If-None-Match": served.headers["ETag"]}, timeout=10)
    assert again.status_code == 304


def test_a_risky_avatar_never_becomes_the_avatar_and_its_file_goes(pushing, member, wechat, watch):
    wechat.media_settings(hold=True)  # decide once the rule below is set
    url = upload(pushing, member, photo_with_gps(), watch).json()["data"]["pendingAvatarUrl"]
    wechat.set_rules(media={"risky": [url.rsplit("/", 1)[1]], "label": 20002})
    wechat.wait_media_checks(release=True)
    after = info(pushing, member)
    assert (after["avatarUrl"], after["avatarReview"]) == (None, None)
    assert requests.get(url, timeout=10).status_code == 404


@pytest.fixture(scope="module")
def unreachable(launch):
    """An instance whose avatars WeChat cannot download (AVATAR_BASE_URL points
    nowhere), and whose verdicts expire after a second."""
    with launch(
        logins=False, AVATAR_BASE_URL="http://127.0.0.1:9/cdn", AVATAR_REVIEW_TIMEOUT="1"
    ) as server:
        yield server


def logged_in(server: Server, wechat, watch) -> str:
    response, _ = server.call("POST", "/oauth/login", json={"code": wechat.login()["code"]})
    watch.add_text(response.text)
    return response.json()["data"]["token"]


def test_an_avatar_wechat_cannot_download_is_refused(unreachable, wechat, watch):
    wechat.configure_push(url=f"{unreachable.url}/wechat/push", token=PUSH_TOKEN)
    wechat.media_settings(hold=True)
    token = logged_in(unreachable, wechat, watch)
    url = upload(unreachable, token, photo_with_gps(), watch).json()["data"]["pendingAvatarUrl"]
    assert url.startswith("http://127.0.0.1:9/cdn/avatars/")  # AVATAR_BASE_URL fronts it
    (check,) = wechat.wait_media_checks(release=True)
    assert check["event"]["errcode"] == -1008
    after = info(unreachable, token)
    assert (after["avatarUrl"], after["avatarReview"]) == (None, None)
    name = url.rsplit("/", 1)[1]
    assert unreachable.get(f"/avatars/{name}")[0].status_code == 404


def test_a_refusal_that_arrives_before_the_upload_is_answered_is_the_answer(
    pushing, member, wechat, watch
):
    """WeChat may push its verdict while the upload is still being recorded;
    whichever comes first, a refused avatar is never answered as a success."""
    wechat.set_rules(media={"risky": ["avatars/"], "label": 20002})
    for _ in range(5):
        response = upload(pushing, member, photo_with_gps(), watch)
        if response.status_code == 422:  # the verdict was already in
            assert response.json()["error"] == "content_risky"
            assert response.json()["data"] == {"field": "avatarUrl"}
        else:
            assert response.status_code == 202, response.text
        wechat.wait_media_checks()
        assert info(pushing, member)["avatarUrl"] is None


def test_a_verdict_that_never_comes_expires_and_a_late_one_is_ignored(unreachable, wechat, watch):
    wechat.configure_push(url=f"{unreachable.url}/wechat/push", token=PUSH_TOKEN)
    wechat.media_settings(hold=True)
    first = logged_in(unreachable, wechat, watch)
    url = upload(unreachable, first, photo_with_gps(), watch).json()["data"]["pendingAvatarUrl"]
    name = url.rsplit("/", 1)[1]
    submitted = time.monotonic()
    wait_until(lambda: time.monotonic() - submitted > 1.5, what="AVATAR_REVIEW_TIMEOUT to pass")
    # Any upload sweeps overdue checks (so does `flask avatars expire`).
    other = logged_in(unreachable, wechat, watch)
    assert upload(unreachable, other, photo_with_gps(), watch).status_code == 202
    after = info(unreachable, first)
    assert (after["avatarUrl"], after["avatarReview"]) == (None, None)
    assert unreachable.get(f"/avatars/{name}")[0].status_code == 404
    wechat.wait_media_checks(release=True)  # the late verdicts arrive, and change nothing
    assert info(unreachable, first)["avatarUrl"] is None


def test_deleting_while_two_instances_serve_reads(service, second_service, wechat, watch):
    """No read that starts after DELETE /user answered sees the account."""
    token = logged_in(second_service, wechat, watch)
    stop = threading.Event()
    seen: list[tuple[float, int, bool]] = []  # (start, status, showed a profile)

    def read(server: Server) -> None:
        session = requests.Session()
        while not stop.is_set():
            start = time.monotonic()
            response = session.get(f"{server.url}/user/info", headers=bearer(token), timeout=10)
            seen.append((start, response.status_code, "nickName" in response.text))

    with ThreadPoolExecutor(max_workers=8) as pool:
        for index in range(8):
            pool.submit(read, (service, second_service)[index % 2])
        wait_until(lambda: len(seen) > 50, what="reads to flow")
        response, _ = second_service.call("DELETE", "/user", headers=bearer(token))
        deleted_at = time.monotonic()
        assert response.status_code == 200
        wait_until(lambda: sum(start > deleted_at for start, *_ in seen) > 50, what="more reads")
        stop.set()
    assert {status for _, status, _ in seen} <= {200, 401}
    after = [(status, showed) for start, status, showed in seen if start > deleted_at]
    assert after and all(status == 401 and not showed for status, showed in after)
