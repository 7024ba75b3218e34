"""Images sent with a message: checked by decoding, scaled down, stripped of metadata.

Done once, at upload: what is stored is what every later turn replays. PNG, JPEG and
WebP keep their format; a GIF becomes a PNG of its first frame (vision APIs take still
images only). EXIF orientation is applied before the metadata (EXIF, XMP, text chunks,
comments) is dropped. Under gevent the work runs in a real OS thread (Pillow releases the
GIL), so a large upload does not pause every open reply stream. Pillow is imported at
the first upload, not at startup: a worker that never sees an image saves its 3 MB.
Knows nothing of Flask.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gevent
from gevent import monkey

if TYPE_CHECKING:
    from PIL import Image

MAX_SIDE = 2048
MAX_PIXELS = 50_000_000  # refuse before decoding anything larger (a decompression bomb)
# Pillow format name -> the format stored and its content type.
STORED_FORMATS = {"PNG": ("PNG", "image/png"), "JPEG": ("JPEG", "image/jpeg"),
                  "WEBP": ("WEBP", "image/webp"), "GIF": ("PNG", "image/png")}
MODES = {"PNG": ("1", "L", "LA", "RGB", "RGBA"), "JPEG": ("L", "RGB"), "WEBP": ("RGB", "RGBA")}
SAVE_OPTIONS = {"PNG": {}, "JPEG": {"quality": 90}, "WEBP": {"quality": 90}}


class NotAnImage(Exception):
    """The bytes are not a PNG, JPEG, WebP or GIF image that can be decoded."""


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to store and send."""

    content_type: str
    data: bytes
    width: int
    height: int


def prepare(raw: bytes) -> PreparedImage:
    """Decode, orient, scale to MAX_SIDE, strip metadata and re-encode an uploaded image."""
    from PIL import Image, UnidentifiedImageError

    try:
        image, stored_format, content_type = _decode(raw)
    # What Pillow raises for bytes it cannot read (under pytest the bomb warning is an error).
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise NotAnImage(str(error) or type(error).__name__) from error
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    image.info = {}  # nothing of the original's metadata is written back
    out = io.BytesIO()
    image.save(out, stored_format, **SAVE_OPTIONS[stored_format])
    return PreparedImage(content_type, out.getvalue(), image.width, image.height)


def prepare_off_loop(raw: bytes) -> PreparedImage:
    """prepare() in the hub's OS thread pool when gevent serves the app, else directly."""
    if monkey.is_module_patched("threading"):
        return gevent.get_hub().threadpool.apply(prepare, (raw,))
    return prepare(raw)


def _decode(raw: bytes) -> tuple[Image.Image, str, str]:
    """The first frame, upright and in a mode its stored format holds; the format."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(raw)) as source:
        if source.format not in STORED_FORMATS:
            raise NotAnImage(f"{source.format} images are not accepted")
        if source.width * source.height > MAX_PIXELS:
            raise NotAnImage(f"{source.width}×{source.height} pixels is too many")
        stored_format, content_type = STORED_FORMATS[source.format]
        source.seek(0)
        image = ImageOps.exif_transpose(source)
        image.load()
        return _in_mode(image, stored_format), stored_format, content_type


def _in_mode(image: Image.Image, stored_format: str) -> Image.Image:
    """The image in a mode the stored format can hold (palettes and CMYK are converted)."""
    if image.mode in MODES[stored_format]:
        return image
    if stored_format == "JPEG":
        return image.convert("RGB")
    has_alpha = "A" in image.mode or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")
