"""Retrieval: one query vector → vector store → segments → candidates, one per file.

The vector store returns segments; they roll up to *candidates*: one per image
or text file (its best segment: the best passage of a document) and one per
video frame, which :func:`group_moments` later merges into moments. Filters
arrive as an allowed set of segment ids, applied *before* the top-k cut:
FAISS searches only among them, or, when the set is small, an exact scan over
their stored vectors does. Candidate keys are asset ids for images and texts
and negated segment ids for video frames, so one int space holds both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import Segment
from mmsearch.store.vectors import VectorStore

OVERFETCH = 4
EXACT_SCAN_MAX = 2048  # allowed sets up to this size are scanned exactly from SQLite
BACKGROUND_SAMPLE = 256  # segments per modality for score distributions


@dataclass
class Candidate:
    """A segment standing for its file (or, for videos, its frame) in one ranking."""

    key: int
    id: int  # segment id
    asset_id: int
    similarity: float
    modality: str
    path: str
    view: str
    ord: int
    t_start: float | None
    t_end: float | None
    t_best: float | None
    text: str | None
    span: tuple[int, int] | None
    width: int | None
    height: int | None
    time: str | None  # EXIF capture time, else mtime (ISO), for --sort time


VISUAL_VIEWS = ("pixels", "frame")


def view_group(view: str) -> str:
    """``visual`` for pixels and frames, ``textual`` for passages and OCR lines.

    Scores of one query against the two groups live on different scales in
    CLIP-style spaces (the modality gap), so they are calibrated apart.
    """
    return "visual" if view in VISUAL_VIEWS else "textual"


class Searcher:
    def __init__(self, meta: MetadataStore, vectors: VectorStore) -> None:
        self.meta = meta
        self.vectors = vectors
        self._background: tuple[tuple[int, int], dict[str, np.ndarray]] | None = None
        self._duplicate_floor: float | None = None

    def candidates(
        self, query: np.ndarray, want: int, allowed: np.ndarray | None = None
    ) -> dict[int, dict[str, Candidate]]:
        """At least ``want`` candidate keys (when that many exist), best first.

        Each key maps its view groups (``visual``: pixels and frames;
        ``textual``: passages and OCR lines) to the best segment of that group,
        so the views of one file can be fused late.
        """
        query = np.asarray(query, dtype=np.float32).reshape(1, -1)
        total = self.vectors.count if allowed is None else len(allowed)
        if total == 0 or want <= 0:
            return {}
        fetch = min(total, want * OVERFETCH)
        while True:
            scores, ids = self._search(query, fetch, allowed)
            found = self._roll_up(scores, ids)
            if len(found) >= want or fetch >= total:
                return found
            fetch = min(total, fetch * OVERFETCH)

    def _search(
        self, query: np.ndarray, fetch: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None or len(allowed) > EXACT_SCAN_MAX:
            scores, ids = self.vectors.search(query, fetch, allowed)
            return scores[0], ids[0]
        with self.meta.sessions() as s:
            batches = list(self.meta.vectors(s, allowed.tolist()))
        if not batches:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        ids = np.concatenate([b[0] for b in batches])
        sims = np.concatenate([b[1] for b in batches]) @ query[0]
        order = np.lexsort((ids, -sims))[:fetch]
        return sims[order], ids[order]

    def _roll_up(self, scores: np.ndarray, ids: np.ndarray) -> dict[int, dict[str, Candidate]]:
        valid = ids >= 0
        scores, ids = scores[valid], ids[valid]
        out: dict[int, dict[str, Candidate]] = {}
        with self.meta.sessions() as s:
            segments = self.meta.segments_with_assets(s, [int(i) for i in ids])
            for score, seg_id in zip(scores, ids, strict=True):
                seg = segments.get(int(seg_id))
                if seg is None:
                    continue
                key = -seg.id if seg.asset.modality == "video" else seg.asset_id
                groups = out.setdefault(key, {})
                group = view_group(seg.view)
                if group not in groups:
                    groups[group] = _candidate(self.meta, key, seg, float(score))
        return out

    def vectors_of(self, segment_ids: list[int]) -> dict[int, np.ndarray]:
        with self.meta.sessions() as s:
            return {
                int(i): v
                for ids, vecs in self.meta.vectors(s, segment_ids)
                for i, v in zip(ids, vecs, strict=True)
            }

    def asset_vectors(self, asset_ids: list[int]) -> np.ndarray:
        """One normalised mean vector per asset (for relevance feedback)."""
        out = []
        with self.meta.sessions() as s:
            for asset_id in asset_ids:
                seg_ids = self.meta.segment_ids_of(s, asset_id)
                vecs = [v for _, batch in self.meta.vectors(s, seg_ids) for v in batch]
                if vecs:
                    mean = np.mean(vecs, axis=0)
                    out.append(mean / max(float(np.linalg.norm(mean)), 1e-9))
        dim = self.vectors.dim
        return np.asarray(out, dtype=np.float32).reshape(-1, dim)

    def background(self) -> dict[str, np.ndarray]:
        """Up to ``BACKGROUND_SAMPLE`` stored vectors per view group, evenly spread by id.

        The sample describes the index's score distribution (for calibration,
        cutoffs and negative thresholds); it is cached until the index changes.
        """
        stamp = self.meta.segment_stats()
        if self._background and self._background[0] == stamp:
            return self._background[1]
        sample: dict[str, np.ndarray] = {}
        with self.meta.sessions() as s:
            for group in ("visual", "textual"):
                in_group = Segment.view.in_(VISUAL_VIEWS)
                rows = select(Segment.id).where(in_group if group == "visual" else ~in_group)
                ids = list(s.scalars(rows.order_by(Segment.id)))
                if not ids:
                    continue
                step = max(1, len(ids) // BACKGROUND_SAMPLE)
                picked = ids[::step][:BACKGROUND_SAMPLE]
                sample[group] = np.concatenate([v for _, v in self.meta.vectors(s, picked)])
        self._background = (stamp, sample)
        self._duplicate_floor = None
        return sample

    def duplicate_floor(self) -> float:
        """The 99.5th percentile of cosines between different stored segments.

        Near-duplicate collapse must not fold merely similar files together, and
        what "similar" means depends on the space: CLIP images of different
        scenes rarely exceed 0.9, while the offline (ConSE) space squeezes them
        to about 0.91 on average. The collapse threshold is raised to this
        floor, measured per modality on the background sample, so only pairs
        more alike than 199 in 200 pairs of the library fold together.
        (Measured per view group: passages and OCR lines among themselves,
        pixels and frames among themselves.)
        """
        sample = self.background()
        if self._duplicate_floor is None:
            floors = []
            for vectors in sample.values():
                if len(vectors) >= 8:
                    sims = vectors @ vectors.T
                    upper = sims[np.triu_indices(len(vectors), k=1)]
                    floors.append(float(np.percentile(upper, 99.5)))
            self._duplicate_floor = max(floors, default=-1.0)
        return self._duplicate_floor


def _candidate(meta: MetadataStore, key: int, seg: Segment, score: float) -> Candidate:
    asset = seg.asset
    span = (seg.char_start, seg.char_end) if seg.char_start is not None else None
    return Candidate(
        key=key,
        id=seg.id,
        asset_id=asset.id,
        similarity=min(1.0, max(-1.0, score)),
        modality=asset.modality,
        path=meta.abspath(asset),
        view=seg.view,
        ord=seg.ord,
        t_start=seg.t_start,
        t_end=seg.t_end,
        t_best=seg.t_best,
        text=seg.text,
        span=span,  # type: ignore[arg-type]
        width=asset.width,
        height=asset.height,
        time=asset.taken_at or _iso_mtime(asset.mtime_ns),
    )


def _iso_mtime(mtime_ns: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(mtime_ns / 1e9).isoformat(timespec="seconds")


def moment_margin(scores: Any) -> float:
    """How far below a moment's best frame a neighbouring frame may score and still join it.

    A quarter of the gap between the best and the median candidate score, in
    whatever scale the ranking uses: frames that match about as well as the
    best extend the moment, frames that score like the background don't.
    Without it, a query over a small index would fetch every frame and merge a
    whole video into one moment.
    """
    arr = np.asarray(list(scores), dtype=np.float64)
    if len(arr) == 0:
        return 0.0
    return 0.25 * float(np.max(arr) - np.median(arr))


@dataclass
class Moment:
    """A run of adjacent matching frames of one video."""

    asset_id: int
    ords: set[int]
    start: float
    end: float
    best: tuple[float, Candidate]


def group_moments(frames: list[tuple[float, Candidate]], margin: float) -> list[Moment]:
    """Merge matching frames of a video that are adjacent in time into moments.

    ``frames`` are ``(score, frame)`` pairs. Taken best first, a frame whose
    ``ord`` is next to a moment of its video, and whose score is within
    ``margin`` of that moment's best, extends the moment; a frame next to no
    moment starts a new one; a weaker neighbour is dropped. So a video appears
    once per distinct moment.
    """
    moments: list[Moment] = []
    for score, seg in sorted(frames, key=lambda f: (-f[0], f[1].id)):
        mine = [m for m in moments if m.asset_id == seg.asset_id]
        near = [m for m in mine if {seg.ord - 1, seg.ord + 1} & m.ords]
        if not near:
            if not any(seg.ord in m.ords for m in mine):
                start, end = seg.t_start or 0.0, seg.t_end or 0.0
                moments.append(Moment(seg.asset_id, {seg.ord}, start, end, (score, seg)))
            continue
        moment = near[0]
        if score < moment.best[0] - margin:
            continue
        moment.ords.add(seg.ord)
        moment.start = min(moment.start, seg.t_start or 0.0)
        moment.end = max(moment.end, seg.t_end or 0.0)
        for other in near[1:]:  # the frame bridges two moments: join them
            if other.best[0] - margin <= score:
                moment.ords |= other.ords
                moment.start = min(moment.start, other.start)
                moment.end = max(moment.end, other.end)
                moments.remove(other)
    return moments
