"""Bulk import of precomputed embeddings: Parquet, .npy + table, checks, missing files.

Tests marked ``BOTH_DATABASES`` run on SQLite and on PostgreSQL (``metadata_db``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mmsearch import Engine
from mmsearch.cli import cli
from mmsearch.embedders.hashing import HashEmbedder
from mmsearch.errors import ConfigError, EmbedderMismatchError, QueryError
from mmsearch.search.query import Query

DIM = 64
BOTH_DATABASES = pytest.mark.usefixtures("metadata_db")  # SQLite and PostgreSQL


def vectors(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_parquet(target: Path, x: np.ndarray, fixed: bool = True, **columns: list) -> Path:
    flat = pa.array(x.ravel())
    vec = (
        pa.FixedSizeListArray.from_arrays(flat, x.shape[1])
        if fixed
        else pa.array([list(map(float, row)) for row in x], type=pa.list_(pa.float32()))
    )
    pq.write_table(pa.table({"vector": vec, **columns}), target)
    return target


def photo_paths(n: int) -> list[str]:
    return [f"/elsewhere/archive/{i // 10:03d}/img{i:05d}.jpg" for i in range(n)]


@BOTH_DATABASES
def test_parquet_rows_become_searchable_files_that_are_not_here(tmp_path: Path) -> None:
    x = vectors(60)
    paths = photo_paths(50) + ["/elsewhere/clip.mp4"] * 5 + ["/elsewhere/notes.txt"] * 5
    modality = ["image"] * 50 + ["video"] * 5 + ["text"] * 5
    tags = [[("set", "a" if i % 2 else "b")] for i in range(60)]
    source = write_parquet(
        tmp_path / "e.parquet",
        x,
        fixed=False,
        path=paths,
        modality=modality,
        start=[None] * 50 + [float(i) for i in range(5)] + [None] * 5,
        end=[None] * 50 + [float(i + 1) for i in range(5)] + [None] * 5,
        text=[None] * 55 + [f"a passage about copper lamps {i}" for i in range(5)],
        tags=pa.array(tags, type=pa.map_(pa.string(), pa.string())),
    )
    with Engine.open(tmp_path / "idx", embedder=HashEmbedder(dim=DIM)) as engine:
        report = engine.import_embeddings(source)
        assert (report.added, report.segments) == (52, 60)
        assert engine.info()["by_modality"] == {"image": 50, "video": 1, "text": 1}
        hits = engine.run(Query().like(paths[7]).options(limit=1, cutoff=False)).hits
        assert hits[0].path == paths[7]  # --like finds the stored vector of a missing file
        tagged = engine.run(Query().like(paths[7]).where(tags={"set": "a"}).options(cutoff=False))
        assert tagged.hits and all(int(h.path[-9:-4]) % 2 for h in tagged.hits if "img" in h.path)
        phrase = Query().like(paths[0]).where(text_match="copper lamps").options(cutoff=False)
        assert [h.path for h in engine.run(phrase).hits] == ["/elsewhere/notes.txt"]
        facts = engine.show(paths[7])
        assert facts["present"] is False and facts["views"] == {"pixels": 1}
        assert engine.show("/elsewhere/clip.mp4")["duration"] == 5.0
        with pytest.raises(QueryError, match="not on this machine"):
            engine.thumbnail(hits[0])
        # importing the same paths again replaces them
        again = engine.import_embeddings(source)
        assert (again.added, again.updated, engine.vectors.count) == (0, 52, 60)
        assert engine.verify().ok


@BOTH_DATABASES
def test_npy_with_a_jsonl_table_and_the_cli(tmp_path: Path) -> None:
    x = vectors(30, seed=1)
    np.save(tmp_path / "v.npy", x)
    with open(tmp_path / "rows.jsonl", "w") as f:
        for p in photo_paths(30):
            f.write(json.dumps({"path": p, "tags": {"cam": "x100"}}) + "\n")
    runner = CliRunner()
    idx = str(tmp_path / "idx")
    args = ["import", str(tmp_path / "v.npy"), "--table", str(tmp_path / "rows.jsonl")]
    done = runner.invoke(cli, [*args, "--index", idx, "--model", "hash", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["segments"] == 30
    shown = runner.invoke(cli, ["show", photo_paths(30)[3], "--index", idx])
    assert "not on this machine" in shown.output
    info = json.loads(runner.invoke(cli, ["info", "--index", idx, "--json"]).output)
    store = os.environ.get("MMSEARCH_VECTORS", "faiss")  # CI runs this on Milvus Lite too
    assert info["embedder"]["dim"] == DIM
    assert info["vector_index"]["kind"] == ("exact" if store == "faiss" else "milvus")
    # the index remembers the model; a second import needs no --model
    write_parquet(tmp_path / "more.parquet", vectors(5, seed=2), path=photo_paths(35)[30:])
    more = runner.invoke(cli, ["import", str(tmp_path / "more.parquet"), "--index", idx])
    assert more.exit_code == 0, more.output
    verify = runner.invoke(cli, ["verify", "--index", idx, "--json"])
    assert json.loads(verify.output)["ok"] is True and json.loads(verify.output)["vectors"] == 35


@BOTH_DATABASES
def test_mismatches_are_one_line_errors(tmp_path: Path) -> None:
    idx = str(tmp_path / "idx")
    runner = CliRunner()
    write_parquet(tmp_path / "a.parquet", vectors(5), path=photo_paths(5))
    assert (
        runner.invoke(
            cli, ["import", str(tmp_path / "a.parquet"), "--index", idx, "--model", "hash"]
        ).exit_code
        == 0
    )
    wrong_dim = write_parquet(
        tmp_path / "b.parquet", np.ones((3, 16), np.float32), path=photo_paths(3)
    )
    done = runner.invoke(cli, ["import", str(wrong_dim), "--index", idx])
    assert done.exit_code != 0 and "16 dimensions" in done.output and "64" in done.output
    assert len(done.output.strip().splitlines()) == 1
    other = runner.invoke(
        cli, ["import", str(tmp_path / "a.parquet"), "--index", idx, "--model", "openclip"]
    )
    assert other.exit_code == 1 and "can't be mixed" in other.output
    assert len(other.output.strip().splitlines()) == 1
    with Engine.open(idx) as engine, pytest.raises(ConfigError, match="has no 'path' column"):
        engine.import_embeddings(write_parquet(tmp_path / "c.parquet", vectors(2)))
    auto = runner.invoke(
        cli, ["import", str(tmp_path / "a.parquet"), "--index", str(tmp_path / "new")]
    )
    assert auto.exit_code == 2 and "--model NAME" in auto.output


@BOTH_DATABASES
def test_an_openclip_index_is_created_without_loading_the_model(tmp_path: Path) -> None:
    source = write_parquet(tmp_path / "a.parquet", vectors(4), path=photo_paths(4))
    done = CliRunner().invoke(
        cli,
        ["import", str(source), "--index", str(tmp_path / "idx"), "--model", "openclip", "--json"],
    )
    assert done.exit_code == 0, done.output
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["embedder"]["name"] == "openclip" and manifest["embedder"]["dim"] == DIM
    assert manifest["embedder"]["model"] == "ViT-B-32"
    with pytest.raises(EmbedderMismatchError):
        Engine.open(tmp_path / "idx", embedder=HashEmbedder(dim=DIM))
    # the vectors came from a GPU box: --like searches them here, with no open_clip weights
    like = CliRunner().invoke(
        cli,
        ["search", "--like", photo_paths(4)[2], "--index", str(tmp_path / "idx"), "--json"],
    )
    assert like.exit_code == 0, like.output
    assert json.loads(like.output)["results"][0]["path"] == photo_paths(4)[2]


@pytest.mark.faiss_file
def test_verify_and_repair_an_ivf_index(tmp_path: Path) -> None:
    import sqlite3

    source = write_parquet(tmp_path / "a.parquet", vectors(3000, seed=4), path=photo_paths(3000))
    with Engine.open(tmp_path / "idx", embedder=HashEmbedder(dim=DIM), ann="ivf") as engine:
        engine.import_embeddings(source)
        assert engine.info()["vector_index"]["kind"] == "ivf"
        assert engine.verify().ok
    with sqlite3.connect(tmp_path / "idx" / "index.sqlite") as con:
        con.execute("DELETE FROM segments WHERE id = 17")
    with Engine.open(tmp_path / "idx") as engine:  # caught up from SQLite on open
        hits = engine.run(Query().like(photo_paths(3000)[15]).options(limit=50, cutoff=False))
        assert hits.hits and 17 not in {h.segment_id for h in hits.hits}  # no ghost
        assert engine.verify().ok and engine.vectors.count == 2999
    next((tmp_path / "idx").glob("vectors-*.ids.npy")).write_bytes(b"damaged")
    with Engine.open(tmp_path / "idx") as engine:
        assert engine.verify().ok  # opening noticed and rebuilt it from SQLite
        next((tmp_path / "idx").glob("vectors-*.ids.npy")).write_bytes(b"damaged")
        report = engine.verify()
        assert not report.ok and "vector file" in report.problems[0]
        assert engine.verify(repair=True).repaired and engine.verify().ok
        assert engine.info()["vector_index"]["kind"] == "ivf"
    shown = CliRunner().invoke(cli, ["info", "--index", str(tmp_path / "idx")])
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if x.startswith("vector index"))
    assert "_HNSW32,SQ8 (ann ivf, nprobe" in line and "2,999 in the main part" in line
    # one root per folder of the imported paths (300 here): a human info lists ten
    assert "... and 290 more (mmsearch roots lists them)" in shown.output


def test_a_schema_4_index_gets_the_covering_tag_index_and_filters_the_same(tmp_path: Path) -> None:
    import sqlite3

    from mmsearch.store.schema import SCHEMA_VERSION

    x = vectors(40)
    paths = photo_paths(40)
    tags = pa.array([[("set", str(i % 4))] for i in range(40)], pa.map_(pa.string(), pa.string()))
    source = write_parquet(tmp_path / "e.parquet", x, path=paths, tags=tags)
    index = tmp_path / "idx"
    tagged = Query().like(paths[0]).where(tags={"set": "1"}).options(cutoff=False, limit=40)
    with Engine.open(index, embedder=HashEmbedder(dim=DIM)) as engine:
        engine.import_embeddings(source)
        before = [h.path for h in engine.run(tagged).hits]
    assert sorted(before) == sorted(p for i, p in enumerate(paths) if i % 4 == 1)
    db = index / "index.sqlite"
    with sqlite3.connect(db) as con:  # what a schema-4 index looks like
        con.execute("DROP INDEX ix_tags_key_value_asset")
        con.execute("CREATE INDEX ix_tags_key ON tags (key)")
        con.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    with Engine.open(index) as engine:
        assert [h.path for h in engine.run(tagged).hits] == before
    with sqlite3.connect(db) as con:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        version = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        plan = " ".join(
            str(r[-1])
            for r in con.execute(
                "EXPLAIN QUERY PLAN SELECT asset_id FROM tags WHERE key = 'set' AND value = '1'"
            )
        )
    assert "ix_tags_key_value_asset" in names
    assert not names & {"ix_tags_key", "ix_tags_key_value"}  # the older two are dropped
    assert version == (str(SCHEMA_VERSION),)
    assert "COVERING INDEX ix_tags_key_value_asset (key=? AND value=?)" in plan


@BOTH_DATABASES
def test_an_import_takes_ids_never_given_before(tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from mmsearch.store.schema import Asset, Segment

    paths = photo_paths(6)
    with Engine.open(tmp_path / "idx", embedder=HashEmbedder(dim=DIM)) as engine:
        engine.import_embeddings(write_parquet(tmp_path / "a.parquet", vectors(5), path=paths[:5]))
        with engine.meta.sessions() as s:
            top_asset = s.scalar(select(func.max(Asset.id)))
            top_segment = s.scalar(select(func.max(Segment.id)))
        assert engine.remove([paths[4]]) == 1  # the newest file, not on this machine
        engine.import_embeddings(
            write_parquet(tmp_path / "b.parquet", vectors(1, 1), path=paths[5:])
        )
        with engine.meta.sessions() as s:
            added = s.scalars(select(Asset).where(Asset.relpath == "img00005.jpg")).one()
            segment = s.scalars(select(Segment.id).where(Segment.asset_id == added.id)).one()
        assert added.id > top_asset and segment > top_segment
        assert engine.verify().ok


def _import_text_rows(tmp_path: Path, text: str) -> str:
    """``mmsearch import`` of 900 text rows, all but the first with ``text``: its output, which
    must be one line (exit status 2) however many rows the batch held."""
    np.save(tmp_path / "v.npy", vectors(900))
    with open(tmp_path / "rows.jsonl", "w") as f:
        for i, p in enumerate(photo_paths(900)):
            f.write(json.dumps({"path": p, "modality": "text", "text": text if i else "ok"}) + "\n")
    args = ["import", str(tmp_path / "v.npy"), "--table", str(tmp_path / "rows.jsonl")]
    done = CliRunner().invoke(cli, [*args, "--index", str(tmp_path / "idx"), "--model", "hash"])
    assert done.exit_code == 2, done.output
    assert len(done.output.strip().splitlines()) == 1 and len(done.output) < 300
    assert "INSERT" not in done.output
    with Engine.open(tmp_path / "idx") as engine:  # nothing of the batch was kept
        assert engine.info()["assets"] == 0 and engine.verify().ok
    return done.output


@BOTH_DATABASES
def test_text_that_is_not_unicode_is_one_line(tmp_path: Path) -> None:
    assert "rows.jsonl, rows 1-900" in _import_text_rows(tmp_path, "a\ud800b")


def test_rows_postgresql_refuses_are_one_line(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMSEARCH_DB", pg_url)  # SQLite stores a NUL byte in text
    output = _import_text_rows(tmp_path, "a\u0000b")
    assert "v.npy: the database refused these rows" in output and "NUL" in output


def test_columns_of_the_wrong_type_are_one_line(tmp_path: Path) -> None:
    source = write_parquet(
        tmp_path / "a.parquet", vectors(2), path=photo_paths(2), start=["soon", "later"]
    )
    with (
        Engine.open(tmp_path / "idx", embedder=HashEmbedder(dim=DIM)) as engine,
        pytest.raises(ConfigError, match="'start' column must hold numbers, not string"),
    ):
        engine.import_embeddings(source)


def test_a_schema_6_index_gets_an_asset_id_mark_and_forgets_no_id(tmp_path: Path) -> None:
    import sqlite3

    from mmsearch.store.schema import ASSET_ID_MARK, SCHEMA_VERSION

    index = tmp_path / "idx"
    paths = photo_paths(4)
    with Engine.open(index, embedder=HashEmbedder(dim=DIM)) as engine:
        engine.import_embeddings(write_parquet(tmp_path / "a.parquet", vectors(3), path=paths[:3]))
    db = index / "index.sqlite"
    with sqlite3.connect(db) as con:  # what a schema-6 index looks like
        con.execute("DELETE FROM meta WHERE key = ?", (ASSET_ID_MARK,))
        con.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
        top = con.execute("SELECT max(id) FROM assets").fetchone()[0]
    with Engine.open(index) as engine:
        assert engine.remove([paths[2]]) == 1
        engine.import_embeddings(write_parquet(tmp_path / "b.parquet", vectors(1), path=paths[3:]))
    with sqlite3.connect(db) as con:
        version = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        ids = [r[0] for r in con.execute("SELECT id FROM assets ORDER BY id")]
    assert version == (str(SCHEMA_VERSION),) and ids[-1] == top + 1 and len(ids) == 3
