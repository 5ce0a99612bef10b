"""OCR: the text lines in an image, behind a cheap gate that skips plain photos.

Recognised lines are a second view of an image (view ``ocr``), each a text
segment with its box. The engine is RapidOCR: PP-OCRv4 detection and
recognition models run by onnxruntime, shipped inside the
``rapidocr-onnxruntime`` wheel (no network). These functions run in the
indexer's decode worker processes: they take an upright Pillow image and
return plain, picklable dataclasses. One RapidOCR instance per process, made
on first use, onnxruntime on :data:`THREADS` thread: during indexing the
workers and the model already use every core, and a second thread only paid
on an idle machine (see :func:`set_threads`, e.g. for an OCR-only pass).

The gate. Full OCR costs many times a JPEG decode plus the offline model
(recognition dominates: each line is scaled to 48 px high, so small dense
text is dearest), even on a plain photo. ``policy="auto"`` therefore asks
:func:`ocr_gate` first. It runs only the text *detector* (its text map, no box
fitting) on three strips of :data:`GATE_STRIP` px across the top, middle and
bottom (:data:`GATE_STRIP_CENTRES`), cut at the resolution of the image shrunk
to :data:`GATE_STRIP_SIDE` px, sharp enough for the small text of
screenshots, documents, receipts, captions and subtitles; and a numpy
pre-check (edge density) sends only a small share of photo strips to the
detector. Full OCR runs when a strip's text fraction reaches
``gate_threshold``. What the gate costs against ingest and which images it
lets through: ``python -m benchmarks.ocr_gate``, recorded in
docs/benchmarks.md, section "OCR gate". A whole-image view
(:data:`GATE_SIDE`) also catches large text anywhere but costs a sizeable
share of the gate's budget: off by default.

The gate needs no more than :data:`GATE_STRIP_SIDE` px: decode that (a JPEG
draft, as cheap as the model's decode) and pass ``reload`` to
:func:`ocr_image`, which decodes sharper only when full OCR runs; decoding
every image at full OCR size would cost more than the gate itself.

Full OCR detects lines on a copy shrunk to :data:`DET_SIDE` px (word recall
did not change across detection sizes; images under it are enlarged up to
2x, which split two merged lines of ``page.png``), then recognises each line
from the image at up to ``max_side`` (:data:`MAX_SIDE`), one line per batch:
RapidOCR's padded batches were slower and no more accurate. The direction
classifier is skipped: images are upright. Lines under ``min_score`` are
dropped (:data:`MIN_SCORE`: above what junk read off photos scores, below
real lines), text is NFKC-normalised (the model emits full-width "（，"), and
:func:`respace` puts back spaces the recogniser sometimes drops
("Date14March2024"): RapidOCR has no setting for that, its dictionary always
has the space.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from mmsearch.errors import ConfigError, import_optional
from mmsearch.kinds import OCR_POLICIES

MAX_SIDE = 1600
"""Long side OCR recognises from; larger images are shrunk to it."""
DET_SIDE = 960
"""Long side full OCR detects lines at (as good as larger: docs/benchmarks.md, "OCR gate")."""
GATE_SIDE = 0
"""Long side of the gate's whole-image view, 0 for none (160 also finds large text anywhere, at a
cost: docs/benchmarks.md, "OCR gate")."""
GATE_STRIP = (448, 64)
"""Width and height in pixels of each gate strip."""
GATE_STRIP_CENTRES = (0.1, 0.5, 0.92)
"""Heights the strips run across: titles and status bars, pages and screens, captions."""
GATE_STRIP_SIDE = 800
"""The strip is cut from the image as if shrunk to this long side."""
GATE_THRESHOLD = 0.002
"""Fraction of a gate view marked as text from which full OCR runs."""
STRIP_EDGE_STEP = 48
"""Grey-level step between horizontal neighbours that counts as a sharp edge."""
STRIP_EDGE_DENSITY = 0.025
"""A strip goes to the detector only when this fraction of its steps are sharp edges."""
TEXT_MAP_THRESHOLD = 0.3
"""Text-map probability that counts a pixel as text (the detector's own binarisation)."""
DET_BOX_THRESHOLD = 0.3
"""Mean text-map score a detected line needs (RapidOCR's 0.5 lost a shaded line of page.png)."""
MIN_SCORE = 0.7
"""Recognised lines with a lower mean character confidence are dropped."""
THREADS = 1
"""onnxruntime intra-op threads per process, by default."""


@dataclass(frozen=True)
class OcrLine:
    """One recognised line of text."""

    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in [0, 1] of the upright image
    score: float  # recogniser confidence, mean over characters


@dataclass
class OcrResult:
    """What OCR found in one image, and what it cost."""

    lines: list[OcrLine]
    gated: bool  # True when the gate (or policy "off") said "no text" and OCR did not run
    gate_score: float  # largest fraction of a gate view that is text (0 when no gate ran)
    seconds: float  # wall time spent, gate + OCR

    @property
    def text(self) -> str:
        """All lines, one per line, in reading order."""
        return "\n".join(line.text for line in self.lines)


_engine: Any = None
_engine_lock = threading.Lock()
_threads = THREADS


def set_threads(threads: int) -> None:
    """Use ``threads`` onnxruntime threads from now on in this process (default 1)."""
    global _engine, _threads
    if threads < 1:
        raise ConfigError(f"OCR threads must be at least 1, not {threads}")
    with _engine_lock:
        if threads != _threads:
            _engine, _threads = None, threads


def get_engine() -> Any:
    """The process's RapidOCR instance, created on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            module: Any = import_optional(
                "rapidocr_onnxruntime", extra="ocr", purpose="Reading text in images (OCR)"
            )
            _engine = module.RapidOCR(
                intra_op_num_threads=_threads,
                inter_op_num_threads=1,
                text_score=0.0,  # we filter by min_score ourselves
                det_limit_type="max",  # never resize: we size the detector's input
                det_box_thresh=DET_BOX_THRESHOLD,
                rec_batch_num=1,
            )
        return _engine


def _shrink(image: Image.Image, long_side: int) -> Image.Image:
    """``image`` as RGB, shrunk so its long side is at most ``long_side`` (never enlarged)."""
    image = image if image.mode == "RGB" else image.convert("RGB")
    scale = long_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def _round32(value: float) -> int:
    return max(32, round(value / 32) * 32)


def _whole_view(image: Image.Image) -> Image.Image:
    """The whole image shrunk to :data:`GATE_SIDE`, sides rounded to multiples of 32."""
    scale = min(1.0, GATE_SIDE / max(image.size))
    size = (_round32(image.width * scale), _round32(image.height * scale))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=1.0)


def _strip_view(image: Image.Image, centre_y: float) -> Image.Image | None:
    """A :data:`GATE_STRIP` across ``centre_y`` (0 top, 1 bottom) at the strip resolution.

    The strip is cut at the resolution of the image shrunk to
    :data:`GATE_STRIP_SIDE`; None when that is not sharper than the whole view.
    """
    width, height = image.size
    scale = min(1.0, GATE_STRIP_SIDE / max(width, height))
    if scale < 1.5 * GATE_SIDE / max(width, height):
        return None
    crop_w = min(width, round(GATE_STRIP[0] / scale))
    crop_h = min(height, round(GATE_STRIP[1] / scale))
    x0 = (width - crop_w) // 2
    y0 = min(max(0, round(height * centre_y - crop_h / 2)), height - crop_h)
    crop = image.crop((x0, y0, x0 + crop_w, y0 + crop_h))
    size = (_round32(crop_w * scale), _round32(crop_h * scale))
    return crop.resize(size, Image.Resampling.BILINEAR, reducing_gap=1.0)


def _edge_density(view: Image.Image) -> float:
    """Fraction of horizontal neighbour steps over :data:`STRIP_EDGE_STEP` grey levels."""
    grey = np.asarray(view.convert("L"), dtype=np.int16)
    return float(np.mean(np.abs(np.diff(grey, axis=1)) > STRIP_EDGE_STEP))


def _text_fraction(engine: Any, view: Image.Image) -> float:
    """Fraction of ``view``'s pixels the detector's text map marks as text."""
    pixels = np.asarray(view, dtype=np.float32)[:, :, ::-1] * (2 / 255) - 1  # BGR in [-1, 1]
    tensor = np.ascontiguousarray(pixels.transpose(2, 0, 1)[None])
    text_map = engine.text_det.infer(tensor)[0]
    return float(np.mean(text_map > TEXT_MAP_THRESHOLD))


def ocr_gate(image: Image.Image, *, stop_at: float | None = None) -> float:
    """The gate's score: the largest fraction of a gate view that is text, 0 to 1.

    Views: the whole image shrunk to :data:`GATE_SIDE` (if not 0); then strips
    of :data:`GATE_STRIP` pixels across :data:`GATE_STRIP_CENTRES`, cut at the
    resolution of the image shrunk to :data:`GATE_STRIP_SIDE` (with a whole
    view, none for images so small that it is nearly as sharp). A strip goes
    to the detector only if its edge density (sharp grey steps, a numpy
    pre-check) reaches :data:`STRIP_EDGE_DENSITY`. With ``stop_at``, views
    after the first that reaches it are skipped (what :func:`ocr_image` does).
    """
    engine = get_engine()
    image = image if image.mode == "RGB" else image.convert("RGB")
    score = _text_fraction(engine, _whole_view(image)) if GATE_SIDE > 0 else 0.0
    for centre_y in GATE_STRIP_CENTRES:
        if stop_at is not None and score >= stop_at:
            break
        strip = _strip_view(image, centre_y)
        if strip is not None and _edge_density(strip) >= STRIP_EDGE_DENSITY:
            score = max(score, _text_fraction(engine, strip))
    return score


def _detect(engine: Any, bgr: np.ndarray) -> np.ndarray:
    """Quadrilaterals (n, 4, 2) of the text lines found in ``bgr``, in its pixels."""
    boxes, _ = engine.text_det(bgr)
    if boxes is None or len(boxes) == 0:
        return np.zeros((0, 4, 2), np.float32)
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4, 2)


def _reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    """Top to bottom, and left to right within a row (centres inside the first box's span)."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.box[1], ln.box[0])):
        centre = (line.box[1] + line.box[3]) / 2
        if rows and rows[-1][0].box[1] <= centre <= rows[-1][0].box[3]:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda ln: ln.box[0])]


