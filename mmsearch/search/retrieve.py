"""Retrieval: one query vector → vector store → segments → candidates, one per file.

The vector store returns segments; they roll up to *candidates*: one per image
or text file (its best segment: the best passage of a document) and one per
video frame, which :func:`group_moments` later merges into moments. Filters
arrive as an allowed set of segment ids, applied *before* the top-k cut:
FAISS searches only among them, or, when the set is small, an exact scan over
their stored vectors does. A candidate's :class:`~mmsearch.search.results.Key`
says which file, or which frame of a video, it stands for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from mmsearch.kinds import VISUAL_VIEWS
from mmsearch.search.color import ColorView
from mmsearch.search.results import Key, Match
from mmsearch.search.stats_cache import read_stats, write_stats
from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import Segment
from mmsearch.store.vectors import SCAN_MAX, VectorStore

if TYPE_CHECKING:
    from mmsearch.store.metadata import SegmentHit

OVERFETCH = 4
BACKGROUND_SAMPLE = 256  # segments per modality for score distributions


@dataclass(kw_only=True)
class Candidate(Match):
    """A segment standing for its file (or, for videos, its frame) in one ranking."""

    similarity: float  # cosine to the query vector that found it
    ord: int  # the segment's place in its file (a video frame's number)


def view_group(view: str) -> str:
    """``visual`` for pixels and frames, ``textual`` for passages and OCR lines.

    Scores of one query against the two groups live on different scales in
    CLIP-style spaces (the modality gap), so they are calibrated apart.
    """
    return "visual" if view in VISUAL_VIEWS else "textual"


class Searcher:
    def __init__(
        self, meta: MetadataStore, vectors: VectorStore, stats_path: str | None = None
    ) -> None:
        self.meta = meta
        self.vectors = vectors
        self.stats_path = stats_path  # where background() keeps its sample (stats_cache)
        self._background: tuple[tuple[int, int], dict[str, np.ndarray]] | None = None
        self._duplicate_floor: float | None = None
        self.colors = ColorView(meta)

    def candidates(
        self, query: np.ndarray, want: int, allowed: np.ndarray | None = None
    ) -> dict[Key, dict[str, Candidate]]:
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
        # a filter keeping at most SCAN_MAX segments is scanned exactly here, from the
        # metadata store, unless the vector store holds its vectors and scans them itself
        if allowed is None or len(allowed) > SCAN_MAX or self.vectors.local_vectors:
            scores, ids = self.vectors.search(query, fetch, allowed)
            return scores[0], ids[0]
        return self.scan(query, fetch, allowed)

    def scan(
        self, query: np.ndarray, fetch: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``fetch`` best of ``allowed`` by exact scores over their vectors in SQLite."""
        with self.meta.sessions() as s:
            batches = list(self.meta.vectors(s, allowed.tolist()))
        if not batches:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        ids = np.concatenate([b[0] for b in batches])
        sims = np.concatenate([b[1] for b in batches]) @ query[0]
        order = np.lexsort((ids, -sims))[:fetch]
        return sims[order], ids[order]

    def _roll_up(self, scores: np.ndarray, ids: np.ndarray) -> dict[Key, dict[str, Candidate]]:
        valid = ids >= 0
        scores, ids = scores[valid], ids[valid]
        out: dict[Key, dict[str, Candidate]] = {}
        with self.meta.sessions() as s:
            hits = self.meta.segment_hits(s, ids.tolist())
        for score, seg_id in zip(scores.tolist(), ids.tolist(), strict=True):
            hit = hits.get(seg_id)
            if hit is None:
                continue
            candidate = _candidate(hit, score)
            groups = out.setdefault(candidate.key, {})
            groups.setdefault(view_group(hit.view), candidate)
        return out

    def candidates_for(self, found: dict[Key, tuple[int, float]]) -> dict[Key, Candidate]:
        """Candidates for segments another view found (key → segment id, score).

        The colour view ranks palettes, not vectors; its score (a coverage in
        [0, 1]) stands in the candidate's ``similarity``.
        """
        with self.meta.sessions() as s:
            hits = self.meta.segment_hits(s, [seg for seg, _ in found.values()])
        return {
            key: _candidate(hits[seg], score) for key, (seg, score) in found.items() if seg in hits
        }

    def vectors_of(self, segment_ids: list[int]) -> dict[int, np.ndarray]:
        """The stored vectors of ``segment_ids``: from the vector store when it holds them on
        this machine (a few hundred rows read in well under a millisecond), else from the
        metadata store."""
        if self.vectors.local_vectors and segment_ids:
            ids = np.asarray(segment_ids, dtype=np.int64)
            try:
                found = self.vectors.vectors_of(ids)
            except KeyError:  # the store is behind SQLite (caught up on the next refresh)
                pass
            else:
                return dict(zip(ids.tolist(), found, strict=True))
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
        cutoffs and negative thresholds); it is cached until the index changes,
        in memory and, with ``stats_path``, on disk beside the index, so a new
        process reads it instead of listing every segment id
        (:mod:`mmsearch.search.stats_cache`).
        """
        stamp = self.meta.segment_stamp()
        if self._background and self._background[0] == stamp:
            return self._background[1]
        saved = None
        if self.stats_path is not None:
            saved = read_stats(self.stats_path, stamp, self.vectors.dim)
        if saved is not None:
            self._background = (stamp, saved[0])
            self._duplicate_floor = saved[1]
            return saved[0]
        sample = self._sample()
        self._background = (stamp, sample)
        self._duplicate_floor = _duplicate_floor(sample)
        if self.stats_path is not None:
            write_stats(self.stats_path, stamp, sample, self._duplicate_floor)
        return sample

    def _sample(self) -> dict[str, np.ndarray]:
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
        return sample

    def duplicate_floor(self, sample: dict[str, np.ndarray] | None = None) -> float:
        """The 99.5th percentile of cosines between different stored segments.

        Near-duplicate collapse must not fold merely similar files together, and
        what "similar" means depends on the space: CLIP images of different
        scenes rarely exceed 0.9, while the offline (ConSE) space squeezes them
        to about 0.91 on average. The collapse threshold is raised to this
        floor, measured per modality on the background sample, so only pairs
        more alike than 199 in 200 pairs of the library fold together.
        (Measured per view group: passages and OCR lines among themselves,
        pixels and frames among themselves.) Pass the ``sample`` :meth:`background`
        just gave, so one query reads the index's state once.
        """
        if sample is None:
            sample = self.background()
        if self._duplicate_floor is None:
            self._duplicate_floor = _duplicate_floor(sample)
        return self._duplicate_floor


def _duplicate_floor(sample: dict[str, np.ndarray]) -> float:
    floors = []
    for vectors in sample.values():
        if len(vectors) >= 8:
            sims = vectors @ vectors.T
            upper = sims[np.triu_indices(len(vectors), k=1)]
            floors.append(float(np.percentile(upper, 99.5)))
    return max(floors, default=-1.0)


def _candidate(hit: SegmentHit, score: float) -> Candidate:
    """The candidate for one :meth:`~mmsearch.store.metadata.MetadataStore.segment_hits` row.

    A search builds a few hundred of these, so the path is joined and the time
    written without ``os.path.join``'s and ``datetime``'s generality.
    """
    first, last = hit.char_start, hit.char_end
    span = (first, last) if first is not None and last is not None else None
    return Candidate(
        path=hit.path,
        modality=hit.modality,
        asset_id=hit.asset_id,
        segment_id=hit.id,
        view=hit.view,
        snippet=hit.text,
        span=span,
        start=hit.start,
        end=hit.end,
        best_time=hit.best_time,
        width=hit.width,
        height=hit.height,
        time=hit.taken_at or _iso_mtime(hit.mtime_ns),
        similarity=min(1.0, max(-1.0, score)),
        ord=hit.ord,
    )


def _iso_mtime(mtime_ns: int) -> str:
    """A modification time (ns) as a local ISO time to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(mtime_ns // 1_000_000_000))
