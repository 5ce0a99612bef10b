"""Pixel-level fingerprints of pictures, for telling a copy from a look-alike.

A semantic model puts two different photos of the same kind of thing close
together; these functions look at the pixels instead, so a near-duplicate
needs both. Pure functions of a decoded PIL image (no files, no storage):

- :func:`fingerprint` trims a plain border (a grey frame, a letterbox, the flat
  margin of a screenshot), then keeps a 64-bit DCT perceptual hash (pHash:
  the signs of the 8x8 lowest frequencies of a 32x32 grey copy against their
  median; Zauner, "Implementation and Benchmarking of Perceptual Image Hash
  Functions", 2010) and a small grey thumbnail.
- :func:`hash_distance`: the Hamming distance of two hashes (0-64).
- :func:`pixel_match`: the best normalised cross-correlation of the two
  thumbnails when one is allowed to be a crop (down to ``MIN_CROP`` of each
  side) of the other; 1.0 is the same picture. Robust to re-encoding and
  resizing (the thumbnails are tiny) and to a small crop (the search).
- ``informative``: False for a picture that carries no information (black,
  one flat colour, the dark end of a fade), which must never make two files
  duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

HASH_SIDE = 32  # pHash works on a 32x32 grey copy
HASH_BITS = 8  # and keeps the 8x8 lowest frequencies: 64 bits
THUMB_SIDE = 64  # long side of the thumbnail pixel_match compares
COMPARE_SIDE = 32  # both pictures are resampled to this square for one comparison
MIN_CROP = 0.8  # pixel_match tries crops down to 80% of a side (a crop of up to 10% each end)
QUICK_ACCEPT = 0.98  # whole-frame correlation at which no crop is searched (the same frame)
QUICK_REJECT = 0.4  # whole-frame correlation under which no crop is searched...
QUICK_HASH_BITS = 20  # ...unless the pHashes are this close
FLAT_STD = 10.0  # grey standard deviation (0-255) under which a picture is flat
_BORDER_STD = 4.0  # a border row or column varies less than this
_BORDER_MAX = 0.35  # at most this fraction of a side is trimmed as border
_WORK_SIDE = 256  # long side the trimming and hashing start from


@dataclass(frozen=True)
class Fingerprint:
    """What the pixel check keeps of one picture."""

    phash: int  # 64-bit DCT hash
    thumb: np.ndarray  # float32 grey, long side THUMB_SIDE, border trimmed
    informative: bool  # False for black, flat colour, a fade's dark end
    std: float  # grey standard deviation of the trimmed picture (0-255)


def _grey(image: Image.Image) -> np.ndarray:
    im = image if image.mode == "L" else image.convert("L")
    if max(im.size) > _WORK_SIDE:
        im = im.copy()
        im.thumbnail((_WORK_SIDE, _WORK_SIDE), Image.Resampling.BOX)
    return np.asarray(im, dtype=np.float32)


def trim_border(grey: np.ndarray) -> np.ndarray:
    """``grey`` without flat rows and columns at its edges (at most ``_BORDER_MAX`` per side).

    Trimmed in rounds, so that a title bar across the top of a screenshot does
    not keep its flat side margins from being seen as flat.
    """
    out = grey
    for _ in range(3):
        h, w = out.shape
        rows_std, cols_std = out.std(axis=1), out.std(axis=0)
        top = _flat_run(rows_std, int(h * _BORDER_MAX))
        bottom = _flat_run(rows_std[::-1], int(h * _BORDER_MAX))
        left = _flat_run(cols_std, int(w * _BORDER_MAX))
        right = _flat_run(cols_std[::-1], int(w * _BORDER_MAX))
        if h - top - bottom < 8 or w - left - right < 8:
            return out
        if top == bottom == left == right == 0:
            break
        out = out[top : h - bottom, left : w - right]
    return out


def _flat_run(stds: np.ndarray, limit: int) -> int:
    flat = stds[:limit] < _BORDER_STD
    return int(limit if flat.all() else np.argmin(flat))


@lru_cache(maxsize=4)
def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float64)


def _resized(grey: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    im = Image.fromarray(grey.astype(np.float32), mode="F")
    return np.asarray(im.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def phash(grey: np.ndarray) -> int:
    """The 64-bit DCT perceptual hash of a grey array."""
    small = _resized(grey, (HASH_SIDE, HASH_SIDE)).astype(np.float64)
    d = _dct_matrix(HASH_SIDE)
    low = (d @ small @ d.T)[:HASH_BITS, :HASH_BITS].ravel()
    bits = low > np.median(low[1:])
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def fingerprint(image: Image.Image) -> Fingerprint:
    """The fingerprint of a decoded picture (any mode, upright as shown)."""
    grey = trim_border(_grey(image))
    std = float(grey.std())
    h, w = grey.shape
    scale = THUMB_SIDE / max(h, w)
    thumb = _resized(grey, (max(4, round(w * scale)), max(4, round(h * scale))))
    return Fingerprint(phash(grey), thumb, std >= FLAT_STD, std)


def hash_distance(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes."""
    return (a ^ b).bit_count()