_LONG_TOKEN = re.compile(r"\S{8,}")
_CAMEL_JOIN = re.compile(r"(?<=[a-z])(?=[A-Z][a-z])")  # "AcmeWidgets"
_JOINS = re.compile(
    r"(?<=[A-Za-z]{2})(?=\d)"  # word then number: "Date14"
    r"|(?<=\d)(?=[A-Za-z]{2})(?!(?:st|nd|rd|th)(?![a-z]))"  # number then word: "14March"
    r"|(?<=[a-z][.!?])(?=[A-Z])"  # sentence end: "background.These"
    r"|(?<=[A-Za-z][,;])(?=[A-Za-z\d])"  # comma: "Ltd,12"
)


def _respace_token(match: re.Match[str]) -> str:
    token = match.group(0)
    if "/" in token or "@" in token:  # URLs, paths, e-mail addresses
        return token
    spaced = _JOINS.sub(" ", token)
    return _CAMEL_JOIN.sub(" ", spaced) if len(token) >= 12 else spaced


def respace(text: str) -> str:
    """Put back spaces the recogniser dropped, in tokens of 8+ characters.

    Splits at word/number and sentence/comma boundaries, and at camelCase in
    tokens of 12+: "AcmeWidgetsLtd,12HarbourRoad" -> "Acme Widgets Ltd, 12
    Harbour Road", "60.00EUR" -> "60.00 EUR". Left alone: short tokens
    ("iPhone", "M8", "COVID19", "McDonald"), decimals, ordinals ("21st"), URLs
    and e-mail addresses. Lowercase run-togethers ("greyvalues") stay.
    """
    return _LONG_TOKEN.sub(_respace_token, text)


