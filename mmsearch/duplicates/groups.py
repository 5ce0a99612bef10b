"""The records of a duplicate report, and how a group's keeper is chosen.

:class:`DuplicateReport` holds :class:`DuplicateGroup` records (a tier, the
keeper's path, the members), each member a :class:`DuplicateMember` (path,
why it is in the group, its similarity to the keeper). ``to_dict()`` gives
the JSON ``mmsearch duplicates --json`` prints. The keeper is the member with
the largest resolution, then the oldest capture time (EXIF, else the file's
modification time), then the first path.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from mmsearch.kinds import DuplicateTier
from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import Asset

COSINE_FLOOR = 0.80
"""Candidate pairs need the model's cosine at least this (raised where the space is crowded)."""


@dataclass
class DuplicateMember:
    path: str
    reason: str
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DuplicateGroup:
    tier: DuplicateTier
    keeper: str  # the path of the member to keep
    members: list[DuplicateMember]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "keeper": self.keeper,
            "members": [m.to_dict() for m in self.members],
        }


@dataclass
class DuplicateReport:
    groups: list[DuplicateGroup]
    unreadable: list[str] = field(default_factory=list)  # files the pixel check could not open
    cosine_floor: float = COSINE_FLOOR  # the candidate floor in force for this index

    def to_dict(self) -> dict[str, Any]:
        return {"groups": [g.to_dict() for g in self.groups]}


@dataclass
class FileFacts:
    id: int
    path: str
    modality: str
    content_hash: str
    width: int
    height: int
    taken: str  # capture time (EXIF), else modification time, ISO-like for ordering
    duration: float | None


def keeper_order(f: FileFacts) -> tuple[int, str, str]:
    """Largest resolution first, then the oldest capture time, then the path."""
    return (-f.width * f.height, f.taken, f.path)


class Unions:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for x in self.parent:
            out[self.find(x)].append(x)
        return [sorted(g) for g in out.values() if len(g) > 1]


def file_facts(meta: MetadataStore, a: Asset) -> FileFacts:
    taken = a.taken_at or _iso(a.mtime_ns)
    return FileFacts(
        a.id,
        meta.abspath(a),
        a.modality,
        a.content_hash,
        a.width or 0,
        a.height or 0,
        taken,
        a.duration,
    )


def _iso(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9).isoformat(timespec="seconds")


def keeper_reason(f: FileFacts) -> str:
    return f"largest resolution ({f.width}x{f.height}), then oldest capture time ({f.taken})"


def exact_groups(files: list[FileFacts]) -> list[list[int]]:
    by_hash: dict[str, list[FileFacts]] = defaultdict(list)
    for f in files:
        by_hash[f.content_hash].append(f)
    groups = []
    for same in by_hash.values():
        paths = {f.path for f in same}
        if len(paths) > 1:
            groups.append([f.id for f in sorted(same, key=keeper_order)])
    return groups
