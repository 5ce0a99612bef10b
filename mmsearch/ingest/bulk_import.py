"""Bulk import of embeddings computed elsewhere (a GPU box, a cluster): rows -> SQLite + vectors.

The input is a Parquet file with one row per segment:

- ``path`` (string, required): the file the segment belongs to; it need not
  exist on this machine (media on another disk, in an archive, on a cluster);
- ``vector`` (list or fixed-size list of floats, required): its embedding,
  L2-normalised on import;
- ``modality`` (``image`` by default, ``text`` or ``video``), ``start`` and
  ``end`` (seconds, video frames), ``text`` (text segments: the passage, also
  searchable by ``--text-match``), ``tags`` (a map of strings, set on the file).

or a ``.npy`` matrix of vectors with a Parquet or JSON Lines table of the other
columns, row for row. Rows of one path become the segments of one file. A file
already in the index is replaced (its old segments removed).

Rows are written in batches, the next read by a thread while one is written:
each batch is one SQLite transaction of bulk inserts (plain ``executemany``, no
ORM objects, no per-row Python beyond building the tuples), then its vectors go to the
vector store, which is saved (and trained, when its size calls for it) at the
end. Segment ids come from the same never-reused counter as the indexer's.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from sqlalchemy import select, text

from mmsearch.embedders import canonical_name, create_embedder
from mmsearch.embedders.base import EmbedderIdentity
from mmsearch.errors import ConfigError, MissingDependencyError, PathError
from mmsearch.ingest.ahead import ahead
from mmsearch.ingest.report import IndexReport, Progress, ProgressCallback, Skip
from mmsearch.kinds import MODALITIES
from mmsearch.settings import Settings
from mmsearch.store.metadata import SEGMENT_ID_MARK, MetadataStore
from mmsearch.store.schema import Meta, Root
from mmsearch.store.sync import save_written
from mmsearch.store.vectors import VectorStore

BATCH = 50_000
VIEW_OF = {"image": "pixels", "text": "chunk", "video": "frame"}
IMPORT_MARK = "imported"  # Asset.meta key: where the vectors came from


@dataclass
class Rows:
    """One batch of input rows, as columns."""

    paths: list[str]
    vectors: np.ndarray  # (n, dim) float32
    modality: list[str | None]
    start: list[float | None]
    end: list[float | None]
    text: list[str | None]
    tags: list[dict[str, str] | None]

    def select(self, rows: np.ndarray) -> Rows:
        """These rows only (``rows``: their positions, in order)."""
        at = rows.tolist()
        columns = {
            f.name: [getattr(self, f.name)[i] for i in at]
            for f in fields(self)
            if f.name != "vectors"
        }
        return Rows(vectors=self.vectors[rows], **columns)


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise MissingDependencyError(
            "importing embeddings needs the 'pyarrow' package: pip install pyarrow"
        ) from exc
    return pyarrow


# -- reading --------------------------------------------------------------


def vector_dim(source: str) -> int:
    """The length of the vectors in ``source`` (a Parquet file or a ``.npy`` matrix)."""
    if source.endswith(".npy"):
        matrix = np.load(source, mmap_mode="r")
        if matrix.ndim != 2:
            raise ConfigError(f"{source}: expected a 2-d matrix of vectors, not {matrix.shape}")
        return int(matrix.shape[1])
    pa = _pyarrow()
    for batch in _parquet(source).iter_batches(batch_size=16, columns=["vector"]):
        if batch.num_rows:
            return int(_vectors(pa, batch.column(0), source).shape[1])
    raise ConfigError(f"{source} holds no rows")


def _parquet(source: str) -> Any:
    pa = _pyarrow()
    try:
        return pa.parquet.ParquetFile(source)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ConfigError(f"can't read {source} as Parquet: {exc}") from exc


def _vectors(pa: Any, column: Any, source: str) -> np.ndarray:
    """A list or fixed-size-list column of floats as an (n, dim) float32 matrix."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if pa.types.is_fixed_size_list(kind):
        dim = kind.list_size
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return np.asarray(flat, dtype=np.float32).reshape(len(column), dim)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        offsets = column.offsets.to_numpy()
        lengths = np.diff(offsets)
        if len(lengths) and (lengths.min() != lengths.max() or column.null_count):
            raise ConfigError(f"{source}: every vector must have the same length and no nulls")
        dim = int(lengths[0]) if len(lengths) else 0
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return np.asarray(flat, dtype=np.float32).reshape(len(column), dim)
    raise ConfigError(f"{source}: the vector column must be a list of floats, not {kind}")


