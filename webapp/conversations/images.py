"""Images sent with a message: checked by decoding, scaled down, stripped of metadata.

Done once, at upload: what is stored is what every later turn replays. PNG, JPEG and
WebP keep their format; a GIF becomes a PNG of its first frame (vision APIs take still
images only). EXIF orientation is applied before the metadata (EXIF, XMP, text chunks,
comments) is dropped. An image whose encoding is still over the stored size limit (noise,
a photo saved as PNG) becomes a JPEG of lower quality, then of fewer pixels.

Memory is bounded: the header is read first and an image with more pixels than the limit
is refused before anything is decoded; a JPEG is decoded at 1/2, 1/4 or 1/8 of its size
when that is still larger than the stored size (Pillow's draft mode); only a set number
of images are decoded at once in a process; and the memory an image took is handed back
to the system after it (glibc keeps freed memory otherwise). Under gevent the work runs
in a real OS thread (Pillow releases the GIL), so a large upload does not pause every
open reply stream. Pillow is imported at the first upload, not at startup: a worker that
never sees an image saves its 3 MB. Knows nothing of Flask.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gevent
from gevent import monkey

if TYPE_CHECKING:
    from PIL import Image

MAX_SIDE = 2048
# Pillow format name -> the format stored and its content type.
STORED_FORMATS = {"PNG": ("PNG", "image/png"), "JPEG": ("JPEG", "image/jpeg"),
                  "WEBP": ("WEBP", "image/webp"), "GIF": ("PNG", "image/png")}
MODES = {"PNG": ("1", "L", "LA", "RGB", "RGBA"), "JPEG": ("L", "RGB"), "WEBP": ("RGB", "RGBA")}
SAVE_OPTIONS = {"PNG": {}, "JPEG": {"quality": 90}, "WEBP": {"quality": 90}}
# An image over the stored size: JPEG at these qualities, then smaller at the last one.
SMALLER_QUALITIES = (80, 60)
STRIP_ROWS = 256  # rows of a large image reduced at a time


class NotAnImage(Exception):
    """The bytes are not a PNG, JPEG, WebP or GIF image that can be decoded."""


class TooManyPixels(Exception):
    """The image has more pixels than the server decodes (its header says so)."""


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to store and send."""

    content_type: str
    data: bytes
    width: int
    height: int


class ImagePreparer:
    """Prepares uploaded images, at most `at_once` at a time in this process.

    Under gevent the semaphore is gevent's, taken by the request's greenlet before the
    image goes to the hub's thread pool.
    """

    def __init__(self, max_pixels: int, max_stored_bytes: int, at_once: int) -> None:
        self.max_pixels = max_pixels
        self.max_stored_bytes = max_stored_bytes
        self._turns = threading.BoundedSemaphore(at_once)

    def prepare(self, raw: bytes) -> PreparedImage:
        """prepare() within the limits, in the hub's OS thread pool under gevent."""
        with self._turns:
            if monkey.is_module_patched("threading"):
                return gevent.get_hub().threadpool.apply(self._prepare_and_release, (raw,))
            return self._prepare_and_release(raw)

    def _prepare_and_release(self, raw: bytes) -> PreparedImage:
        try:
            return prepare(raw, self.max_pixels, self.max_stored_bytes)
        finally:
            release_free_memory()


