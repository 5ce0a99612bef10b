"""Media for tests: solid-colour images made here, and real photos that ship in packages."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 60, 220)}


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (320, 240), seed: int = 0):
    """A solid-colour image with a little deterministic texture."""
    rng = np.random.default_rng(seed)
    arr = np.empty((size[1], size[0], 3), np.uint8)
    arr[:] = colour
    noise = rng.integers(-12, 13, arr.shape)
    return Image.fromarray(np.clip(arr.astype(int) + noise, 0, 255).astype(np.uint8))


def skimage_data_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def index_skimage_photos(index: Path, model: str) -> Path:
    """Index scikit-image's photos (the README's Quick start library) with ``model``, OCR off."""
    from click.testing import CliRunner

    from mmsearch.cli import cli

    args = ["index", str(skimage_data_dir()), "--index", str(index), "--model", model]
    result = CliRunner().invoke(cli, [*args, "--ocr", "off"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return index


def real_photos(dest: Path) -> dict[str, Path]:
    """Copy a few real photos that ship inside installed packages into ``dest``."""
    from sklearn.datasets import load_sample_image

    dest.mkdir(parents=True, exist_ok=True)
    data = skimage_data_dir()
    out = {}
    for name in ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"):
        src = data / name
        if src.exists():
            out[name.split(".")[0]] = Path(shutil.copy(src, dest / name))
    for name in ("china.jpg", "flower.jpg"):
        path = dest / name
        Image.fromarray(load_sample_image(name)).save(path, quality=92)
        out[name.split(".")[0]] = path
    return out
