"""Colour in pictures: sRGB → CIELAB, colour differences, and a picture's palette.

A *palette* is a picture's few dominant colours, each in CIELAB (D65 white,
the CIE 1976 L*a*b* space, where distances roughly follow what people see)
with the share of the picture it covers: ``[[L, a, b, share], ...]``, shares
summing to 1, largest first. It is what the index keeps of a picture's colour
(one small JSON list per image and per kept video frame) and what ``--color``
searches rank by.

:func:`extract_palette` shrinks the picture to at most ``PALETTE_SIDE`` pixels
(box filter: each small pixel is the mean of the pixels it covers), quantises
it with Pillow's fast octree into ``PALETTE_COLORS`` colours (median cut reads
much the same colours at ten times the cost), and merges colours closer than
``MERGE_DELTA_E`` (CIEDE2000) so a flat picture has one entry, not sixteen
shades of it; colours under ``MIN_SHARE`` of the picture are dropped.

Distances: :func:`delta_e76` (Euclidean in Lab) and :func:`ciede2000`
(Sharma, Wu & Dalal 2005, "The CIEDE2000 color-difference formula:
implementation notes, supplementary test data, and mathematical observations",
whose test pairs the unit tests check). Pure numpy, no storage, no model.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from PIL import Image

PALETTE_SIDE = 64  # long side of the copy a palette is read from (4096 pixels at most)
PALETTE_COLORS = 16  # octree colours before merging
MERGE_DELTA_E = 6.0  # CIEDE2000 below which two palette colours are one
MIN_SHARE = 0.01  # palette entries covering less of the picture are dropped

_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_EPSILON = 216 / 24389  # CIE: (6/29)^3
_KAPPA = 24389 / 27


def srgb_to_lab(rgb: Any) -> np.ndarray:
    """CIELAB (D65) of sRGB colours: ``(..., 3)`` values in 0-255 → ``(..., 3)`` L*, a*, b*."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE_D65
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), (_KAPPA * xyz + 16) / 116)
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


def lab_to_srgb(lab: Any) -> np.ndarray:
    """The inverse of :func:`srgb_to_lab`, clipped to 0-255 (for showing a colour as #RRGGBB)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f**3 > _EPSILON, f**3, (116 * f - 16) / _KAPPA) * _WHITE_D65
    linear = np.clip(xyz @ np.linalg.inv(_RGB_TO_XYZ).T, 0, 1)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.round(c * 255), 0, 255)


def to_hex(lab: Any) -> str:
    r, g, b = (int(v) for v in lab_to_srgb(lab))
    return f"#{r:02x}{g:02x}{b:02x}"


def delta_e76(lab1: Any, lab2: Any) -> np.ndarray:
    """CIE 1976 colour difference: the Euclidean distance in Lab (broadcasts)."""
    diff = np.asarray(lab1, dtype=np.float64) - np.asarray(lab2, dtype=np.float64)
    return np.sqrt((diff**2).sum(axis=-1))


def ciede2000(lab1: Any, lab2: Any) -> np.ndarray:
    """CIEDE2000 colour difference (kL = kC = kH = 1), broadcasting over leading axes.

    Follows the implementation notes of Sharma, Wu & Dalal (2005), equations 1-17.
    """
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    both = (c1p * c2p) != 0
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(both, dh, 0.0)
    d_l = l2 - l1
    d_c = c2p - c1p
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    l_mean = (l1 + l2) / 2
    cp_mean = (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(
        np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, h_sum + 360, h_sum - 360) / 2
    )
    h_mean = np.where(both, h_mean, h_sum)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    d_theta = 30 * np.exp(-(((h_mean - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt(
        (d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h)
    )


def extract_palette(image: Image.Image, colors: int = PALETTE_COLORS) -> list[list[float]]:
    """The dominant colours of an RGB picture: ``[[L, a, b, share], ...]``, largest first.

    Rounded to 0.1 Lab unit and 0.001 share (what the index stores); see the
    module docstring for the method.
    """
    small = image.convert("RGB") if image.mode != "RGB" else image
    factor = max(small.size) // (2 * PALETTE_SIDE)
    if factor >= 2:  # integer box reduction first: cheap, and the same means
        small = small.reduce(factor)
    if max(small.size) > PALETTE_SIDE:
        small = small.resize(_fit(small.size), Image.Resampling.BOX)
    quantised = small.quantize(colors=colors, method=Image.Quantize.FASTOCTREE)
    counts = quantised.getcolors(colors) or []
    flat = quantised.getpalette() or []
    total = float(sum(n for n, _ in counts)) or 1.0
    pairs = sorted(((n, cast(int, i)) for n, i in counts), key=lambda c: (-c[0], c[1]))
    shares = [n / total for n, _ in pairs]
    labs = srgb_to_lab([flat[3 * i : 3 * i + 3] for _, i in pairs]).reshape(-1, 3)
    close = ciede2000(labs[:, None, :], labs[None, :, :]) < MERGE_DELTA_E
    merged: list[tuple[float, np.ndarray, int]] = []  # share, Lab, the entry it started from
    for j, (share, lab) in enumerate(zip(shares, labs, strict=True)):
        # heaviest first: each colour joins the first kept colour close to it
        for m, (kept_share, kept_lab, first) in enumerate(merged):
            if close[first, j]:
                both = kept_share + share
                merged[m] = (both, (kept_lab * kept_share + lab * share) / both, first)
                break
        else:
            merged.append((share, lab, j))
    kept_entries = [(s, lab) for s, lab, _ in merged if s >= MIN_SHARE]
    kept = sum(s for s, _ in kept_entries) or 1.0
    kept_entries.sort(key=lambda m: -m[0])
    return [[*(round(float(v), 1) for v in lab), round(s / kept, 3)] for s, lab in kept_entries]


def _fit(size: tuple[int, int]) -> tuple[int, int]:
    scale = PALETTE_SIDE / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))
