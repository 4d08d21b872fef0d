"""The profile page's input, refused before anything reaches WeChat:
PUT /user/profile, POST /user/avatar, GET /avatars/..."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from services.media.avatar import encode_avatar
from support.apps import bearer


def picture(fmt: str = "PNG", size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, fmt)
    return out.getvalue()


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


# -- PUT /user/profile --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"nickName": ""},
        {"nickName": "   "},
        {"nickName": None},
        {"nickName": "x" * 33},
        {"nickName": 7},
        {"nickName": ["a"]},
        {"nickName": "a\x00b"},
        {"nickName": "line\nbreak"},
        {"nickName": "tab\there"},
        {"nickName": "a\u202eb"},  # right-to-left override
        {"nickName": "a\u2028b"},  # line separator
        '{"nickName": "a\\ud800b"}',  # a lone surrogate, as JSON can carry it
        {"city": "x" * 65},
        {"gender": 3},
        {"gender": True},
        {"gender": "male"},
        {"avatarUrl": "https://example.com/a.png"},
        {"phoneNumber": "13800138000"},
        {"openid": "oSomeone"},
    ],
)
def test_bad_profile_input_is_400_and_never_reaches_wechat(client, wechat, user, body):
    _, token = user
    sent = (
        {"data": body, "content_type": "application/json"}
        if isinstance(body, str)
        else {"json": body}
    )
    response = client.put("/user/profile", headers=bearer(token), **sent)
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_field")
    assert wechat.calls("msg_sec_check") == []


def test_a_long_emoji_nickname_is_counted_in_characters(client, user):
    """32 four-byte characters are 128 bytes of UTF-8, and still only 32 characters."""
    _, token = user
    response = client.put("/user/profile", json={"nickName": "🐱" * 33}, headers=bearer(token))
    assert "longer than 32 characters" in response.get_json()["message"]


@pytest.mark.parametrize("method", ["put", "post"])
def test_the_profile_needs_a_session(client, method):
    path = "/user/profile" if method == "put" else "/user/avatar"
    response = getattr(client, method)(path, json={"nickName": "x"})
    assert (response.status_code, response.get_json()["error"]) == (401, "unauthorized")


# -- POST /user/avatar --------------------------------------------------------------


def upload(client, token, data: bytes, field: str = "file", filename: str = "tmp.jpg"):
    return client.post(
        "/user/avatar",
        data={field: (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
        headers=bearer(token),
    )


@pytest.mark.parametrize(
    ("data", "status", "slug"),
    [
        (b"", 415, "avatar_not_an_image"),
        (b"not an image at all", 415, "avatar_not_an_image"),
        (b"%PDF-1.7\n" + b"0" * 100, 415, "avatar_not_an_image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>", 415, "avatar_not_an_image"),
        (picture("BMP"), 415, "avatar_not_an_image"),
        (picture("JPEG")[:300], 422, "avatar_unreadable"),
        (bomb_png(), 422, "avatar_too_large"),
    ],
)
def test_what_is_not_a_usable_image_is_refused(client, wechat, user, data, status, slug):
    _, token = user
    response = upload(client, token, data)
    assert (response.status_code, response.get_json()["error"]) == (status, slug)
    assert wechat.calls("media_check_async") == []


@pytest.mark.parametrize("config_overrides", [{"AVATAR_MAX_BYTES": 10_000}])
def test_an_upload_over_the_limit_is_413(client, wechat, user):
    _, token = user
    response = upload(client, token, picture("BMP", size=(200, 200)))  # 120 KB
    assert (response.status_code, response.get_json()["error"]) == (413, "payload_too_large")
    assert "Retry-After" not in response.headers


def test_an_upload_far_over_the_limit_is_413_before_it_is_read(client, user):
    _, token = user
    response = upload(client, token, b"\xff" * (6 * 1024 * 1024))
    assert (response.status_code, response.get_json()["error"]) == (413, "payload_too_large")


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ("json", "invalid_body"),
        ("another field", "invalid_field"),
        ("text, not a file", "invalid_field"),
    ],
)
def test_an_upload_is_multipart_with_the_field_file(client, user, body, slug):
    _, token = user
    sent = {
        "json": {"json": {"file": "aGVsbG8="}},
        "another field": {"data": {"image": (io.BytesIO(b"x"), "a.jpg")}},
        "text, not a file": {"data": {"file": "not a file"}},
    }[body]
    if "data" in sent:
        sent["content_type"] = "multipart/form-data"
    response = client.post("/user/avatar", headers=bearer(token), **sent)
    assert (response.status_code, response.get_json()["error"]) == (400, slug)


@pytest.mark.parametrize(
    ("fault", "status", "slug"),
    [
        ({"drop": True, "times": 2}, 502, "wechat_unreachable"),
        ({"errcode": 44991}, 429, "wechat_rate_limited"),
    ],
)
def test_an_avatar_wechat_was_not_asked_about_is_never_served(
    app, client, wechat, user, fault, status, slug
):
    """The image is stored before WeChat is asked to check it; when asking
    fails, the file goes too."""
    _, token = user
    wechat.fault("media_check_async", **fault)
    data = picture("JPEG", size=(320, 240))
    response = upload(client, token, data)
    assert (response.status_code, response.get_json()["error"]) == (status, slug)
    stored = encode_avatar(
        data, max_pixels=app.config["AVATAR_MAX_PIXELS"], size=app.config["AVATAR_SIZE"]
    )
    assert client.get(f"/avatars/{stored.hash}.jpg").status_code == 404


# -- GET /avatars/... ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["0" * 64 + ".jpg", "0" * 64 + ".png", "../../etc/passwd", "A" * 64 + ".jpg", "x.jpg"]
)
def test_unknown_avatars_are_404(client, name):
    response = client.get(f"/avatars/{name}")
    assert (response.status_code, response.get_json()["error"]) == (404, "not_found")


# -- /wechat/push without a Token -----------------------------------------------------


@pytest.mark.parametrize("config_overrides", [{"WECHAT_PUSH_TOKEN": ""}])
@pytest.mark.parametrize("method", ["get", "post"])
def test_without_a_push_token_the_push_url_says_so(client, method):
    response = getattr(client, method)("/wechat/push?timestamp=1&nonce=1&signature=x")
    assert (response.status_code, response.get_json()["error"]) == (503, "push_not_configured")