def _work_image(image: Image.Image, max_side: int) -> Image.Image:
    """What recognition crops from: shrunk to ``max_side``, or small images enlarged.

    Images under :data:`DET_SIDE` are enlarged up to 2x (bicubic): on scikit-image's
    384 px ``page.png`` that separates two merged lines and keeps word spaces.
    """
    image = image if image.mode == "RGB" else image.convert("RGB")
    long_side = max(image.size)
    if long_side > max_side:
        return _shrink(image, max_side)
    target = min(2 * long_side, DET_SIDE, max_side)
    if target <= long_side:
        return image
    scale = target / long_side
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.BICUBIC)


def _recognise(image: Image.Image, max_side: int, min_score: float) -> list[OcrLine]:
    engine = get_engine()
    work = _work_image(image, max_side)
    small = _shrink(work, DET_SIDE)
    quads = _detect(engine, _bgr(small))
    if len(quads) == 0:
        return []
    width, height = small.size
    scale = np.array([work.width / width, work.height / height], np.float32)
    crops = engine.get_crop_img_list(_bgr(work), [q * scale for q in quads])
    recognised, _ = engine.text_rec(crops)
    lines = []
    for quad, (raw, score) in zip(quads, recognised, strict=True):
        text = respace(" ".join(unicodedata.normalize("NFKC", str(raw)).split()))
        if not text or float(score) < min_score:
            continue
        x0, y0 = np.clip(quad.min(axis=0) / (width, height), 0.0, 1.0)
        x1, y1 = np.clip(quad.max(axis=0) / (width, height), 0.0, 1.0)
        lines.append(OcrLine(text, (float(x0), float(y0), float(x1), float(y1)), float(score)))
    return _reading_order(lines)