def _column(batch: Any, name: str) -> list[Any]:
    index = batch.schema.get_field_index(name)
    if index < 0:
        return [None] * batch.num_rows
    values = batch.column(index).to_pylist()
    if name == "tags":  # a map arrives as a list of (key, value) pairs
        return [dict(v) if isinstance(v, list) else v for v in values]
    return list(values)


def _table_batches(source: str, columns: list[str]) -> Iterator[Any]:
    pa = _pyarrow()
    if source.endswith((".jsonl", ".json", ".ndjson")):
        rows = []
        with open(source, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as exc:
                        raise ConfigError(f"{source}:{number}: not JSON ({exc})") from exc
        for start in range(0, len(rows), BATCH):
            part = rows[start : start + BATCH]
            yield pa.RecordBatch.from_pylist(
                [{k: r.get(k) for k in columns if k in r} for r in part]
            )
        return
    available = set(_parquet(source).schema_arrow.names)
    yield from _parquet(source).iter_batches(
        batch_size=BATCH, columns=[c for c in columns if c in available]
    )


def read_rows(source: str, table: str | None = None) -> Iterator[Rows]:
    """Batches of rows from a Parquet file, or from a ``.npy`` matrix and its ``table``."""
    pa = _pyarrow()
    others = ["path", "modality", "start", "end", "text", "tags"]
    if source.endswith(".npy"):
        if table is None:
            raise ConfigError(f"{source} holds vectors only: give --table FILE with their paths")
        matrix = np.load(source, mmap_mode="r")
        done = 0
        for batch in _table_batches(table, others):
            n = batch.num_rows
            if done + n > len(matrix):
                raise ConfigError(f"{table} has more rows than {source} has vectors")
            yield _rows(batch, np.asarray(matrix[done : done + n], dtype=np.float32), table)
            done += n
        if done != len(matrix):
            raise ConfigError(f"{table} has {done} rows but {source} has {len(matrix)} vectors")
        return
    file = _parquet(source)
    names = set(file.schema_arrow.names)
    for needed in ("path", "vector"):
        if needed not in names:
            raise ConfigError(f"{source} has no {needed!r} column")
    wanted = ["vector"] + [c for c in others if c in names]
    for batch in file.iter_batches(batch_size=BATCH, columns=wanted):
        yield _rows(batch, _vectors(pa, batch.column(0), source), source)


def _clean(path: str) -> str:
    """An absolute, normalised path (cheaply: most imported paths already are)."""
    if path.startswith(os.sep) and "//" not in path and "/." not in path:
        return path.rstrip(os.sep) or os.sep
    return os.path.abspath(os.path.expanduser(path))


def _folder(path: str) -> str:
    """The folder of a clean absolute path (``os.path.dirname`` without its checks)."""
    return path.rpartition(os.sep)[0] or os.sep


def _rows(batch: Any, vectors: np.ndarray, source: str) -> Rows:
    paths = _column(batch, "path")
    if any(p is None for p in paths):
        raise ConfigError(f"{source}: every row needs a path")
    return Rows(
        paths=[_clean(str(p)) for p in paths],
        vectors=vectors,
        modality=_column(batch, "modality"),
        start=_column(batch, "start"),
        end=_column(batch, "end"),
        text=_column(batch, "text"),
        tags=_column(batch, "tags"),
    )


# -- the model's identity, without loading the model -------------------------


def import_identity(name: str, settings: Settings, dim: int) -> EmbedderIdentity:
    """The identity a new index gets for vectors made by model ``name`` of length ``dim``.

    The model is not loaded (its weights may live only where the vectors were
    made): open_clip's identity follows from ``--clip-model`` and
    ``--pretrained``/``--weights`` exactly as ``mmsearch index`` would record
    it, ``hash`` takes ``dim`` as its size, and other models are constructed
    (the offline model loads its weights lazily) for their identity.
    """
    from mmsearch.embedders.auto import embedder_options

    key = canonical_name(name)
    if key == "auto":
        raise ConfigError("say which model made the vectors: --model NAME (auto can't know)")
    if key == "openclip":
        from mmsearch.embedders.openclip import DEFAULT_PRETRAINED, _model_name, _weights_digest

        clip_model = str(settings.clip_model)
        options: dict[str, Any] = {
            "clip_model": os.path.abspath(clip_model)
            if clip_model.endswith(".json")
            else clip_model
        }
        if settings.weights:
            weights = os.path.abspath(os.path.expanduser(str(settings.weights)))
            if not os.path.isfile(weights):
                raise PathError(f"weights file {weights} does not exist")
            weights_id = f"file-{_weights_digest(weights)}"
            options["weights"] = weights
        else:
            weights_id = str(settings.pretrained or DEFAULT_PRETRAINED)
            options["pretrained"] = weights_id
        return EmbedderIdentity("openclip", _model_name(clip_model), weights_id, dim, options)
    extra = {"dim": dim} if key == "hash" else embedder_options(key, settings)
    return create_embedder(name, **extra).identity


# -- writing --------------------------------------------------------------


class BulkImporter:
    """Writes rows into SQLite and the vector store; see the module docstring."""

    def __init__(
        self,
        meta: MetadataStore,
        vectors: VectorStore,
        dim: int,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.meta = meta
        self.vectors = vectors
        self.dim = dim
        self.on_progress = on_progress
        self._assets: dict[str, tuple[int, str, int]] = {}  # path -> (asset id, modality, next ord)

    def run(self, batches: Iterator[Rows], source: str) -> IndexReport:
        report = IndexReport()
        started = time.perf_counter()
        done = 0
        for rows in ahead(batches, 1):  # the next batch is read while this one is written
            self._write(rows, source, report)
            done += len(rows.paths)
            if self.on_progress:
                self.on_progress(Progress(done=done, total=0, path=rows.paths[-1]))
        save_written(self.meta, self.vectors)
        report.seconds = time.perf_counter() - started
        return report

    def _write(self, rows: Rows, source: str, report: IndexReport) -> None:
        if rows.vectors.shape[1] != self.dim:
            raise ConfigError(
                f"{source}: the vectors have {rows.vectors.shape[1]} dimensions, the index's"
                f" model makes {self.dim}"
            )
        norms = np.linalg.norm(rows.vectors, axis=1)
        good = np.isfinite(norms) & (norms > 0)
        vecs = (rows.vectors[good] / norms[good, None]).astype(np.float32)
        for i in np.flatnonzero(~good):
            report.skipped.append(Skip(rows.paths[i], "its vector is zero or not finite"))
        kept = rows if good.all() else rows.select(np.flatnonzero(good))
        removed: list[int] = []
        with self.meta.sessions.begin() as s:
            conn = s.connection()
            new_assets, asset_ids, modalities, ords = self._assets_for(s, kept, report, removed)
            first = _reserve_segment_ids(s, len(asset_ids))
            seg_ids = np.arange(first, first + len(asset_ids), dtype=np.int64)
            blob = vecs.astype(np.float16).tobytes()
            width = self.dim * 2
            best = [
                None if a is None else (a + b) / 2 if b is not None else a
                for a, b in zip(kept.start, kept.end, strict=True)
            ]
            segs = list(
                zip(
                    seg_ids.tolist(),
                    asset_ids,
                    [VIEW_OF[m] for m in modalities],
                    ords,
                    kept.start,
                    kept.end,
                    best,
                    kept.text,
                    [blob[i : i + width] for i in range(0, len(blob), width)],
                    strict=True,
                )
            )
            if new_assets:
                conn.exec_driver_sql(
                    "INSERT INTO assets (id, root_id, relpath, modality, size, mtime_ns,"
                    " content_hash, duration, indexed_at, meta) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    new_assets,
                )
            conn.exec_driver_sql(
                "INSERT INTO segments (id, asset_id, view, ord, t_start, t_end, t_best, text,"
                " vector) VALUES (?,?,?,?,?,?,?,?,?)",
                segs,
            )
            tags = [
                (asset_id, str(k), str(v))
                for asset_id, given in zip(asset_ids, kept.tags, strict=True)
                if given
                for k, v in given.items()
            ]
            if tags:
                conn.exec_driver_sql(
                    "INSERT OR REPLACE INTO tags (asset_id, key, value) VALUES (?,?,?)", tags
                )
            self._update_durations(conn, kept, asset_ids, modalities)
        if removed:
            self.vectors.remove(np.asarray(removed, dtype=np.int64))
        self.vectors.add(seg_ids, vecs)
        report.segments += len(asset_ids)

    def _assets_for(
        self, s: Any, rows: Rows, report: IndexReport, removed: list[int]
    ) -> tuple[list[tuple[Any, ...]], list[int], list[str], list[int]]:
        """Asset rows to insert, and per row its asset id, modality and ord (segment number).

        Rows of a path seen in an earlier batch of the same import continue that file.
        """
        wrong = set(rows.modality) - set(VIEW_OF) - {None}
        if wrong:
            bad = next(m for m in rows.modality if m in wrong)
            path = rows.paths[rows.modality.index(bad)]
            raise ConfigError(
                f"{path}: modality must be one of {', '.join(MODALITIES)}, not {bad!r}"
            )
        conn = s.connection()
        known = self._assets
        fresh = {p: _folder(p) for p in dict.fromkeys(rows.paths) if p not in known}
        roots = self._roots_for(s, set(fresh.values()))
        placed: dict[str, tuple[int, str]] = {}  # new path -> (root id, relpath)
        for path, folder in fresh.items():
            root_path, root_id = roots[folder]
            placed[path] = (root_id, path[len(root_path.rstrip(os.sep)) + 1 :])
        existing = self._existing(conn, list(placed.values()))
        stale = [existing[v] for v in placed.values() if v in existing]
        if stale:  # files in the index already: replaced
            removed.extend(self.meta.delete_assets(s, stale))
        report.updated += len(stale)
        report.added += len(placed) - len(stale)
        top = conn.exec_driver_sql("SELECT max(id) FROM assets").scalar()
        next_id = int(top or 0) + 1
        now = time.time()
        meta = json.dumps({IMPORT_MARK: True})
        new: list[tuple[Any, ...]] = []
        asset_ids: list[int] = []
        modalities: list[str] = []
        ords: list[int] = []
        for path, given in zip(rows.paths, rows.modality, strict=True):
            modality = given or "image"
            asset = known.get(path)
            if asset is None:
                root_id, rel = placed[path]
                digest = hashlib.blake2b(path.encode(), digest_size=15).hexdigest()
                new.append((next_id, root_id, rel, modality, -1, 0, "i" + digest, None, now, meta))
                asset = (next_id, modality, 0)
                next_id += 1
            elif asset[1] != modality:
                raise ConfigError(f"{path}: rows give it two modalities, {asset[1]} and {modality}")
            asset_ids.append(asset[0])
            modalities.append(modality)
            ords.append(asset[2])
            known[path] = (asset[0], modality, asset[2] + 1)
        return new, asset_ids, modalities, ords

    @staticmethod
    def _existing(conn: Any, wanted: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
        """Which of the (root id, relpath) pairs are assets already, and their ids."""
        found: dict[tuple[int, str], int] = {}
        by_root: dict[int, list[str]] = {}
        for root_id, rel in wanted:
            by_root.setdefault(root_id, []).append(rel)
        for root_id, rels in by_root.items():
            for start in range(0, len(rels), 900):
                part = rels[start : start + 900]
                marks = ",".join("?" * len(part))
                query = f"SELECT relpath, id FROM assets WHERE root_id = ? AND relpath IN ({marks})"
                for rel, asset_id in conn.exec_driver_sql(query, (root_id, *part)):
                    found[(root_id, rel)] = int(asset_id)
        return found

    def _roots_for(self, s: Any, folders: set[str]) -> dict[str, tuple[str, int]]:
        """Each folder's root (path, id); a folder under no root becomes one (inner roots fold)."""
        known = {r.path: r.id for r in s.scalars(select(Root))}

        def holder(folder: str) -> str | None:
            at = folder
            while True:
                if at in known:
                    return at
                parent = os.path.dirname(at)
                if parent == at:
                    return None
                at = parent

        for folder in sorted(folders, key=len):  # outer folders first: fewer roots to fold
            if holder(folder) is None:
                self.meta.root_for(s, os.path.join(folder, "\0"))  # a missing file's folder
                known = {r.path: r.id for r in s.scalars(select(Root))}
        out = {}
        for folder in folders:
            root_path = holder(folder)
            assert root_path is not None
            out[folder] = (root_path, known[root_path])
        return out

    @staticmethod
    def _update_durations(
        conn: Any, rows: Rows, asset_ids: list[int], modalities: list[str]
    ) -> None:
        longest: dict[int, float] = {}
        for asset_id, modality, start, end in zip(
            asset_ids, modalities, rows.start, rows.end, strict=True
        ):
            last = end if end is not None else start
            if modality == "video" and last is not None:
                longest[asset_id] = max(longest.get(asset_id, 0.0), float(last))
        if longest:
            conn.exec_driver_sql(
                "UPDATE assets SET duration = max(coalesce(duration, 0), ?) WHERE id = ?",
                [(v, k) for k, v in longest.items()],
            )


def _reserve_segment_ids(s: Any, n: int) -> int:
    """The first of ``n`` new segment ids, never given before (the indexer's counter, raised)."""
    mark = s.get(Meta, SEGMENT_ID_MARK)
    top = s.execute(text("SELECT max(id) FROM segments")).scalar() or 0
    given = max(int(top), int(mark.value) if mark is not None else 0)
    if mark is None:
        s.add(Meta(key=SEGMENT_ID_MARK, value=str(given + n)))
    else:
        mark.value = str(given + n)
    s.flush()
    return given + 1


def is_imported(meta: dict[str, Any] | None) -> bool:
    return bool(meta and meta.get(IMPORT_MARK))
