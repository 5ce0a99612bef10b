"""What an ingestion run says back: skipped files, progress, and the run's counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Skip:
    """A file not indexed (or indexed in part), and why, for the run's report."""

    path: str
    reason: str


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    moved: int = 0
    reused: int = 0
    ignored: int = 0
    segments: int = 0
    palettes: int = 0  # pictures indexed before palettes that were given one
    skipped: list[Skip] = field(default_factory=list)
    partial: list[Skip] = field(default_factory=list)  # indexed in part (e.g. truncated video)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class Progress:
    """Reported after each file: ``done`` of ``total`` files to decode and embed."""

    done: int
    total: int
    path: str


ProgressCallback = Callable[[Progress], None]
