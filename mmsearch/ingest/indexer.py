"""Ingestion: discover → decode (worker processes) → embed (batched) → store.

One run walks the given paths and brings the index up to date with them:

- an unchanged file (same size and mtime, or same content hash) costs nothing;
- a file whose content the index already holds elsewhere reuses those vectors:
  a moved or renamed file keeps its segments, a copy gets copies of them;
- a changed file is re-embedded; a file gone from a walked folder is removed;
- a file that can't be read is listed in the report with its reason, and the
  run goes on.

Decoding runs in worker processes, a bounded window ahead of the model, so
reading and resizing overlap with embedding. Each batch of files is written to
SQLite in one transaction and then added to the vector store, which is saved
atomically at the end of the run (and every ``SAVE_EVERY`` seconds).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from mmsearch.embedders.base import Embedder
from mmsearch.ingest.chunking import chunk_text
from mmsearch.ingest.discover import discover
from mmsearch.ingest.report import IndexReport, Progress, ProgressCallback, Skip
from mmsearch.ingest.workers import decode_in_order
from mmsearch.media.decode import DecodedFile, DecodeOptions
from mmsearch.settings import Settings
from mmsearch.store.metadata import CONTENT_FACTS, AssetRecord, MetadataStore
from mmsearch.store.schema import Asset, Segment
from mmsearch.store.sync import save_written
from mmsearch.store.vectors import VectorStore

SAVE_EVERY = 60.0


@dataclass
class Job:
    """One decoded file waiting for the model, and how its vectors become segments."""

    decoded: DecodedFile
    replaces: int | None  # id of the asset this file's old version had
    texts: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)

    @property
    def images(self) -> list[Any]:
        return [self.decoded.image.image] if self.decoded.image else []

    def record(self) -> AssetRecord:
        return asset_record(self.decoded)

    def segments(self, image_vecs: np.ndarray, text_vecs: np.ndarray) -> list[Segment]:
        if self.decoded.modality == "image":
            lines = self.decoded.ocr.lines if self.decoded.ocr is not None else []
            palette = self.decoded.image.palette if self.decoded.image else None
            return [Segment.new("pixels", image_vecs[0], palette=palette)] + [
                Segment.new("ocr", vec, ord=i, text=line.text, box=list(line.box))
                for i, (vec, line) in enumerate(zip(text_vecs, lines, strict=True))
            ]
        return [
            Segment.new("chunk", vec, ord=i, char_start=s, char_end=e, text=text)
            for i, (vec, (s, e), text) in enumerate(
                zip(text_vecs, self.spans, self.texts, strict=True)
            )
        ]


def asset_record(decoded: DecodedFile) -> AssetRecord:
    """The asset row of a decoded file (a video's size and duration come later)."""
    image = decoded.image
    return AssetRecord(
        path=decoded.path,
        modality=decoded.modality,
        size=decoded.size,
        mtime_ns=decoded.mtime_ns,
        content_hash=decoded.content_hash,
        width=image.width if image else None,
        height=image.height if image else None,
        taken_at=image.taken_at if image else None,
        meta=decoded.meta or None,
    )


Row = tuple[AssetRecord, list[Segment], int | None]  # a file, its segments, the asset it replaces
Embedded = tuple[AssetRecord, list[Segment], str | None]  # a file, its segments, its damage
Outcome = Embedded | str  # what decoding and embedding one file gave: its rows, or why not


def prepare_job(
    decoded: DecodedFile, replaces: int | None, embedder: Embedder, settings: Settings
) -> Job | str:
    """What the model must embed for an image or a text file, or why there is nothing."""
    job = Job(decoded, replaces)
    if decoded.ocr is not None:
        job.texts = [line.text for line in decoded.ocr.lines]
    if decoded.modality == "text" and decoded.text is not None:
        spans = embedder.token_spans(decoded.text)
        chunks = chunk_text(decoded.text, spans, embedder.max_tokens, settings.chunk_overlap)
        if not chunks:
            return "no words to index"
        job.texts = [c.text for c in chunks]
        job.spans = [(c.start, c.end) for c in chunks]
    return job


def embed_jobs(jobs: list[Job], embedder: Embedder) -> list[Row]:
    """Embed the jobs' images and texts in one batch each; each job's file and segments."""
    images = [im for j in jobs for im in j.images]
    texts = [t for j in jobs for t in j.texts]
    image_vecs = embedder.embed_images(images) if images else None
    text_vecs = embedder.embed_texts(texts) if texts else None
    rows: list[Row] = []
    i = t = 0
    for job in jobs:
        n_img, n_txt = len(job.images), len(job.texts)
        segs = job.segments(
            image_vecs[i : i + n_img] if image_vecs is not None else np.zeros((0, 0)),
            text_vecs[t : t + n_txt] if text_vecs is not None else np.zeros((0, 0)),
        )
        i, t = i + n_img, t + n_txt
        rows.append((job.record(), segs, job.replaces))
    return rows


def embed_video_file(
    decoded: DecodedFile, embedder: Embedder, settings: Settings, ocr_policy: str
) -> Embedded:
    """A video's file record and frame segments, and what was wrong with it if it was damaged.

    Raises :class:`~mmsearch.media.video.reader.VideoDecodeError` when it can't be opened.
    """
    from mmsearch.ingest.video import embed_video

    video = embed_video(decoded.path, embedder, settings, ocr_policy)
    record = replace(
        asset_record(decoded),
        width=video.info.width,
        height=video.info.height,
        duration=max((seg.end or 0.0 for seg in video.segments), default=None),
        meta=video.meta,
    )
    return record, video.segments, video.error


class RemoteEmbedding(Protocol):
    """Decodes and embeds files elsewhere (a Ray cluster, ``ingest/ray_pipeline.py``)."""

    def embed(self, todo: list[tuple[str, str]]) -> Iterator[tuple[str, Outcome]]:
        """Each ``(path, modality)`` with its file record, segments and damage, or a skip reason."""
        ...


class Indexer:
    """Brings an index up to date with a set of paths; see the module docstring."""

    def __init__(
        self,
        meta: MetadataStore,
        vectors: VectorStore,
        embedder: Embedder,
        settings: Settings,
        on_progress: ProgressCallback | None = None,
        ocr_policy: str = "off",
        remote: RemoteEmbedding | None = None,
    ) -> None:
        self.meta = meta
        self.vectors = vectors
        self.embedder = embedder
        self.settings = settings
        self.ocr_policy = ocr_policy
        self.on_progress = on_progress
        self.remote = remote
        self._pending: list[Job] = []
        self._last_save = time.monotonic()

    # -- the run ---------------------------------------------------------

    def run(self, paths: list[str]) -> IndexReport:
        self.meta.ensure_roots(paths)
        return self._update(paths, paths)

    def sync(self, changed: list[str]) -> IndexReport:
        """Bring the index up to date with paths that changed (watch mode).

        A path that exists is indexed as by :meth:`run` (a folder is walked); one
        that is gone is forgotten with every indexed file under it, unless its
        content shows up at a new path in the same call: a move keeps its vectors.
        """
        return self._update([p for p in changed if os.path.lexists(p)], changed)

    def _update(self, walk: list[str], scope: list[str]) -> IndexReport:
        """Index what is found under ``walk``; forget what vanished under ``scope``."""
        started = time.monotonic()
        report = IndexReport()
        found = discover(walk)
        report.ignored = found.ignored
        report.skipped.extend(Skip(p, f"folder not readable: {r}") for p, r in found.failed_dirs)
        report.skipped.extend(Skip(p, r) for p, r in found.rejected)
        on_disk = {p for p, _ in found.files}
        todo, vanished = self._scan(scope, found.files, on_disk, found.failed_dirs, report)
        self._decode_and_embed(todo, vanished, report)
        self._flush(report)
        self._remove_vanished(vanished, report)
        if self.settings.palette == "on":
            from mmsearch.ingest.palette_pass import backfill_palettes

            workers = self.settings.workers
            report.palettes = backfill_palettes(
                self.meta, scope, self.settings.max_image_pixels, workers, report
            )
        save_written(self.meta, self.vectors)
        report.seconds = time.monotonic() - started
        return report

    def _scan(
        self,
        paths: list[str],
        files: list[tuple[str, str]],
        on_disk: set[str],
        failed_dirs: list[tuple[str, str]],
        report: IndexReport,
    ) -> tuple[list[tuple[str, str]], dict[str, list[Asset]]]:
        """Split files into unchanged and to-do; collect indexed files that vanished."""
        todo: list[tuple[str, str]] = []
        vanished: dict[str, list[Asset]] = {}
        unreadable = tuple(d.rstrip(os.sep) + os.sep for d, _ in failed_dirs)
        seen: set[int] = set()
        with self.meta.sessions() as s:
            for path, modality in files:
                asset = self.meta.asset_at(s, path)
                try:
                    st = os.stat(path)
                except OSError as exc:
                    report.skipped.append(Skip(path, exc.strerror or str(exc)))
                    continue
                if asset and asset.size == st.st_size and asset.mtime_ns == st.st_mtime_ns:
                    report.unchanged += 1
                else:
                    todo.append((path, modality))
            for top in paths:
                for asset in self.meta.assets_under(s, top):
                    path = self.meta.abspath(asset)
                    if asset.id in seen or path in on_disk or path.startswith(unreadable):
                        continue
                    seen.add(asset.id)
                    if os.path.exists(path):
                        continue
                    vanished.setdefault(asset.content_hash, []).append(asset)
        return todo, vanished

    def _decoded(self, todo: list[tuple[str, str]]) -> Iterator[tuple[str, DecodedFile | str]]:
        """Decode files in order, in worker processes a bounded window ahead."""
        options = DecodeOptions.from_settings(
            self.settings, self.embedder.image_size, self.ocr_policy
        )
        workers = self.settings.workers or max(1, (os.cpu_count() or 2) - 1)
        window = max(2 * self.settings.batch_size, 4 * workers)
        return decode_in_order(todo, options, workers, window)

    def _decode_and_embed(
        self, todo: list[tuple[str, str]], vanished: dict[str, list[Asset]], report: IndexReport
    ) -> None:
        if self.remote is not None:
            self._place_remote(self.remote, todo, vanished, report)
            return
        for done, (path, result) in enumerate(self._decoded(todo), start=1):
            if isinstance(result, str):
                report.skipped.append(Skip(path, result))
                self._forget_changed(path, report)
            elif result.modality == "video":
                self._place_video(result, vanished, report)
            else:
                self._place(result, vanished, report)
            if self._pending_size() >= self.settings.batch_size:
                self._flush(report)
            if self.on_progress:
                self.on_progress(Progress(done, len(todo), path))

    def _place_remote(
        self,
        remote: RemoteEmbedding,
        todo: list[tuple[str, str]],
        vanished: dict[str, list[Asset]],
        report: IndexReport,
    ) -> None:
        """Write what ``remote`` decoded and embedded, batch by batch, with the same rules."""
        rows: list[Row] = []
        for done, (path, outcome) in enumerate(remote.embed(todo), start=1):
            if isinstance(outcome, str):
                report.skipped.append(Skip(path, outcome))
                self._forget_changed(path, report)
            else:
                record, segments, partial = outcome
                if partial:
                    report.partial.append(Skip(path, partial))
                current = self._current(path)
                if not self._reuse(record, current, vanished, report):
                    rows.append((record, segments, current.id if current else None))
            if sum(len(segments) for _, segments, _ in rows) >= self.settings.batch_size:
                self._write(rows, report)
                rows = []
            if self.on_progress:
                self.on_progress(Progress(done, len(todo), path))
        self._write(rows, report)

    # -- placing one decoded file -----------------------------------------

    def _current(self, path: str) -> Asset | None:
        """The indexed file at ``path`` (the old version of a changed file), if any."""
        with self.meta.sessions() as s:
            return self.meta.asset_at(s, path)

    def _reuse(
        self,
        record: AssetRecord,
        current: Asset | None,
        vanished: dict[str, list[Asset]],
        report: IndexReport,
    ) -> bool:
        """Use what the index already has for this content, without the model; True if it did."""
        if current is not None and current.content_hash == record.content_hash:
            with self.meta.sessions.begin() as s:
                self.meta.touch(s, current.id, record.mtime_ns, record.size)
            report.unchanged += 1
            return True
        moved_from = vanished.get(record.content_hash)
        if moved_from and current is None:
            with self.meta.sessions.begin() as s:
                asset = s.merge(moved_from.pop())
                self.meta.move_asset(s, asset, record.path, record.mtime_ns)
            report.moved += 1
            return True
        return self._copy_twin(record, current, report)

    def _copy_twin(self, record: AssetRecord, current: Asset | None, report: IndexReport) -> bool:
        """A file whose content another indexed file has gets copies of its segments."""
        with self.meta.sessions.begin() as s:
            twins = self.meta.assets_with_hash(s, record.content_hash)
            if not twins:
                return False
            old_segments = self._drop(s, current)
            facts = {name: getattr(twins[0], name) for name in CONTENT_FACTS}
            asset = self.meta.add_asset(s, replace(record, **facts), [])
            self.meta.copy_segments(s, twins[0].id, asset.id)
            new_ids = self.meta.segment_ids_of(s, asset.id)
        report.reused += 1
        report.segments += len(new_ids)
        if current is None:
            report.added += 1
        else:
            report.updated += 1
        self.vectors.remove(np.asarray(old_segments, dtype=np.int64))
        self._add_vectors(new_ids)
        return True

    def _place(
        self, decoded: DecodedFile, vanished: dict[str, list[Asset]], report: IndexReport
    ) -> None:
        """Reuse what the index has for this content, or queue it for the model."""
        current = self._current(decoded.path)
        if self._reuse(asset_record(decoded), current, vanished, report):
            return
        job = prepare_job(decoded, current.id if current else None, self.embedder, self.settings)
        if isinstance(job, str):
            report.skipped.append(Skip(decoded.path, job))
            return
        self._pending.append(job)

    def _place_video(
        self, decoded: DecodedFile, vanished: dict[str, list[Asset]], report: IndexReport
    ) -> None:
        """Sample, embed and write one video (decoded here: frames stream, see ingest.video)."""
        current = self._current(decoded.path)
        if self._reuse(asset_record(decoded), current, vanished, report):
            return
        from mmsearch.ingest.video import VideoDecodeError

        try:
            record, segments, partial = embed_video_file(
                decoded, self.embedder, self.settings, self.ocr_policy
            )
        except VideoDecodeError as exc:
            report.skipped.append(Skip(decoded.path, str(exc)))
            self._forget_changed(decoded.path, report)
            return
        if partial:
            report.partial.append(Skip(decoded.path, partial))
        self._write([(record, segments, current.id if current else None)], report)

    def _drop(self, s: Any, asset: Asset | None) -> list[int]:
        if asset is None:
            return []
        return self.meta.delete_assets(s, [asset.id])

    def _forget_changed(self, path: str, report: IndexReport) -> None:
        """A known file that changed and can no longer be read: drop its stale vectors."""
        with self.meta.sessions.begin() as s:
            asset = self.meta.asset_at(s, path)
            if asset is None:
                return
            gone = self.meta.delete_assets(s, [asset.id])
        self.vectors.remove(np.asarray(gone, dtype=np.int64))
        report.removed += 1

    # -- embedding and writing --------------------------------------------

    def _pending_size(self) -> int:
        return max(
            sum(len(j.images) for j in self._pending), sum(len(j.texts) for j in self._pending)
        )

    def _flush(self, report: IndexReport) -> None:
        """Embed the pending jobs and write them in one transaction."""
        jobs, self._pending = self._pending, []
        if jobs:
            self._write(embed_jobs(jobs, self.embedder), report)

    def _write(self, rows: list[Row], report: IndexReport) -> None:
        """Write files and their segments in one transaction, then their vectors."""
        new_ids: list[int] = []
        old_ids: list[int] = []
        with self.meta.sessions.begin() as s:
            for record, segs, replaces in rows:
                if replaces is not None:
                    old_ids += self.meta.delete_assets(s, [replaces])
                    report.updated += 1
                else:
                    report.added += 1
                asset = self.meta.add_asset(s, record, segs)
                new_ids += self.meta.segment_ids_of(s, asset.id)
                report.segments += len(segs)
        self.vectors.remove(np.asarray(old_ids, dtype=np.int64))
        self._add_vectors(new_ids)
        if time.monotonic() - self._last_save > SAVE_EVERY:
            save_written(self.meta, self.vectors)
            self._last_save = time.monotonic()

    def _add_vectors(self, segment_ids: list[int]) -> None:
        if not segment_ids:
            return
        with self.meta.sessions() as s:
            for ids, vecs in self.meta.vectors(s, segment_ids):
                self.vectors.add(ids, vecs)

    def _remove_vanished(self, vanished: dict[str, list[Asset]], report: IndexReport) -> None:
        ids = [a.id for group in vanished.values() for a in group]
        if not ids:
            return
        with self.meta.sessions.begin() as s:
            gone = self.meta.delete_assets(s, ids)
        self.vectors.remove(np.asarray(gone, dtype=np.int64))
        report.removed += len(ids)