def prepare(raw: bytes, max_pixels: int, max_stored_bytes: int) -> PreparedImage:
    """Decode, orient, scale to MAX_SIDE, strip metadata and re-encode an uploaded image.

    Raises TooManyPixels past max_pixels decoded, NotAnImage for what Pillow can't read.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        image, stored_format, content_type = _decode(raw, max_pixels)
    except Image.DecompressionBombError as error:  # past twice Pillow's own pixel limit
        raise TooManyPixels(str(error)) from error
    # What Pillow raises for bytes it cannot read (under pytest the bomb warning is an error).
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            Image.DecompressionBombWarning) as error:
        raise NotAnImage(str(error) or type(error).__name__) from error
    image.info = {}  # nothing of the original's metadata is written back
    data = _saved(image, stored_format, **SAVE_OPTIONS[stored_format])
    if len(data) <= max_stored_bytes:
        return PreparedImage(content_type, data, image.width, image.height)
    return _jpeg_within(_opaque(image), max_stored_bytes)


def _decode(raw: bytes, max_pixels: int) -> tuple[Image.Image, str, str]:
    """The first frame, scaled to MAX_SIDE, upright and in a mode its stored format holds."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(raw)) as source:
        if source.format not in STORED_FORMATS:
            raise NotAnImage(f"{source.format} images are not accepted")
        stored_format, content_type = STORED_FORMATS[source.format]
        target = _fitted(source.size)
        if source.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 while still over the target
            source.draft(None, target)
        if source.width * source.height > max_pixels:
            raise TooManyPixels(f"{source.width}×{source.height} pixels decoded")
        source.seek(0)
        # A palette would be resized by picking pixels; other modes are converted smaller.
        image = _in_mode(source, stored_format) if source.mode in ("1", "P") else source
        image = _reduced(image, min(image.width // target[0], image.height // target[1]))
        if image is not source:
            source.close()  # its decoded pixels are no longer needed: free them now
        image.thumbnail(target, Image.Resampling.LANCZOS)
        image = ImageOps.exif_transpose(image)
        return _in_mode(image, stored_format), stored_format, content_type


def _fitted(size: tuple[int, int]) -> tuple[int, int]:
    """The size within MAX_SIDE × MAX_SIDE, aspect kept (never larger than it was)."""
    scale = min(1.0, MAX_SIDE / size[0], MAX_SIDE / size[1])
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _reduced(image: Image.Image, factor: int) -> Image.Image:
    """image.reduce(factor) done a strip at a time: the same pixels, but only one strip is
    ever copied (a whole-image reduce or resize copies an RGBA image whole, premultiplied)."""
    from PIL import Image

    if factor < 2:
        return image
    image.load()
    reduced = Image.new(image.mode, (math.ceil(image.width / factor),
                                     math.ceil(image.height / factor)))
    rows = factor * max(1, STRIP_ROWS // factor)
    for top in range(0, image.height, rows):
        strip = image.crop((0, top, image.width, min(image.height, top + rows)))
        reduced.paste(strip.reduce(factor), (0, top // factor))
    reduced.info = image.info  # the EXIF orientation still to apply
    return reduced


def _in_mode(image: Image.Image, stored_format: str) -> Image.Image:
    """The image in a mode the stored format can hold (palettes and CMYK are converted)."""
    if image.mode in MODES[stored_format]:
        return image
    if stored_format == "JPEG":
        return image.convert("RGB")
    has_alpha = "A" in image.mode or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _opaque(image: Image.Image) -> Image.Image:
    """The image as a JPEG holds it: transparent parts on white."""
    from PIL import Image

    if image.mode in ("L", "RGB"):
        return image
    if "A" not in image.mode:
        return image.convert("RGB")
    background = Image.new("RGB", image.size, "white")
    background.paste(image, mask=image.convert("RGBA").getchannel("A"))
    return background


def _jpeg_within(image: Image.Image, max_bytes: int) -> PreparedImage:
    """A JPEG of at most max_bytes: lower quality first, then fewer pixels."""
    from PIL import Image

    while True:
        for quality in SMALLER_QUALITIES:
            data = _saved(image, "JPEG", quality=quality)
            if len(data) <= max_bytes:
                return PreparedImage("image/jpeg", data, image.width, image.height)
        # Bytes grow with the pixel count: aim a little under the limit.
        scale = min(0.8, math.sqrt(max_bytes / len(data)) * 0.95)
        image = image.resize((max(1, round(image.width * scale)),
                              max(1, round(image.height * scale))), Image.Resampling.LANCZOS)


def _saved(image: Image.Image, image_format: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, image_format, **options)
    return out.getvalue()


def _malloc_trim():
    """glibc's malloc_trim, or None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand the memory malloc holds free back to the system (every arena, not just the top).

    Without it glibc keeps what a decoded image took: Pillow's 16 MB blocks raise malloc's
    threshold for using mmap, and later blocks come from arenas that are rarely trimmed.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
