"""Ingest speed: the whole ``mmsearch index`` path against the model alone.

    python -m benchmarks.ingest [--images 200] [--model offline|openclip|hash]

Makes N camera-size JPEGs (1600x1200) from real photos that ship in installed
packages, then measures in one run:

- model alone: the embedder on the same images, already decoded to model size;
- whole path: ``Engine.index`` on the folder (walk, hash, decode in worker
  processes, embed, SQLite, FAISS), with the same embedder instance;

and prints images/s for both and their ratio (whole path / model alone). For
``openclip`` the architecture is ViT-B-32 with random weights: real weights
can't be downloaded here, and speed does not depend on the weight values.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import photo_library, random_clip_weights, scratch, table
from mmsearch import Engine
from mmsearch.decode import load_image
from mmsearch.embedders import create_embedder
from mmsearch.embedders.base import Embedder


def make_embedder(name: str, folder: Path, precision: str) -> Embedder:
    if name == "openclip":
        weights = random_clip_weights(folder)
        return create_embedder("openclip", weights=str(weights), precision=precision)
    if name == "offline":
        return create_embedder("offline", precision=precision)
    return create_embedder(name)


def measure(name: str, n: int, precision: str, batch_size: int) -> list[object]:
    with scratch() as tmp:
        root = Path(tmp)
        files = photo_library(root / "photos", n)
        embedder = make_embedder(name, root, precision)
        images = [load_image(str(p), embedder.image_size).image for p in files]
        embedder.embed_images(images[:batch_size])  # warm-up: lazy loading, kernel caches

        def model_alone() -> float:
            start = time.perf_counter()
            for i in range(0, n, batch_size):
                embedder.embed_images(images[i : i + batch_size])
            return time.perf_counter() - start

        first = model_alone()
        with Engine.open(root / "idx", embedder=embedder, batch_size=batch_size) as engine:
            start = time.perf_counter()
            report = engine.index([root / "photos"])
            whole_s = time.perf_counter() - start
        assert report.added == n, report.skipped
        model_s = min(first, model_alone())  # before and after: the better of two
    model_rate, whole_rate = n / model_s, n / whole_s
    label = f"{name} ({getattr(embedder, 'precision', '-')})"
    return [label, n, round(model_rate, 1), round(whole_rate, 1), whole_rate / model_rate]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--model", action="append", choices=["offline", "openclip", "hash"])
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    rows = [
        measure(m, args.images, args.precision, args.batch_size)
        for m in (args.model or ["offline", "openclip"])
    ]
    print(table(["model", "images", "model img/s", "whole img/s", "whole/model"], rows))


if __name__ == "__main__":
    main()
