"""Reading files into what the models take: RGB images at model size, and text.

These functions run in worker processes during indexing, so they import only
light packages (Pillow, numpy) and return picklable values. A file that can't
be read raises :class:`DecodeError` with a short reason for the run's report.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mmsearch.media.formats import is_raw

HASH_BLOCK = 1 << 20
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_ORIENTATION = 0x0112


class DecodeError(Exception):
    """A file could not be decoded; ``str(err)`` is the reason shown to users."""


@dataclass
class DecodedImage:
    image: Image.Image
    width: int
    height: int
    taken_at: str | None = None  # ISO 8601 from EXIF DateTimeOriginal
    palette: list[list[float]] | None = None  # dominant colours (mmsearch.media.palette)


@dataclass
class DecodedFile:
    """What a worker returns for one file: its identity and decoded content."""

    path: str
    modality: str
    size: int
    mtime_ns: int
    content_hash: str
    image: DecodedImage | None = None
    text: str | None = None
    ocr: Any = None  # mmsearch.media.ocr.OcrResult when OCR ran (or was gated)
    meta: dict[str, Any] = field(default_factory=dict)


def file_hash(path: str) -> str:
    """blake2b-128 of the file's bytes, hex."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def register_heif() -> None:
    """Teach Pillow to open HEIC/HEIF photos when pillow-heif is installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # pragma: no cover - pillow-heif is a dependency
        return
    register_heif_opener()


def _taken_at(exif: Image.Exif) -> str | None:
    raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL)
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip("\0 "), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency on white."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if im.mode == "F":
            top = max(float(arr.max()), 1e-9) if arr.max() > 1 else 1.0
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


DEFAULT_MAX_PIXELS = 500_000_000


@contextmanager
def _own_pixel_limit() -> Iterator[None]:
    """Switch off Pillow's global bomb check while we apply our own (after draft)."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


DECODE_SIDE = 800  # long side of the JPEG draft every image decode starts from


