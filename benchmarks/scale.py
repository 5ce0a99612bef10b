"""Large libraries: import rate, build time, sizes, memory, recall and latency at 10k-1M segments.

    python -m benchmarks.scale            # 1k, 10k, 100k, 1M and the growth curve 100k -> 1M
    python -m benchmarks.scale --quick    # 1k, 10k, 100k and a growth curve 20k -> 100k
    python -m benchmarks.scale --sizes 10000,50000 --growth 10000,50000,4

Vectors: 512-d, unit norm, shaped like a photo library's image embeddings (CLIP
image-image cosines: about 0.4-0.5 between unrelated photos, 0.8-0.9 to the nearest
neighbour). Each is the sum, normalised, of a mean direction shared by all (weight
0.65: the "cone" that puts unrelated pairs at a cosine of about 0.4), one of 50 topic
centres (0.45), a point of a continuous 16-d "style" subspace shared by the topics
(0.6: pose, light, framing; the part that makes neighbours cross IVF cells) and
isotropic noise (0.15). The run prints the statistics it got (random-pair cosine, the
mean cosine of a query to its 1st, 10th and 100th neighbour): measured at 100k,
0.43 / 0.89 / 0.84 / 0.78. An earlier version used 1,000 tight topics with no shared
direction; IVF found every neighbour in one list (nprobe 1), which real embeddings
do not allow. Queries are 200 more vectors from the same distribution, not stored.
Paths are made up
(``/archive/NNNN/imgNNNNNNN.jpg``: the files are not on this machine) and every row
carries a tag ``set`` of 100 values, so ``--where set=7`` keeps 1% of the segments
(the selective filter). The index uses the ``hash`` embedder at 512-d: the library
searches are ``--like`` an indexed file (its stored vector), so no model is timed
there; the offline model's text encoder is timed on its own (a text query adds it).

Reported per size: import rate (segments/s, SQLite + vector store, training
excluded), build and training time, file sizes, resident memory of a fresh process
after opening the index and after its first search, R@10 of the store against exact
search, p50/p99 of the bare store search and of the full library search
(``Engine.run``: vector, search, metadata, roll-up, cutoff, page) without and with
the 1% filter, and a cold CLI ``search --like`` (a new process). The growth curve
imports in steps, deleting 1% of the files each step, and compares R@10 with a fresh
build over the same vectors searched with the same budget (the grown index's tuned
nprobe and re-rank; the fresh build is not tuned itself, which would only cost time).
Once per run: the filter paths at the largest size, exact search's time by size (the
20,000 threshold), and the offline text encoder's time. Timings move with the
machine (the same run has measured bare FAISS at 2.3 and 3.7 ms on different days):
read each size's library time beside its bare FAISS time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DIM = 512
TOPICS = 50
STYLE_DIM = 16
# the four parts of a vector, before it is normalised: see the module docstring
MEAN_WEIGHT, TOPIC_WEIGHT, STYLE_WEIGHT, NOISE_WEIGHT = 0.65, 0.45, 0.6, 0.15
QUERIES = 200
COLD_RUNS = 5  # new processes timed per size (median)
LIBRARY_QUERIES = 200  # library searches timed per size (and per filter)


def make_vectors(n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors shaped like a photo library's image embeddings (module docstring)."""
    shared = np.random.default_rng(12345)
    mean = shared.standard_normal(DIM).astype(np.float32)
    mean /= np.linalg.norm(mean)
    topics = shared.standard_normal((TOPICS, DIM)).astype(np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    style = np.linalg.qr(shared.standard_normal((DIM, STYLE_DIM)))[0].astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        z = rng.standard_normal((m, STYLE_DIM), dtype=np.float32) / np.sqrt(STYLE_DIM)
        e = rng.standard_normal((m, DIM), dtype=np.float32) / np.sqrt(DIM)
        x = MEAN_WEIGHT * mean + TOPIC_WEIGHT * topics[rng.integers(0, TOPICS, m)]
        x += STYLE_WEIGHT * (z @ style.T) + NOISE_WEIGHT * e
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def data_statistics(vectors: np.ndarray, queries: np.ndarray) -> dict[str, float]:
    """Mean cosine of random pairs, and of each query to its 1st, 10th and 100th neighbour."""
    half = min(len(vectors) // 2, 2000)
    pairs = float(np.mean(np.sum(vectors[:half] * vectors[half : 2 * half], axis=1)))
    sims = queries @ vectors.T
    near = min(100, sims.shape[1])
    top = -np.sort(np.partition(-sims, near - 1, axis=1)[:, :near], axis=1)
    out = {"random_pair_cos": round(pairs, 3)}
    for k in (1, 10, 100):
        if top.shape[1] >= k:
            out[f"neighbour_{k}_cos"] = round(float(top[:, k - 1].mean()), 3)
    return out


def paths_for(first: int, n: int) -> list[str]:
    return [f"/archive/{i // 1000:04d}/img{i:07d}.jpg" for i in range(first, first + n)]


def write_parquet(target: Path, vectors: np.ndarray, first: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(vectors)
    tags = pa.array(
        [[("set", str(i % 100))] for i in range(first, first + n)],
        type=pa.map_(pa.string(), pa.string()),
    )
    vec = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM)
    pq.write_table(pa.table({"path": paths_for(first, n), "vector": vec, "tags": tags}), target)


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(
        len(set(f[:10].tolist()) & set(t[:10].tolist())) for f, t in zip(found, truth, strict=False)
    )
    return hits / (10 * len(truth))


def exact_ids(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The ids of each query's 10 nearest vectors, best first (a partition, then 10 sorted)."""
    sims = queries @ vectors.T
    top = np.argpartition(-sims, 9, axis=1)[:, :10]
    order = np.argsort(-np.take_along_axis(sims, top, 1), axis=1)
    return ids[np.take_along_axis(top, order, 1)]


def percentiles(times: list[float]) -> tuple[float, float]:
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def folder_size(folder: Path) -> dict[str, int]:
    out = {"sqlite": 0, "vectors": 0}
    for f in folder.iterdir():
        key = "sqlite" if f.name.startswith("index.sqlite") else "vectors"
        if f.name.startswith(("index.sqlite", "vectors-")):
            out[key] += f.stat().st_size
    return out


def cold(folder: Path, like: str) -> tuple[float, float, float]:
    """(seconds of a cold ``search --like`` CLI run, the median of :data:`COLD_RUNS` new
    processes; resident MB of a fresh process after ``Engine.open`` and after its first search).

    Resident memory is read from ``/proc/self/status`` (``VmRSS``): ``ru_maxrss`` would
    report the peak of the parent this probe was forked from.
    """
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "mmsearch", "search", "--like", like]
    command += ["--index", str(folder), "--json", "-k", "10"]
    runs = []
    for _ in range(COLD_RUNS):  # the median: the first run of a size also warms its files
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        runs.append(time.perf_counter() - started)
    seconds = float(np.median(runs))
    probe = (
        "import re, sys\n"
        "from mmsearch import Engine\n"
        "from mmsearch.search.query import Query\n"
        "def rss():\n"
        "    status = open('/proc/self/status').read()\n"
        "    return int(re.search(r'VmRSS:\\s+(\\d+)', status).group(1)) / 1024\n"
        "e = Engine.open(sys.argv[1])\n"
        "opened = rss()\n"
        "e.run(Query().like(sys.argv[2]).options(limit=10))\n"
        "print(opened, rss())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(folder), like],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    opened, searched = out.stdout.strip().splitlines()[-1].split()
    return seconds, float(opened), float(searched)


def one_size(n: int, work: Path, crossover: bool = False) -> dict[str, Any]:
    from mmsearch import Engine
    from mmsearch.embedders.hashing import HashEmbedder
    from mmsearch.search.query import Query

    vectors = make_vectors(n, seed=n)
    queries = make_vectors(QUERIES, seed=7)
    source = work / f"v{n}.parquet"
    write_parquet(source, vectors, 0)
    folder = work / f"idx{n}"
    with Engine.open(folder, embedder=HashEmbedder(dim=DIM)) as engine:
        started = time.perf_counter()
        engine.import_embeddings(source)
        total = time.perf_counter() - started
        build = dict(engine.vectors.last_build)  # type: ignore[attr-defined]
        info = engine.vectors.describe()  # type: ignore[attr-defined]
    training = float(build.get("build_seconds", 0.0)) + float(build.get("tune_seconds", 0.0))
    row: dict[str, Any] = {
        "segments": n,
        "index": info.get("index", info["kind"]),
        "nprobe": info.get("nprobe"),
        "rerank": info.get("rerank"),
        "import_per_s": round(n / max(total - training, 1e-9)),
        "build_s": round(training, 1),
        **{f"{k}_mb": round(v / 2**20, 1) for k, v in folder_size(folder).items()},
    }
    row["cold_cli_s"], row["rss_open_mb"], row["rss_query_mb"] = cold(folder, paths_for(0, 1)[0])
    with Engine.open(folder) as engine:
        store = engine.vectors
        ids = np.arange(1, n + 1, dtype=np.int64)  # segment ids of a fresh import
        truth = exact_ids(vectors, ids, queries)
        found = np.stack([store.search(q, 10)[1][0] for q in queries])
        row["recall_at_10"] = round(recall_at_10(found, truth), 4)
        times = []
        for q in queries:
            t = time.perf_counter()
            store.search(q, 10)
            times.append(time.perf_counter() - t)
        row["faiss_p50_ms"], row["faiss_p99_ms"] = percentiles(times)
        for label, where in (("lib", {}), ("lib_filtered", {"tags": {"set": "7"}})):
            for i in range(5):  # warm: the server's case (page cache, in-memory caches)
                engine.run(Query().like(paths_for(i * 7 % n, 1)[0]).options(limit=10))
            times = []
            for i in range(LIBRARY_QUERIES):
                query = Query().like(paths_for(i * 13 % n, 1)[0]).options(limit=10)
                if where:
                    query = query.where(**where)
                t = time.perf_counter()
                engine.run(query)
                times.append(time.perf_counter() - t)
            row[f"{label}_p50_ms"], row[f"{label}_p99_ms"] = percentiles(times)
        if crossover:
            row["filters"] = filter_crossover(engine, queries)
    row["data"] = data_statistics(vectors, queries)
    return row


def filter_crossover(engine: Any, queries: np.ndarray) -> list[dict[str, Any]]:
    """Median ms of the three ways to search a filter's allowed set, by its size.

    ``sqlite_scan``: the searcher's exact scan of the stored vectors read from SQLite (the
    path for stores that don't scan, Milvus); ``store_scan``: the FAISS store's exact scan of
    its own (memory-mapped) vectors; ``ann_selector``: the ANN index searched with an ID
    selector. ``mmsearch.store.vectors.SCAN_MAX`` comes from this table.
    """
    from mmsearch.store import faiss_search

    store, searcher = engine.vectors, engine.searcher
    live = np.sort(store.ids())
    rng = np.random.default_rng(11)
    out = []
    for size in (256, 1024, 2048, 4096, 16384):
        if size > len(live) // 4:
            break
        allowed = np.sort(rng.choice(live, size, replace=False))
        row: dict[str, Any] = {"allowed": size}
        ways = {
            "sqlite_scan_ms": lambda q, a=allowed: searcher.scan(q[None], 200, a),
            "store_scan_ms": lambda q, a=allowed: store._scan_main(q[None], 200, a),
            "ann_selector_ms": lambda q, a=allowed: store.search(q[None], 200, a),
        }
        for label, way in ways.items():
            saved, faiss_search.SCAN_MAX = faiss_search.SCAN_MAX, 0  # the ANN path, unscanned
            try:
                times = []
                for q in queries[:40]:
                    t = time.perf_counter()
                    way(q)
                    times.append(time.perf_counter() - t)
            finally:
                faiss_search.SCAN_MAX = saved
            row[label] = round(float(np.median(times)) * 1e3, 2)
        out.append(row)
    return out


def exact_curve(sizes: tuple[int, ...] = (10_000, 20_000, 30_000, 50_000)) -> dict[str, float]:
    """p50 ms of one query on an exact FAISS index (one thread, as a single query runs)."""
    import faiss

    queries = make_vectors(100, seed=5)
    out = {}
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        for n in sizes:
            index = faiss.IndexFlatIP(DIM)
            index.add(make_vectors(n, seed=n + 1))
            times = []
            for q in queries:
                t = time.perf_counter()
                index.search(q[None], 200)
                times.append(time.perf_counter() - t)
            out[str(n)] = round(float(np.median(times)) * 1e3, 2)
    finally:
        faiss.omp_set_num_threads(before)
    return out


def text_encoding() -> dict[str, float] | None:
    """p50 ms of the offline model's text encoder on a short query (numpy MiniLM), warm:
    what a text query adds to the ``--like`` library timings. None without its weights."""
    from mmsearch.embedders import create_embedder
    from mmsearch.errors import MmsearchError

    try:
        embedder = create_embedder("offline")
        embedder.embed_texts(["warm up"])
    except (MmsearchError, ImportError, OSError):
        return None
    times = []
    for i in range(100):
        t = time.perf_counter()
        embedder.embed_texts([f"a cup of coffee on a table {i}"])
        times.append(time.perf_counter() - t)
    p50, p99 = percentiles(times)
    return {"p50_ms": round(p50, 2), "p99_ms": round(p99, 2)}


def growth(first: int, last: int, steps: int, work: Path) -> list[dict[str, Any]]:
    """Import ``first`` rows, then ``steps`` more batches up to ``last``, deleting 1% each step."""
    from mmsearch import Engine
    from mmsearch.embedders.hashing import HashEmbedder
    from mmsearch.store.faiss_store import FaissStore

    class Untuned(FaissStore):
        def _tune(self, queries: np.ndarray) -> None:
            """No tuning: the comparison searches with the grown index's nprobe and re-rank."""

    folder = work / "grown"
    queries = make_vectors(QUERIES, seed=7)
    sizes = [first] + [first + (last - first) * (s + 1) // steps for s in range(steps)]
    rng = np.random.default_rng(3)
    out = []
    done = 0
    with Engine.open(folder, embedder=HashEmbedder(dim=DIM)) as engine:
        for size in sizes:
            batch = make_vectors(size - done, seed=size)
            source = work / f"grow{size}.parquet"
            write_parquet(source, batch, done)
            started = time.perf_counter()
            engine.import_embeddings(source)
            seconds = time.perf_counter() - started
            source.unlink()
            done = size
            live = engine.vectors.ids()  # type: ignore[attr-defined]
            gone = rng.choice(live, len(live) // 100, replace=False)
            with engine.meta.sessions.begin() as s:
                from sqlalchemy import select

                from mmsearch.store.schema import Segment

                asset_ids = list(
                    s.scalars(
                        select(Segment.asset_id).where(
                            Segment.id.in_([int(i) for i in gone[:30000]])
                        )
                    )
                )
                removed = engine.meta.delete_assets(s, sorted(set(asset_ids)))
            engine.vectors.remove(np.asarray(removed, dtype=np.int64))
            engine.vectors.save()
            store = engine.vectors
            live = store.ids()  # type: ignore[attr-defined]
            vecs = store.vectors_of(live)  # type: ignore[attr-defined]
            truth = exact_ids(vecs, live, queries)
            grown = recall_at_10(store.search(queries, 10)[1], truth)
            fresh = Untuned(str(work / "fresh-build.faiss"), DIM)
            fresh.rebuild_main([(live, vecs)])
            # the same search budget as the grown index (its tuned nprobe and re-rank), so
            # the gap shows what growing cost and not where each tuning's doubling landed
            for key in ("nprobe", "ef_search", "rerank"):
                if key in store.params:  # type: ignore[attr-defined]
                    fresh.params[key] = store.params[key]  # type: ignore[attr-defined]
            rebuilt = recall_at_10(fresh.search(queries, 10)[1], truth)
            out.append(
                {
                    "segments": len(live),
                    "step_s": round(seconds, 1),
                    "grown_recall": round(grown, 4),
                    "fresh_build_recall": round(rebuilt, 4),
                    "gap": round(rebuilt - grown, 4),
                    "nprobe": store.params.get("nprobe"),  # type: ignore[attr-defined]
                    **{k: store.describe()[k] for k in ("kind", "fresh", "deleted", "trained_on")},  # type: ignore[attr-defined]
                }
            )
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k-100k; growth 20k -> 100k")
    parser.add_argument("--sizes", help="comma-separated index sizes")
    parser.add_argument("--growth", help="FIRST,LAST,STEPS of the growth curve (0 to skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [1_000, 10_000, 100_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    grow = (20_000, 100_000, 4) if args.quick else (100_000, 1_000_000, 10)
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    if args.growth:
        parts = [int(s) for s in args.growth.split(",")]
        grow = (parts[0], parts[1], parts[2]) if len(parts) == 3 else (0, 0, 0)
    started = time.perf_counter()
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result["sizes"] = []
        for n in sizes:
            result["sizes"].append(one_size(n, work, crossover=n == max(sizes)))
            shutil.rmtree(work / f"idx{n}")  # a 1M index is 3 GB: one on disk at a time
            print(json.dumps(result["sizes"][-1]), file=sys.stderr, flush=True)
        result["growth"] = growth(*grow, work) if grow[2] else []
    result["exact_p50_ms_by_size"] = exact_curve()
    result["text_encoding"] = text_encoding()
    largest = result["sizes"][-1]
    result["filters"] = largest.pop("filters", [])
    result["data"] = largest["data"]
    for row in result["sizes"]:
        row.pop("data")
    smallest = result["sizes"][0]
    for row in result["sizes"]:  # the cold-start target: within 1.3x of the smallest index
        row["cold_vs_smallest"] = round(row["cold_cli_s"] / smallest["cold_cli_s"], 2)
    if result["growth"]:
        result["max_gap"] = max(row["gap"] for row in result["growth"])
    result["seconds"] = round(time.perf_counter() - started)
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result["sizes"]))
        print(f"\ndata (largest size): {result['data']}")
        if result["filters"]:
            print(f"\nfilter paths at {largest['segments']:,} segments (median ms, top 200):")
            print(table(result["filters"]))
        print(f"\nexact search, one query, one thread (p50 ms): {result['exact_p50_ms_by_size']}")
        print(f"offline text encoder, warm: {result['text_encoding']}")
        if result["growth"]:
            print()
            print(table(result["growth"]))
            print(f"\nlargest recall gap (fresh build - grown): {result['max_gap']}")
        print(f"{result['seconds']} s in all")
    return result


if __name__ == "__main__":
    main()