def ocr_image(
    image: Image.Image,
    policy: str = "auto",
    *,
    gate_threshold: float = GATE_THRESHOLD,
    max_side: int = MAX_SIDE,
    min_score: float = MIN_SCORE,
    reload: Callable[[int], Image.Image] | None = None,
) -> OcrResult:
    """Recognise the text lines of an upright RGB image.

    ``policy``: ``"off"`` does nothing (``gated=True``); ``"on"`` always runs
    full OCR; ``"auto"`` runs :func:`ocr_gate` first and full OCR only when
    its score reaches ``gate_threshold``. Full OCR reads the image at up to
    ``max_side`` pixels (long side) and drops lines scoring under
    ``min_score``.

    ``reload``, if given, is called with ``max_side`` when full OCR is about to
    run on an ``image`` smaller than that, and returns a sharper decode of the
    same picture. So a caller can decode at :data:`GATE_STRIP_SIDE` (all the
    gate needs, as cheap as a thumbnail decode for JPEGs) and decode at
    ``max_side`` only for the few images that pass.

    Raises :class:`~mmsearch.errors.ConfigError` for an unknown policy and
    :class:`~mmsearch.errors.MissingDependencyError` without
    ``rapidocr-onnxruntime``.
    """
    if policy not in OCR_POLICIES:
        raise ConfigError(f"unknown OCR policy {policy!r}: use one of {', '.join(OCR_POLICIES)}")
    if max_side < 32:
        raise ConfigError(f"OCR max_side must be at least 32 pixels, not {max_side}")
    if policy == "off":
        return OcrResult([], gated=True, gate_score=0.0, seconds=0.0)
    start = time.perf_counter()
    gate_score = 0.0
    if policy == "auto":
        gate_score = ocr_gate(image, stop_at=gate_threshold)
        if gate_score < gate_threshold:
            return OcrResult([], True, gate_score, time.perf_counter() - start)
    if reload is not None and max(image.size) < max_side:
        image = reload(max_side)
    lines = _recognise(image, max_side, min_score)
    return OcrResult(lines, False, gate_score, time.perf_counter() - start)
