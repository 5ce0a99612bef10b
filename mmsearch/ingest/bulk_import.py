"""Bulk import of embeddings computed elsewhere (a GPU box, a cluster): rows -> the index.

:mod:`mmsearch.ingest.import_rows` reads the rows (Parquet, or ``.npy`` with a
table) and :mod:`mmsearch.ingest.import_model` names the model of a new index;
this module writes them. Vectors are L2-normalised on import. Rows of one path
become the segments of one file; a file already in the index is replaced (its
old segments removed).

Rows are written in batches, the next read by a thread while one is written:
each batch is one transaction of bulk inserts (SQLAlchemy Core ``executemany``,
no ORM objects, no per-row Python beyond building the rows) on SQLite or
PostgreSQL alike, then its vectors go to the vector store, which is saved (and
trained, when its size calls for it) at the end. Asset and segment ids come
from the indexer's never-reused counters (:mod:`mmsearch.store.ids`). A row the
database refuses stops the import with one line naming the reason.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any, cast

import numpy as np
from sqlalchemy import Connection, Float, Table, bindparam, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from mmsearch.errors import ConfigError, DatabaseError
from mmsearch.ingest.ahead import ahead
from mmsearch.ingest.import_model import import_identity
from mmsearch.ingest.import_rows import Rows, read_rows, vector_dim
from mmsearch.ingest.report import IndexReport, Progress, ProgressCallback, Skip
from mmsearch.kinds import MAIN_VIEW, MODALITIES, Modality
from mmsearch.store import roots as root_rules
from mmsearch.store.database import first_line
from mmsearch.store.ids import reserve_ids
from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import ASSET_ID_MARK, SEGMENT_ID_MARK, Asset, Root, Segment, Tag
from mmsearch.store.sync import save_written
from mmsearch.store.vectors import VectorStore

__all__ = ["BulkImporter", "import_identity", "read_rows", "vector_dim"]  # the importer's faces

"""The view of an imported row's segment: a file's one view per modality."""
IMPORT_MARK = "imported"  # Asset.meta key: where the vectors came from
_IN_LIST = 900  # values in one IN (...): under SQLite's oldest limit of 999 parameters

_ASSETS = cast(Table, Asset.__table__)
_SEGMENTS = cast(Table, Segment.__table__)
_TAGS = cast(Table, Tag.__table__)


class BulkImporter:
    """Writes rows into the metadata database and the vector store; see the module docstring."""

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
        try:
            with self.meta.sessions.begin() as s:
                seg_ids = self._insert(s, kept, vecs, report, removed)
        except (OperationalError, InterfaceError) as exc:  # the database, not the rows
            reason = first_line(exc.orig or exc)
            raise DatabaseError(
                f"the metadata database {self.meta.url} failed the import: {reason}"
            ) from None
        except DBAPIError as exc:  # the rows: a value the database's types refuse
            reason = first_line(exc.orig or exc)
            raise ConfigError(f"{source}: the database refused these rows: {reason}") from None
        if removed:
            self.vectors.remove(np.asarray(removed, dtype=np.int64))
        self.vectors.add(seg_ids, vecs)
        report.segments += len(seg_ids)

    def _insert(
        self, s: Session, rows: Rows, vecs: np.ndarray, report: IndexReport, removed: list[int]
    ) -> np.ndarray:
        """Write one batch's assets, segments, tags and durations; return the segment ids."""
        conn = s.connection()
        new_assets, asset_ids, modalities, ords = self._assets_for(s, rows, report, removed)
        first = reserve_ids(s, Segment.id, SEGMENT_ID_MARK, len(asset_ids))
        seg_ids = np.arange(first, first + len(asset_ids), dtype=np.int64)
        blob = vecs.astype(np.float16).tobytes()
        width = self.dim * 2
        segments = [
            {
                "id": seg_id,
                "asset_id": asset_id,
                "view": MAIN_VIEW[cast(Modality, modality)],
                "ord": ord_,
                "t_start": start,
                "t_end": end,
                "t_best": None
                if start is None
                else (start + end) / 2
                if end is not None
                else start,
                "text": text,
                "vector": blob[at : at + width],
            }
            for seg_id, asset_id, modality, ord_, start, end, text, at in zip(
                seg_ids.tolist(),
                asset_ids,
                modalities,
                ords,
                rows.start,
                rows.end,
                rows.text,
                range(0, len(blob), width),
                strict=True,
            )
        ]
        if new_assets:
            conn.execute(insert(_ASSETS), new_assets)
        if segments:
            conn.execute(insert(_SEGMENTS), segments)
        tags = {  # the last value given for a key wins, as a later row's would
            (asset_id, str(k)): str(v)
            for asset_id, given in zip(asset_ids, rows.tags, strict=True)
            if given
            for k, v in given.items()
        }
        if tags:
            _upsert_tags(
                conn, [{"asset_id": a, "key": k, "value": v} for (a, k), v in tags.items()]
            )
        _lengthen_videos(conn, rows, asset_ids, modalities)
        return seg_ids

    def _assets_for(
        self, s: Session, rows: Rows, report: IndexReport, removed: list[int]
    ) -> tuple[list[dict[str, Any]], list[int], list[str], list[int]]:
        """Asset rows to insert, and per row its asset id, modality and ord (segment number).

        Rows of a path seen in an earlier batch of the same import continue that file.
        """
        wrong = set(rows.modality) - set(MODALITIES) - {None}
        if wrong:
            bad = next(m for m in rows.modality if m in wrong)
            path = rows.paths[rows.modality.index(bad)]
            raise ConfigError(
                f"{path}: modality must be one of {', '.join(MODALITIES)}, not {bad!r}"
            )
        known = self._assets
        fresh = {p: root_rules.folder_of(p) for p in dict.fromkeys(rows.paths) if p not in known}
        roots = self._roots_for(s, set(fresh.values()))
        placed: dict[str, tuple[int, str]] = {}  # new path -> (root id, relpath)
        for path, folder in fresh.items():
            root_path, root_id = roots[folder]
            placed[path] = (root_id, root_rules.relative(root_path, path))
        existing = _existing(s.connection(), list(placed.values()))
        stale = [existing[v] for v in placed.values() if v in existing]
        if stale:  # files in the index already: replaced
            removed.extend(self.meta.delete_assets(s, stale))
        report.updated += len(stale)
        report.added += len(placed) - len(stale)
        next_id = reserve_ids(s, Asset.id, ASSET_ID_MARK, len(placed))
        now = time.time()
        new: list[dict[str, Any]] = []
        asset_ids: list[int] = []
        modalities: list[str] = []
        ords: list[int] = []
        for path, given in zip(rows.paths, rows.modality, strict=True):
            modality = given or "image"
            asset = known.get(path)
            if asset is None:
                root_id, rel = placed[path]
                digest = hashlib.blake2b(path.encode(), digest_size=15).hexdigest()
                new.append(
                    {
                        "id": next_id,
                        "root_id": root_id,
                        "relpath": rel,
                        "modality": modality,
                        "size": -1,
                        "mtime_ns": 0,
                        "content_hash": "i" + digest,
                        "duration": None,
                        "indexed_at": now,
                        "meta": {IMPORT_MARK: True},
                    }
                )
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
    def _roots_for(s: Session, folders: set[str]) -> dict[str, tuple[str, int]]:
        """Each folder's root (path, id); a folder under no root becomes one (inner roots fold)."""
        known = {r.path: r.id for r in s.scalars(select(Root))}
        for folder in sorted(folders, key=len):  # outer folders first: fewer roots to fold
            if root_rules.holder(known, folder) is None:
                root_rules.make_root(s, folder)
                known = {r.path: r.id for r in s.scalars(select(Root))}
        out = {}
        for folder in folders:
            root_path = root_rules.holder(known, folder)
            assert root_path is not None
            out[folder] = (root_path, known[root_path])
        return out


