"""Camera RAW files (DNG, CR2, NEF, ...) through rawpy, the optional ``[raw]`` extra.

A RAW file is read the cheap way when it can be: the JPEG preview the camera
embedded (its own rendering) when that is at least as large as the decode
asks for; otherwise LibRaw demosaics it at half size with the camera's white
balance. Either way the result is upright (the preview's EXIF orientation, or
LibRaw's ``sizes.flip``) 8-bit RGB, like every other image decode.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class RawError(Exception):
    """A RAW file could not be read; ``str(err)`` is the reason.

    :func:`mmsearch.media.decode.decode_upright` reports it as a ``DecodeError``
    (this module does not import ``decode``, which imports it).
    """


class RawImage(NamedTuple):
    image: Image.Image  # upright 8-bit RGB
    width: int  # the sensor image's upright size
    height: int
    taken_at: str | None


MISSING_RAWPY = "RAW photos need rawpy: pip install 'mmsearch[raw]'"
_ORIENTATION = 0x0112
# LibRaw's ``sizes.flip`` as a Pillow transpose: 3 is 180 degrees, 5 is 90 degrees
# counter-clockwise, 6 is 90 degrees clockwise (LibRaw's ``flip`` in libraw_types.h).
_FLIPS = {
    3: Image.Transpose.ROTATE_180,
    5: Image.Transpose.ROTATE_90,
    6: Image.Transpose.ROTATE_270,
}


def _rawpy() -> Any:
    try:
        import rawpy
    except ImportError as exc:
        raise RawError(MISSING_RAWPY) from exc
    return rawpy


def _reason(exc: Exception) -> str:
    """LibRaw's message (rawpy gives it as bytes), or the error's class name."""
    arg = exc.args[0] if exc.args else ""
    text = arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)
    return text or type(exc).__name__


def _taken_at(raw: Any) -> str | None:
    """The shot's time: LibRaw reads it with ``mktime`` and rawpy gives it back local."""
    stamp = getattr(getattr(raw, "other", None), "timestamp", None)
    if not isinstance(stamp, datetime) or stamp.year <= 1970:
        return None
    return stamp.replace(microsecond=0).isoformat()


def _rgb(im: Image.Image) -> Image.Image:
    return im if im.mode == "RGB" else im.convert("RGB")


def _preview(raw: Any, rawpy: Any, long_side: int, flip: int) -> Image.Image | None:
    """The embedded preview, upright, when its long side is at least ``long_side``."""
    im: Image.Image
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawError, MemoryError):
        return None
    try:
        if thumb.format == rawpy.ThumbFormat.JPEG:
            im = Image.open(io.BytesIO(thumb.data))
            if max(im.size) < long_side:
                return None
            scale = long_side / max(im.size)
            im.draft("RGB", (round(im.width * scale), round(im.height * scale)))
            if im.getexif().get(_ORIENTATION, 1) != 1:
                return _rgb(ImageOps.exif_transpose(im) or im)
            im.load()
        elif thumb.format == rawpy.ThumbFormat.BITMAP:
            data = np.asarray(thumb.data)
            if data.dtype != np.uint8 or data.ndim != 3 or max(data.shape[:2]) < long_side:
                return None
            im = Image.fromarray(data[:, :, :3] if data.shape[2] >= 3 else data[:, :, 0])
        else:
            return None
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None  # a damaged preview: demosaic instead
    im = _rgb(im)
    return im.transpose(_FLIPS[flip]) if flip in _FLIPS else im


def decode_raw(path: str, long_side: int, max_pixels: int) -> RawImage:
    """A RAW photo as upright RGB, from its preview or a half-size demosaic.

    ``width`` and ``height`` are the sensor image's upright size. A photo over
    ``max_pixels`` is refused before anything is decoded.
    """
    rawpy = _rawpy()
    try:
        with rawpy.imread(path) as raw:
            sizes = raw.sizes
            width, height = sizes.width, sizes.height
            if width * height > max_pixels:
                raise RawError(
                    f"RAW image of {width}x{height} pixels is over the limit of {max_pixels}"
                    " (setting max_image_pixels)"
                )
            if sizes.flip in (5, 6):
                width, height = height, width
            image = _preview(raw, rawpy, long_side, sizes.flip)
            if image is None:  # postprocess applies sizes.flip itself
                rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
                image = Image.fromarray(np.ascontiguousarray(rgb[:, :, :3]), "RGB")
            return RawImage(image, width, height, _taken_at(raw))
    except rawpy.LibRawError as exc:
        raise RawError(f"unreadable RAW file: {_reason(exc)}") from exc
    except MemoryError as exc:
        raise RawError("RAW image too large to decode in memory") from exc