def _ncc(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denom) if denom > 1e-6 else 0.0


_SCALES = (1.0, 0.9, MIN_CROP)
_PLACES = (0.0, 0.5, 1.0)
_STEPS = ((0.05, 0.25), (0.025, 0.125))  # refinement: scale step, place step


def _window_score(
    outer: np.ndarray, target: np.ndarray, sy: float, sx: float, py: float, px: float
) -> float:
    h, w = outer.shape
    wh, ww = max(2, round(h * sy)), max(2, round(w * sx))
    top, left = round((h - wh) * py), round((w - ww) * px)
    window = outer[top : top + wh, left : left + ww]
    return _ncc(_resized(window, target.shape[::-1]), target)


def _best_window(outer: np.ndarray, inner: np.ndarray) -> float:
    """Best correlation of ``inner`` against windows of ``outer`` (``inner`` a crop of it).

    A coarse grid of window sizes and places, then two rounds of local
    refinement around the best one.
    """
    target = _resized(inner, (COMPARE_SIDE, COMPARE_SIDE))
    grid = [
        (sy, sx, py, px)
        for sy in _SCALES
        for sx in _SCALES
        for py in (_PLACES if sy < 1 else (0.5,))
        for px in (_PLACES if sx < 1 else (0.5,))
    ]
    scored = [(_window_score(outer, target, *g), g) for g in grid]
    best, grid_best = max(scored)
    at = list(grid_best)
    for ds, dp in _STEPS:  # coordinate ascent: each parameter a step either way
        improved = True
        while improved:
            improved = False
            for i, step in enumerate((ds, ds, dp, dp)):
                for sign in (-1, 1):
                    cand = list(at)
                    low = MIN_CROP if i < 2 else 0.0
                    cand[i] = min(1.0, max(low, cand[i] + sign * step))
                    score = _window_score(outer, target, *cand)
                    if score > best + 1e-6:
                        best, at, improved = score, cand, True
    return best


def pixel_match(a: Fingerprint, b: Fingerprint) -> float:
    """How well the two pictures' pixels agree, allowing one to be a small crop of the other.

    The best normalised cross-correlation (-1..1) over crops of either picture
    down to ``MIN_CROP`` of each side; 0.0 when either picture is flat. Pairs
    that disagree at a glance (whole-frame correlation under ``QUICK_REJECT``
    and hashes far apart), or agree at once (at least ``QUICK_ACCEPT``), are
    not searched: their whole-frame correlation is returned.
    """
    if not (a.informative and b.informative):
        return 0.0
    size = (COMPARE_SIDE, COMPARE_SIDE)
    quick = _ncc(_resized(a.thumb, size), _resized(b.thumb, size))
    if quick >= QUICK_ACCEPT:
        return quick
    if quick < QUICK_REJECT and hash_distance(a.phash, b.phash) > QUICK_HASH_BITS:
        return quick
    return max(_best_window(a.thumb, b.thumb), _best_window(b.thumb, a.thumb))
