"""An uploaded avatar, decoded for real and re-encoded.

`<button open-type="chooseAvatar">` hands the mini program a temporary local
file that wx.uploadFile sends here. Whatever it holds, what this service keeps
and serves is a fresh JPEG made from the decoded pixels: metadata (EXIF GPS
included), trailing bytes of polyglots and anything that is not a picture are
gone. Decompression bombs are refused from the header, before decoding.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from services import errors

FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})
JPEG_QUALITY = 85


@dataclass(frozen=True)
class EncodedAvatar:
    hash: str  # sha256 of `data`, hex: the avatar's name
    data: bytes = field(repr=False)
    width: int
    height: int


def encode_avatar(upload: bytes, *, max_pixels: int, size: int) -> EncodedAvatar:
    """The upload re-encoded as a JPEG at most `size` pixels on its longer side."""
    image = _open(upload, max_pixels)
    try:
        image = _flatten(image)
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        # No exif= and no icc_profile=: the new file carries pixels only.
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise errors.AvatarUnreadable() from exc
    data = out.getvalue()
    return EncodedAvatar(hashlib.sha256(data).hexdigest(), data, *image.size)


def _open(upload: bytes, max_pixels: int) -> Image.Image:
    if not upload:
        raise errors.AvatarNotAnImage("The file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(upload))
            if image.format not in FORMATS:
                raise errors.AvatarNotAnImage()
            width, height = image.size
            if width < 1 or height < 1 or width * height > max_pixels:
                raise errors.AvatarTooLarge(
                    f"The image has {width}x{height} pixels; at most {max_pixels} are accepted."
                )
            image.seek(0)  # an animated GIF or WebP keeps its first frame
            image.load()
    except UnidentifiedImageError:
        raise errors.AvatarNotAnImage() from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise errors.AvatarTooLarge() from None
    except errors.ServiceError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        # Truncated data, a broken chunk, an impossible header...
        raise errors.AvatarUnreadable() from exc
    return image


def _flatten(image: Image.Image) -> Image.Image:
    """Upright (EXIF orientation applied before EXIF is dropped) and RGB, with
    transparency on white, as a JPEG needs."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")
