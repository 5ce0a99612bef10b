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
        valid = ids >= 0
        scores, ids = scores[valid], ids[valid]
        segments = self.meta.segments_with_assets(s, [int(i) for i in ids])
        best: dict[int, Hit] = {}
        for score, seg_id in zip(scores, ids, strict=True):
            seg = segments.get(int(seg_id))
            if seg is None or seg.asset_id in best:
                continue
            asset = seg.asset
            span = (seg.char_start, seg.char_end) if seg.char_start is not None else None
            best[seg.asset_id] = Hit(
                path=self.meta.abspath(asset),
                score=min(1.0, max(-1.0, float(score))),
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
        return sorted(best.values(), key=lambda h: (-h.score, h.path))
