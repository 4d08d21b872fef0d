"""Avatars are decoded for real and re-encoded: what is not a picture, what
is damaged and what is too big is refused; what is kept has no metadata."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from services import errors
from services.media.avatar import encode_avatar

LIMITS = {"max_pixels": 4_000_000, "size": 640}


def picture(fmt: str, size=(800, 600), mode="RGB", **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None).save(out, fmt, **save)
    return out.getvalue()


def with_gps_exif() -> bytes:
    image = Image.new("RGB", (300, 200), "blue")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise
    gps = exif.get_ifd(0x8825)
    gps[2] = (31.0, 14.0, 0.0)  # GPSLatitude
    gps[4] = (121.0, 28.0, 0.0)  # GPSLongitude
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_every_accepted_format_becomes_a_bounded_jpeg(fmt):
    avatar = encode_avatar(picture(fmt, size=(1600, 1200)), **LIMITS)
    decoded = Image.open(io.BytesIO(avatar.data))
    assert decoded.format == "JPEG"
    assert (avatar.width, avatar.height) == decoded.size == (640, 480)


def test_transparency_is_flattened_on_white():
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    out = io.BytesIO()
    rgba.save(out, "PNG")
    avatar = encode_avatar(out.getvalue(), **LIMITS)
    assert Image.open(io.BytesIO(avatar.data)).getpixel((5, 5)) >= (250, 250, 250)


def test_metadata_is_gone_and_orientation_is_applied():
    avatar = encode_avatar(with_gps_exif(), **LIMITS)
    decoded = Image.open(io.BytesIO(avatar.data))
    assert not decoded.getexif()
    assert b"Exif" not in avatar.data and b"PhoneMaker" not in avatar.data
    assert decoded.size == (200, 300)  # turned upright before EXIF was dropped


def test_same_picture_same_name():
    upload = picture("PNG")
    assert encode_avatar(upload, **LIMITS).hash == encode_avatar(upload, **LIMITS).hash


def test_a_polyglot_keeps_only_its_pixels():
    upload = picture("JPEG") + b"PK\x03\x04<script>alert(1)</script>"
    assert b"<script>" not in encode_avatar(upload, **LIMITS).data


@pytest.mark.parametrize(
    ("upload", "error"),
    [
        (b"", errors.AvatarNotAnImage),
        (b"%PDF-1.4 not an image", errors.AvatarNotAnImage),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", errors.AvatarNotAnImage),
        (picture("BMP"), errors.AvatarNotAnImage),
        (picture("TIFF"), errors.AvatarNotAnImage),
        (picture("JPEG")[:400], errors.AvatarUnreadable),
        (picture("PNG")[:60], errors.AvatarUnreadable),
        (picture("PNG", size=(3000, 3000)), errors.AvatarTooLarge),
    ],
)
def test_what_is_refused(upload, error):
    with pytest.raises(error):
        encode_avatar(upload, **LIMITS)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (2001, 2000), (1, 10**8)])
def test_a_decompression_bomb_is_refused_from_its_header(width, height):
    with pytest.raises(errors.AvatarTooLarge):
        encode_avatar(png_header_only(width, height), **LIMITS)
