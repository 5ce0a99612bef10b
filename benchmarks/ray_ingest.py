"""Distributed ingestion: ``mmsearch index --ray`` with 1 and 2 workers beside the local path.

    python -m benchmarks.ray_ingest [--images 120] [--model offline|hash]

Makes N camera-size JPEGs (1600x1200) from the package photos, then indexes
them into fresh indexes in one run: the local path (decoding worker processes
and the model in this process), and Ray Data on a local head node
(``ray.init(num_cpus=2)``) with an actor pool of 1 and of 2 workers, each
loading the model once. Reports images/s and the ratio to the local path.
The cluster's start (about 15 s) is measured apart and not counted; each Ray
run does include its actors loading the model.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import photo_library, scratch, table
from mmsearch import Engine


def run(root: Path, model: str, n: int, ray_workers: int | None) -> float:
    name = "local" if ray_workers is None else f"ray{ray_workers}"
    extra = {} if ray_workers is None else {"ray": "auto", "workers": ray_workers}
    with Engine.open(root / f"idx-{name}", model=model, ocr="off", **extra) as engine:
        start = time.perf_counter()
        report = engine.index([root / "photos"])
        seconds = time.perf_counter() - start
    assert report.added == n, report.skipped
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--model", default="offline", choices=["offline", "hash"])
    args = parser.parse_args()
    import ray

    with scratch() as tmp:
        root = Path(tmp)
        photo_library(root / "photos", args.images)
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        start_s = time.perf_counter() - started
        try:
            local = run(root, args.model, args.images, None)
            rows: list[list[object]] = [["local", round(args.images / local, 1), 1.0]]
            for workers in (1, 2):
                seconds = run(root, args.model, args.images, workers)
                rows.append([f"ray, {workers} worker(s)", round(args.images / seconds, 1)])
                rows[-1].append(local / seconds)
        finally:
            ray.shutdown()
    print(f"{args.images} images, model {args.model}; Ray head start {start_s:.1f} s (not counted)")
    print(table(["path", "images/s", "vs local"], rows))


if __name__ == "__main__":
    main()
