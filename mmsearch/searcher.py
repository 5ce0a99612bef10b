"""Search: query vectors → vector store → segments → results, one per asset.

The vector store returns segments; results roll up to their asset (the best
chunk of a document, the best frame of a video), so a long document does not
fill the page with its own chunks. Filters (here the modality) are turned into
an allowed set of segment ids *before* the top-k cut, so a filtered search
returns k results whenever k matching assets exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import Segment
from mmsearch.store.vectors import VectorStore

OVERFETCH = 4


@dataclass
class Hit:
    """One result: an asset, its score and the segment that matched best."""

    path: str
    score: float
    modality: str
    asset_id: int
    segment_id: int
    view: str
    snippet: str | None = None
    span: tuple[int, int] | None = None
    start: float | None = None
    end: float | None = None
    best_time: float | None = None
    width: int | None = None
    height: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "score": round(self.score, 6),
            "modality": self.modality,
            "view": self.view,
            "asset_id": self.asset_id,
            "segment_id": self.segment_id,
        }
        if self.modality == "text":
            out["snippet"] = self.snippet
            out["span"] = list(self.span) if self.span else None
        if self.modality == "image":
            out["width"], out["height"] = self.width, self.height
        if self.modality == "video":
            out["start"], out["end"], out["best_time"] = self.start, self.end, self.best_time
        return out


class Searcher:
    def __init__(self, meta: MetadataStore, vectors: VectorStore) -> None:
        self.meta = meta
        self.vectors = vectors

    def search(
        self, query: np.ndarray, k: int = 10, modalities: list[str] | None = None
    ) -> list[Hit]:
        """The ``k`` best assets for a normalised query vector."""
        if k <= 0:
            return []
        query = np.asarray(query, dtype=np.float32).reshape(1, -1)
        with self.meta.sessions() as s:
            allowed = None
            if modalities:
                allowed = self.meta.segment_ids_for_modalities(s, modalities)
                if len(allowed) == 0:
                    return []
            total = self.vectors.count if allowed is None else len(allowed)
            fetch = min(total, k * OVERFETCH)
            while True:
                scores, ids = self.vectors.search(query, fetch, allowed)
                hits = self._roll_up(s, scores[0], ids[0])
                if len(hits) >= k or fetch >= total:
                    return hits[:k]
                fetch = min(total, fetch * OVERFETCH)

    def _roll_up(self, s: Any, scores: np.ndarray, ids: np.ndarray) -> list[Hit]:
        """Best segment per asset; for videos, one hit per moment (see :func:`group_moments`)."""
        valid = ids >= 0
        scores, ids = scores[valid], ids[valid]
        segments = self.meta.segments_with_assets(s, [int(i) for i in ids])
        best: dict[int, Hit] = {}
        frames: list[tuple[float, Segment]] = []
        for score, seg_id in zip(scores, ids, strict=True):
            seg = segments.get(int(seg_id))
            if seg is None:
                continue
            if seg.asset.modality == "video":
                frames.append((float(score), seg))
            elif seg.asset_id not in best:
                best[seg.asset_id] = self._hit(seg, float(score))
        hits = list(best.values())
        margin = moment_margin(scores)
        for moment in group_moments(frames, margin):
            top_score, top = moment.best
            hit = self._hit(top, top_score)
            hit.start, hit.end = moment.start, moment.end
            hits.append(hit)
        return sorted(hits, key=lambda h: (-h.score, h.path, h.start or 0.0))

    def _hit(self, seg: Segment, score: float) -> Hit:
        asset = seg.asset
        span = (seg.char_start, seg.char_end) if seg.char_start is not None else None
        return Hit(
            path=self.meta.abspath(asset),
            score=min(1.0, max(-1.0, score)),
            modality=asset.modality,
            asset_id=asset.id,
            segment_id=seg.id,
            view=seg.view,
            snippet=seg.text,
            span=span,  # type: ignore[arg-type]
            start=seg.t_start,
            end=seg.t_end,
            best_time=seg.t_best,
            width=asset.width,
            height=asset.height,
        )


def moment_margin(scores: np.ndarray) -> float:
    """How far below a moment's best frame a neighbouring frame may score and still join it.

    A quarter of the gap between the best and the median candidate score (at
    least 0.02): frames that match about as well as the best extend the moment,
    frames that score like the background don't. Without it, a query over a
    small index would fetch every frame and merge a whole video into one moment.
    """
    if len(scores) == 0:
        return 0.02
    return max(0.02, 0.25 * float(np.max(scores) - np.median(scores)))


@dataclass
class Moment:
    """A run of adjacent matching frames of one video."""

    asset_id: int
    ords: set[int]
    start: float
    end: float
    best: tuple[float, Segment]


def group_moments(frames: list[tuple[float, Segment]], margin: float) -> list[Moment]:
    """Merge matching frames of a video that are adjacent in time into moments.

    ``frames`` are ``(score, segment)`` pairs. Taken best first, a frame whose
    ``ord`` is next to a moment of its video, and whose score is within
    ``margin`` of that moment's best, extends the moment; a frame next to no
    moment starts a new one; a weaker neighbour is dropped. So a video appears
    once per distinct moment.
    """
    moments: list[Moment] = []
    for score, seg in sorted(frames, key=lambda f: (-f[0], f[1].id)):
        near = [
            m
            for m in moments
            if m.asset_id == seg.asset_id and ({seg.ord - 1, seg.ord + 1} & m.ords)
        ]
        if not near:
            if any(m.asset_id == seg.asset_id and seg.ord in m.ords for m in moments):
                continue
            moments.append(
                Moment(seg.asset_id, {seg.ord}, seg.t_start or 0.0, seg.t_end or 0.0, (score, seg))
            )
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
                moment.start, moment.end = (
                    min(moment.start, other.start),
                    max(moment.end, other.end),
                )
                moments.remove(other)
    return moments
