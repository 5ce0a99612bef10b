"""Metadata in SQLite (the default) against PostgreSQL, on the same small library.

    python -m benchmarks.postgres [--images 300] [--texts 300] [--vectors 20000] [--server URL]

Makes N small generated images and M short notes, then, with the ``hash``
embedder (no model time, so the metadata store is what is measured), for each
store in one run:

- index: ``Engine.index`` on the folder (a fresh index);
- reindex: the same folder again (every file unchanged: reads only);
- search: 50 text queries, k=10, no filter;
- phrase: the same queries with ``--text-match`` (FTS5 / tsvector);
- filtered: the same queries with a path filter and a size bound;
- import: ``Engine.import_embeddings`` of N precomputed vectors (Parquet) of files
  elsewhere, one per file, 100 to a folder;

and prints seconds and the PostgreSQL / SQLite ratio. PostgreSQL is the
server at ``--server`` (or ``MMSEARCH_TEST_PG_URL``; a superuser URL: a fresh
database is made and dropped) or, without either, one started for the run with
``.ci/postgres.sh`` (Debian's binaries).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import scratch, table
from mmsearch import Engine
from mmsearch.search.query import Query

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgres.sh"
WORDS = [
    "river",
    "garden",
    "invoice",
    "tomato",
    "fox",
    "harbour",
    "winter",
    "lantern",
    "copper",
    "meadow",
]


def library(folder: Path, images: int, texts: int) -> None:
    (folder / "img").mkdir(parents=True)
    (folder / "txt").mkdir()
    for i in range(images):
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
        rng = np.random.default_rng(i)
        pixels = np.clip(np.array(colour) + rng.integers(-12, 13, (48, 64, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / "img" / f"i{i:04d}.png")
    for i in range(texts):
        words = [WORDS[(i * k) % len(WORDS)] for k in range(1, 40)]
        body = f"Note {i}: the {WORDS[i % 10]} near the {WORDS[(i + 3) % 10]}. " + " ".join(words)
        (folder / "txt" / f"n{i:04d}.txt").write_text(body)


def queries() -> list[str]:
    return [f"{WORDS[i % 10]} {WORDS[(i * 3 + 1) % 10]}" for i in range(50)]


def vectors_file(target: Path, n: int, dim: int) -> Path:
    """A Parquet file of ``n`` random vectors of files elsewhere, 100 to a folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    paths = [f"/elsewhere/{i // 100:05d}/v{i:07d}.jpg" for i in range(n)]
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), dim)
    pq.write_table(pa.table({"path": paths, "vector": vectors}), target)
    return target


def run(folder: Path, lib: Path, db: str | None, n_vectors: int) -> list[float]:
    times = []
    with Engine.open(folder, model="hash", db=db) as engine:
        start = time.perf_counter()
        engine.index([lib])
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        engine.index([lib])
        times.append(time.perf_counter() - start)
        for where in ({}, {"text_match": "the river"}, {"paths": [str(lib / "txt")]}):
            start = time.perf_counter()
            for text in queries():
                q = Query().text(text).options(cutoff=False)
                if where:
                    q = q.where(**where)
                if "paths" in where:
                    q = q.where(min_size=10)
                engine.run(q)
            times.append(time.perf_counter() - start)
        source = vectors_file(
            folder.parent / f"{folder.name}.parquet", n_vectors, engine.identity.dim
        )
        start = time.perf_counter()
        engine.import_embeddings(source)
        times.append(time.perf_counter() - start)
    return times


def _admin(server: str, sql: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(server)
    with psycopg.connect(
        host=u.host,
        port=u.port,
        user=u.username,
        password=u.password,
        dbname=u.database,
        autocommit=True,
    ) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--vectors", type=int, default=20_000)
    parser.add_argument("--server", default=os.environ.get("MMSEARCH_TEST_PG_URL"))
    args = parser.parse_args()
    started = None
    server = args.server
    if not server:
        out = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True)
        started = out.stdout.strip().splitlines()[-1]
        server = (Path(started) / "url").read_text().strip()
    from sqlalchemy.engine import make_url

    name = f"mmsearch_bench_{uuid.uuid4().hex[:8]}"
    _admin(server, f"CREATE DATABASE {name}")
    db = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        with scratch() as tmp:
            root = Path(tmp)
            library(root / "lib", args.images, args.texts)
            sqlite = run(root / "idx-sqlite", root / "lib", None, args.vectors)
            postgres = run(root / "idx-postgres", root / "lib", db, args.vectors)
    finally:
        _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if started:
            subprocess.run(["bash", str(SCRIPT), "stop", started], capture_output=True)
    steps = (
        "index",
        "reindex (unchanged)",
        "50 searches",
        "50 phrase-filtered",
        "50 path-filtered",
        f"import {args.vectors:,} vectors",
    )
    rows = [[s, a, b, b / a] for s, a, b in zip(steps, sqlite, postgres, strict=True)]
    print(
        f"{args.images} images + {args.texts} notes, {args.vectors:,} imported vectors,"
        " hash embedder, one run each"
    )
    print(table(["step", "SQLite s", "PostgreSQL s", "PG / SQLite"], rows))


if __name__ == "__main__":
    main()
