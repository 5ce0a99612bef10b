"""What a search returns: :class:`Hit` (one result) and :class:`SearchResult` (a page)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple


class Key(NamedTuple):
    """What one result stands for: a file, or (for videos) one frame of it.

    Images and texts are ranked once per file (``frame`` 0); a video's frames
    are ranked apart (``frame`` is the frame's segment id) and merged into
    moments after fusion.
    """

    asset_id: int
    frame: int = 0

    @property
    def is_frame(self) -> bool:
        return self.frame != 0


@dataclass(kw_only=True)
class Match:
    """A matched segment and the file it belongs to: what a candidate and a hit share."""

    path: str
    modality: str
    asset_id: int
    segment_id: int
    view: str
    snippet: str | None = None  # the segment's text: a passage, or an OCR line
    span: tuple[int, int] | None = None
    start: float | None = None
    end: float | None = None
    best_time: float | None = None
    width: int | None = None
    height: int | None = None
    time: str | None = None  # EXIF capture time, else mtime (ISO), for --sort time

    @property
    def key(self) -> Key:
        return Key(self.asset_id, self.segment_id if self.modality == "video" else 0)

    def match_fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(Match)}


@dataclass(kw_only=True)
class Hit(Match):
    """One result: a file (or a video moment), its scores and what matched.

    ``score`` is the ranking score of the query's fusion mode (a cosine for a
    single-modality ``vector`` query; a calibrated or fused score otherwise);
    ``similarity`` is the cosine between the matched segment and the best
    positive query part. ``explain`` says which parts and which segment matched.
    """

    score: float
    similarity: float = 0.0
    ocr_line: str | None = None  # the best-matching recognised line of an image or frame
    duplicates: list[str] = field(default_factory=list)
    explain: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_match(cls, match: Match, score: float, similarity: float) -> Hit:
        return cls(**match.match_fields(), score=score, similarity=similarity)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "score": round(self.score, 6),
            "similarity": round(self.similarity, 6),
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
        if self.modality in ("image", "video"):
            out["ocr_line"] = self.ocr_line
        out["time"] = self.time
        out["duplicates"] = len(self.duplicates)
        if self.duplicates:
            out["duplicate_paths"] = list(self.duplicates)
        if self.explain:
            out["explain"] = self.explain
        return out


@dataclass
class SearchResult:
    """A page of hits and facts about the whole ranking."""

    hits: list[Hit]
    total: int  # results that passed the cutoff and filters, before paging
    fusion: str
    cut: int | None = None  # how many candidates the relevance cutoff dropped
    notes: list[str] = field(default_factory=list)  # what the user should know (old palettes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "results": [h.to_dict() for h in self.hits],
            "total": self.total,
            "fusion": self.fusion,
        }
        if self.notes:
            out["notes"] = list(self.notes)
        return out
