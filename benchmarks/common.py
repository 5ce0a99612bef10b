"""Helpers shared by the benchmarks: real photos from installed packages, tables."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

# Package photos with no lettering in them (the astronaut's patches and the
# motorcycle's brand name are text an OCR gate rightly passes).
PLAIN = ("coffee.png", "chelsea.png", "rocket.jpg", "china.jpg", "flower.jpg")


def package_photos(plain: bool = False) -> list[Image.Image]:
    """Real colour photos that ship inside scikit-image and scikit-learn."""
    import skimage
    from sklearn.datasets import load_sample_image

    data = Path(skimage.__file__).parent / "data"
    photos = []
    names = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")
    for name in names:
        if (data / name).exists() and (name in PLAIN or not plain):
            photos.append(Image.open(data / name).convert("RGB"))
    photos += [Image.fromarray(load_sample_image(n)) for n in ("china.jpg", "flower.jpg")]
    return photos


def photo_library(
    folder: Path, n: int, size: tuple[int, int] = (1600, 1200), plain: bool = False
) -> list[Path]:
    """``n`` distinct JPEGs at camera-like size, cut and flipped from the real photos."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    photos = package_photos(plain)
    out = []
    for i in range(n):
        src = photos[i % len(photos)]
        w, h = src.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = src.crop((x, y, x + cw, y + ch)).resize(size, Image.Resampling.BILINEAR)
        if i % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = folder / f"photo-{i:04d}.jpg"
        img.save(path, quality=90)
        out.append(path)
    return out


def random_clip_weights(folder: Path, arch: str = "ViT-B-32") -> Path:
    """An open_clip model of the real architecture with random weights (speed is the same)."""
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(arch)
    path = folder / f"{arch}-random.pt"
    torch.save(model.state_dict(), path)
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def scratch() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="mmsearch-bench-", dir=os.environ.get("TMPDIR"))
