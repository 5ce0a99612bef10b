"""Ingest speed: the whole ``mmsearch index`` path against the model alone.

    python -m benchmarks.ingest [--images 200] [--model offline|openclip|hash] [--ocr] [--color]

Makes N camera-size JPEGs (1600x1200) from real photos that ship in installed
packages, then measures in one run:

- model alone: the embedder on the same images, already decoded to model size;
- whole path: ``Engine.index`` on the folder (walk, hash, decode in worker
  processes, embed, SQLite, FAISS), with the same embedder instance and
  ``--ocr off``; with ``--ocr``, again with ``--ocr auto`` (the text-detection
  gate on every photo), into a fresh index;

and prints images/s for both and their ratio (whole path / model alone), and
what ``--ocr auto`` adds on these plain photos. With ``--color``, the whole
path runs twice more, with ``--palette off`` and again on (the default), and
the table gives what reading palettes costs (the better of two runs each), and
the palette extraction alone in ms per image (on the same 800 px decodes,
one process), against the whole path's ms per image. For
``openclip`` the architecture is ViT-B-32 with random weights: real weights
can't be downloaded here, and speed does not depend on the weight values.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import photo_library, random_clip_weights, scratch, table
from mmsearch import Engine
from mmsearch.embedders import create_embedder
from mmsearch.embedders.base import Embedder
from mmsearch.media.decode import load_image


def make_embedder(name: str, folder: Path, precision: str) -> Embedder:
    if name == "openclip":
        weights = random_clip_weights(folder)
        return create_embedder("openclip", weights=str(weights), precision=precision)
    if name == "offline":
        return create_embedder("offline", precision=precision)
    return create_embedder(name)


def measure(
    name: str,
    n: int,
    precision: str,
    batch_size: int,
    with_ocr: bool,
    plain: bool = False,
    with_color: bool = False,
) -> list[object]:
    with scratch() as tmp:
        root = Path(tmp)
        files = photo_library(root / "photos", n, plain=plain)
        embedder = make_embedder(name, root, precision)
        images = [load_image(str(p), embedder.image_size).image for p in files]
        embedder.embed_images(images[:batch_size])  # warm-up: lazy loading, kernel caches

        def model_alone() -> float:
            start = time.perf_counter()
            for i in range(0, n, batch_size):
                embedder.embed_images(images[i : i + batch_size])
            return time.perf_counter() - start

        first = model_alone()
        whole_s = whole(root, embedder, batch_size, "off", n)
        model_s = min(first, model_alone())  # before and after: the better of two
        ocr_s = whole(root, embedder, batch_size, "auto", n) if with_ocr else None
        if with_color:
            off_s = whole(root, embedder, batch_size, "off", n, palette="off")
            on_s = min(whole_s, whole(root, embedder, batch_size, "off", n, tag="again"))
            off_s = min(off_s, whole(root, embedder, batch_size, "off", n, "off", "again"))
            palette_ms = palette_alone(files)
    model_rate, whole_rate = n / model_s, n / whole_s
    label = f"{name} ({getattr(embedder, 'precision', '-')})"
    row: list[object] = [label, n, round(model_rate, 1), round(whole_rate, 1)]
    row.append(whole_rate / model_rate)
    if ocr_s is not None:
        row += [round(n / ocr_s, 1), f"{100 * (ocr_s / whole_s - 1):+.0f}%"]
    if with_color:
        row += [round(n / off_s, 1), round(n / on_s, 1), f"{100 * (on_s / off_s - 1):+.1f}%"]
        row += [round(palette_ms, 2), round(1000 * on_s / n, 1)]
    return row


def palette_alone(files: list[Path]) -> float:
    """ms per image of :func:`extract_palette` on the 800 px decode indexing makes."""
    from mmsearch.media.decode import DECODE_SIDE, decode_upright
    from mmsearch.media.palette import extract_palette

    decodes = [decode_upright(str(p), DECODE_SIDE).image for p in files]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for image in decodes:
            extract_palette(image)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / len(files)


def whole(
    root: Path,
    embedder: Embedder,
    batch_size: int,
    ocr: str,
    n: int,
    palette: str = "on",
    tag: str = "",
) -> float:
    """Seconds for ``Engine.index`` on the photos into a fresh index."""
    folder = root / f"idx-{ocr}-{palette}{tag}"
    options = {"batch_size": batch_size, "ocr": ocr, "palette": palette}
    with Engine.open(folder, embedder=embedder, **options) as e:
        start = time.perf_counter()
        report = e.index([root / "photos"])
        seconds = time.perf_counter() - start
    assert report.added == n, report.skipped
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--model", action="append", choices=["offline", "openclip", "hash"])
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--ocr", action="store_true", help="also run the whole path with --ocr auto"
    )
    parser.add_argument(
        "--color",
        action="store_true",
        help="also run the whole path with --palette off, and time the palettes alone",
    )
    parser.add_argument(
        "--plain", action="store_true", help="only package photos with no lettering in them"
    )
    args = parser.parse_args()
    rows = [
        measure(m, args.images, args.precision, args.batch_size, args.ocr, args.plain, args.color)
        for m in (args.model or ["offline", "openclip"])
    ]
    headers = ["model", "images", "model img/s", "whole img/s", "whole/model"]
    if args.ocr:
        headers += ["whole img/s, ocr auto", "ocr auto cost"]
    if args.color:
        headers += ["whole img/s, no palette", "whole img/s, palette", "palette cost"]
        headers += ["palette alone ms/img", "whole ms/img"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