def _existing(conn: Connection, wanted: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Which of the (root id, relpath) pairs are assets already, and their ids."""
    found: dict[tuple[int, str], int] = {}
    by_root: dict[int, list[str]] = {}
    for root_id, rel in wanted:
        by_root.setdefault(root_id, []).append(rel)
    for root_id, rels in by_root.items():
        for start in range(0, len(rels), _IN_LIST):
            query = select(Asset.relpath, Asset.id).where(
                Asset.root_id == root_id, Asset.relpath.in_(rels[start : start + _IN_LIST])
            )
            for rel, asset_id in conn.execute(query):
                found[(root_id, rel)] = int(asset_id)
    return found


def _upsert_tags(conn: Connection, tags: list[dict[str, Any]]) -> None:
    """Set each tag, replacing the file's old value of its key (one row per file and key)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_TAGS)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["asset_id", "key"], set_={"value": statement.excluded.value}
        ),
        tags,
    )


def _lengthen_videos(
    conn: Connection, rows: Rows, asset_ids: list[int], modalities: list[str]
) -> None:
    """A video's duration: at least the end of its last imported frame."""
    longest: dict[int, float] = {}
    for asset_id, modality, start, end in zip(
        asset_ids, modalities, rows.start, rows.end, strict=True
    ):
        last = end if end is not None else start
        if modality == "video" and last is not None:
            longest[asset_id] = max(longest.get(asset_id, 0.0), float(last))
    if not longest:
        return
    known = func.coalesce(_ASSETS.c.duration, 0.0)
    given = bindparam("given", type_=Float())
    statement = (
        update(_ASSETS)
        .where(_ASSETS.c.id == bindparam("asset"))
        .values(duration=case((known > given, known), else_=given))
    )
    conn.execute(statement, [{"asset": k, "given": v} for k, v in longest.items()])
