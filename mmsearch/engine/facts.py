"""What an index holds, read without changing it: its size and roots, one file's
facts, thumbnails, and the duplicates report.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import select

from mmsearch.duplicates import TIERS, DuplicateFinder, DuplicateReport
from mmsearch.engine.core import EngineCore
from mmsearch.engine.opening import expand
from mmsearch.errors import ConfigError, PathError
from mmsearch.kinds import Modality
from mmsearch.search.results import Hit
from mmsearch.search.thumbnails import make_thumbnail
from mmsearch.store.describe import describe_asset
from mmsearch.store.schema import Asset, Segment


class AssetLocation(NamedTuple):
    """Where the metadata records an indexed file (see :meth:`Engine.asset_location`)."""

    path: str
    root: str
    modality: Modality
    content_hash: str
    relpath: str


class Facts(EngineCore):
    """The engine's read-only reports; see :class:`~mmsearch.engine.Engine`."""

    def info(self) -> dict[str, Any]:
        """What is in the index, which embedder built it, and its size on disk."""
        counts = self.meta.counts()
        size = 0
        for name in os.listdir(self.folder):
            full = os.path.join(self.folder, name)
            if os.path.isfile(full):
                size += os.path.getsize(full)
        return {
            "index": self.folder,
            "format": self.manifest.format,
            "db": self.meta.url,
            "embedder": self.identity.to_dict(),
            "vector_store": self.manifest.vector_store,
            **counts,
            "vectors": self.vectors.count,
            "vector_index": self.vectors.describe(),
            "size_bytes": size,
        }

    def roots(self) -> list[dict[str, Any]]:
        """The library folders: ``path``, ``files`` indexed under it, whether it ``exists``."""
        return [
            {"path": path, "files": files, "exists": os.path.isdir(path)}
            for path, files in self.meta.root_counts()
        ]

    def show(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """What the index holds for one file: metadata, segments by view, tags, OCR lines."""
        return describe_asset(self.meta, expand(path))

    def asset_location(self, asset_id: int) -> AssetLocation:
        """Where an indexed file is recorded (path, root, ...); :class:`PathError` for no such id.

        Read-only and unchecked: the server's check that the file still lies under its
        root is :func:`mmsearch.server.security.file_under_root`.
        """
        with self.meta.sessions() as s:
            asset = s.get(Asset, int(asset_id)) if 0 < int(asset_id) < 2**63 else None
            if asset is None:
                raise PathError(f"no indexed file has asset id {asset_id}")
            return AssetLocation(
                path=self.meta.abspath(asset),
                root=asset.root.path,
                modality=cast(Modality, asset.modality),
                content_hash=asset.content_hash,
                relpath=asset.relpath,
            )

    def show_asset(self, asset_id: int) -> dict[str, Any]:
        """:meth:`show` of the file with this asset id; :class:`PathError` when there is none."""
        return describe_asset(self.meta, self.asset_location(asset_id).path)

    def frame_times(self, asset_id: int) -> list[float]:
        """The times (s) of a video's indexed frames, sorted; empty for other files."""
        with self.meta.sessions() as s:
            times = s.scalars(
                select(Segment.best_time).where(
                    Segment.asset_id == int(asset_id), Segment.best_time.is_not(None)
                )
            )
            return sorted({float(t) for t in times if t is not None})

    def thumbnail(self, hit: Hit, size: int = 320) -> str | None:
        """Path of a cached JPEG thumbnail for a result (a video moment: its best frame).

        Made on first request and kept under ``thumbs/`` in the index folder;
        ``None`` for text results.
        """
        if hit.modality == "text":
            return None
        with self.meta.sessions() as s:
            content = s.scalar(select(Asset.content_hash).where(Asset.id == hit.asset_id))
        # keyed by content, so copies share one thumbnail; a file with no hash (an import)
        # by its asset id, which is never given to another file
        key = content or str(hit.asset_id)
        return make_thumbnail(os.path.join(self.folder, "thumbs"), key, hit, size)

    def duplicates(
        self,
        paths: Sequence[str | os.PathLike[str]] | None = None,
        tiers: Sequence[str] | None = None,
    ) -> DuplicateReport:
        """Groups of exact copies, near-duplicates and similar shots, largest first.

        Only files under ``paths`` (default: the whole index) are grouped;
        ``tiers`` picks some of ``exact``, ``near``, ``similar`` (default: all).
        A read-only report: nothing is written. See :mod:`mmsearch.duplicates`.
        """
        chosen = list(tiers) if tiers else list(TIERS)
        unknown = [t for t in chosen if t not in TIERS]
        if unknown:
            raise ConfigError(f"unknown tier {unknown[0]!r}; choose from {', '.join(TIERS)}")
        expanded = [expand(p) for p in paths] if paths else None
        missing = [p for p in expanded or [] if not os.path.exists(p)]
        if missing:
            raise PathError(f"no such file or folder: {missing[0]}")
        self.refresh()
        return DuplicateFinder(self.meta, self.vectors).run(expanded, chosen)
