"""Checking that SQLite, the vector store and the manifest agree, and repairing from SQLite.

SQLite is the source of truth; the vector file is a cache of it. ``verify``
reports every disagreement; ``repair`` fixes what can be fixed from SQLite:

- vector file ids ≠ SQLite segment ids (missing or orphan vectors): rebuild it;
- segments whose asset is gone (orphans): delete them;
- segments whose stored vector has the wrong length: delete them and mark
  their file for re-embedding on the next ``mmsearch index`` (mtime reset).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select, update

from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import Asset, Segment
from mmsearch.store.sync import rebuild
from mmsearch.store.vectors import VectorFileError, VectorStore


@dataclass
class VerifyReport:
    segments: int = 0
    vectors: int = 0
    missing_vectors: int = 0  # in SQLite, not in the vector store
    orphan_vectors: int = 0  # in the vector store, not in SQLite
    orphan_segments: int = 0  # segments whose asset row is gone
    bad_vectors: int = 0  # stored vectors of the wrong length
    dim_mismatch: bool = False
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check(meta: MetadataStore, store_ids: np.ndarray, store_dim: int, dim: int) -> VerifyReport:
    """Compare SQLite with the vector store's ids and the manifest's dimension."""
    report = VerifyReport(vectors=len(store_ids))
    with meta.sessions() as s:
        ids = np.fromiter(s.scalars(select(Segment.id)), dtype=np.int64)
        report.segments = len(ids)
        report.orphan_segments = (
            s.scalar(select(func.count(Segment.id)).where(~Segment.asset_id.in_(select(Asset.id))))
            or 0
        )
        report.bad_vectors = (
            s.scalar(select(func.count(Segment.id)).where(func.length(Segment.vector) != dim * 2))
            or 0
        )
    report.missing_vectors = int(np.setdiff1d(ids, store_ids).size)
    report.orphan_vectors = int(np.setdiff1d(store_ids, ids).size)
    report.dim_mismatch = store_dim != dim
    if len(np.unique(store_ids)) != len(store_ids):
        report.problems.append("the vector store holds some ids twice")
    if report.dim_mismatch:
        report.problems.append(f"vector store dim {store_dim} != manifest dim {dim}")
    for name, label in (
        ("missing_vectors", "segments without a vector in the vector store"),
        ("orphan_vectors", "vectors whose segment is not in SQLite"),
        ("orphan_segments", "segments whose file record is gone"),
        ("bad_vectors", f"stored vectors whose length is not {dim} float16 values"),
    ):
        count = getattr(report, name)
        if count:
            report.problems.append(f"{count} {label}")
    return report


def repair_sqlite(meta: MetadataStore, dim: int, report: VerifyReport) -> None:
    """Delete orphan and damaged segments; damaged files are re-embedded next run."""
    with meta.sessions.begin() as s:
        if report.orphan_segments:
            orphans = select(Segment.id).where(~Segment.asset_id.in_(select(Asset.id)))
            gone = list(s.scalars(orphans))
            s.query(Segment).filter(Segment.id.in_(gone)).delete(synchronize_session=False)
            report.repaired.append(f"deleted {len(gone)} orphan segments")
        if report.bad_vectors:
            bad = select(Segment.id, Segment.asset_id).where(func.length(Segment.vector) != dim * 2)
            rows = s.execute(bad).all()
            assets = {a for _, a in rows}
            s.query(Segment).filter(Segment.id.in_([i for i, _ in rows])).delete(
                synchronize_session=False
            )
            s.execute(
                update(Asset)
                .where(Asset.id.in_(assets))
                .values(mtime_ns=0, size=-1, content_hash="")
            )
            report.repaired.append(
                f"deleted {len(rows)} damaged vectors; {len(assets)} files will be re-embedded"
                " by the next mmsearch index"
            )


def verify_index(
    meta: MetadataStore,
    on_disk: VectorStore,
    live: VectorStore,
    repair: bool,
    lock: AbstractContextManager[Any],
) -> VerifyReport:
    """Check SQLite against the vector file ``on_disk`` (a fresh, unloaded store).

    With ``repair``, under ``lock``: damaged or orphan rows are deleted from
    SQLite and ``live``, the store searches use, is rebuilt from what remains.
    """
    dim = live.dim
    problem: str | None = None
    try:
        on_disk.load()
        ids = on_disk.ids()
        store_dim = on_disk.dim
    except VectorFileError as exc:
        ids, store_dim = np.zeros(0, np.int64), dim
        problem = f"vector file {exc}"
    report = check(meta, ids, store_dim, dim)
    if problem:
        report.problems.insert(0, problem)
    if repair and not report.ok:
        with lock:
            repair_sqlite(meta, dim, report)
            rebuild(meta, live)
            report.repaired.append(f"rebuilt the vector file ({live.count} vectors)")
    return report