def decode_upright(path: str, long_side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Open an image at about ``long_side`` pixels (JPEG draft), upright and RGB.

    JPEGs are decoded with ``Image.draft`` at the largest DCT reduction that
    keeps the long side at least ``long_side``: several times faster on large
    photos, and up to 64x less memory. Other formats decode whole. GIF and
    animated WebP give their first frame. ``width`` and ``height`` are the
    original, upright size. An image that would decode to more than
    ``max_pixels`` is refused: a decompression bomb, or too big for memory.
    Camera RAW files go to :func:`mmsearch.media.raw.decode_raw`.
    """
    if is_raw(path):
        from mmsearch.media.raw import RawError, decode_raw

        try:
            return DecodedImage(*decode_raw(path, long_side, max_pixels))
        except RawError as exc:
            raise DecodeError(str(exc)) from exc
    try:
        with _own_pixel_limit(), Image.open(path) as im:
            width, height = im.size
            if im.format == "JPEG":
                scale = long_side / max(width, height)
                im.draft("RGB", (round(width * scale), round(height * scale)))
            if im.size[0] * im.size[1] > max_pixels:  # before getexif: PNG's loads pixels
                raise DecodeError(
                    f"image of {width}x{height} pixels is over the limit of {max_pixels}"
                    " (setting max_image_pixels); it may be a decompression bomb"
                )
            exif = im.getexif()
            if exif.get(_ORIENTATION) in (5, 6, 7, 8):
                width, height = height, width
            im.load()
            upright = ImageOps.exif_transpose(im) or im
            rgb = to_rgb(upright)
            return DecodedImage(rgb.copy(), width, height, _taken_at(exif))
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"image too large to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise DecodeError("not a readable image (unknown format or damaged file)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise DecodeError(f"damaged image: {exc}") from exc


def model_image(image: Image.Image, target: int) -> Image.Image:
    """Shrink a decode so its short side is ``target``: halve with a box filter while
    the short side stays at least twice ``target``, then resample bicubically."""
    while min(image.size) >= 2 * target:
        image = image.reduce(2)
    short = min(image.size)
    if short <= target:
        return image
    scale = target / short
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def load_image(
    path: str,
    target: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    long_side: int | None = None,
    palette: bool = False,
) -> DecodedImage:
    """An image at the model's size: short side ``target`` (or less if smaller).

    Every caller (indexing, with or without OCR, and image queries) goes
    through :func:`decode_upright` at ``DECODE_SIDE`` and then
    :func:`model_image`, so an image query and the indexed file get the very
    same pixels, and the OCR gate can read the same decode. With
    ``long_side``, the result is instead the decode at up to that long side
    (for OCR, which needs more pixels than the model). With ``palette``, the
    decode's dominant colours are read too (:func:`with_palette`).
    """
    if long_side:
        big = decode_upright(path, long_side, max_pixels)
        if max(big.image.size) > long_side:
            big.image.thumbnail((long_side, long_side), Image.Resampling.BICUBIC)
        return big
    decoded = decode_upright(path, max(DECODE_SIDE, 2 * target), max_pixels)
    if palette:
        with_palette(decoded)
    decoded.image = model_image(decoded.image, target)
    return decoded


def with_palette(decoded: DecodedImage) -> DecodedImage:
    """Set ``decoded.palette`` from its image (a 64 px copy of it; see mmsearch.media.palette)."""
    from mmsearch.media.palette import extract_palette

    decoded.palette = extract_palette(decoded.image)
    return decoded


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes) -> str:
    """Decode text bytes: BOM first, then UTF-8, then Windows-1252/Latin-1.

    Bytes with NUL characters and no UTF-16/32 BOM are taken for a binary file.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DecodeError(f"invalid {encoding} text: {exc.reason}") from exc
    if b"\0" in data[:8192]:
        raise DecodeError("binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def load_text(path: str, max_bytes: int) -> str:
    size = os.path.getsize(path)
    if size > max_bytes:
        raise DecodeError(
            f"text file of {size} bytes is over the limit of {max_bytes} (setting max_text_bytes)"
        )
    with open(path, "rb") as f:
        text = decode_text(f.read())
    if not text.strip():
        raise DecodeError("empty text file")
    return text


@dataclass(frozen=True)
class DecodeOptions:
    """What a decoding worker needs to know (picklable)."""

    image_size: int
    max_text_bytes: int
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    ocr: str = "off"  # auto | on | off
    palette: bool = True  # read each image's dominant colours (setting ``palette``)

    @classmethod
    def from_settings(cls, settings: Any, image_size: int, ocr: str) -> DecodeOptions:
        palette = getattr(settings, "palette", "on") == "on"
        return cls(image_size, settings.max_text_bytes, settings.max_image_pixels, ocr, palette)


def load_image_for_ocr(path: str, options: DecodeOptions) -> tuple[DecodedImage, Any]:
    """The model's image and the OCR result, from one decode for most images.

    The gate reads the very decode the model's image is shrunk from (the
    ``DECODE_SIDE`` draft, 800 px): OCR ``auto`` costs one decode, like
    ``off``. Only an image that passes the gate, or every image with ``on``,
    is decoded again at ``MAX_SIDE`` for full OCR.
    """
    from mmsearch.media.ocr import MAX_SIDE, ocr_image

    side = max(DECODE_SIDE, 2 * options.image_size)
    decoded = decode_upright(path, side, options.max_image_pixels)
    if options.palette:
        with_palette(decoded)

    def sharper(long_side: int) -> Image.Image:
        return load_image(path, options.image_size, options.max_image_pixels, long_side).image

    if options.ocr == "on":
        first = sharper(MAX_SIDE)
    elif max(decoded.image.size) > side:  # not a JPEG draft: give the gate its usual size
        first = decoded.image.copy()
        first.thumbnail((side, side), Image.Resampling.BICUBIC)
    else:
        first = decoded.image
    result = ocr_image(first, options.ocr, reload=sharper)
    small = DecodedImage(
        model_image(decoded.image, options.image_size),
        decoded.width,
        decoded.height,
        decoded.taken_at,
        decoded.palette,
    )
    return small, result


def ocr_summary(result: Any, policy: str) -> dict[str, Any]:
    """What an asset's metadata records of its OCR pass (``mmsearch show`` prints it)."""
    return {
        "policy": policy,
        "gated": bool(result.gated),
        "gate_score": round(float(result.gate_score), 5),
        "lines": len(result.lines),
        "seconds": round(float(result.seconds), 3),
    }


def decode_file(path: str, modality: str, options: DecodeOptions) -> DecodedFile:
    """Hash and decode one file (runs in a worker process)."""
    try:
        st = os.stat(path)
        content_hash = file_hash(path)
    except OSError as exc:
        raise DecodeError(exc.strerror or str(exc)) from exc
    if st.st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    out = DecodedFile(path, modality, st.st_size, st.st_mtime_ns, content_hash)
    try:
        if modality == "image" and options.ocr != "off":
            out.image, out.ocr = load_image_for_ocr(path, options)
            out.meta["ocr"] = ocr_summary(out.ocr, options.ocr)
        elif modality == "image":
            out.image = load_image(
                path, options.image_size, options.max_image_pixels, palette=options.palette
            )
        elif modality == "text":
            out.text = load_text(path, options.max_text_bytes)
        elif modality == "video":
            pass  # videos stream their frames in the indexing process (see video_index)
        else:
            raise DecodeError(f"{modality} files are not supported")
    except OSError as exc:
        raise DecodeError(exc.strerror or str(exc)) from exc
    return out


def worker_init() -> None:
    """Set up a decoding worker process."""
    register_heif()
