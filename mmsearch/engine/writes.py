"""What changes an index: indexing, syncing, OCR, removing, moving roots, tags, imports.

Each change runs inside :meth:`~mmsearch.engine.core.EngineCore.writing`, the
writer's ritual (lock, catch up, work, save, warm the search statistics).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence

import numpy as np

from mmsearch.engine.core import EngineCore
from mmsearch.engine.opening import expand
from mmsearch.errors import MissingDependencyError, PathError
from mmsearch.ingest.indexer import Indexer
from mmsearch.ingest.ocr_pass import OcrReport
from mmsearch.ingest.report import IndexReport, ProgressCallback
from mmsearch.media.decode import DecodeOptions
from mmsearch.store.verify import VerifyReport


class Writes(EngineCore):
    """The engine's writes; see :class:`~mmsearch.engine.Engine`."""

    _ocr_notice_given = False

    def index(
        self, paths: Sequence[str | os.PathLike[str]], on_progress: ProgressCallback | None = None
    ) -> IndexReport:
        """Bring the index up to date with files and folders; see :mod:`mmsearch.ingest.indexer`."""
        expanded = [expand(p) for p in paths]
        missing = [p for p in expanded if not os.path.exists(p)]
        if missing:
            raise PathError(f"no such file or folder: {missing[0]}")
        with self.writing():
            return self._indexer(on_progress).run(expanded)

    def sync(
        self, paths: Sequence[str | os.PathLike[str]], on_progress: ProgressCallback | None = None
    ) -> IndexReport:
        """Bring the index up to date with paths that changed (what watch mode calls).

        Existing paths are indexed as by :meth:`index`; missing ones are forgotten,
        unless their content shows up at a new path in the same call (a move keeps
        its vectors). Paths should lie inside folders already indexed.
        """
        changed = sorted({expand(p) for p in paths})
        with self.writing():
            return self._indexer(on_progress).sync(changed)

    def _indexer(self, on_progress: ProgressCallback | None) -> Indexer:
        policy = self.ocr_policy()
        remote = None
        if self.settings.ray:
            from mmsearch.ingest.ray_pipeline import RayEmbedding

            workers = self.settings.workers or None
            remote = RayEmbedding(self.settings.ray, self.identity, self.settings, policy, workers)
        return Indexer(
            self.meta, self.vectors, self.embedder, self.settings, on_progress, policy, remote
        )

    def ocr_pass(
        self,
        paths: Sequence[str | os.PathLike[str]],
        policy: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> OcrReport:
        """Read the words of indexed images that have not had OCR at ``policy``.

        ``policy`` defaults to the ``ocr`` setting, with ``off`` taken as ``on``
        (asking for an OCR pass means wanting OCR); see :mod:`mmsearch.ingest.ocr_pass`.
        """
        from mmsearch.ingest.ocr_pass import run_ocr_pass

        chosen = policy or (self.settings.ocr if self.settings.ocr != "off" else "on")
        expanded = [expand(p) for p in paths]
        with self.writing():
            chosen = self.ocr_policy(chosen)
            options = DecodeOptions.from_settings(self.settings, self.embedder.image_size, chosen)
            if chosen == "off":
                return OcrReport()
            return run_ocr_pass(
                self.meta,
                self.vectors,
                self.embedder,
                options,
                expanded,
                self.settings.workers,
                on_progress,
            )

    def ocr_policy(self, requested: str | None = None) -> str:
        """The OCR setting in force: ``auto`` quietly becomes ``off`` without rapidocr.

        ``on`` without the package raises :class:`MissingDependencyError`.
        """
        policy = str(requested or self.settings.ocr)
        if policy == "off" or importlib.util.find_spec("rapidocr_onnxruntime") is not None:
            return policy
        if policy == "on":
            raise MissingDependencyError(
                "OCR needs the 'rapidocr-onnxruntime' package: pip install 'mmsearch[ocr]'"
            )
        if not self._ocr_notice_given:
            self.on_notice("OCR is off: install it with pip install 'mmsearch[ocr]'")
            self._ocr_notice_given = True
        return "off"

    def remove(self, paths: Sequence[str | os.PathLike[str]]) -> int:
        """Forget files or whole folders; return how many files were removed."""
        with self.writing():
            with self.meta.sessions.begin() as s:
                ids = sorted({a.id for p in paths for a in self.meta.assets_under(s, expand(p))})
                segment_ids = self.meta.delete_assets(s, ids)
            self.vectors.remove(np.asarray(segment_ids, dtype=np.int64))
        return len(ids)

    def move_root(self, old: str | os.PathLike[str], new: str | os.PathLike[str]) -> int:
        """Tell the index that a library folder moved; return the files now under ``new``.

        A rewrite of stored folder paths, nothing is read or embedded. ``old`` is a
        root, a folder holding roots, or a folder inside a root (which becomes a root
        of its own); ``new`` must exist and must not overlap another root.
        """
        old_path, new_path = expand(old), expand(new)
        if not os.path.isdir(new_path):
            raise PathError(f"no such folder: {new_path}")
        with self.writing(), self.meta.sessions.begin() as s:
            self.meta.move_root(s, old_path, new_path)
        with self.meta.sessions() as s:
            paths = [self.meta.abspath(a) for a in self.meta.assets_under(s, new_path)]
        missing = sum(not os.path.exists(p) for p in paths)
        if missing:
            self.on_notice(
                f"{missing} of {len(paths)} files are not in {new_path};"
                f" mmsearch index {new_path} will forget them"
            )
        return len(paths)

    def tag(self, paths: Sequence[str | os.PathLike[str]], tags: dict[str, str | None]) -> int:
        """Set (or, with value ``None``, remove) tags on files or folders; return files tagged."""
        with self.writing(), self.meta.sessions.begin() as s:
            assets = {a.id for p in paths for a in self.meta.assets_under(s, expand(p))}
            for key, value in tags.items():
                self.meta.set_tag(s, sorted(assets), key, value)
        return len(assets)

    def import_embeddings(
        self,
        source: str | os.PathLike[str],
        table: str | os.PathLike[str] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> IndexReport:
        """Add segments whose vectors were computed elsewhere (see ``ingest/bulk_import.py``).

        ``source`` is a Parquet file (``path``, ``vector`` and optional columns) or a
        ``.npy`` matrix with ``table`` (Parquet or JSON Lines) holding the other columns.
        """
        from mmsearch.ingest.bulk_import import BulkImporter, read_rows

        path = expand(source)
        columns = expand(table) if table is not None else None
        for p in (path, columns):
            if p is not None and not os.path.isfile(p):
                raise PathError(f"no such file: {p}")
        rows = read_rows(path, columns)
        with self.writing():
            importer = BulkImporter(self.meta, self.vectors, self.identity.dim, on_progress)
            return importer.run(rows, path)

    def verify(self, repair: bool = False) -> VerifyReport:
        """Check that SQLite, the vector file and the manifest agree; optionally repair.

        Repair works from SQLite, the source of truth: damaged or orphan rows
        are deleted (their files re-embedded on the next index run) and the
        vector file is rebuilt.
        """
        from mmsearch.store.verify import verify_index

        on_disk = self._vector_store()
        # a repair rebuilds the store from SQLite: no catching up with rows it deletes
        writer = self.writing(catch_up=False)
        return verify_index(self.meta, on_disk, self.vectors, repair, writer)
